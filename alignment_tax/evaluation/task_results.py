"""From lm-eval's results and logged samples to this tool's per-task scores and item records.

For the package's own tasks every item record carries ``id``, ``source``, ``input``, ``output``,
``reference`` and the item's metric values, and every mean-aggregated metric's aggregate is the
mean of those values. Corpus metrics (BLEU, chrF) keep the corpus score as the aggregate, carry
sentence-level scores per item for inspection, and get a bootstrap standard error.

Every generation task (the package's own, and a built-in one whose items record text) also gets
its output health (:mod:`alignment_tax.metrics.health`): ``empty``, ``repetitive`` and, with a
target language, ``off_script`` flags on each item, and their rates in :attr:`TaskScores.health`,
which ``evaluate`` writes under ``health`` in ``results.json``, apart from the metrics, so that
no comparison treats a rate as a score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignment_tax.metrics.cleaning import clean_prediction
from alignment_tax.metrics.embedding_cosine import Encoder, pairwise_cosine
from alignment_tax.metrics.health import flag_items, has_generated_text
from alignment_tax.metrics.translation import corpus_bootstrap_stderr, sentence_bleu, sentence_chrf
from alignment_tax.tasks.prompts import TARGET_LANGUAGE

CORPUS_METRICS = {"bleu": sentence_bleu, "chrf": sentence_chrf}
# TARGET_LANGUAGE (task -> language of its outputs, read from the task YAMLs): used for BLEU
# segmentation, similarity and the off-script flag.
SIMILARITY_TASKS = frozenset(TARGET_LANGUAGE)


@dataclass
class TaskScores:
    metrics: dict[str, float] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, float] | None = None  # generation tasks only: n and the rates of the items' flags


def metric_name(key: str) -> tuple[str, bool]:
    """``"em,none"`` → ``("em", False)``; ``"acc_stderr,none"`` → ``("acc", True)``.

    A filter other than ``none`` stays in the name (``"exact_match,strict-match"``), as two
    filters of one task are two different numbers.
    """
    name, _, filter_name = key.partition(",")
    is_stderr = name.endswith("_stderr")
    if is_stderr:
        name = name[: -len("_stderr")]
    if filter_name and filter_name != "none":
        name = f"{name},{filter_name}"
    return name, is_stderr


def _as_float(value: Any) -> float | None:
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    return None


def lm_eval_metrics(task_result: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics and stderrs lm-eval reported for one task (``N/A`` dropped)."""
    metrics: dict[str, float] = {}
    for key, value in task_result.items():
        if "," not in key:
            continue
        name, is_stderr = metric_name(key)
        number = _as_float(value)
        if number is not None:
            metrics[f"{name}_stderr" if is_stderr else name] = number
    return metrics


def _prompt_of(sample: dict[str, Any]) -> Any:
    arguments = sample.get("arguments")
    if isinstance(arguments, dict):  # {"gen_args_0": {"arg_0": context, "arg_1": kwargs}}
        first = next(iter(arguments.values()), {})
        return first.get("arg_0") if isinstance(first, dict) else first
    if isinstance(arguments, (list, tuple)) and arguments:
        first = arguments[0]
        return first[0] if isinstance(first, (list, tuple)) else first
    return None


def _output_of(sample: dict[str, Any]) -> Any:
    output = sample.get("filtered_resps")
    while isinstance(output, (list, tuple)) and len(output) == 1:
        output = output[0]
    return output


def item_record(sample: dict[str, Any], metric_names: list[str]) -> dict[str, Any]:
    """One logged lm-eval sample as this tool's item record."""
    doc = sample.get("doc", {})
    record = {
        "id": str(doc.get("id", sample.get("doc_id"))),
        "source": doc.get("source", doc),
        "input": _prompt_of(sample),
        "output": _output_of(sample),
        "reference": doc.get("reference", sample.get("target")),
    }
    for name in metric_names:
        if name in sample:
            record[name] = sample[name]
    return record


TruncationLookup = Callable[[dict[str, Any]], "bool | None"]


def add_truncation(
    metrics: dict[str, float],
    items: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    truncated: TruncationLookup | None,
) -> None:
    """Each item's ``truncated`` flag (where the generation cache knows it) and the task's ``truncated_rate``.

    ``items`` and ``samples`` are in the same order. A task none of whose items has a known flag
    (a loglikelihood task, or responses cached before flags were kept) gets no rate.
    """
    if truncated is None:
        return
    flags = []
    for item, sample in zip(items, samples):
        flag = truncated(sample)
        if flag is not None:
            item["truncated"] = flag
            flags.append(flag)
    if flags:
        metrics["truncated_rate"] = float(np.mean(flags))


def _stderr_of_mean(values: list[float]) -> float:
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def score_own_task(
    task: str,
    task_result: dict[str, Any],
    samples: list[dict[str, Any]],
    encoder: Encoder | None,
    seed: int,
    truncated: TruncationLookup | None = None,
) -> TaskScores:
    """Scores and item records of one of the package's tasks."""
    aggregates = {name: value for name, value in lm_eval_metrics(task_result).items() if not name.endswith("_stderr")}
    names = list(aggregates)
    samples = sorted(samples, key=lambda s: s.get("doc_id", 0))
    items = [item_record(sample, names) for sample in samples]
    for item in items:
        # Records show what was scored; the raw generation is kept only where cleaning changed it.
        cleaned = clean_prediction(item["output"] or "")
        if cleaned != item["output"]:
            item["raw_output"] = item["output"]
        item["output"] = cleaned
    outputs = [item["output"] for item in items]
    references = [item["reference"] for item in items]
    target_lang = TARGET_LANGUAGE.get(task)
    scores = TaskScores(items=items)
    for name, value in aggregates.items():
        scores.metrics[name] = value
        if name in CORPUS_METRICS and target_lang:
            for item, sentence_score in zip(items, CORPUS_METRICS[name](outputs, references, target_lang)):
                item[name] = sentence_score
            scores.metrics[f"{name}_stderr"] = corpus_bootstrap_stderr(
                name, outputs, references, target_lang, seed=seed
            )
        else:
            scores.metrics[f"{name}_stderr"] = _stderr_of_mean([float(item[name]) for item in items])
    if encoder is not None and task in SIMILARITY_TASKS and items:
        similarities = pairwise_cosine(encoder, outputs, [str(reference) for reference in references])
        for item, similarity in zip(items, similarities):
            item["similarity"] = similarity
        scores.metrics["similarity"] = float(np.mean(similarities))
        scores.metrics["similarity_stderr"] = _stderr_of_mean(similarities)
    add_truncation(scores.metrics, items, samples, truncated)
    scores.health = flag_items(items, target_lang, recorded=scores.metrics) if items else None
    return scores


def score_other_task(
    task_result: dict[str, Any], samples: list[dict[str, Any]], truncated: TruncationLookup | None = None
) -> TaskScores:
    """An lm-eval built-in task: its own metrics, and its samples in the same record shape."""
    metrics = lm_eval_metrics(task_result)
    names = [name.split(",")[0] for name in metrics if not name.endswith("_stderr")]
    samples = sorted(samples, key=lambda s: s.get("doc_id", 0))
    items = []
    for sample in samples:
        record = item_record(sample, names)
        record["id"] = str(sample.get("doc_id"))
        items.append(record)
    add_truncation(metrics, items, samples, truncated)
    # Log-likelihood tasks record scores, not text: they have no output health.
    health = flag_items(items, None, recorded=metrics) if has_generated_text(items) else None
    return TaskScores(metrics=metrics, items=items, health=health)
