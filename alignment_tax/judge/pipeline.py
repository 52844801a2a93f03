"""``alignment-tax judge``: blind pairwise comparison of two runs' outputs on one task.

Steps: pair the runs' items by id; render each pair in both orders (A first, B first) with the
task's template; ask the judge (cache first); turn verdicts into per-pair outcomes and the
summary; write ``--output`` (the summary) and, beside it, ``<stem>.pairs.jsonl`` (one record
per pair) and the reply cache ``judge_cache.sqlite``. A run that stops early leaves a more
complete summary of the same comparison as it was (:mod:`.outputs`).

Usage::

    summary = run_judge(JudgeOptions(run_a="runs/rl", run_b="runs/sft", task="bo_headline",
                                     output="runs/judge/rl_vs_sft.json"))
    summary["win_pct_a"], summary["win_pct_b"], summary["p_value"]
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from alignment_tax import __version__
from alignment_tax.argtypes import check_seed
from alignment_tax.errors import UserError
from alignment_tax.judge import DEFAULT_JUDGE_MODEL
from alignment_tax.judge.aggregate import outcome, summarize, winner
from alignment_tax.judge.cache import VerdictCache
from alignment_tax.judge.outputs import write_outputs
from alignment_tax.judge.pairing import Pair, load_run, pair_runs
from alignment_tax.judge.retry import RetryPolicy
from alignment_tax.judge.runner import Job, Judgement, JudgeRunner
from alignment_tax.judge.templates import JudgeTemplate, template_for_task
from alignment_tax.paths import check_output_file

CACHE_NAME = "judge_cache.sqlite"


@dataclass
class JudgeOptions:
    run_a: str
    run_b: str
    task: str
    output: str
    judge_model: str = DEFAULT_JUDGE_MODEL  # a model name at the endpoint, or hf:PATH
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else OpenAI's
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    limit: int | None = None
    seed: int = 1234
    max_calls: int | None = None
    both_orders: bool = True
    template: str | None = None  # a template file instead of the shipped one
    timeout: float = 120.0  # seconds per request; a hung server is given up on after a few (RetryPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache: str | None = None  # default: judge_cache.sqlite beside the output
    device: str = "auto"  # for hf: judges
    max_tokens: int | None = None  # endpoint judges: each reply's cap (None: the server's default)


def _check(options: JudgeOptions) -> None:
    for name, least in (("concurrency", 1), ("limit", 1), ("max_calls", 0), ("max_tokens", 1)):
        value = getattr(options, name)
        if value is not None and value < least:
            raise UserError(f"--{name.replace('_', '-')} must be at least {least}, got {value}")
    if not isinstance(options.timeout, (int, float)) or isinstance(options.timeout, bool) or not options.timeout > 0:
        raise UserError(f"--timeout must be a number of seconds above 0, got {options.timeout!r}")
    # The bootstrap takes the seed only after every verdict is paid for: refuse a bad one first.
    check_seed(options.seed, "--seed")


def make_backend(options: JudgeOptions):
    """The judge: a local LM for ``hf:PATH``, else an OpenAI-compatible endpoint."""
    if options.judge_model.startswith("hf:"):
        from alignment_tax.judge.hf_judge import LocalLMJudge

        return LocalLMJudge(options.judge_model[3:], device=options.device)
    from alignment_tax.judge.openai_judge import DEFAULT_BASE_URL, OpenAIJudge, resolve_api_key

    base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    if not base_url.startswith(("http://", "https://")):
        raise UserError(f"--base-url must start with http:// or https://, got {base_url!r}")
    key = resolve_api_key(base_url, options.api_key_env)
    return OpenAIJudge(options.judge_model, base_url, key, options.timeout, max_tokens=options.max_tokens)


def plan(pairs: list[Pair], seed: int, both_orders: bool) -> list[list[str]]:
    """The orders each pair is shown in, the first one asked first; seeded per item id.

    Seeding by ``(seed, id)`` rather than by position keeps an item's orders the same under
    another ``--limit`` or a reordered file.
    """
    orders = []
    for pair in pairs:
        chosen = ["ab", "ba"]
        random.Random(f"{seed}:{pair.id}").shuffle(chosen)
        orders.append(chosen if both_orders else chosen[:1])
    return orders


def _messages(template: JudgeTemplate, task: str, pair: Pair, order: str) -> list[dict[str, str]]:
    first, second = (pair.output_a, pair.output_b) if order == "ab" else (pair.output_b, pair.output_a)
    return template.render(task, source=pair.source, first=first, second=second, reference=pair.reference)


def _record(pair: Pair, orders: list[str], judgements: list[Judgement | None]) -> dict:
    result, consistent = outcome(judgements)
    shown = []
    for order, judgement in zip(orders, judgements):
        entry = {"shown": order, "candidate_1": order[0], "candidate_2": order[1]}
        if judgement is None:
            entry["pending"] = True
        else:
            verdict = judgement.verdict
            entry.update(
                replies=judgement.replies,
                verdict=verdict and verdict.verdict,
                reason=verdict and verdict.reason,
                winner=winner(judgement),
            )
            if judgement.rejected:
                entry["rejected"] = judgement.rejected
        shown.append(entry)
    return {"id": pair.id, "orders": orders, "judgements": shown, "outcome": result, "consistent": consistent}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"alignment-tax": __version__}
    for package in ("openai", "transformers", "scipy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


async def _judge(runner: JudgeRunner, jobs: list[Job]) -> dict:
    try:
        return await runner.run(jobs)
    finally:
        await runner.backend.close()


def run_judge(options: JudgeOptions) -> dict:
    """Judge run A against run B on ``options.task``; write the outputs and return the summary.

    Raises :class:`UserError` for bad input and when the endpoint refuses calls (after the
    outputs are written with ``complete: false``: every verdict obtained is kept).
    """
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _check(options)
    pairing = pair_runs(load_run(options.run_a, options.task), load_run(options.run_b, options.task), options.limit)
    template = template_for_task(options.task, options.template)
    output = Path(options.output)
    if output.is_dir():
        raise UserError(f"--output must be a file path (e.g. {output / 'judge.json'}), not a folder")
    check_output_file(output, "--output")
    output.parent.mkdir(parents=True, exist_ok=True)
    records_path = output.with_name(output.stem + ".pairs.jsonl")
    backend = make_backend(options)
    cache = VerdictCache(options.cache or output.parent / CACHE_NAME)

    orders = plan(pairing.pairs, options.seed, options.both_orders)
    jobs = [
        Job(index, order, _messages(template, options.task, pair, order))
        for index, pair in enumerate(pairing.pairs)
        for order in orders[index]
    ]
    runner = JudgeRunner(
        backend, cache, template, concurrency=options.concurrency, max_calls=options.max_calls, retry=options.retry
    )
    try:
        results = asyncio.run(_judge(runner, jobs))
    finally:
        cache.close()

    records = [
        _record(pair, orders[index], [results.get((index, order)) for order in orders[index]])
        for index, pair in enumerate(pairing.pairs)
    ]
    summary = {
        "task": options.task,
        "run_a": str(options.run_a),
        "run_b": str(options.run_b),
        "judge": {
            "model": backend.identity,
            "base_url": backend.base_url,
            "template": template.label,
            "template_file": template.path,
            "orders": "both" if options.both_orders else "one, seeded",
            "request_options": dict(backend.options),
        },
        "seed": options.seed,
        "n_items_a": pairing.n_a,
        "n_items_b": pairing.n_b,
        "n_common": pairing.n_common,
        "only_in_a": len(pairing.only_in_a),
        "only_in_b": len(pairing.only_in_b),
        "only_in_a_ids": pairing.only_in_a,
        "only_in_b_ids": pairing.only_in_b,
        **summarize(records, seed=options.seed),
        "complete": runner.stopped is None,
        "stopped": runner.stopped,
        "calls": {
            "made": runner.calls,  # requests sent by this run, retries and re-asks included
            "retries": runner.retries,
            "cached": runner.cached,
            "rejected": runner.rejected,  # refused on their own account; asked again by a rerun
            "max_calls": options.max_calls,
        },
        "records": str(records_path),
        "cache": str(cache.path),
        "versions": _versions(),
        "started": started,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    written = write_outputs(output, records_path, summary, records)
    kept = "" if written else f"; {output} keeps the more complete summary of an earlier run"
    if runner.fatal:
        reason = " ".join(str(runner.stopped).split())
        raise UserError(
            f"{reason}; the verdicts obtained are kept in {cache.path}, and a rerun makes only the missing calls{kept}"
        )
    return summary | {"written": written}
