"""Plain text corpora (for drift measurements): lines of a ``.txt``, a field of records, or the
passages of a SQuAD-layout JSON file::

    load_corpus("passages.txt")                                   # one text per non-blank line
    load_corpus("data.jsonl", field="context", dedupe=True)       # a field, first occurrences
    load_corpus("../shared/data/cmrc2018/cmrc2018_dev.json")      # the 848 CMRC dev passages
    load_corpus("hfl/cmrc2018", field="context", split="validation", dedupe=True)
"""

from __future__ import annotations

from pathlib import Path

from alignment_tax.data import fields
from alignment_tax.data.normalize import normalize_text
from alignment_tax.data.readers import read_json, read_table
from alignment_tax.data.squad import is_squad_document
from alignment_tax.errors import UserError


def dedupe_in_order(texts: list[str]) -> list[str]:
    """Drop repeats, keeping each text where it first appeared.

    >>> dedupe_in_order(["b", "a", "b", "c", "a"])
    ['b', 'a', 'c']
    """
    return list(dict.fromkeys(texts))


def _squad_passages(path: Path, document: dict) -> list[str]:
    passages = []
    for a, article in enumerate(document["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise UserError(f"{path}: data[{a}]: missing 'paragraphs' (SQuAD layout: data → paragraphs → context)")
        for p, paragraph in enumerate(paragraphs):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise UserError(f"{path}: data[{a}].paragraphs[{p}]: missing 'context'")
            if context.strip():
                passages.append(normalize_text(context))
    return passages


def load_corpus(
    path_or_id: str | Path, field: str = "text", split: str = "train", dedupe: bool = False, config: str | None = None
) -> list[str]:
    """Texts from a file, a dataset folder or a hub id, normalised; blank texts skipped.

    A SQuAD-layout JSON file gives its passages (one per paragraph) whatever ``field`` says.
    ``dedupe=True`` keeps the first occurrence of each text, in order.
    """
    path = Path(path_or_id).expanduser()
    texts: list[str] | None = None
    if path.is_file() and path.suffix.lower() == ".json":
        document = read_json(path)
        if is_squad_document(document):
            texts = _squad_passages(path, document)
    if texts is None:
        table = read_table(path_or_id, split=split, config=config, txt_field=field)
        fields.require_column(table, field, role="text", hint="set field= to the column that holds the text")
        texts = [t for t in (fields.text_value(table, i, field) for i in range(len(table.records))) if t.strip()]
        if not texts:
            raise UserError(f"{table.label}: no texts (every {field!r} is blank)")
    elif not texts:
        raise UserError(f"{path}: no passages (every 'context' is blank)")
    return dedupe_in_order(texts) if dedupe else texts
