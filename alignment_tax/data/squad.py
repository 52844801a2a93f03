"""Extractive QA items (CMRC 2018) from SQuAD-layout JSON, a flat table or a hub dataset.

SQuAD layout: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}``. Flat layout (the hub's): one row a question
with columns ``id, context, question, answers`` where ``answers`` is ``{"text": [...],
"answer_start": [...]}`` or a list of strings::

    items = load_squad("../shared/data/cmrc2018/cmrc2018_dev.json")
    len(items), len(items[0].answers)            # (3219, 3)
    load_squad("hfl/cmrc2018", split="validation")  # the same questions, from the hub
    load_squad(path, normalize=False)            # raw strings, for the official scorer
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alignment_tax.data import fields
from alignment_tax.data.normalize import normalize_text
from alignment_tax.data.readers import Table, read_json, read_table
from alignment_tax.errors import UserError


@dataclass(frozen=True)
class QAItem:
    """One question with its passage and every reference answer (duplicates kept).

    >>> QAItem("q1", "北京是首都。", "首都是哪里？", ["北京"]).to_dict()["answers"]
    ['北京']
    """

    id: str
    context: str
    question: str
    answers: list[str]
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_squad_document(document: Any) -> bool:
    """Whether a JSON document is SQuAD-nested (articles with paragraphs), not flat rows.

    >>> is_squad_document({"data": [{"title": "t", "paragraphs": []}]})
    True
    >>> is_squad_document({"data": [{"id": "1", "context": "c", "question": "q"}]})
    False
    """
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        return False
    first = next(iter(document["data"]), None)
    return isinstance(first, dict) and not ("question" in first and "context" in first)


def _need(container: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(container, dict):
        raise UserError(f"{where}: expected an object, found {type(container).__name__}")
    if key not in container:
        raise UserError(f"{where}: missing {key!r} (SQuAD layout: data → paragraphs → qas → answers)")
    value = container[key]
    if not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise UserError(f"{where}: {key!r} should be {expected}, found {type(value).__name__}")
    return value


def _answer_texts(raw: Any, where: str) -> list[str]:
    """Answer strings from ``{"text": [...]}``, ``[{"text": ...}]``, ``[str]``, a JSON string or a str."""
    if isinstance(raw, str) and raw.strip()[:1] in ("[", "{"):
        try:
            raw = json.loads(raw)  # answers written into a CSV/TSV cell as JSON
        except json.JSONDecodeError:
            pass
    if isinstance(raw, str):
        raw = [raw]
    elif isinstance(raw, dict):
        raw = raw.get("text", fields.MISSING)
        if raw is fields.MISSING:
            expected = "{'text': [...], 'answer_start': [...]}"
            raise UserError(f"{where}: 'answers' has no 'text' list (expected {expected})")
    if not isinstance(raw, list):
        raise UserError(f"{where}: 'answers' should be a list or {{'text': [...]}}, found {type(raw).__name__}")
    texts = [a.get("text") if isinstance(a, dict) else a for a in raw]
    if not texts:
        raise UserError(f"{where}: no reference answers")
    for text in texts:
        if not isinstance(text, str):
            raise UserError(f"{where}: an answer should be text, found {type(text).__name__}")
    return texts


def _make(item_id: str, context: str, question: str, answers: list[str], title: str, normalize: bool) -> QAItem:
    n = normalize_text if normalize else (lambda s: s)
    return QAItem(item_id, n(context), n(question), [n(a) for a in answers], n(title))


def _from_document(path: Path, document: dict[str, Any], normalize: bool) -> list[QAItem]:
    items, seen = [], {}
    for a, article in enumerate(document["data"]):
        where_article = f"{path}: data[{a}]"
        paragraphs = _need(article, "paragraphs", list, where_article)
        title = article.get("title") or ""
        for p, paragraph in enumerate(paragraphs):
            where_paragraph = f"{where_article}.paragraphs[{p}]"
            context = _need(paragraph, "context", str, where_paragraph)
            for q, qa in enumerate(_need(paragraph, "qas", list, where_paragraph)):
                where = f"{where_paragraph}.qas[{q}]"
                item_id = str(_need(qa, "id", (str, int), where))
                if item_id in seen:
                    raise UserError(f"{where}: duplicate question id {item_id!r} (also at {seen[item_id]})")
                seen[item_id] = where
                where_id = f"{where} (id {item_id!r})"
                question = _need(qa, "question", str, where_id)
                answers = _answer_texts(_need(qa, "answers", (list, dict), where_id), where_id)
                items.append(_make(item_id, context, question, answers, title, normalize))
    return items


def _from_table(table: Table, normalize: bool) -> list[QAItem]:
    for column in ("context", "question", "answers"):
        fields.require_column(table, column, role="QA", hint="expected id, context, question, answers (SQuAD layout)")
    items, ids = [], []
    for index, record in enumerate(table.records):
        where = table.where(index)
        item_id = fields.row_id(table, index)
        context = fields.text_value(table, index, "context", normalize=False)
        question = fields.text_value(table, index, "question", normalize=False)
        for name, value in (("context", context), ("question", question)):
            if not value.strip():
                raise UserError(f"{where}: empty {name!r} (id {item_id!r})")
        answers = _answer_texts(record.get("answers"), f"{where} (id {item_id!r})")
        title = record.get("title") if isinstance(record.get("title"), str) else ""
        items.append(_make(item_id, context, question, answers, title, normalize))
        ids.append(item_id)
    fields.check_unique(table, ids, range(len(ids)))
    return items


def load_squad(
    path_or_id: str | Path, split: str = "validation", normalize: bool = True, config: str | None = None
) -> list[QAItem]:
    """Load QA items from SQuAD-layout JSON, a flat file, a dataset folder or a hub id.

    ``split``/``config`` apply to hub ids. ``normalize=False`` keeps every string as stored.
    """
    path = Path(path_or_id).expanduser()
    if path.is_file() and path.suffix.lower() == ".json":
        document = read_json(path)
        if isinstance(document, dict) and isinstance(document.get("data"), list) and not document["data"]:
            raise UserError(f"{path}: no records (the dataset is empty)")
        if is_squad_document(document):
            items = _from_document(path, document, normalize)
            if not items:
                raise UserError(f"{path}: no questions found")
            return items
    return _from_table(read_table(path_or_id, split=split, config=config), normalize)
