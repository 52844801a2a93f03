"""Read dict records from a local file, a local dataset folder or a Hugging Face hub id.

Local files: ``.json`` (a list of objects, or an object with the list under ``data`` or
``rows``), ``.jsonl`` (one object a line, blank lines skipped), ``.csv``, ``.tsv``, ``.parquet``,
and ``.txt`` (one record a line) where a loader asks for it with ``txt_field``. A path that does
not exist and looks like ``owner/name`` or ``name`` is a hub id, read with
``datasets.load_dataset(id, name=config, split=split)``. Every problem is a one-line
:class:`UserError` naming the file and line (or row, counted from 0, as ``dataset[i]``)::

    table = read_table("../shared/data/bo_zh_mt/cmilbench_bo_zh.jsonl")
    table.records[0]["bo"], table.where(0)      # (..., '.../cmilbench_bo_zh.jsonl line 1')
    read_records("hfl/cmrc2018", split="validation")  # a list of dicts, from the hub
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment_tax.data.hashing import file_sha256, records_sha256
from alignment_tax.data.hub import load_dataset_records, looks_like_hub_id
from alignment_tax.data.utf8 import not_utf8_error
from alignment_tax.errors import UserError

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet")

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Table",
    "file_sha256",
    "iter_jsonl",
    "read_json",
    "read_records",
    "read_table",
    "records_sha256",
]


@dataclass(frozen=True, eq=False)
class Table:
    """Records read from one source, with what is needed to name a row in an error message."""

    records: list[dict[str, Any]]
    label: str  # the path, or "hub dataset 'x/y' (split 'test')"
    path: Path | None = None  # the local file or folder, None for a hub dataset
    lines: tuple[int, ...] | None = None  # 1-based line of each record, for line-based files

    def where(self, index: int) -> str:
        """``'FILE line 7'`` for line-based files, else ``'SOURCE row 6'`` (0-based).

        >>> Table([{"id": "1"}, {"id": "2"}], "p.jsonl", lines=(1, 3)).where(1)
        'p.jsonl line 3'
        >>> Table([{"id": "1"}], "hub dataset 'x/y' (split 'test')").where(0)
        "hub dataset 'x/y' (split 'test') row 0"
        """
        if self.lines is not None:
            return f"{self.label} line {self.lines[index]}"
        return f"{self.label} row {index}"

    def columns(self) -> list[str]:
        """Top-level keys over all records, in order of first appearance."""
        return list(dict.fromkeys(key for record in self.records for key in record))

    def sha256(self) -> str:
        """The data hash for results files: a file's bytes, else the records' canonical JSON."""
        if self.path is not None and self.path.is_file():
            return file_sha256(self.path)
        return records_sha256(self.records)


def _decode_error(path: Path, exc: UnicodeDecodeError, label: str | None = None) -> UserError:
    # exc.start counts from the decoder's current chunk, not the file: locate the bytes again.
    return not_utf8_error(path, label, exc)


def read_json(path: str | Path) -> Any:
    """A whole JSON document; malformed JSON names the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from exc


def _check_objects(path: Path, items: list[Any], lines: list[int] | None = None) -> None:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            where = f"line {lines[index]}" if lines else f"row {index}"
            raise UserError(f"{path} {where}: expected a JSON object, got {type(item).__name__}")


def _json_records(path: Path) -> list[dict[str, Any]]:
    document = read_json(path)
    if isinstance(document, dict):
        key = next((k for k in ("data", "rows") if isinstance(document.get(k), list)), None)
        if key is None:
            keys = ", ".join(map(str, list(document)[:10])) or "none"
            raise UserError(
                f"{path}: expected a list of objects, or an object with the list under 'data' or 'rows'; "
                f"found an object with keys: {keys}"
            )
        document = document[key]
        # The datasets-server layout: {"rows": [{"row_idx": 0, "row": {...}}, ...]}
        if key == "rows" and document and all(isinstance(r, dict) and isinstance(r.get("row"), dict) for r in document):
            document = [r["row"] for r in document]
    if not isinstance(document, list):
        raise UserError(f"{path}: expected a list of objects, found {type(document).__name__}")
    _check_objects(path, document)
    return document


def iter_jsonl(path: str | Path, what: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file.

    A line that is not a JSON object is a :class:`UserError` naming ``what`` (e.g. "per-item
    file"), the file, the line and, for malformed JSON, the column.
    """
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{label} line {number} column {exc.colno}: invalid JSON: {exc.msg}") from exc
                if not isinstance(record, dict):
                    raise UserError(f"{label} line {number}: expected a JSON object, got {type(record).__name__}")
                yield number, record
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc, label) from exc


def _jsonl_records(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    numbered = list(iter_jsonl(path))
    return [record for _, record in numbered], [number for number, _ in numbered]


def _delimited_records(path: Path, delimiter: str) -> tuple[list[dict[str, Any]], list[int]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # passages can exceed the 128 KiB default
    records, lines = [], []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            start = 2
            try:
                for row in reader:
                    if None in row:
                        raise UserError(
                            f"{path} line {start}: {len(reader.fieldnames or []) + len(row[None])} fields, "
                            f"the header has {len(reader.fieldnames or [])}"
                        )
                    records.append(row)
                    lines.append(start)
                    start = reader.line_num + 1
            except csv.Error as exc:
                raise UserError(f"{path} line {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from exc
    return records, lines


def _parquet_records(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: not a readable parquet file ({' '.join(str(exc).split())})") from exc


def _txt_records(path: Path, field: str) -> tuple[list[dict[str, Any]], list[int]]:
    records, lines = [], []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                text = line.rstrip("\r\n")
                if text.strip():
                    records.append({field: text})
                    lines.append(number)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from exc
    return records, lines


def _read_file(path: Path, txt_field: str | None) -> Table:
    suffix = path.suffix.lower()
    lines: list[int] | None = None
    if suffix == ".json":
        records = _json_records(path)
    elif suffix in (".jsonl", ".ndjson"):
        records, lines = _jsonl_records(path)
    elif suffix in (".csv", ".tsv"):
        records, lines = _delimited_records(path, "," if suffix == ".csv" else "\t")
    elif suffix == ".parquet":
        records = _parquet_records(path)
    elif suffix == ".txt" and txt_field is not None:
        records, lines = _txt_records(path, txt_field)
    else:
        supported = SUPPORTED_SUFFIXES + ((".txt",) if txt_field is not None else ())
        raise UserError(
            f"unsupported file type {suffix or '(none)'!r} for {path}; supported: "
            f"{', '.join(supported)}, or a Hugging Face hub id such as 'owner/name'"
        )
    return Table(records, str(path), path, tuple(lines) if lines is not None else None)


def read_table(
    source: str | Path, *, split: str = "train", config: str | None = None, txt_field: str | None = None
) -> Table:
    """Read ``source`` (a file, a dataset folder or a hub id) into a :class:`Table`.

    ``split`` and ``config`` apply to hub ids and folders only. ``txt_field`` allows ``.txt``
    files, one record ``{txt_field: line}`` per non-blank line. An empty source is an error.
    """
    if not str(source).strip():
        raise UserError("no data source given: pass a file, a dataset folder or a hub id")
    path = Path(source).expanduser()
    if path.is_file():
        table = _read_file(path, txt_field)
    elif path.is_dir():
        what = f"the folder {path}"
        records = load_dataset_records(str(path), split=split, config=config, what=what)
        table = Table(records, f"{path} (split {split!r})", path)
    elif isinstance(source, str) and looks_like_hub_id(source):
        records = load_dataset_records(source, split=split, config=config)
        detail = f"config {config!r}, split {split!r}" if config else f"split {split!r}"
        table = Table(records, f"hub dataset {source!r} ({detail})")
    else:
        raise UserError(f"file not found: {path}")
    if not table.records:
        raise UserError(f"{table.label}: no records (the dataset is empty)")
    return table


def read_records(
    source: str | Path, *, split: str = "train", config: str | None = None, txt_field: str | None = None
) -> list[dict[str, Any]]:
    """The records of :func:`read_table` as a plain list of dicts."""
    return read_table(source, split=split, config=config, txt_field=txt_field).records
