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
from alignment_tax.reports.comparisons import Difference
from alignment_tax.reports.content import Report
from alignment_tax.reports.controls import CONTROLS_NOTE
from alignment_tax.reports.headline import Cell
from alignment_tax.reports.settings import settings_table
from alignment_tax.reports.textsafe import markdown_text as md

FLIPS_SHOWN = 20
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


def _diff(diff: Difference | None, with_p: bool = False) -> str:
    if diff is None:
        return "—"
    if diff.flag and diff.difference is None:
        return f"not compared ({md(diff.flag)})"
    text = fmt.difference_text(diff)
    if diff.ci and with_p:
        text += f", {fmt.p_value(diff.p_value)}"
    elif diff.flag:
        text += f" ({md(diff.flag)})"
    direction = fmt.direction(diff)
    text += ARROWS.get(direction, "")
    return f"**{text}**" if direction in ("better", "worse") else text


def _table(header: list[str], rows: list[list[str]], align: str = "r") -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" if i == 0 or align == "l" else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _cell(cell: Cell, role: str) -> str:
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
        return _diff(cell.diff, with_p=True)
    value = fmt.value(cell.metric, cell.value)
    return f"{value} (Δ {_diff(cell.diff)})" if cell.diff is not None else value


def _health_cell(row: health.HealthRow | None, rates: list[str]) -> str:
    if row is None:
        return "—"
    text = ", ".join(
        f"{health.RATE_LABELS[rate]} {fmt.health_rate(row.rates[rate])}" for rate in rates if rate in row.rates
    )
    return f"{health.MARK} {text}" if row.mostly_degenerate else text


def _health_section(report: Report) -> list[str]:
    table = report.health
    out = [
        "## Output health",
        "",
        "Share of each model's outputs that are empty (nothing left after the cleaning every metric sees), repetitive "
        "(8 units or more, a unit being a Chinese character, a Tibetan syllable or a word, and at least half of them inside "
        "a block repeated back to back 3 times or more, or under half of the 4-grams distinct), off-script (not in the "
        "task's target script: 1 − language consistency; empty outputs count) and truncated (stopped by the generation cap, "
        f"where recorded). {health.MARK}: over half the outputs empty or repetitive; every difference such a run wins on "
        "the task is marked, not shown as a success."
        + (
            " \\*: derived from the per-item records of a run written before the rates were recorded."
            if table.derived
            else ""
        ),
        "",
    ]
    rows = []
    for task, health_rows in table.tasks.items():
        for row in health_rows:
            n = row.rates.get("n")
            share = fmt.health_rate(row.degenerate)
            rows.append(
                [
                    f"`{task}`",
                    md(row.run.name) + (" \\*" if row.derived else ""),
                    str(int(n)) if n is not None else "—",
                    *[fmt.health_rate(row.rates.get(rate)) for rate in table.rates],
                    f"**{health.MARK} {share}**" if row.mostly_degenerate else share,
                ]
            )
    return out + _table(
        ["Task", "Model", "n", *[health.RATE_LABELS[rate] for rate in table.rates], "empty or repetitive"], rows
    )


def _image(plot, folder: str) -> list[str]:
    lines = [f"![{md(plot.title)}]({folder}/{plot.name}.svg)", ""]
    return lines + ([f"*{md(plot.caption)}*", ""] if plot.caption else [])


def render(report: Report, plots_folder: str) -> tuple[str, dict[str, str]]:
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
        ),
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

    if report.controls:
        out += ["## Controls", "", md(CONTROLS_NOTE), ""]
        out += _table(
            ["Control", "Run", "Verdict", "Evidence"],
            [
                [f"{check.role} control", md(check.run.name), f"**{check.verdict}**", md("; ".join(check.evidence))]
                for check in report.controls
            ],
            align="l",
        )
    out += ["## At a glance: each run against its base", ""]
    header = ["Run", *[md(label) for label, _, _ in report.glance.columns]]
    out += _table(header, [[md(run.name), *[_diff(d) for d in cells]] for run, cells in report.glance.rows])
    if report.health.tasks:
        out += _health_section(report)

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
            cells = [_cell(cell, row.role) for cell in row.cells]
            if with_health:
                cells.append(
                    ""
                    if row.role in ("gap", "published")
                    else _health_cell(report.health.row(row.run, section.task), report.health.rates)
                )
            rows.append([label, *cells])
        out += _table(
            ["Model", *[md(column.label) for column in section.columns], *(["Output health"] if with_health else [])],
            rows,
        )

    files: dict[str, str] = {}

    def images(section: str) -> list[str]:
        lines = []
        for plot in report.plots.get(section, []):
            files[f"{plot.name}.svg"] = plot.svg
            lines += _image(plot, plots_folder)
        return lines

    out += [
        "## Tax against gain",
        "",
        *(images("tradeoff") or ["Needs a target task and a tax task in runs evaluated with `--base`.", ""]),
    ]

    out += [
        "## Every difference, with its uncertainty",
        "",
        "Paired bootstrap, 2,000 resamples, seeded (corpus BLEU/chrF: the corpus score resampled); two-sided bootstrap p. "
        "McNemar: exact test on the items a binary metric flips. Not corrected for multiple comparisons.",
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
                    _diff(d),
                    fmt.p_value(d.p_value) if d.ci else "—",
                    mcnemar,
                ]
            )
        out += _table(
            ["Comparison", "Metric", "n", "first", "second", "Δ [95% CI]", "bootstrap p", "McNemar lost / gained, p"],
            rows,
        )

    if report.drift_rows:
        out += [
            "## Drift from the base",
            "",
            "Per-token NLL and KL(run ‖ base) on the drift corpus; lower is closer to the base.",
            "",
        ]
        rows = []
        for r in report.drift_rows:
            s = r.stats
            rows.append(
                [
                    md(r.run.name),
                    str(r.n_tokens or "—"),
                    fmt.value("nll", s["nll"]["mean"]),
                    fmt.value("nll", s["nll"]["p90"]),
                    fmt.value("nll", s["base_nll"]["mean"]),
                    _diff(r.delta_nll),
                    fmt.signed("nll", s["delta_nll"]["p90"]),
                    _diff(r.kl),
                    fmt.value("kl", s["kl"]["p50"]),
                    fmt.value("kl", s["kl"]["p90"]),
                    fmt.value("kl", s["kl"]["p99"]),
                ]
            )
            for published in report.published.drift_after(r) if report.published else []:
                rows.append(
                    [
                        f"*{md(published.label)}*",
                        "—",
                        *[f"*{text}*" if text != "—" else text for text in pub.drift_texts(published)],
                    ]
                )
        out += _table(
            [
                "Run",
                "tokens",
                "NLL mean",
                "NLL p90",
                "base NLL mean",
                "ΔNLL mean",
                "ΔNLL p90",
                "KL mean",
                "KL p50",
                "KL p90",
                "KL p99",
            ],
            rows,
        )
        if report.drift_gaps:
            out += _table(
                ["Gap", "Δ [95% CI], p"],
                [
                    [f"{md(d.a.name)} vs {md(d.b.name)}: {fmt.metric_label(d.metric)} mean", _diff(d, with_p=True)]
                    for d in report.drift_gaps
                ],
            )
        out += images("drift")

    if report.judgements:
        out += ["## LLM judge", ""]
        rows = []
        for j in report.judgements:
            ci = j.win_rate_interval()
            rate = (
                f"{100 * (j.wins + 0.5 * j.ties) / j.n_valid:.1f}"
                + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
                if j.n_valid
                else "—"
            )
            rows.append(
                [
                    md(j.task),
                    md(j.a.name),
                    md(j.b.name),
                    str(j.n_valid),
                    str(j.wins),
                    str(j.ties),
                    str(j.losses),
                    fmt.percent(j.pct("a")),
                    fmt.percent(j.pct("b")),
                    rate,
                    fmt.p_value(j.p_value),
                    _invalid(j.summary),
                ]
            )
        out += _table(
            [
                "Task",
                "A",
                "B",
                "valid",
                "A wins",
                "ties",
                "B wins",
                "A win %",
                "B win %",
                "A win rate [95% CI]",
                "sign test p",
                "invalid",
            ],
            rows,
        )
        out += images("judge")

    if report.plots.get("training"):
        out += ["## Training curves", "", *images("training")]

    if report.items:
        out += [
            "## Flips",
            "",
            "Items a run got wrong (or scored worse on) where its base did not; the HTML report has the full item browser.",
            "",
        ]
        for t in report.items:
            out += [f"### {md(fmt.task_title(t.task))} (`{t.task}`)", ""]
            counts = "; ".join(
                f"{md(name)}: " + (", ".join(f"{n} {status}" for status, n in c.items()) or "no flips")
                for name, c in t.counts.items()
            )
            out += [f"Flips judged on {fmt.metric_label(t.flip_metric) if t.flip_metric else '—'}. {counts}.", ""]
            for index, run in enumerate(t.columns):
                if run.is_base or run.base is None or run.base not in t.columns:
                    continue
                status = "lost" if t.binary else "worse"
                flipped = [
                    item for item in t.items if item.outputs.get(index) and item.outputs[index].status == status
                ][:FLIPS_SHOWN]
                if not flipped:
                    continue
                base_index = t.columns.index(run.base)
                out += [f"**{md(run.name)}**, {status} against {md(run.base.name)} (first {len(flipped)}):", ""]
                rows = [
                    [
                        txt(item.id),
                        txt(item.source, TEXT_LIMIT),
                        txt(item.reference, TEXT_LIMIT),
                        _output(item.outputs.get(base_index)),
                        _output(item.outputs[index]),
                    ]
                    for item in flipped
                ]
                out += _table(["id", "input", "reference", md(run.base.name), md(run.name)], rows, align="l")

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
        out += _table(["Beside run", "Published row", "Cell", "Shown", "Printed", "Where"], rows, align="l")

    columns, rows = settings_table(report.shown)
    if rows:
        out += [
            "## Training settings",
            "",
            "As each run trained (its `train_config.json`): what the study leaves open is a choice, so it is shown.",
            "",
        ]
        out += _table(columns, [[md(cell) for cell in row] for row in rows], align="l")

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
    out += _table(["Name", "Folder", "Model", "Adapter", "Base", "Tasks"], rows, align="l")
    out += [f"*Generated by alignment-tax {report.version} at {report.generated}.*", ""]
    return "\n".join(out), files


def _output(output) -> str:
    """An output's text, then its health flags: ``哈哈哈… [repetitive]``."""
    if output is None:
        return "—"
    flags = f" [{', '.join(health.FLAG_LABELS[flag] for flag in output.flags)}]" if output.flags else ""
    return txt(output.text, TEXT_LIMIT) + flags


def _invalid(summary: dict) -> str:
    """Pairs left out of the rates, and how many of them the endpoint refused."""
    invalid, rejected = summary.get("n_invalid"), summary.get("n_rejected")
    if invalid is None:
        return "—"
    return f"{invalid} ({rejected} refused by the endpoint)" if rejected else str(invalid)
