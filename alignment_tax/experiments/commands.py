"""The `run` and `demo` subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alignment_tax.terminal import emit, experiment_lines

DEMO_SPEC = Path(__file__).resolve().parent / "specs" / "demo.yaml"
DEMO_NOTE = (
    "The demo's base is a 1.3M-parameter LM pretrained on text it is measured on, and its adapters "
    "train for a few steps: the numbers show the instrument working (see the report's controls), "
    "not the merit of SFT or RL."
)


def _run(args: argparse.Namespace) -> None:
    from alignment_tax.experiments.spec import load_spec

    spec = load_spec(args.spec, output=args.out)
    if args.dry_run:
        from alignment_tax.experiments.plan import format_plan, plan_experiment
        from alignment_tax.experiments.spec_inputs import check_inputs

        check_inputs(spec)  # what the run reads from disk: a missing file fails now, not hours in
        print(format_plan(plan_experiment(spec)))
        return
    from alignment_tax.experiments.runner import run_experiment

    summary = run_experiment(spec)
    emit(summary, args.json, experiment_lines(summary))


def _demo(args: argparse.Namespace) -> None:
    from alignment_tax.experiments.runner import run_experiment
    from alignment_tax.experiments.spec import load_spec

    spec = load_spec(DEMO_SPEC, output=args.out)
    # The demo's caps are short by its own choice (to run in minutes on CPU): one line says so, in place of
    # a truncation warning per task and model.
    summary = run_experiment(spec, warn_truncation=False)
    emit(summary, args.json, experiment_lines(summary))
    print(f"\n{DEMO_NOTE}\n{demo_caps_note(spec)}", file=sys.stderr)


def demo_caps_note(spec) -> str:
    caps = (spec.evaluate.get("options") or {}).get("max_gen_toks") or {}
    listed = ", ".join(f"{task} {cap}" for task, cap in caps.items())
    return (
        f"Its generation caps are short on purpose ({listed} tokens), so many generations stop at them; "
        "a real run warns about each task whose generations do."
    )


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run an experiment spec (train, evaluate, judge, report); finished stages are skipped",
        description="Stages are cached by the content of their inputs: a rerun skips what is done, a changed "
        "input reruns what depends on it, an interrupted run resumes. Specs: configs/experiments/.",
    )
    run.add_argument("spec", help="experiment YAML")
    run.add_argument("--out", help="output folder (default: the spec's `output`)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check the spec and list the stages it would run and the report's rows; run nothing",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo",
        help="the whole study in miniature, offline: tiny models, SFT, GRPO, evaluate, judge, report",
        description="Runs the demo spec (alignment_tax/experiments/specs/demo.yaml) end to end on CPU in about "
        "2 minutes (2 idle cores), with no network: a tiny base, SFT and GRPO adapters, evaluation, drift, judging and a "
        "report. The numbers show the instrument working, not the merit of SFT or RL. A rerun skips "
        "finished stages.",
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    demo.set_defaults(handler=_demo)
