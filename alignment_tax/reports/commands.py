"""The ``report`` subcommand: flags to :func:`~alignment_tax.reports.build.build_report`.

Wire it into the CLI's subparsers with ``register(commands)``::

    commands = parser.add_subparsers(dest="command", required=True)
    from alignment_tax.reports.commands import register
    register(commands)      # adds `report`, whose handler is args.handler(args)

The handler says what it wrote in a few lines on stdout, or as JSON with ``--json``. Errors are
:class:`~alignment_tax.errors.UserError`, which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alignment_tax.errors import UserError
from alignment_tax.terminal import emit, report_lines


def is_judge_file(value: str) -> bool:
    """A judge summary is a JSON file: an existing file, or a name ending in ``.json``; a run is a folder."""
    path = Path(value).expanduser()
    return path.is_file() or (not path.is_dir() and value.lower().endswith(".json"))


class _RunsAndJudges(argparse.Action):
    """Collects the run folders and ``--judge`` files in command-line order.

    ``--judge`` takes one or more values, so ``report --judge J.json RUN_A RUN_B`` used to hand
    the runs to ``--judge``. After its first value, each value that is not a judge file is a
    run folder (see :func:`is_judge_file`), wherever it stands.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        values = list(values or [])
        runs = getattr(namespace, "runs", None) or []
        judges = getattr(namespace, "judge", None) or []
        if option_string is None:  # the positional RUN_DIR list
            runs.extend(values)
        else:
            judges.append(values[0])
            for value in values[1:]:
                (judges if is_judge_file(value) else runs).append(value)
        namespace.runs, namespace.judge = runs, judges


def _control(text: str) -> tuple[str, str]:
    from alignment_tax.reports.controls import ROLES

    role, _, run = text.partition("=")
    if role not in ROLES or not run:
        raise argparse.ArgumentTypeError(f"expected ROLE=RUN with ROLE {' or '.join(ROLES)}, got {text!r}")
    return role, run


def _controls_by_role(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    # A repeated role checks every run it names (a dict of the pairs would keep only the last).
    controls: dict[str, list[str]] = {}
    for role, run in pairs:
        controls.setdefault(role, []).append(run)
    return controls


def _report(args: argparse.Namespace) -> None:
    from alignment_tax.reports.build import build_report

    if not args.runs:
        raise UserError("report needs at least one RUN_DIR (an `alignment-tax evaluate` output folder)")
    summary = build_report(
        args.runs,
        out=args.out,
        baseline=args.baseline,
        judge_files=args.judge or [],
        controls=_controls_by_role(args.control or []),
        reference=args.reference,
        reference_map=args.reference_map or [],
    )
    emit(summary, args.json, report_lines(summary))


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``commands`` (the result of ``add_subparsers``)."""
    parser = commands.add_parser(
        "report",
        help="compare evaluated runs in one HTML or Markdown report (tables, intervals, plots, items)",
        description="Compare `evaluate` output folders: a headline table in the shape of the reference "
        "study's Table 3 (task metric, similarity, CMRC Avg/F1, judge win %) with gap rows against the "
        "baseline run and deltas against the base model; paired bootstrap intervals and tests for every "
        "difference; tax-vs-gain, drift, judge and training plots; and an item browser with flips. "
        "--out report.html writes one self-contained page; --out report.md writes Markdown with its "
        "plots as SVG files in report_files/ beside it.",
    )
    parser.add_argument(
        "runs",
        nargs="*",
        action=_RunsAndJudges,
        default=[],
        metavar="RUN_DIR",
        help="`alignment-tax evaluate` output folders (before or after the other flags)",
    )
    parser.add_argument(
        "--baseline",
        metavar="NAME",
        help="the run the gap rows compare against: its folder name or path (default: the base when it is one of the runs, else the first run that is not a --control)",
    )
    parser.add_argument(
        "--judge",
        nargs="+",
        action=_RunsAndJudges,
        default=[],
        metavar="FILE",
        help="`alignment-tax judge` summary JSON file comparing two of the runs (or a run and its base); "
        "repeatable; folders after it are run folders",
    )
    parser.add_argument(
        "--control",
        action="append",
        type=_control,
        metavar="ROLE=RUN",
        help="check RUN as a control: negative (must read exactly 0: a zero adapter) or positive (its drift "
        "Δ NLL must exceed 0 with its whole interval); repeatable, also for one role (each run named is checked)",
    )
    parser.add_argument(
        "--reference",
        metavar="NAME_OR_FILE",
        help="add the numbers a paper states, in their own 'published' rows beside the matched runs (never in a "
        "difference): a shipped reference (semantic-rewards: the reference study's Tables 1-4 and 6) or a YAML file "
        "in its format (see alignment_tax/reports/references/semantic_rewards.yaml). A run matches a published row "
        "when its name is the row id (strong_sft, rl, cold_start_sft, mt_sft_to_hg, mt_rl_to_hg) or one of the row's "
        "default run names (sft_strong, grpo, sft_cold_start, ... as in configs/experiments/)",
    )
    parser.add_argument(
        "--reference-map",
        action="append",
        metavar="ROW=RUN[@SECTION],...",
        help="match RUN to the published row ROW by hand, replacing its default match; @SECTION (a target task "
        "such as bo_zh_mt, or drift) limits it to that table; repeatable or comma-separated",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="report.html|report.md",
        help="the report to write; the format follows the suffix",
    )
    parser.add_argument("--json", action="store_true", help="print what was written as JSON (for scripts)")
    parser.set_defaults(handler=_report)
    return parser
