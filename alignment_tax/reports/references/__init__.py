"""Published numbers beside the runs: ``report --reference NAME_OR_FILE``.

A reference is a small YAML file (the format is documented at the top of the shipped
``semantic_rewards.yaml``): the paper's rows, the runs each matches by default, and one entry per
published cell with its printed value, scale and source. Values are converted to the report's
scale here, once, so the renderers print them like any other number of that metric.

Published values are only ever shown in their own rows; nothing here touches a difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from alignment_tax.errors import UserError
from alignment_tax.reports.formatting import PERCENT_METRICS

DRIFT = "drift"
JUDGE_WIN = "judge_win"
DRIFT_METRICS = frozenset(
    f"{q}.{s}" for q in ("nll", "base_nll", "delta_nll", "kl") for s in ("mean", "p50", "p90", "p99")
)
SCALES = (1, 100, "nats")
TOP_KEYS = {"name", "title", "source", "rows", "values"}
VALUE_KEYS = {"row", "section", "task", "metric", "value", "scale", "where"}


@dataclass(frozen=True)
class Published:
    row: str
    section: str
    task: str
    metric: str
    value: float  # on the report's scale
    printed: str  # as the paper prints it, with its scale: "0.4519 (0–1)"
    where: str

    @property
    def note(self) -> str:
        return f"published: {self.where}; printed {self.printed}"


@dataclass
class Reference:
    name: str
    title: str
    source: str
    labels: dict[str, str]  # row id -> the paper's row name
    aliases: dict[str, list[tuple[str, str | None]]]  # row id -> (run name, section or None)
    values: dict[tuple[str, str, str, str], Published] = field(default_factory=dict)  # (row, section, task, metric)

    def get(self, row: str, section: str, task: str, metric: str) -> Published | None:
        return self.values.get((row, section, task, metric))

    def has(self, row: str, section: str) -> bool:
        return any(key[0] == row and key[1] == section for key in self.values)


def builtin() -> dict[str, Any]:
    """The shipped references by name (``semantic-rewards``), each a package resource."""
    folder = files(__name__)
    return {entry.name[:-5].replace("_", "-"): entry for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def report_scale(metric: str) -> int | str:
    """The scale the report prints ``metric`` on (see :mod:`~alignment_tax.reports.formatting`)."""
    if metric in DRIFT_METRICS:
        return "nats"
    return 100 if metric == JUDGE_WIN or metric.split(",")[0] in PERCENT_METRICS else 1


def _printed(value: float, scale: int | str, metric: str) -> str:
    """The value as the paper would print it: YAML keeps no trailing zeros (0.2530 reads 0.253),
    so 0–1 numbers get the study's four decimals, 0–100 ones two (a judge win %, one)."""
    if scale == 1:
        return f"{value:.4f} (0–1)"
    if scale == 100:
        return f"{value:.{1 if metric == JUDGE_WIN else 2}f} (0–100)"
    return f"{value:g} ({scale})"


def _value(entry: Any, index: int, labels: dict[str, str], where: str) -> Published:
    at = f"{where}: values[{index}]"
    if not isinstance(entry, dict):
        raise UserError(f"{at}: expected a mapping with row, section, metric, value, scale, where")
    unknown, missing = set(entry) - VALUE_KEYS, VALUE_KEYS - {"task"} - set(entry)
    problems = [f"unknown key(s) {', '.join(sorted(unknown))}"] if unknown else []
    problems += [f"missing {', '.join(sorted(missing))}"] if missing else []
    if problems:
        raise UserError(f"{at}: {'; '.join(problems)}")
    row, section, metric = (str(entry[key]) for key in ("row", "section", "metric"))
    task = str(entry.get("task") or section)
    if row not in labels:
        raise UserError(f"{at}: row {row!r} is not under rows ({', '.join(labels)})")
    number = entry["value"]
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        raise UserError(f"{at}: value must be a number, got {number!r}")
    scale = entry["scale"]
    if scale not in SCALES or isinstance(scale, bool):
        raise UserError(f"{at}: scale must be 1 (printed on 0–1), 100 (0–100 or %) or nats, got {scale!r}")
    if (section == DRIFT) != (metric in DRIFT_METRICS):
        raise UserError(
            f"{at}: the drift section takes {', '.join(sorted(DRIFT_METRICS))}; got section {section!r}, metric {metric!r}"
        )
    target = report_scale(metric)
    if (scale == "nats") != (target == "nats"):
        raise UserError(
            f"{at}: {metric} is {'in nats' if target == 'nats' else 'on 0–1 or 0–100'}, got scale {scale!r}"
        )
    # Rounded so that 0.4519 on 0–1 reads back as exactly 45.19, not 45.190000000000005.
    converted = float(number) if scale == target else round(float(number) * target / scale, 10)
    return Published(row, section, task, metric, converted, _printed(number, scale, metric), str(entry["where"]))


def _aliases(row: str, spec: Any, at: str) -> list[tuple[str, str | None]]:
    names = spec.get("runs") or [] if isinstance(spec, dict) else []
    if not isinstance(names, list):
        raise UserError(f"{at}: rows.{row}.runs must be a list of run names")
    return [(row, None)] + [split_section(str(name)) for name in names]


def split_section(name: str) -> tuple[str, str | None]:
    """``grpo_mt@bo_zh_mt`` -> (``grpo_mt``, ``bo_zh_mt``); ``grpo`` -> (``grpo``, None)."""
    run, _, section = name.partition("@")
    return run, section or None


def parse(document: Any, where: str) -> Reference:
    """Check a reference document (the loaded YAML) and convert its values to the report's scale."""
    if not isinstance(document, dict):
        raise UserError(f"{where}: a reference is a YAML mapping with name, title, source, rows and values")
    unknown = set(document) - TOP_KEYS
    if unknown:
        raise UserError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected {', '.join(sorted(TOP_KEYS))}"
        )
    rows = document.get("rows")
    if not isinstance(rows, dict) or not rows:
        raise UserError(f"{where}: rows must map each row id to {{label, runs}}")
    labels = {
        str(row): str(spec.get("label", row)) if isinstance(spec, dict) else str(spec) for row, spec in rows.items()
    }
    reference = Reference(
        str(document.get("name") or Path(where).stem),
        str(document.get("title") or ""),
        str(document.get("source") or ""),
        labels,
        {str(row): _aliases(str(row), spec, where) for row, spec in rows.items()},
    )
    values = document.get("values")
    if not isinstance(values, list) or not values:
        raise UserError(f"{where}: values must be a list of published cells")
    for index, entry in enumerate(values):
        published = _value(entry, index, labels, where)
        key = (published.row, published.section, published.task, published.metric)
        if key in reference.values:
            raise UserError(
                f"{where}: values[{index}]: {published.row} {published.section} {published.task} {published.metric} is given twice"
            )
        reference.values[key] = published
    return reference


def load_reference(name_or_file: str | Path, flag: str = "--reference") -> Reference:
    """A shipped reference by name, or a YAML file; an unknown name or a bad file is a :class:`UserError`
    (naming ``flag``, the option or spec key it came from)."""
    shipped = builtin()
    if str(name_or_file) in shipped:
        return parse(yaml.safe_load(shipped[str(name_or_file)].read_text(encoding="utf-8")), str(name_or_file))
    path = Path(name_or_file).expanduser()
    if not path.is_file():
        raise UserError(
            f"{flag} {name_or_file!r} is neither a shipped reference ({', '.join(sorted(shipped))}) nor a file"
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UserError(f"{flag} {path}: cannot read it as YAML: {str(error).splitlines()[0]}") from None
    return parse(document, str(path))


def parse_map(items: list[str] | dict[str, Any] | None) -> list[tuple[str, str, str | None]]:
    """``ROW=RUN[@SECTION]`` items (each may hold several, comma-separated), or a spec's
    ``{ROW: RUN or [RUN, ...]}``, as (row, run, section) triples."""
    if not items:
        return []
    pairs: list[tuple[str, str]] = []
    if isinstance(items, dict):
        for row, runs in items.items():
            pairs += [(str(row), str(run)) for run in (runs if isinstance(runs, list) else [runs])]
    else:
        for item in items:
            for part in filter(None, (piece.strip() for piece in str(item).split(","))):
                row, equals, run = part.partition("=")
                if not equals or not row or not run:
                    raise UserError(f"--reference-map expects ROW=RUN[@SECTION], got {part!r}")
                pairs.append((row.strip(), run.strip()))
    return [(row, *split_section(run)) for row, run in pairs]


@dataclass
class Matcher:
    """Which published row a run stands beside, per section: a hand-set match replaces the run's
    default one (its name is a row id or one of the row's ``runs``)."""

    reference: Reference
    explicit: list[tuple[str, str, str | None]]

    def row(self, run_name: str, section: str | None) -> str | None:
        if section is None:
            return None
        chosen = [entry for entry in self.explicit if entry[1] == run_name]
        if not chosen:
            chosen = [
                (row, name, scope)
                for row, names in self.reference.aliases.items()
                for name, scope in names
                if name == run_name
            ]
        for row, _, scope in chosen:
            if scope in (None, section) and self.reference.has(row, section):
                return row
        return None


def matcher(
    reference: Reference,
    mapping: list[tuple[str, str, str | None]],
    run_names: list[str],
    flag: str = "--reference-map",
) -> Matcher:
    """Check a hand-set mapping against the reference's rows, sections and the runs given.

    A section the row has no numbers in would match nothing, and the published row would
    silently not appear: that is an error, as an unknown row is.
    """
    for row, run, section in mapping:
        entry = f"{flag} {row}={run}" + (f"@{section}" if section else "")
        if row not in reference.labels:
            raise UserError(f"{entry}: {reference.name} has no row {row!r} (rows: {', '.join(reference.labels)})")
        if run not in run_names:
            raise UserError(f"{entry}: no run is named {run!r} (runs: {', '.join(run_names)})")
        if section is not None and not reference.has(row, section):
            sections = sorted({key[1] for key in reference.values if key[0] == row})
            raise UserError(
                f"{entry}: {reference.name} has no numbers for {row} in section {section!r}"
                f" (its sections: {', '.join(sections) or 'none'})"
            )
    return Matcher(reference, mapping)
