"""The ``judge`` subcommand: flags to :class:`~alignment_tax.judge.pipeline.JudgeOptions`.

Wire it into the CLI's subparsers with ``register(commands)``::

    commands = parser.add_subparsers(dest="command", required=True)
    from alignment_tax.judge.commands import register
    register(commands)      # adds `judge`, whose handler is args.handler(args)

The handler says the result in a few lines on stdout (the summary as JSON with ``--json``); a stop on ``--max-calls`` also says so on
stderr (the output is written, with ``complete: false``). Errors are
:class:`~alignment_tax.errors.UserError`, which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from alignment_tax.argtypes import at_least, seed
from alignment_tax.terminal import emit, judge_lines

# The summary printed on stdout: the numbers a reader looks at first, and where the rest is.
_SHOWN = (
    "task",
    "n_pairs",
    "wins",
    "ties",
    "losses",
    "n_invalid",
    "n_rejected",
    "n_pending",
    "win_rate",
    "win_rate_ci",
    "p_value",
    "position_consistency",
    "win_pct_a",
    "win_pct_b",
    "only_in_a",
    "only_in_b",
    "complete",
    "stopped",
    "calls",
    "records",
)


_positive, _non_negative = at_least(1), at_least(0)


def _seconds(value: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {value!r}")
    return seconds


def _judge(args: argparse.Namespace) -> None:
    from alignment_tax.judge.pipeline import JudgeOptions, run_judge

    summary = run_judge(
        JudgeOptions(
            run_a=args.a,
            run_b=args.b,
            task=args.task,
            output=args.output,
            judge_model=args.judge_model,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            concurrency=args.concurrency,
            limit=args.limit,
            seed=args.seed,
            max_calls=args.max_calls,
            timeout=args.timeout,
            max_tokens=args.max_tokens,
        )
    )
    if summary["stopped"]:
        kept = "partial results written" if summary["written"] else f"{args.output} keeps an earlier, more complete run"
        print(
            f"alignment-tax: judge stopped early ({summary['stopped']}); {summary['n_pending']} pairs pending; "
            f"{kept}; rerun to continue",
            file=sys.stderr,
        )
    if summary["n_rejected"]:
        print(
            f"alignment-tax: the judge endpoint refused {summary['calls']['rejected']} request(s) on their own "
            f"account (see `rejected` in {summary['records']}); {summary['n_rejected']} pair(s) count as invalid, "
            "and a rerun asks again",
            file=sys.stderr,
        )
    shown = {key: summary[key] for key in _SHOWN} | {"output": args.output}
    emit(shown, args.json, judge_lines(summary, args.output))


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``judge`` subcommand to ``commands`` (the result of ``add_subparsers``)."""
    from alignment_tax.judge import DEFAULT_JUDGE_MODEL

    parser = commands.add_parser(
        "judge",
        help="blind pairwise LLM judge of two runs' outputs (both orders, cached)",
        description="Pair the items of two `evaluate` runs by id and ask a judge which output is better, "
        "blind and in both orders (disagreeing orders count as a tie). Writes the summary to --output, "
        "per-pair records to <output stem>.pairs.jsonl and a reply cache (judge_cache.sqlite) beside it.",
    )
    parser.add_argument("--a", required=True, metavar="RUN_A", help="evaluate output folder or samples/<task>.jsonl")
    parser.add_argument("--b", required=True, metavar="RUN_B", help="evaluate output folder or samples/<task>.jsonl")
    parser.add_argument("--task", required=True, help="bo_zh_mt, zh_bo_mt or bo_headline")
    parser.add_argument(
        "--judge-model",
        default=DEFAULT_JUDGE_MODEL,
        metavar="NAME",
        help=f"model name at the endpoint (default {DEFAULT_JUDGE_MODEL}), or hf:PATH for a local model "
        "that scores the verdict tokens (no server)",
    )
    parser.add_argument(
        "--base-url", metavar="URL", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL, else OpenAI)"
    )
    parser.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the key (default OPENAI_API_KEY); optional for local servers",
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=8, metavar="N", help="calls in flight at once (default 8)"
    )
    parser.add_argument("--limit", type=_positive, metavar="N", help="judge only the first N common items")
    parser.add_argument(
        "--seed",
        type=seed(),
        default=1234,
        metavar="S",
        help="seeds which order is asked first per item, and the bootstrap (default 1234)",
    )
    parser.add_argument(
        "--max-calls",
        type=_non_negative,
        metavar="N",
        help="stop after N requests to the judge (retries and re-asks count); partial results are kept",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="seconds to wait for one answer (default 120); after 6 calls in a row get none (timeouts, refused "
        "connections), the server is taken for dead and the run stops, keeping its verdicts",
    )
    parser.add_argument(
        "--max-tokens",
        type=_positive,
        metavar="N",
        help="endpoint: cap each reply at N tokens (sent as max_tokens; default: the server's own cap, which for "
        "transformers serve is 1024 tokens of generation per call)",
    )
    parser.add_argument("--output", required=True, metavar="FILE.json", help="summary JSON to write")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    parser.set_defaults(handler=_judge)
    return parser
