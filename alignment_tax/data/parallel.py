"""Sentence pairs for translation, in either direction, from one file or hub dataset.

Columns default to the language codes (``{id, bo, zh}``), falling back to the WMT layout
``translation.<code>``; any column may be dotted to read a nested dict::

    pairs = load_parallel("../shared/data/bo_zh_mt/cmilbench_bo_zh.jsonl")       # Tibetan → Chinese
    back = load_parallel("../shared/data/bo_zh_mt/cmilbench_bo_zh.jsonl", "zh", "bo")  # Chinese → Tibetan
    load_parallel("wmt-like/repo", source_column="translation.bo", target_column="translation.zh")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alignment_tax.data import fields
from alignment_tax.data.readers import Table, read_table
from alignment_tax.errors import UserError

LANGUAGES = {"bo": "Tibetan", "zh": "Chinese", "ug": "Uyghur", "kk": "Kazakh", "mn": "Mongolian", "en": "English"}


@dataclass(frozen=True)
class ParallelPair:
    """One source sentence, its reference translation and the direction.

    >>> ParallelPair("0", "ཀ", "甲", "bo", "zh").to_dict()["target_lang"]
    'zh'
    """

    id: str
    source: str
    target: str
    source_lang: str
    target_lang: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_language(code: str, role: str = "language") -> str:
    """``code`` if it is a known language code, else a :class:`UserError` listing them.

    >>> check_language("bo")
    'bo'
    """
    if code not in LANGUAGES:
        known = ", ".join(f"{c} ({name})" for c, name in LANGUAGES.items())
        raise UserError(f"unknown {role} {code!r}; known language codes: {known}")
    return code


def check_direction(source_lang: str, target_lang: str) -> None:
    """Both codes known and different."""
    check_language(source_lang, "source language")
    check_language(target_lang, "target language")
    if source_lang == target_lang:
        raise UserError(f"source and target language are both {source_lang!r}; choose two different languages")


def _resolve_column(table: Table, given: str | None, lang: str, role: str) -> str:
    hint = "pass source_column=/target_column= (a dotted name such as 'translation.bo' reads a nested dict)"
    if given is not None:
        fields.require_column(table, given, role=role, hint=hint)
        return given
    found = fields.find_column(table, (lang, f"translation.{lang}"))
    if found is None:
        raise UserError(
            f"{table.label}: no {role} column {lang!r} or 'translation.{lang}'; "
            f"columns found: {fields.describe_columns(table)}; {hint}"
        )
    return found


def pairs_from_table(
    table: Table,
    source_lang: str,
    target_lang: str,
    source_column: str | None = None,
    target_column: str | None = None,
    skip_empty: bool = False,
) -> list[ParallelPair]:
    """Build pairs from records already read; every text normalised, ids unique."""
    check_direction(source_lang, target_lang)
    source_column = _resolve_column(table, source_column, source_lang, "source")
    target_column = _resolve_column(table, target_column, target_lang, "target")
    if source_column == target_column:
        raise UserError(f"{table.label}: source and target column are both {source_column!r}")
    rows = fields.text_pairs(table, source_column, target_column, skip_empty=skip_empty, what="source or target")
    pairs = [ParallelPair(row_id, source, target, source_lang, target_lang) for row_id, source, target in rows]
    return pairs


def load_parallel(
    path_or_id: str | Path,
    source_lang: str = "bo",
    target_lang: str = "zh",
    source_column: str | None = None,
    target_column: str | None = None,
    split: str = "test",
    config: str | None = None,
    skip_empty: bool = False,
) -> list[ParallelPair]:
    """Load translation pairs from a file, a dataset folder or a hub id.

    A row with an empty source or target is a :class:`UserError` naming the file and row,
    unless ``skip_empty=True``. A row without ``id`` gets its 0-based index as id.
    """
    check_direction(source_lang, target_lang)  # before any reading or network
    table = read_table(path_or_id, split=split, config=config)
    return pairs_from_table(table, source_lang, target_lang, source_column, target_column, skip_empty)
