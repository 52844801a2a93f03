"""Training examples from the project's data loaders and the evaluation tasks' own prompts.

A training prompt is the task's ``doc_to_text`` rendered for the task's doc
(:func:`alignment_tax.tasks.prompts.render_prompt` of :func:`~alignment_tax.tasks.prompts.build_doc`),
sent as one user turn, exactly as ``evaluate`` sends it through the chat template; so what is
trained is what is measured. Each example is conversational::

    {"id": "17",
     "prompt": [{"role": "user", "content": "请把下面的藏文翻译成简体中文。…\\n\\n藏文：…"}],
     "completion": [{"role": "assistant", "content": "<reference>"}],
     "reference": "<reference>"}

(SFT trains on ``prompt`` → ``completion``; GRPO samples completions for ``prompt`` and scores
them against ``reference``.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.rewards.base import REFERENCE_COLUMN  # the column GRPO's rewards read
from alignment_tax.tasks.prompts import (
    TASK_KINDS,
    build_doc,
    render_prompt,
    target_language,
    task_config,
    task_metadata,
)


@dataclass
class TrainingData:
    """The examples of one run and where they came from."""

    examples: list[dict[str, Any]]
    source: str
    task: str
    target_lang: str
    stop: list[str]
    n_rows: int  # rows the loader returned
    sha256: str
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def references(self) -> list[str]:
        return [example[REFERENCE_COLUMN] for example in self.examples]

    def record(self) -> dict[str, Any]:
        """What the run's record (train_config.json) says about its data."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rows": self.n_rows,
            "examples": len(self.examples),
            "task": self.task,
            **self.notes,
        }


def task_target_language(task: str) -> str:
    """The language a task's outputs are written in (its YAML's ``metadata.target_lang``)."""
    language = target_language(task) if task in TASK_KINDS else None
    if language is None:
        raise UserError(f"task {task!r} has no training target language")
    return language


def task_stop(task: str) -> list[str]:
    """The strings at which ``evaluate`` cuts a generation for ``task`` (its ``until``)."""
    until = (task_config(task).get("generation_kwargs") or {}).get("until") or []
    return [until] if isinstance(until, str) else list(until)


def load_records(task: str, source: str, data: dict[str, Any]) -> tuple[list[Any], str]:
    """The task's pairs or headlines from ``source`` as the ``data`` section reads them, and the table's hash."""
    from alignment_tax.data.headlines import headlines_from_table
    from alignment_tax.data.parallel import pairs_from_table
    from alignment_tax.data.readers import read_table

    table = read_table(source, split=data.get("split") or "train", config=data.get("config"))
    if TASK_KINDS.get(task) == "mt":
        meta = task_metadata(task)
        records = pairs_from_table(
            table,
            meta["source_lang"],
            meta["target_lang"],
            data.get("source_column"),
            data.get("target_column"),
            skip_empty=bool(data.get("skip_empty")),
        )
    else:
        records = headlines_from_table(
            table, data.get("article_column"), data.get("headline_column"), skip_empty=bool(data.get("skip_empty"))
        )
    return records, table.sha256()


def select_rows(rows: list[Any], data: dict[str, Any], source: str) -> list[Any]:
    """Optionally shuffle (seeded), then drop ``skip`` rows and keep at most ``limit``."""
    rows = list(rows)
    if data.get("shuffle_seed") is not None:
        random.Random(int(data["shuffle_seed"])).shuffle(rows)
    skip = int(data.get("skip") or 0)
    limit = data.get("limit")
    if skip >= len(rows):
        raise UserError(
            f"{source}: data.skip is {skip} but the data has {len(rows)} rows, leaving none to train on "
            "(the GRPO preset skips the 5,000 rows the cold-start SFT used; set --set data.skip=N)"
        )
    rows = rows[skip:]
    if limit is not None:
        rows = rows[: int(limit)]
    if not rows:
        raise UserError(f"{source}: no rows left to train on (data.limit is {limit})")
    return rows


def make_example(task: str, record: Any) -> dict[str, Any]:
    """One conversational example for a loader record, through the task's own template."""
    doc = build_doc(task, record)
    reference = doc["reference"]
    return {
        "id": doc["id"],
        "prompt": [{"role": "user", "content": render_prompt(task, doc)}],
        "completion": [{"role": "assistant", "content": reference}],
        REFERENCE_COLUMN: reference,
    }


def load_training_data(task: str, source: str, data: dict[str, Any]) -> TrainingData:
    """Read ``source`` with the task's loader and turn the selected rows into examples."""
    if task not in ("bo_zh_mt", "zh_bo_mt", "bo_headline"):
        raise UserError(f"unknown training task {task!r}; choose one of bo_zh_mt, zh_bo_mt, bo_headline")
    records, sha = load_records(task, source, data)
    selected = select_rows(records, data, source)
    examples = [make_example(task, record) for record in selected]
    return TrainingData(
        examples=examples,
        source=str(source),
        task=task,
        target_lang=task_target_language(task),
        stop=task_stop(task),
        n_rows=len(records),
        sha256=sha,
        notes={
            "skip": int(data.get("skip") or 0),
            "limit": data.get("limit"),
            "shuffle_seed": data.get("shuffle_seed"),
        },
    )


def require_reference(examples: list[dict[str, Any]], source: str) -> None:
    """A :class:`UserError` unless every example has a non-empty ``reference`` (GRPO's rewards need it)."""
    missing = [i for i, example in enumerate(examples) if not str(example.get(REFERENCE_COLUMN) or "").strip()]
    if missing:
        raise UserError(
            f"{source}: {len(missing)} training examples have no {REFERENCE_COLUMN!r} (first: example {missing[0]}); "
            "the rewards score completions against it"
        )


def prompt_lengths(tokenizer: Any, examples: list[dict[str, Any]], chat_template_kwargs: dict[str, Any]) -> list[int]:
    """Tokens in each example's prompt after the chat template (with the generation prompt)."""
    lengths = []
    for example in examples:
        ids = tokenizer.apply_chat_template(
            example["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False, **chat_template_kwargs
        )
        lengths.append(len(ids))
    return lengths


def apply_prompt_cap(
    data: TrainingData, tokenizer: Any, max_prompt_length: int | None, chat_template_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Leave out examples whose templated prompt is longer than ``max_prompt_length`` tokens.

    SFT and GRPO apply the same rule (the paper's 256-token prompt limit by default), so that
    strong SFT and GRPO train on the same rows; a prompt is left out whole rather than cut
    mid-sentence (TRL 1.16's GRPO has no prompt-length option of its own). What was found and
    done is returned and kept in ``data.notes["prompt_cap"]`` for ``train_config.json``.
    """
    lengths = prompt_lengths(tokenizer, data.examples, chat_template_kwargs)
    over = [length > max_prompt_length for length in lengths] if max_prompt_length else [False] * len(lengths)
    record = {
        "max_prompt_length": max_prompt_length,
        "rule": "drop prompts over the cap (chat template applied)" if max_prompt_length else "no cap",
        "examples": len(lengths),
        "over_cap": sum(over),
        "dropped": sum(over),
        "longest_prompt": max(lengths, default=0),
    }
    if max_prompt_length and all(over):
        raise UserError(
            f"{data.source}: every prompt is longer than data.max_prompt_length={max_prompt_length} tokens "
            f"(shortest {min(lengths)}); raise it with --set data.max_prompt_length=N"
        )
    data.examples = [example for example, too_long in zip(data.examples, over) if not too_long]
    data.notes["prompt_cap"] = record
    return record
