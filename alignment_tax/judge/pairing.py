"""The two runs to compare: ``evaluate`` output folders or ``samples/<task>.jsonl`` files, paired by id.

>>> import json, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> rows = [{"id": "1", "source": "s", "output": "o", "reference": "r"}]
>>> _ = (folder / "a.jsonl").write_text("\\n".join(json.dumps(r) for r in rows))
>>> pairing = pair_runs(load_run(folder / "a.jsonl", "bo_zh_mt"), load_run(folder / "a.jsonl", "bo_zh_mt"))
>>> [p.id for p in pairing.pairs], pairing.only_in_a
(['1'], [])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alignment_tax.data.normalize import normalize_text
from alignment_tax.data.readers import iter_jsonl
from alignment_tax.errors import UserError


@dataclass(frozen=True)
class Item:
    id: str
    source: str
    output: str
    reference: str | None


@dataclass(frozen=True)
class Pair:
    id: str
    source: str
    reference: str | None
    output_a: str
    output_b: str


@dataclass
class Pairing:
    pairs: list[Pair]
    only_in_a: list[str]
    only_in_b: list[str]
    n_a: int
    n_b: int
    n_common: int  # before --limit


def samples_file(run: str | Path, task: str) -> Path:
    """``run`` itself when it is a file, else ``run/samples/<task>.jsonl``."""
    path = Path(run)
    if path.is_file():
        return path
    if not path.exists():
        raise UserError(f"run not found: {run}")
    candidate = path / "samples" / f"{task}.jsonl"
    if not candidate.is_file():
        have = sorted(p.stem for p in (path / "samples").glob("*.jsonl"))
        if have:
            listed = f" (it has samples for: {', '.join(have)})"
        else:
            listed = " (nor any samples: is it an evaluate output folder?)"
        raise UserError(f"run {run} has no samples/{task}.jsonl{listed}")
    return candidate


def _text(value: object) -> str:
    # A missing generation is an empty answer, which a judge should rank low, not an error.
    return normalize_text(value if isinstance(value, str) else "" if value is None else str(value))


def load_run(run: str | Path, task: str) -> list[Item]:
    """The items of one run, in file order; a malformed line or a duplicate id is an error."""
    path = samples_file(run, task)
    items: list[Item] = []
    seen: set[str] = set()
    for number, record in iter_jsonl(path):
        where = f"{path} line {number}"
        missing = [key for key in ("id", "source", "output") if key not in record]
        if missing:
            raise UserError(f"{where}: missing {', '.join(missing)} (expected evaluate's sample records)")
        if not isinstance(record["source"], str):
            raise UserError(f"{where}: source is not text; task {task} is not judged pairwise")
        item_id = str(record["id"])
        if item_id in seen:
            raise UserError(f"{where}: duplicate id {item_id!r}")
        seen.add(item_id)
        reference = record.get("reference")
        items.append(
            Item(
                item_id,
                _text(record["source"]),
                _text(record["output"]),
                None if reference is None else _text(reference),
            )
        )
    return items


def pair_runs(items_a: list[Item], items_b: list[Item], limit: int | None = None) -> Pairing:
    """Items of A and B with the same id, in A's order (the first ``limit`` of them).

    The same id with a different source means the runs were made on different data, and a
    comparison would be meaningless, so that is an error rather than a silent mismatch.
    """
    by_id_b = {item.id: item for item in items_b}
    ids_a = {item.id for item in items_a}
    pairs = []
    for item in items_a:
        other = by_id_b.get(item.id)
        if other is None:
            continue
        if other.source != item.source:
            raise UserError(f"item {item.id!r} has different sources in the two runs: were they made on the same data?")
        pairs.append(Pair(item.id, item.source, item.reference, item.output, other.output))
    if not pairs:
        raise UserError(f"the runs have no item id in common ({len(items_a)} items in A, {len(items_b)} in B)")
    n_common = len(pairs)
    if limit is not None:
        pairs = pairs[:limit]
    return Pairing(
        pairs=pairs,
        n_common=n_common,
        only_in_a=[item.id for item in items_a if item.id not in by_id_b],
        only_in_b=[item.id for item in items_b if item.id not in ids_a],
        n_a=len(items_a),
        n_b=len(items_b),
    )
