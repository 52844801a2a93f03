"""The ``alignment-tax`` command: argument parsing and dispatch only.

Every subcommand is a function in the package, and its flags and handler live beside it, in a
``commands`` module with ``register(commands)`` (``evaluation``, ``trainers``, ``judge``,
``reports``, ``experiments``, ``models``). This module adds them to one parser, runs the chosen
handler, and turns a :class:`~alignment_tax.errors.UserError` into one line on stderr and exit
code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from alignment_tax import __version__
from alignment_tax.argtypes import OneLineParser
from alignment_tax.errors import UserError
from alignment_tax.paths import ENVIRONMENT_ERRORS, environment_error_line
from alignment_tax.progress import end_open_bars
from alignment_tax.quiet_libraries import quiet_libraries

PROG = "alignment-tax"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Measure what adapting an LLM cost it elsewhere.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from alignment_tax.evaluation.commands import register as add_evaluate
    from alignment_tax.evaluation.commands import register_score as add_score
    from alignment_tax.experiments.commands import register as add_experiments
    from alignment_tax.judge.commands import register as add_judge
    from alignment_tax.models.commands import register as add_make_tiny_model
    from alignment_tax.reports.commands import register as add_report
    from alignment_tax.trainers.commands import register as add_training

    for add in (
        add_evaluate,
        add_training,
        add_judge,
        add_report,
        add_experiments,
        add_make_tiny_model,
        add_score,
    ):
        add(commands)
    return parser


def _written_path(args: argparse.Namespace) -> str | None:
    """The command's own output, named when the OS error names no file (a write to a full disk)."""
    for flag in ("output", "out", "items"):
        value = getattr(args, flag, None)
        if value:
            return str(value)
    return None


def _fail(line: str, code: int = 2) -> int:
    end_open_bars()
    one_line = " ".join(part.strip() for part in line.splitlines() if part.strip())  # the contract: one line
    # One write, line and newline together: under torchrun every rank says it on one shared stderr,
    # and print's two writes let another rank's line land between them.
    sys.stderr.write(f"{PROG}: error: {one_line}\n")
    sys.stderr.flush()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed as one line
        return stop.code if isinstance(stop.code, int) else 0
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except UserError as error:
        return _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        end_open_bars()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except ENVIRONMENT_ERRORS as error:  # the user's disk or paths become one line; any other cause re-raises
        line = environment_error_line(error, _written_path(args))
        if line is None:
            end_open_bars()  # the traceback on lines of its own
            raise
        return _fail(f"{args.command}: {line}")
    except Exception:
        end_open_bars()
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
