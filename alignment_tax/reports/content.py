"""Everything a report shows, computed once and rendered as HTML or Markdown.

:func:`assemble` loads the runs (and their bases) and judge files, checks them, and computes the
headline sections, every difference with its interval, drift, judge results, the plots (SVG
text) and the item browser. Renderers only format what is here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from alignment_tax import __version__
from alignment_tax.errors import UserError
from alignment_tax.reports import about, headline, items, plots
from alignment_tax.reports.checkpoint_plots import checkpoint_plots
from alignment_tax.reports.comparisons import Comparator, Difference
from alignment_tax.reports.controls import ControlCheck, check_controls
from alignment_tax.reports.formatting import is_target_task, metric_label, primary_metric, task_title
from alignment_tax.reports.health import MARK, HealthTable, degenerate_gain, gainer, health_table
from alignment_tax.reports.judges import Judgement, load_judgements
from alignment_tax.reports.published import Shown, attach
from alignment_tax.reports.references import load_reference, matcher, parse_map
from alignment_tax.reports.runs import Run, all_runs, check_overlap, find_run, load_runs, task_order
from alignment_tax.reports.svg import BASE_COLOR, color

MAX_CURVES = 12
CURVE_FIRST = ("loss", "reward", "reward_std", "kl", "entropy")
CURVE_SKIP = frozenset(
    {
        "step",
        "epoch",
        "total_flos",
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_loss",
        "learning_rate",
        "grad_norm",
        "num_tokens",
    }
)


@dataclass
class Plot:
    name: str  # file stem for the Markdown report
    title: str
    svg: str
    caption: str


@dataclass
class DriftRow:
    run: Run
    stats: dict[str, dict[str, float]]
    n_tokens: int | None
    delta_nll: Difference
    kl: Difference


@dataclass
class Report:
    runs: list[Run]
    baseline: Run
    tasks: list[str]
    sections: list[headline.Section]
    glance: headline.Glance
    comparisons: dict[str, list[Difference]]
    drift_rows: list[DriftRow]
    drift_gaps: list[Difference]
    judgements: list[Judgement]
    plots: dict[str, list[Plot]]  # section -> plots
    items: list[items.TaskItems]
    flags: list[str]
    colors: dict[int, str]
    health: HealthTable = field(default_factory=HealthTable)
    controls: list[ControlCheck] = field(default_factory=list)
    banner: list[about.Segment] = field(default_factory=list)
    published: Shown | None = None  # --reference: the paper's numbers, in their own rows
    root: Path = field(default_factory=Path.cwd)  # paths are shown relative to it (about.output_root)
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    version: str = __version__

    @property
    def shown(self) -> list[Run]:
        return all_runs(self.runs)

    def color_of(self, run: Run) -> str:
        return self.colors.get(id(run), BASE_COLOR)

    def path(self, value: object) -> str | None:
        """A folder or model path as shown: relative to :attr:`root` (see :mod:`.about`)."""
        return about.shown_path(value, self.root)


def _comparisons(
    runs: list[Run], baseline: Run, tasks: list[str], comparator: Comparator
) -> dict[str, list[Difference]]:
    result = {}
    for task in tasks:
        diffs = []
        for run in runs:
            for metric in run.metrics.get(task, {}):
                if run.base is not None and task in run.base.metrics:
                    diffs.append(comparator.metric(task, metric, run, run.base))
        for run in runs:
            if run is not baseline and task in run.metrics and task in baseline.metrics:
                diffs += [
                    comparator.metric(task, metric, run, baseline)
                    for metric in run.metrics[task]
                    if metric in baseline.metrics[task]
                ]
        if diffs:
            result[task] = diffs
    return result


def _drift(runs: list[Run], baseline: Run, comparator: Comparator) -> tuple[list[DriftRow], list[Difference]]:
    rows = []
    for run in runs:
        if run.drift is None:
            continue
        stats = {
            key: run.drift[key]
            for key in ("nll", "base_nll", "delta_nll", "kl")
            if isinstance(run.drift.get(key), dict)
        }
        rows.append(
            DriftRow(
                run,
                stats,
                run.drift.get("n_tokens"),
                comparator.drift("delta_nll", run, None),
                comparator.drift("kl", run, None),
            )
        )
    gaps = []
    if baseline.drift is not None:
        for run in runs:
            if run is not baseline and run.drift is not None:
                gaps += [comparator.drift(quantity, run, baseline) for quantity in ("nll", "kl")]
    return rows, gaps


def _tradeoff_plots(
    report_runs: list[Run], tasks: list[str], comparator: Comparator, colors: dict[int, str]
) -> list[Plot]:
    tax_tasks = [task for task in tasks if not is_target_task(task)]
    if not tax_tasks:
        return []
    tax_task = "cmrc2018" if "cmrc2018" in tax_tasks else tax_tasks[0]
    result = []
    for task in (t for t in tasks if is_target_task(t)):
        metrics = next((run.metrics[task] for run in report_runs if task in run.metrics), {})
        y_metric, x_metric = (
            primary_metric(task, metrics),
            primary_metric(tax_task, next((r.metrics[tax_task] for r in report_runs if tax_task in r.metrics), {})),
        )
        points, bases = [], []
        for run in report_runs:
            if (
                run.base is None
                or y_metric not in run.metrics.get(task, {})
                or x_metric not in run.metrics.get(tax_task, {})
            ):
                continue
            dx, dy = (
                comparator.metric(tax_task, x_metric, run, run.base),
                comparator.metric(task, y_metric, run, run.base),
            )
            x = (
                dx.difference
                if dx.difference is not None
                else run.metrics[tax_task][x_metric] - run.base.metrics.get(tax_task, {}).get(x_metric, math.nan)
            )
            y = (
                dy.difference
                if dy.difference is not None
                else run.metrics[task][y_metric] - run.base.metrics.get(task, {}).get(y_metric, math.nan)
            )
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            label = f"{run.name} {MARK}" if gainer(dy) is run and degenerate_gain(dy) else run.name
            config = run.results.get("config") or {}
            scale, source = config.get("adapter_scale"), config.get("adapter_scaled_from")
            if scale is not None:
                label = f"{run.name} (s={scale:g})"
            points.append(
                plots.TradeoffPoint(label, x, y, colors[id(run)], dx.ci, dy.ci, curve=source or None, scale=scale)
            )
            if all(run.base is not base for base in bases):
                bases.append(run.base)
        if not points:
            continue
        points = [plots.TradeoffPoint(base.name, 0.0, 0.0, BASE_COLOR, is_base=True) for base in bases] + points
        x_label = (
            f"Δ {'CMRC Avg' if tax_task == 'cmrc2018' else tax_task + ' ' + metric_label(x_metric)} vs base (the tax)"
        )
        y_label = f"Δ {metric_label(y_metric)} vs base (the gain)"
        svg = plots.tax_gain(points, f"Tax against gain: {task}", x_label, y_label)
        whiskers = plots.whisker_note(points)
        caption = (
            f"One point per run; the base at the origin. {whiskers[0].upper()}{whiskers[1:]}. Points on the same spot share "
            "one label. The dashed staircase is the Pareto front (no run beats it on both axes); up and right is better."
        )
        if any(point.curve for point in points):
            caption += (
                " A solid line joins one adapter's strengths (`alignment-tax sweep`: its LoRA update scaled by s) "
                "from the base outwards: how much of its gain it keeps at what tax."
            )
        if any(point.label.endswith(MARK) for point in points):
            caption += f" {MARK}: the run's outputs on this task are mostly empty or repetitive, so its gain is not meaningful."
        result.append(Plot(f"tax_gain_{task}", f"Tax against gain: {task_title(task)}", svg, caption))
    return result


def _drift_plots(runs: list[Run], colors: dict[int, str]) -> list[Plot]:
    with_drift = [run for run in runs if run.drift is not None and run.drift_tokens is not None]
    if not with_drift:
        return []
    kl = [(run.name, run.drift_tokens["kl"], colors[id(run)], False) for run in with_drift]
    nll = [(run.name, run.drift_tokens["nll"], colors[id(run)], False) for run in with_drift]
    seen: list[tuple[str | None, int]] = []
    for run in with_drift:
        identity = (run.drift_corpus, id(run.base))
        if identity not in seen:
            seen.append(identity)
            label = run.base.name if run.base is not None else f"base of {run.name}"
            nll.append((f"{label} (base)", run.drift_tokens["base_nll"], BASE_COLOR, True))
    return [
        Plot(
            "drift_kl_cdf",
            "Per-token KL to the base",
            plots.cdf(kl, "Per-token KL(run ‖ base)", "KL (nats)"),
            "Empirical CDF over every scored token of the drift corpus; a curve further left stays closer to the base.",
        ),
        Plot(
            "drift_nll_cdf",
            "Per-token NLL",
            plots.cdf(nll, "Per-token NLL", "NLL (nats)"),
            "Empirical CDF of per-token negative log-likelihood; dashed: the base on the same tokens.",
        ),
    ]


def _judge_plot(judgements: list[Judgement]) -> list[Plot]:
    if not judgements:
        return []
    bars = [
        plots.JudgeBar(
            j.a.name,
            j.b.name,
            j.task,
            j.wins,
            j.ties,
            j.losses,
            (j.wins + 0.5 * j.ties) / j.n_valid if j.n_valid else None,
            j.win_rate_interval(),
            j.p_value,
        )
        for j in judgements
    ]
    rated = [bar for bar in bars if bar.win_rate is not None]
    if not rated:
        rate = "No pair has a valid verdict, so no win rate is drawn."
    else:
        rate = (
            "Dot" + (" and whisker" if any(bar.ci for bar in rated) else "") + ": A's win rate, (wins + ties/2)/valid"
        )
        without = [f"{bar.label_a} vs {bar.label_b}" for bar in rated if bar.ci is None]
        rate += (
            (", with its 95% bootstrap interval" + (f" (none for {', '.join(without)})" if without else ""))
            if len(without) < len(rated)
            else ""
        )
        rate += "; p: the sign test."
    return [
        Plot(
            "judge",
            "LLM judge",
            plots.judge_bars(bars),
            f"Share of valid pairs A wins, ties and B wins (disagreeing orders count as ties). {rate}",
        )
    ]


def _curve_keys(logs: dict[int, list[dict]]) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    for log in logs.values():
        for row in log:
            for key, value in row.items():
                if (
                    key not in keys
                    and key not in CURVE_SKIP
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                ):
                    keys.append(key)

    def rank(key: str) -> tuple[int, int]:
        if key in CURVE_FIRST:
            return 0, CURVE_FIRST.index(key)
        for order, prefix in enumerate(("rewards/", "drift/", "probe/")):
            if key.startswith(prefix):
                return 1 + order, 0
        return 9, 0

    keys.sort(key=rank)
    return keys[:MAX_CURVES], keys[MAX_CURVES:]


def _training_plots(runs: list[Run], colors: dict[int, str]) -> list[Plot]:
    logs = {id(run): run.train_log for run in runs if run.train_log}
    if not logs:
        return []
    shown, omitted = _curve_keys(logs)
    result = []
    for key in shown:
        series = []
        for run in runs:
            rows = [
                row
                for row in logs.get(id(run), [])
                if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
            ]
            rows.sort(key=lambda row: row["step"])
            if rows:
                series.append(
                    (run.name, [float(row["step"]) for row in rows], [float(row[key]) for row in rows], colors[id(run)])
                )
        if series:
            stem = "".join(c if c.isalnum() else "_" for c in key)
            result.append(Plot(f"train_{stem}", key, plots.curves(series, key, key), ""))
    if omitted and result:
        result[-1].caption = f"Not plotted: {', '.join(omitted)}."
    return result


def _flags(
    comparisons: dict[str, list[Difference]], drift_gaps: list[Difference], sections: list[headline.Section]
) -> list[str]:
    found: list[str] = []
    diffs = [d for ds in comparisons.values() for d in ds] + drift_gaps
    diffs += [cell.diff for section in sections for row in section.rows for cell in row.cells if cell.diff is not None]
    for diff in diffs:
        if diff.flag and diff.ci is None:
            what = "not compared" if diff.difference is None else "no interval"
            line = f"{diff.task}: {diff.a.name} vs {diff.b.name} {what}: {diff.flag}"
            if line not in found:
                found.append(line)
    return found


def assemble(
    run_dirs: list[str | Path],
    baseline: str | None = None,
    judge_files: list[str | Path] = (),
    comparator: Comparator | None = None,
    max_items: int = items.MAX_ITEMS,
    controls: dict[str, str] | None = None,
    reference: str | None = None,
    reference_map: list[str] | dict | None = None,
) -> Report:
    """Load, check and compute everything the report shows.

    ``reference`` (a shipped name or a YAML file) adds published rows beside the runs that
    ``reference_map`` (``ROW=RUN[@SECTION]`` items) or the reference's default names match.
    """
    if reference_map and not reference:
        raise UserError("--reference-map needs --reference")
    loaded = load_reference(reference) if reference else None  # a bad file fails before any work
    runs = load_runs(list(run_dirs))
    chosen = find_run(runs, baseline) if baseline is not None else runs[0]
    check_overlap(runs)
    tasks = task_order(all_runs(runs))
    judgements = load_judgements(list(judge_files), all_runs(runs))
    comparator = comparator or Comparator()
    colors = {id(run): color(index) for index, run in enumerate(runs)}
    sections = headline.sections(runs, chosen, tasks, comparator, judgements)
    comparisons = _comparisons(runs, chosen, tasks, comparator)
    drift_rows, drift_gaps = _drift(runs, chosen, comparator)
    published = None
    if loaded is not None:
        names = [run.name for run in all_runs(runs)]
        published = attach(matcher(loaded, parse_map(reference_map), names), sections, drift_rows)
    task_items = [found for task in tasks if (found := items.task_items(task, runs, judgements, max_items)) is not None]
    report_plots = {
        "tradeoff": _tradeoff_plots(runs, tasks, comparator, colors),
        "drift": _drift_plots(runs, colors),
        "judge": _judge_plot(judgements),
        "training": _training_plots(runs, colors) + [Plot(*found) for found in checkpoint_plots(runs, tasks, colors)],
    }
    return Report(
        runs=runs,
        baseline=chosen,
        tasks=tasks,
        sections=sections,
        glance=headline.glance(runs, tasks, comparator),
        comparisons=comparisons,
        drift_rows=drift_rows,
        drift_gaps=drift_gaps,
        judgements=judgements,
        plots=report_plots,
        items=task_items,
        flags=_flags(comparisons, drift_gaps, sections),
        colors=colors,
        health=health_table(runs, tasks),
        banner=about.banner(runs),
        root=about.output_root(runs),
        controls=check_controls(controls or {}, runs, comparator),
        published=published,
    )
