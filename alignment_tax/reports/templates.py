"""What the HTML and Markdown templates share: the jinja2 environment, the number filters, and the
notes and labels every report shows.

Each renderer adds only its own: the HTML its autoescaping, its ``finalize`` (invisible characters
shown) and ``show``; the Markdown its escaping filters. A note or label changed here changes in both.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any

import jinja2

from alignment_tax.reports import formatting as fmt
from alignment_tax.reports import health
from alignment_tax.reports import published as pub
from alignment_tax.reports.about import TAX_DEFINITION
from alignment_tax.reports.comparisons import Difference
from alignment_tax.reports.content import Report
from alignment_tax.reports.controls import CONTROLS_NOTE
from alignment_tax.reports.settings import settings_table


def diff_title(diff: Difference | None) -> str:
    """Everything known about a difference, for a tooltip: the interval, p, McNemar, health warnings."""
    if diff is None:
        return ""
    parts = [f"{diff.a.name} − {diff.b.name} on {diff.task} {diff.metric}"]
    if diff.flag:
        parts.append(f"not compared: {diff.flag}")
    if diff.ci:
        parts.append(
            f"95% CI {fmt.interval(diff.metric, diff.ci)}, bootstrap {fmt.p_value(diff.p_value)}, n = {diff.n}"
        )
    if diff.flips:
        parts.append(f"McNemar: {diff.flips.lost} lost, {diff.flips.gained} gained, {fmt.p_value(diff.flips.p_value)}")
    if health.degenerate_gain(diff):
        parts.append(health.warning(diff))
    if health.all_wrong(diff):
        parts.append(health.ALL_WRONG)
    return "; ".join(parts)


FILTERS: dict[str, Callable[..., Any]] = {
    "value": lambda number, metric: fmt.value(metric, number),
    "signed": lambda number, metric: fmt.signed(metric, number),
    "interval": lambda ci, metric: fmt.interval(metric, ci),
    "pvalue": fmt.p_value,
    "percent": fmt.percent,
    "health_rate": fmt.health_rate,
    "direction": fmt.direction,
    "diff_title": diff_title,
    "metric_label": fmt.metric_label,
    "task_title": fmt.task_title,
    "zip": lambda left, right: list(zip(left, right)),
}


def environment(
    autoescape: bool, finalize: Callable[[Any], Any] | None = None, keep_trailing_newline: bool = False, **filters
) -> jinja2.Environment:
    """The package's templates, strict about undefined names, with :data:`FILTERS` and ``filters``.

    A line holding only a block tag leaves nothing (``trim_blocks``, ``lstrip_blocks``); a tag that
    ends a line of text and must keep its line break is written ``+%}``."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: files("alignment_tax.reports").joinpath(name).read_text(encoding="utf-8")
        ),
        autoescape=autoescape,
        finalize=finalize,
        keep_trailing_newline=keep_trailing_newline,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS, **filters)
    return env


def context(report: Report) -> dict[str, Any]:
    """The names both templates read besides ``report``: the shared notes, labels and helpers."""
    return {
        "report": report,
        "fmt": fmt,
        "tax_definition": TAX_DEFINITION,
        "settings_table": settings_table,
        "controls_note": CONTROLS_NOTE,
        "health_mark": health.MARK,
        "health_warning": health.WARNING,
        "all_wrong_note": health.all_wrong_note(report.runs),
        "rate_labels": health.RATE_LABELS,
        "flag_labels": health.FLAG_LABELS,
        "published_text": pub.cell_text,
        "published_value": pub.value_text,
        "published_drift": pub.drift_texts,
        "published_summary": pub.summary(report.published) if report.published else "",
        "drift_columns": pub.DRIFT_COLUMNS,
        "published_values": pub.provenance(report.published, report.sections) if report.published else [],
    }
