"""Published rows: a reference's numbers placed beside the runs they were matched to.

A published row follows its run's row in a headline section (only where the run was evaluated on
that section's task: the study's numbers belong to the model it trained for that task), and
follows its run's row in the drift table. Its cells hold only the reference's values, so no
difference, gap, interval or flag can ever be computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from alignment_tax.reports import formatting as fmt
from alignment_tax.reports.headline import Cell, Row, Section
from alignment_tax.reports.references import DRIFT, JUDGE_WIN, Matcher, Published, Reference

if TYPE_CHECKING:  # content imports this module
    from alignment_tax.reports.content import DriftRow

DRIFT_COLUMNS = (
    "nll.mean",
    "nll.p90",
    "base_nll.mean",
    "delta_nll.mean",
    "delta_nll.p90",
    "kl.mean",
    "kl.p50",
    "kl.p90",
    "kl.p99",
)


@dataclass
class PublishedDrift:
    after: DriftRow  # the run's own drift row
    label: str
    cells: dict[str, Published]  # drift column (DRIFT_COLUMNS) -> value


@dataclass
class Shown:
    """What the report says about its reference."""

    reference: Reference
    matches: list[tuple[str, str, str]] = field(default_factory=list)  # (run, section, the paper's row)
    drift: list[PublishedDrift] = field(default_factory=list)

    def drift_after(self, row: DriftRow) -> list[PublishedDrift]:
        return [published for published in self.drift if published.after is row]


def label(reference: Reference, row: str) -> str:
    return f"published ({reference.name}): {reference.labels[row]}"


def _published_row(section: Section, run_row: Row, reference: Reference, row: str) -> Row | None:
    cells = []
    for column in section.columns:
        metric = JUDGE_WIN if column.is_judge else column.metric
        value = reference.get(row, section.task, column.task or section.task, metric)
        cells.append(Cell(column.metric, value.value if value else None, published=value))
    if all(cell.published is None for cell in cells):
        return None
    return Row(label(reference, row), "published", run_row.run, cells)


def attach(matcher: Matcher, sections: list[Section], drift_rows: list[DriftRow]) -> Shown:
    """Insert published rows into ``sections`` (in place) and say what was matched."""
    reference = matcher.reference
    shown = Shown(reference)
    for section in sections:
        if section.task is None:
            continue
        rows: list[Row] = []
        for row in section.rows:
            rows.append(row)
            if row.role == "gap" or section.task not in row.run.metrics:
                continue
            matched = matcher.row(row.run.name, section.task)
            published = _published_row(section, row, reference, matched) if matched else None
            if published is not None:
                rows.append(published)
                shown.matches.append((row.run.name, section.task, reference.labels[matched]))
        section.rows = rows
    for drift_row in drift_rows:
        matched = matcher.row(drift_row.run.name, DRIFT)
        if matched is None:
            continue
        cells = {
            name: value for name in DRIFT_COLUMNS if (value := reference.get(matched, DRIFT, DRIFT, name)) is not None
        }
        if cells:
            shown.drift.append(PublishedDrift(drift_row, label(reference, matched), cells))
            shown.matches.append((drift_row.run.name, DRIFT, reference.labels[matched]))
    return shown


def value_text(value: Published | None) -> str:
    """A published value as the report prints that metric: a judge win %, a signed ΔNLL."""
    if value is None:
        return "—"
    if value.metric == JUDGE_WIN:
        return fmt.percent(value.value)
    quantity = value.metric.split(".")[0] if value.section == DRIFT else value.metric
    return (fmt.signed if quantity == "delta_nll" else fmt.value)(quantity, value.value)


def cell_text(cell: Cell) -> str:
    return value_text(cell.published)


def drift_texts(row: PublishedDrift) -> list[str]:
    """The drift table's cells after ``tokens``, in :data:`DRIFT_COLUMNS` order."""
    return [value_text(row.cells.get(name)) for name in DRIFT_COLUMNS]


def summary(shown: Shown) -> str:
    """The sentence above the headline table: whose numbers, matched to which runs, and the rule."""
    reference = shown.reference
    what = f"{reference.title} ({reference.source})" if reference.source else reference.title or reference.name
    if not shown.matches:
        return (
            f"Reference {reference.name}: no run matched a published row (rows: {', '.join(reference.labels)}); "
            "match one with --reference-map ROW=RUN."
        )
    pairs = ", ".join(dict.fromkeys(f"{run} ↔ {row}" for run, _, row in shown.matches))
    return (
        f"Rows marked \u201cpublished\u201d hold the numbers stated in {what}, converted to this report's scale "
        f"(see Published values), beside the run matched to each: {pairs}. An empty cell: not stated. "
        "They are never part of a Δ, gap, interval or tax."
    )


def provenance(shown: Shown, sections: list[Section]) -> list[tuple[str, str, str, Published]]:
    """Every published value the report shows: (run, the published row's label, column, value)."""
    found = []
    for section in sections:
        for row in section.rows:
            if row.role == "published":
                for column, cell in zip(section.columns, row.cells):
                    if cell.published is not None:
                        found.append((row.run.name, row.label, f"{section.task}: {column.label}", cell.published))
    for drift in shown.drift:
        for name, value in drift.cells.items():
            found.append((drift.after.run.name, drift.label, f"drift: {name}", value))
    return found
