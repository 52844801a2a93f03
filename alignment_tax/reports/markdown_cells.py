"""Cells of the Markdown report: a value, a difference, a headline cell, an output, as literal text.

Every piece of text from a run goes through :func:`~alignment_tax.reports.textsafe.markdown_text`;
a significant difference is bold with ↑ or ↓, a suspect one (won by degenerate outputs) carries ⚠.
"""

from __future__ import annotations

from alignment_tax.reports import formatting as fmt
from alignment_tax.reports import health
from alignment_tax.reports import published as pub
from alignment_tax.reports.comparisons import Difference
from alignment_tax.reports.headline import Cell
from alignment_tax.reports.textsafe import markdown_text as md

TEXT_LIMIT = 300
ARROWS = {"better": " ↑", "worse": " ↓", "suspect": f" {health.MARK}"}


def txt(value: object, limit: int | None = None) -> str:
    """Any value from a run as literal Markdown text: dicts as ``key: value`` fields, lists joined."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        value = " · ".join(f"{key}: {item}" for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        value = " | ".join(dict.fromkeys(str(item) for item in value))
    return md(value, limit) if str(value) != "" else "(empty)"


def diff_text(diff: Difference | None, with_p: bool = False, mde: bool = False) -> str:
    """A difference for a table cell. Without the "would detect ≥" clause by default: with it, a
    headline cell ran to five numbers; the Every-difference table gives it a column of its own."""
    if diff is None:
        return "—"
    if diff.flag and diff.difference is None:
        return f"not compared ({md(diff.flag)})"
    text = fmt.difference_text(diff, mde=mde)
    if diff.ci and with_p:
        text += f", {fmt.p_value(diff.p_value)}"
    elif diff.flag:
        text += f" ({md(diff.flag)})"
    direction = fmt.direction(diff)
    text += ARROWS.get(direction, "")
    return f"**{text}**" if direction in ("better", "worse") else text


def table(header: list[str], rows: list[list[str]], align: str = "r") -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" if i == 0 or align == "l" else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def cell_text(cell: Cell, role: str) -> str:
    if role == "published":
        return f"*{pub.cell_text(cell)}*" if cell.published is not None else "—"
    if cell.metric is None:
        if not cell.judge:
            return "—"
        if role == "gap":
            parts = []
            for e in cell.judge:
                ci = f" [{fmt.points(e.ci[0])}, {fmt.points(e.ci[1])}]" if e.ci else ""
                parts.append(
                    f"{fmt.points(e.gap)}{ci}, {fmt.p_value(e.p_value)} ({md(fmt.judge_record(e))})"
                    if e.gap is not None
                    else "—"
                )
            return "; ".join(parts)
        return "; ".join(f"{fmt.judge_share(e)} ({md(fmt.judge_record(e))})" for e in cell.judge)
    if role == "gap":
        return diff_text(cell.diff, with_p=True)
    value = fmt.value(cell.metric, cell.value)
    return f"{value} (Δ {diff_text(cell.diff)})" if cell.diff is not None else value


def health_cell(row: health.HealthRow | None, rates: list[str]) -> str:
    if row is None:
        return "—"
    text = ", ".join(
        f"{health.RATE_LABELS[rate]} {fmt.health_rate(row.rates[rate])}" for rate in rates if rate in row.rates
    )
    return f"{health.MARK} {text}" if row.mostly_degenerate else text


def output_text(output) -> str:
    """An output's text, then its health flags: ``哈哈哈… [repetitive]``."""
    if output is None:
        return "—"
    flags = f" [{', '.join(health.FLAG_LABELS[flag] for flag in output.flags)}]" if output.flags else ""
    return txt(output.text, TEXT_LIMIT) + flags


def invalid_text(summary: dict) -> str:
    """Pairs left out of the rates, and how many of them the endpoint refused."""
    invalid, rejected = summary.get("n_invalid"), summary.get("n_rejected")
    if invalid is None:
        return "—"
    return f"{invalid} ({rejected} refused by the endpoint)" if rejected else str(invalid)
