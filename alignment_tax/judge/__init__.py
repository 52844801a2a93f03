"""Blind pairwise LLM judge: is run A's output better than run B's, item by item?

Public API (imported lazily, so ``alignment-tax --help`` does not pay for scipy or openai)::

    from alignment_tax.judge import JudgeOptions, run_judge
    summary = run_judge(JudgeOptions(run_a="runs/rl", run_b="runs/sft", task="bo_headline",
                                     output="runs/judge/rl_vs_sft.json"))

Modules: ``templates`` (versioned prompt files), ``verdicts`` (reply parser), ``pairing`` (the two
runs' items, by id), ``cache`` (SQLite replies), ``retry`` (backoff, Retry-After), ``openai_judge`` and
``hf_judge`` (backends), ``runner`` (asyncio, budget), ``aggregate`` (outcomes, statistics),
``pipeline`` (the command), ``commands`` (argparse ``register``). A local OpenAI-compatible
stand-in for the judge endpoint, for tests, the benchmark and demos, is ``tests/stub_server.py``.
"""

from importlib import import_module

DEFAULT_JUDGE_MODEL = "gpt-5.2"  # the reference study's judge (its Appendix B)

_EXPORTS = {
    "JudgeOptions": "pipeline",
    "run_judge": "pipeline",
    "parse_verdict": "verdicts",
    "Verdict": "verdicts",
    "template_for_task": "templates",
    "load_template": "templates",
    "summarize": "aggregate",
    "register": "commands",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"alignment_tax.judge.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'alignment_tax.judge' has no attribute {name!r}")
