"""FLORES+ sentence pairs: two hub configs (one per language) aligned by row.

FLORES+ is gated on the hub and has one config per language with a ``text`` column; row ``i``
of ``bod_Tibt`` translates row ``i`` of ``cmn_Hans``::

    pairs = load_flores_pairs("bod_Tibt", "cmn_Hans", split="devtest")   # needs hub access

The alignment itself is :func:`zip_rows`, a pure function:

>>> [p.to_dict() for p in zip_rows([{"id": 0, "text": "ཀ"}], [{"id": 0, "text": "甲"}], "bo", "zh")]
[{'id': '0', 'source': 'ཀ', 'target': '甲', 'source_lang': 'bo', 'target_lang': 'zh'}]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alignment_tax.data.layout import FLORES_CONFIGS, FLORES_HUB, FLORES_TEXT_COLUMN
from alignment_tax.data.normalize import normalize_text
from alignment_tax.data.parallel import ParallelPair, check_direction
from alignment_tax.data.readers import read_records
from alignment_tax.errors import UserError


def _text(record: dict[str, Any], column: str, label: str, index: int) -> str:
    value = record.get(column)
    if not isinstance(value, str) or not value.strip():
        found = ", ".join(record) or "none"
        raise UserError(f"{label} row {index}: no text in column {column!r} (columns: {found})")
    return normalize_text(value)


def zip_rows(
    source_records: Sequence[dict[str, Any]],
    target_records: Sequence[dict[str, Any]],
    source_lang: str,
    target_lang: str,
    column: str = "text",
    source_label: str = "source",
    target_label: str = "target",
) -> list[ParallelPair]:
    """Pair row ``i`` of the source with row ``i`` of the target.

    Both sides must have the same number of rows and, where both carry an ``id``, the same id
    at every row; otherwise a :class:`UserError` says where the alignment breaks.
    """
    check_direction(source_lang, target_lang)
    if len(source_records) != len(target_records):
        raise UserError(
            f"cannot align by row: {source_label} has {len(source_records)} rows, "
            f"{target_label} has {len(target_records)}"
        )
    if not source_records:
        raise UserError(f"cannot align by row: {source_label} and {target_label} are empty")
    pairs = []
    for index, (src, tgt) in enumerate(zip(source_records, target_records)):
        src_id, tgt_id = src.get("id"), tgt.get("id")
        if src_id is not None and tgt_id is not None and str(src_id) != str(tgt_id):
            raise UserError(
                f"cannot align by row: row {index} has id {src_id!r} in {source_label} but {tgt_id!r} in {target_label}"
            )
        pair_id = str(src_id if src_id is not None else tgt_id if tgt_id is not None else index)
        pairs.append(
            ParallelPair(
                pair_id,
                _text(src, column, source_label, index),
                _text(tgt, column, target_label, index),
                source_lang,
                target_lang,
            )
        )
    return pairs


def language_of_config(config: str) -> str:
    """The language code for a FLORES+ config such as ``bod_Tibt``.

    >>> language_of_config("cmn_Hans")
    'zh'
    """
    for code, name in FLORES_CONFIGS.items():
        if name == config:
            return code
    known = ", ".join(f"{name} ({code})" for code, name in FLORES_CONFIGS.items())
    raise UserError(f"unknown FLORES+ config {config!r}; known: {known} (or pass source_lang/target_lang)")


def load_flores_pairs(
    source_config: str = FLORES_CONFIGS["bo"],
    target_config: str = FLORES_CONFIGS["zh"],
    split: str = FLORES_HUB.split,
    hub_id: str = FLORES_HUB.id,
    column: str = FLORES_TEXT_COLUMN,
    source_lang: str | None = None,
    target_lang: str | None = None,
) -> list[ParallelPair]:
    """Load two FLORES+ configs from the hub and pair them by row (gated: log in first)."""
    source_lang = source_lang or language_of_config(source_config)
    target_lang = target_lang or language_of_config(target_config)
    check_direction(source_lang, target_lang)
    source = read_records(hub_id, split=split, config=source_config)
    target = read_records(hub_id, split=split, config=target_config)
    return zip_rows(
        source,
        target,
        source_lang,
        target_lang,
        column,
        source_label=f"{hub_id} {source_config}",
        target_label=f"{hub_id} {target_config}",
    )
