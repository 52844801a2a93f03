"""Article–headline pairs for headline generation (CMHG on the hub; TibetanQA titles offline).

Columns are detected when not given: the article among ``article, context, text, content,
document, passage`` and the headline among ``headline, title, summary``::

    pairs = load_headlines("../shared/data/bo_text/tibetanqa_title_passage.jsonl")  # context → title
    load_headlines("KEVVVV/CMHG", config="bo", article_column="content", headline_column="title")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alignment_tax.data import fields
from alignment_tax.data.readers import Table, read_table
from alignment_tax.errors import UserError

ARTICLE_COLUMNS = ("article", "context", "text", "content", "document", "passage")
HEADLINE_COLUMNS = ("headline", "title", "summary")
_HINT = "set article_column= / headline_column= (CLI: --article-column / --headline-column)"


@dataclass(frozen=True)
class HeadlinePair:
    """One article and its reference headline.

    >>> HeadlinePair("1", "article text", "headline").to_dict()["headline"]
    'headline'
    """

    id: str
    article: str
    headline: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_columns(
    table: Table, article_column: str | None = None, headline_column: str | None = None
) -> tuple[str, str]:
    """The (article, headline) columns: those given (checked), else the first candidates found."""
    chosen = []
    for given, candidates, role in (
        (article_column, ARTICLE_COLUMNS, "article"),
        (headline_column, HEADLINE_COLUMNS, "headline"),
    ):
        if given is not None:
            fields.require_column(table, given, role=role, hint=_HINT)
            chosen.append(given)
            continue
        found = fields.find_column(table, (c for c in candidates if c not in chosen))
        if found is None:
            raise UserError(
                f"{table.label}: found no {role} column (looked for {', '.join(candidates)}); "
                f"columns found: {fields.describe_columns(table)}; {_HINT}"
            )
        chosen.append(found)
    if chosen[0] == chosen[1]:
        raise UserError(f"{table.label}: article and headline column are both {chosen[0]!r}; {_HINT}")
    return chosen[0], chosen[1]


def headlines_from_table(
    table: Table, article_column: str | None = None, headline_column: str | None = None, skip_empty: bool = False
) -> list[HeadlinePair]:
    """Build pairs from records already read; every text normalised, ids unique."""
    article_column, headline_column = detect_columns(table, article_column, headline_column)
    rows = fields.text_pairs(table, article_column, headline_column, skip_empty=skip_empty, what="article or headline")
    pairs = [HeadlinePair(row_id, article, headline) for row_id, article, headline in rows]
    return pairs


def load_headlines(
    path_or_id: str | Path,
    article_column: str | None = None,
    headline_column: str | None = None,
    split: str = "test",
    config: str | None = None,
    skip_empty: bool = False,
) -> list[HeadlinePair]:
    """Load article–headline pairs from a file, a dataset folder or a hub id.

    A row with an empty article or headline is a :class:`UserError` naming the file and row,
    unless ``skip_empty=True``. A row without ``id`` gets its 0-based index as id.
    """
    table = read_table(path_or_id, split=split, config=config)
    return headlines_from_table(table, article_column, headline_column, skip_empty)
