"""The report as GitHub-flavoured Markdown, with its plots as ``.svg`` files in a folder beside it.

Rendered by jinja2 from ``report.md.jinja`` without autoescaping (Markdown has no one escape):
every piece of text from a run goes through the ``md`` or ``txt`` filter
(:func:`~alignment_tax.reports.textsafe.markdown_text`: only what Markdown would read as markup
escaped, by a backslash, and line breaks as ``<br>``), so it renders as the literal text, keeps
a table row on one line, and still reads as plain text. Significant differences carry ↑ (better)
or ↓ (worse), and a difference won by outputs that are mostly empty or repetitive carries ⚠ and
is never bold; the rest of the styling is the HTML report's.
"""

from __future__ import annotations

from alignment_tax.reports import formatting as fmt
from alignment_tax.reports import health, templates
from alignment_tax.reports.comparisons import Difference
from alignment_tax.reports.content import Report
from alignment_tax.reports.items import TaskItems
from alignment_tax.reports.textsafe import markdown_text as md
from alignment_tax.reports.textsafe import visible

TEMPLATE = "report.md.jinja"
TEXT_LIMIT = 300  # characters of an input, reference or output shown in a flips table
FLIPS_SHOWN = 20
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


def code(value: object) -> str:
    """A name from a run (a folder, a model) as a code span, with its invisible characters shown as
    everywhere else; one a code span cannot hold (a backtick, a line break) as escaped text."""
    text = visible(value)
    return md(text) if set(text) & set("`\r\n") else f"`{text}`"


def diff_text(diff: Difference | None, with_p: bool = False) -> str:
    """A difference for a table cell, without the "would detect ≥" clause: with it, a headline cell
    ran to five numbers; the Every-difference table gives it a column of its own."""
    if diff is None:
        return "—"
    if diff.flag and diff.difference is None:
        return f"not compared ({md(diff.flag)})"
    text = fmt.difference_text(diff, mde=False)
    if diff.ci and with_p:
        text += f", {fmt.p_value(diff.p_value)}"
    elif diff.flag:
        text += f" ({md(diff.flag)})"
    direction = fmt.direction(diff)
    text += ARROWS.get(direction, "")
    return f"**{text}**" if direction in ("better", "worse") else text


def flips(t: TaskItems):
    """``(run, its column, its base's column, status, items)``: the first items each run flipped
    against its base (``lost`` on a right/wrong metric, else ``worse``)."""
    for index, run in enumerate(t.columns):
        if run.is_base or run.base is None or run.base not in t.columns:
            continue
        status = "lost" if t.binary else "worse"
        flipped = [item for item in t.items if item.outputs.get(index) and item.outputs[index].status == status]
        if flipped:
            yield run, index, t.columns.index(run.base), status, flipped[:FLIPS_SHOWN]


def render(report: Report, plots_folder: str) -> tuple[str, dict[str, str]]:
    """The Markdown text and the plots to write beside it ({file name: SVG text})."""
    files: dict[str, str] = {}

    def saved(plot) -> str:
        """Where the text links a plot; a plot is written only if a shown section links it."""
        files[f"{plot.name}.svg"] = plot.svg
        return f"{plots_folder}/{plot.name}.svg"

    environment = templates.environment(
        autoescape=False, keep_trailing_newline=True, md=md, txt=txt, code=code, diff=diff_text
    )
    text = environment.get_template(TEMPLATE).render(
        **templates.context(report), saved=saved, flips=flips, text_limit=TEXT_LIMIT
    )
    return text, files
