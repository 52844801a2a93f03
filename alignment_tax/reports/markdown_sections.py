"""Markdown sections on what the runs produced beyond their scores: output health, drift from
the base, the judge's verdicts, and the items a run flipped against its base."""

from __future__ import annotations

from collections.abc import Callable

from alignment_tax.reports import formatting as fmt
from alignment_tax.reports import health
from alignment_tax.reports import published as pub
from alignment_tax.reports.content import Report
from alignment_tax.reports.markdown_cells import TEXT_LIMIT, diff_text, invalid_text, output_text, table, txt
from alignment_tax.reports.textsafe import markdown_text as md

FLIPS_SHOWN = 20


def health_section(report: Report) -> list[str]:
    summary = report.health
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
            if summary.derived
            else ""
        ),
        "",
    ]
    rows = []
    for task, health_rows in summary.tasks.items():
        for row in health_rows:
            n = row.rates.get("n")
            share = fmt.health_rate(row.degenerate)
            rows.append(
                [
                    f"`{task}`",
                    md(row.run.name) + (" \\*" if row.derived else ""),
                    str(int(n)) if n is not None else "—",
                    *[fmt.health_rate(row.rates.get(rate)) for rate in summary.rates],
                    f"**{health.MARK} {share}**" if row.mostly_degenerate else share,
                ]
            )
    return out + table(
        ["Task", "Model", "n", *[health.RATE_LABELS[rate] for rate in summary.rates], "empty or repetitive"], rows
    )


def drift_section(report: Report, images: Callable[[str], list[str]]) -> list[str]:
    out: list[str] = []
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
                    diff_text(r.delta_nll),
                    fmt.signed("nll", s["delta_nll"]["p90"]),
                    diff_text(r.kl),
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
        out += table(
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
            out += table(
                ["Gap", "Δ [95% CI], p"],
                [
                    [f"{md(d.a.name)} vs {md(d.b.name)}: {fmt.metric_label(d.metric)} mean", diff_text(d, with_p=True)]
                    for d in report.drift_gaps
                ],
            )
        out += images("drift")

    return out


def judge_section(report: Report, images: Callable[[str], list[str]]) -> list[str]:
    out: list[str] = []
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
                    invalid_text(j.summary),
                ]
            )
        out += table(
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

    return out


def flips_section(report: Report) -> list[str]:
    out: list[str] = []
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
                        output_text(item.outputs.get(base_index)),
                        output_text(item.outputs[index]),
                    ]
                    for item in flipped
                ]
                out += table(["id", "input", "reference", md(run.base.name), md(run.name)], rows, align="l")

    return out
