"""Column access shared by the loaders: dotted columns, text values, ids and clear errors.

A dotted column reads a nested dict (the WMT layout ``{"translation": {"bo": ..., "zh": ...}}``):

>>> get_value({"translation": {"bo": "ཀ"}}, "translation.bo")
'ཀ'
>>> get_value({"bo": "ཀ"}, "zh") is MISSING
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alignment_tax.data.normalize import normalize_text
from alignment_tax.data.readers import Table
from alignment_tax.errors import UserError


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def get_value(record: dict[str, Any], column: str) -> Any:
    """``record[column]``, following dots into nested dicts when there is no such flat key."""
    if column in record:
        return record[column]
    value: Any = record
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def has_column(table: Table, column: str) -> bool:
    """Whether any record has ``column`` (dotted or not)."""
    return any(get_value(record, column) is not MISSING for record in table.records)


def describe_columns(table: Table) -> str:
    """``"id, translation (translation.bo, translation.zh)"``: the columns found, nested keys too."""
    parts = []
    for column in table.columns():
        nested = next((r[column] for r in table.records if isinstance(r.get(column), dict)), None)
        if nested:
            parts.append(f"{column} ({', '.join(f'{column}.{key}' for key in nested)})")
        else:
            parts.append(column)
    return ", ".join(parts) or "none"


def find_column(table: Table, candidates: Iterable[str]) -> str | None:
    """The first of ``candidates`` that the table has, else None."""
    return next((c for c in candidates if has_column(table, c)), None)


def require_column(table: Table, column: str, *, role: str, hint: str) -> None:
    """Raise :class:`UserError` naming the columns found when ``column`` is absent."""
    if not has_column(table, column):
        raise UserError(f"{table.label}: no {role} column {column!r}; columns found: {describe_columns(table)}; {hint}")


def text_value(table: Table, index: int, column: str, *, normalize: bool = True) -> str:
    """The text in ``column`` of record ``index``: ``""`` when missing or null, normalised.

    Anything other than a string (a number, a list) is a :class:`UserError` naming the row.
    """
    value = get_value(table.records[index], column)
    if value is MISSING or value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"{table.where(index)}: column {column!r} should be text, found {type(value).__name__}")
    return normalize_text(value) if normalize else value


def row_id(table: Table, index: int, column: str = "id") -> str:
    """The record's ``id`` as a string, or ``str(index)`` (stable) where it has none."""
    value = table.records[index].get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return str(index)
    return str(value)


def check_unique(table: Table, ids: Sequence[str], indices: Sequence[int]) -> None:
    """Raise :class:`UserError` naming both rows when two records share an id."""
    seen: dict[str, int] = {}
    for item_id, index in zip(ids, indices):
        if item_id in seen:
            raise UserError(
                f"{table.where(index)}: duplicate id {item_id!r} (also at {table.where(seen[item_id])}); "
                "ids must be unique so results can be matched to references"
            )
        seen[item_id] = index


def text_pairs(
    table: Table, first_column: str, second_column: str, *, skip_empty: bool, what: str
) -> list[tuple[str, str, str]]:
    """``(id, first, second)`` texts of every row, normalised, ids unique.

    A row where either text is empty is a :class:`UserError` naming it, unless ``skip_empty``;
    ``what`` names the pair in the message when every row is empty ("source or target").
    """
    rows, indices = [], []
    for index in range(len(table.records)):
        first = text_value(table, index, first_column)
        second = text_value(table, index, second_column)
        empty = [c for c, text in ((first_column, first), (second_column, second)) if not text.strip()]
        if empty:
            if skip_empty:
                continue
            raise UserError(
                f"{table.where(index)}: empty {' and '.join(map(repr, empty))}; "
                "fix the row or pass skip_empty=True to drop such rows"
            )
        rows.append((row_id(table, index), first, second))
        indices.append(index)
    if not rows:
        raise UserError(f"{table.label}: every row has an empty {what}")
    check_unique(table, [row[0] for row in rows], indices)
    return rows
