"""The ``alignment-tax`` command: argument parsing and dispatch only.

Every subcommand is a function in the package, and its flags and handler live beside it, in a
``commands`` module with ``register(commands)`` (``evaluation``, ``trainers``, ``judge``,
``reports``, ``experiments``, ``models``). This module adds them to one parser, runs the chosen
handler, and turns a :class:`~alignment_tax.errors.UserError` into one line on stderr and exit
code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from alignment_tax import __version__
from alignment_tax.argtypes import OneLineParser
from alignment_tax.errors import UserError
from alignment_tax.paths import ENVIRONMENT_ERRORS, environment_error_line

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


def _quiet_libraries() -> None:
    # Progress bars and advisory warnings from transformers/datasets drown the one line a
    # user needs to read; results go to files and stdout.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for message, category, module in KNOWN_LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


# Warnings libraries raise about their own internals, each named, so that a new one still shows.
KNOWN_LIBRARY_WARNINGS = (
    # Trainers ask for pinned memory; on a CPU there is nothing to pin, and torch says so every epoch.
    (r"'pin_memory' argument is set as true but no accelerator is found", UserWarning, r"torch\.utils\.data"),
    # TRL and PEFT call the methods transformers 5 renamed to *activation_checkpointing*; ours use the new names.
    (
        r"`(is_gradient_checkpointing|gradient_checkpointing_enable|gradient_checkpointing_disable)` is deprecated",
        FutureWarning,
        r"transformers\.modeling_utils",
    ),
)


def _written_path(args: argparse.Namespace) -> str | None:
    """The command's own output, named when the OS error names no file (a write to a full disk)."""
    for flag in ("output", "out", "items"):
        value = getattr(args, flag, None)
        if value:
            return str(value)
    return None


def _fail(line: str, code: int = 2) -> int:
    one_line = " ".join(part.strip() for part in line.splitlines() if part.strip())  # the contract: one line
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
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
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except ENVIRONMENT_ERRORS as error:  # the user's disk or paths become one line; any other cause re-raises
        line = environment_error_line(error, _written_path(args))
        if line is None:
            raise
        return _fail(f"{args.command}: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
