"""``python -m alignment_tax.trainers {train,calibrate-tau,check-embedder} ...``: the training
subcommands on their own, with the CLI's error handling; e.g. under accelerate::

    accelerate launch --num_processes 2 -m alignment_tax.trainers train --method sft ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alignment_tax.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    from alignment_tax.cli import PROG, _quiet_libraries
    from alignment_tax.trainers.commands import register

    _quiet_libraries()
    parser = argparse.ArgumentParser(prog=PROG, description="Training subcommands of alignment-tax.")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
