"""The report as GitHub-flavoured Markdown, with its plots as ``.svg`` files in a folder beside it.

Every piece of text from a run goes through :func:`~alignment_tax.reports.textsafe.markdown_text`
(only what Markdown would read as markup escaped, by a backslash), so it renders as the literal
text and still reads as plain text. Significant
differences carry ↑ (better) or ↓ (worse), and a difference won by outputs that are mostly empty or
repetitive carries ⚠ and is never bold; the rest of the styling is the HTML report's.
"""

from __future__ import annotations

from alignment_tax.reports import formatting as fmt
from alignment_tax.reports import health
from alignment_tax.reports import published as pub
from alignment_tax.reports.about import TAX_DEFINITION
from alignment_tax.reports.content import Report
from alignment_tax.reports.controls import CONTROLS_NOTE
from alignment_tax.reports.markdown_cells import (
    cell_text,
    diff_text,
    health_cell,
    table,
    txt,
)
from alignment_tax.reports.markdown_sections import drift_section, flips_section, health_section, judge_section
from alignment_tax.reports.settings import settings_table
from alignment_tax.reports.textsafe import markdown_text as md


def _image(plot, folder: str) -> list[str]:
    lines = [f"![{md(plot.title)}]({folder}/{plot.name}.svg)", ""]
    return lines + ([f"*{md(plot.caption)}*", ""] if plot.caption else [])


def _intro(report: Report) -> list[str]:
    """The Markdown text and the plots to write beside it ({file name: SVG text})."""
    out: list[str] = ["# Alignment tax report", ""]
    names = ", ".join(f"**{md(run.name)}**" + (" (baseline)" if run is report.baseline else "") for run in report.runs)
    out += [
        f"Runs: {names}."
        + (
            f" Gap rows compare each run with the baseline, **{md(report.baseline.name)}**."
            if len(report.runs) > 1
            else ""
        ),
        "",
        md(TAX_DEFINITION),
        "Intervals are paired bootstrap 95% intervals; **bold** with ↑ (better) or ↓ (worse) when they exclude zero."
        + (
            f" {health.MARK}: a difference won by outputs that are mostly empty or repetitive (over half of that run's items "
            "on the task; see Output health): not meaningful, neither a success nor a loss."
            if report.health.degenerate
            else ""
        )
        + (f" {md(note)}" if (note := health.all_wrong_note(report.runs)) else ""),
        "",
    ]
    if report.banner:
        out[2:2] = [
            "> **"
            + "".join(
                f"`{part.text}`" if part.code and "`" not in part.text else md(part.text) for part in report.banner
            )
            + "**",
            "",
        ]
    if report.flags:
        out += [
            "## Flagged",
            "",
            "No interval is computed for these differences; runs scored on different items are not compared at all.",
            "",
            *[f"- {md(flag)}" for flag in report.flags],
            "",
        ]

    return out


def _controls(report: Report) -> list[str]:
    out: list[str] = []
    if report.controls:
        out += ["## Controls", "", md(CONTROLS_NOTE), ""]
        out += table(
            ["Control", "Run", "Verdict", "Evidence"],
            [
                [f"{check.role} control", md(check.run.name), f"**{check.verdict}**", md("; ".join(check.evidence))]
                for check in report.controls
            ],
            align="l",
        )
    return out


def _glance(report: Report) -> list[str]:
    out: list[str] = []
    out += ["## At a glance: each run against its base", ""]
    header = ["Run", *[md(label) for label, _, _ in report.glance.columns]]
    out += table(header, [[md(run.name), *[diff_text(d) for d in cells]] for run, cells in report.glance.rows])
    if report.health.tasks:
        out += health_section(report)

    return out


def _headline(report: Report) -> list[str]:
    out: list[str] = []
    out += ["## Headline table", "", "In the shape of the reference study's Table 3.", ""]
    if report.published:
        out += [md(pub.summary(report.published)), ""]
    for section in report.sections:
        title = f"Task: {md(section.title)} (`{section.task}`)" if section.task else md(section.title)
        items = f", {section.n_items} items" if section.n_items else ""
        out += [f"### {title}{items}", ""]
        with_health = section.task in report.health.tasks
        rows = []
        for row in section.rows:
            label = (
                f"**{md(row.label)}**"
                if row.role in ("gap", "baseline")
                else f"*{md(row.label)}*"
                if row.role == "published"
                else md(row.label)
            )
            cells = [cell_text(cell, row.role) for cell in row.cells]
            if with_health:
                cells.append(
                    ""
                    if row.role in ("gap", "published")
                    else health_cell(report.health.row(row.run, section.task), report.health.rates)
                )
            rows.append([label, *cells])
        out += table(
            ["Model", *[md(column.label) for column in section.columns], *(["Output health"] if with_health else [])],
            rows,
        )

    return out


def _differences(report: Report) -> list[str]:
    out: list[str] = []
    out += [
        "## Every difference, with its uncertainty",
        "",
        "Paired bootstrap, 2,000 resamples, seeded (corpus BLEU/chrF: the corpus score resampled); two-sided bootstrap p. "
        "McNemar: exact test on the items a binary metric flips. Not corrected for multiple comparisons. "
        "Would detect ≥: where the interval includes 0, the smallest difference this many items would have "
        "detected (α 0.05, power 0.8): nothing detected is not no difference.",
        "",
    ]
    for task, diffs in report.comparisons.items():
        out += [f"### {md(fmt.task_title(task))} (`{task}`)", ""]
        rows = []
        for d in diffs:
            mcnemar = f"{d.flips.lost} / {d.flips.gained}, {fmt.p_value(d.flips.p_value)}" if d.flips else "—"
            rows.append(
                [
                    f"{md(d.a.name)} − {md(d.b.name)}",
                    md(fmt.metric_label(d.metric)),
                    str(d.n or "—"),
                    fmt.value(d.metric, d.value_a),
                    fmt.value(d.metric, d.value_b),
                    diff_text(d),
                    fmt.p_value(d.p_value) if d.ci else "—",
                    fmt.detectable(d) or "—",
                    mcnemar,
                ]
            )
        out += table(
            [
                "Comparison",
                "Metric",
                "n",
                "first",
                "second",
                "Δ [95% CI]",
                "bootstrap p",
                "would detect ≥",
                "McNemar lost / gained, p",
            ],
            rows,
        )

    return out


def _published(report: Report) -> list[str]:
    out: list[str] = []
    if report.published and report.published.matches:
        out += [
            "## Published values",
            "",
            f"Where each published number comes from ({md(report.published.reference.name)}), "
            "as the paper prints it and as shown here.",
            "",
        ]
        rows = [
            [md(run), md(label), md(column), pub.value_text(value), md(value.printed), md(value.where)]
            for run, label, column, value in pub.provenance(report.published, report.sections)
        ]
        out += table(["Beside run", "Published row", "Cell", "Shown", "Printed", "Where"], rows, align="l")

    return out


def _settings(report: Report) -> list[str]:
    out: list[str] = []
    columns, rows = settings_table(report.shown)
    if rows:
        out += [
            "## Training settings",
            "",
            "As each run trained (its `train_config.json`): what the study leaves open is a choice, so it is shown.",
            "",
        ]
        out += table(columns, [[md(cell) for cell in row] for row in rows], align="l")

    return out


def _runs(report: Report) -> list[str]:
    out: list[str] = []
    out += [
        "## Runs",
        "",
        f"Paths are relative to `{report.root}`, the deepest folder holding every run given; paths outside it "
        "are absolute, hub models are shown by id.",
        "",
    ]
    rows = []
    for run in report.shown:
        base = run.results.get("base") if isinstance(run.results.get("base"), dict) else {}
        rows.append(
            [
                md(run.name),
                txt(report.path(run.path)),
                txt(report.path(run.results.get("model"))),
                txt(report.path(run.results.get("adapter"))),
                md(run.base.name) + (f" ({md(base.get('key'))})" if base.get("key") else "") if run.base else "—",
                ", ".join(md(t) for t in run.tasks),
            ]
        )
    out += table(["Name", "Folder", "Model", "Adapter", "Base", "Tasks"], rows, align="l")
    out += [f"*Generated by alignment-tax {report.version} at {report.generated}.*", ""]
    return out


def render(report: Report, plots_folder: str) -> tuple[str, dict[str, str]]:
    """The Markdown text and the plots to write beside it ({file name: SVG text})."""
    files: dict[str, str] = {}

    def images(section: str) -> list[str]:
        lines = []
        for plot in report.plots.get(section, []):
            files[f"{plot.name}.svg"] = plot.svg
            lines += _image(plot, plots_folder)
        return lines

    no_tradeoff = ["Needs a target task and a tax task in runs evaluated with `--base`.", ""]
    sections = [  # in reading order; a section's plots are collected as it is built
        _intro(report),
        _controls(report),
        _glance(report),
        _headline(report),
        ["## Tax against gain", "", *(images("tradeoff") or no_tradeoff)],
        _differences(report),
        drift_section(report, images),
        judge_section(report, images),
        ["## Training curves", "", *images("training")] if report.plots.get("training") else [],
        flips_section(report),
        _published(report),
        _settings(report),
        _runs(report),
    ]
    return "\n".join(line for section in sections for line in section), files
