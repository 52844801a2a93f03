"""Which plots a report shows, built from its runs: each a :class:`Plot` (SVG text and caption).

:mod:`.plots` draws the SVGs; this module chooses what goes into them (the tax–gain points,
drift CDFs, judge bars, training logs, and the tax over training of runs made by ``evaluate
--checkpoints``) and writes the captions.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import defaultdict
from dataclasses import dataclass

from alignment_tax.metrics.headline import headline_metric
from alignment_tax.reports import plots
from alignment_tax.reports.comparisons import Comparator, Difference
from alignment_tax.reports.formatting import is_target_task, metric_label, task_title
from alignment_tax.reports.health import ALL_WRONG, MARK, all_wrong, degenerate_gain, gainer
from alignment_tax.reports.judges import Judgement
from alignment_tax.reports.runs import Run
from alignment_tax.reports.svg import BASE_COLOR

MAX_CURVES = 12
WRONG_MARK = "(EM 0)"  # a point whose tax difference is between answers all wrong
CURVE_FIRST = ("loss", "reward", "reward_std", "kl", "entropy")
CURVE_SKIP = frozenset(  # bookkeeping, not a training curve
    "step epoch total_flos train_runtime train_samples_per_second train_steps_per_second train_loss learning_rate "
    "grad_norm num_tokens".split()
)


@dataclass
class Plot:
    name: str  # file stem for the Markdown report
    title: str
    svg: str
    caption: str


def _metric(runs: list[Run], task: str) -> str | None:
    """The task's headline metric, read from the first run that has the task."""
    return headline_metric(task, next((run.metrics[task] for run in runs if task in run.metrics), {}))


def _tax_measures(report_runs: list[Run], tax_tasks: list[str]) -> list[tuple[str, str, str, str]]:
    """Every tax the runs measure, as (task, metric, name, axis label): each general benchmark's
    primary metric and drift Δ NLL. One axis alone hides a tax: CMRC cannot move where every answer
    is wrong, while the same run's Chinese got measurably less likely."""
    measures = []
    for task in tax_tasks:
        if metric := _metric(report_runs, task):
            name = "Δ CMRC Avg" if task == "cmrc2018" else f"Δ {task} {metric_label(metric)}"
            measures.append((task, metric, name, f"{name} vs base (the tax)"))
    if any(run.drift is not None and run.base is not None for run in report_runs):
        # Drift is lower-is-better: plotted as −Δ NLL, so that right is better on every tax axis.
        name = "−Δ NLL on the drift texts"
        measures.append(("drift", "delta_nll", name, f"{name}, nats/token (the tax)"))
    return measures


def _change(comparator: Comparator, task: str, metric: str, run: Run) -> tuple[float, Difference]:
    """The run's difference from its base, its point estimate falling back to the aggregates."""
    if task == "drift":
        diff = comparator.drift(metric, run, None)
        value = diff.difference if diff.difference is not None else math.nan
        flipped = tuple(sorted(-bound for bound in diff.ci)) if diff.ci else None
        return -value, dataclasses.replace(diff, ci=flipped)
    diff = comparator.metric(task, metric, run, run.base)
    if diff.difference is not None:
        return diff.difference, diff
    return run.metrics[task][metric] - run.base.metrics.get(task, {}).get(metric, math.nan), diff


def tradeoff_plots(
    report_runs: list[Run], tasks: list[str], comparator: Comparator, colors: dict[int, str]
) -> list[Plot]:
    """Tax against gain: one plot per target task and tax measure."""
    measures = _tax_measures(report_runs, [task for task in tasks if not is_target_task(task)])
    result = []
    for task in filter(is_target_task, tasks):
        for index, tax in enumerate(measures):
            # The first tax keeps the plain name older reports and links used.
            name = f"tax_gain_{task}" if index == 0 else f"tax_gain_{task}_{tax[0]}"
            found = _tradeoff(name, report_runs, (task, _metric(report_runs, task)), tax, comparator, colors)
            result += [found] if found else []
    return result


def _tradeoff(
    name: str,
    report_runs: list[Run],
    gain: tuple[str, str | None],
    tax: tuple[str, str, str, str],
    comparator: Comparator,
    colors: dict[int, str],
) -> Plot | None:
    (task, y_metric), (tax_task, x_metric, tax_name, x_label) = gain, tax
    points, bases, wrong = [], [], False
    for run in report_runs:
        has_x = run.drift is not None if tax_task == "drift" else x_metric in run.metrics.get(tax_task, {})
        if run.base is None or y_metric not in run.metrics.get(task, {}) or not has_x:
            continue
        x, dx = _change(comparator, tax_task, x_metric, run)
        y, dy = _change(comparator, task, y_metric, run)
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        config = run.results.get("config") or {}
        scale, source = config.get("adapter_scale"), config.get("adapter_scaled_from")
        label = run.name if scale is None else f"{run.name} (s={scale:g})"
        if gainer(dy) is run and degenerate_gain(dy):
            label = f"{label} {MARK}"
        if all_wrong(dx):
            label, wrong = f"{label} {WRONG_MARK}", True
        points.append(
            plots.TradeoffPoint(label, x, y, colors[id(run)], dx.ci, dy.ci, curve=source or None, scale=scale)
        )
        if all(run.base is not base for base in bases):
            bases.append(run.base)
    if not points:
        return None
    points = [plots.TradeoffPoint(base.name, 0.0, 0.0, BASE_COLOR, is_base=True) for base in bases] + points
    y_label = f"Δ {metric_label(y_metric)} vs base (the gain)"
    svg = plots.tax_gain(points, f"Tax against gain: {task}, {tax_name}", x_label, y_label)
    whiskers = plots.whisker_note(points)
    notes = [
        f"One point per run; the base at the origin. {whiskers[0].upper()}{whiskers[1:]}. Points on the same spot share "
        "one label. The dashed staircase is the Pareto front (no run beats it on both axes); up and right is better.",
        tax_task == "drift"
        and "The tax here is drift: a run left of 0 made the base's Chinese less likely (Δ NLL above 0).",
        any(point.curve for point in points)
        and "A solid line joins one adapter's strengths (`alignment-tax sweep`: its LoRA update scaled by s) "
        "from the base outwards: how much of its gain it keeps at what tax.",
        any(MARK in point.label for point in points)
        and f"{MARK}: the run's outputs on this task are mostly empty or repetitive, so its gain is not meaningful.",
        wrong and f"{WRONG_MARK}: {ALL_WRONG}; its tax is read on the other tax plots.",
    ]
    return Plot(name, f"Tax against gain: {task_title(task)}, {tax_name}", svg, " ".join(filter(None, notes)))


def drift_plots(runs: list[Run], colors: dict[int, str]) -> list[Plot]:
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


def judge_plots(judgements: list[Judgement]) -> list[Plot]:
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
    without = [f"{bar.label_a} vs {bar.label_b}" for bar in rated if bar.ci is None]
    if not rated:
        rate = "No pair has a valid verdict, so no win rate is drawn."
    elif len(without) == len(rated):
        rate = "Dot: A's win rate, (wins + ties/2)/valid; p: the sign test."
    else:
        none = f" (none for {', '.join(without)})" if without else ""
        rate = (
            f"Dot and whisker: A's win rate, (wins + ties/2)/valid, with its 95% bootstrap interval{none}; "
            "p: the sign test."
        )
    return [
        Plot(
            "judge",
            "LLM judge",
            plots.judge_bars(bars),
            f"Share of valid pairs A wins, ties and B wins (disagreeing orders count as ties). {rate}",
        )
    ]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _line(name: str, points: list[tuple[float, float]], colour: str) -> tuple[str, list[float], list[float], str]:
    """One series of :func:`.plots.curves` from its (step, value) points."""
    return name, [float(step) for step, _ in points], [float(value) for _, value in points], colour


def _curve_keys(logs: dict[int, list[dict]]) -> tuple[list[str], list[str]]:
    keys = list(dict.fromkeys(k for log in logs.values() for row in log for k, v in row.items() if _number(v)))
    keys = [key for key in keys if key not in CURVE_SKIP]

    def rank(key: str) -> tuple[int, int]:
        if key in CURVE_FIRST:
            return 0, CURVE_FIRST.index(key)
        for order, prefix in enumerate(("rewards/", "drift/", "probe/")):
            if key.startswith(prefix):
                return 1 + order, 0
        return 9, 0

    keys.sort(key=rank)
    return keys[:MAX_CURVES], keys[MAX_CURVES:]


def training_plots(runs: list[Run], colors: dict[int, str]) -> list[Plot]:
    """The training logs: each logged series against step, one line per run."""
    logs = {id(run): run.train_log for run in runs if run.train_log}
    if not logs:
        return []
    shown, omitted = _curve_keys(logs)
    result = []
    for key in shown:
        series = []
        for run in runs:
            rows = sorted((row for row in logs.get(id(run), []) if _number(row.get(key))), key=lambda row: row["step"])
            if rows:
                series.append(_line(run.name, [(row["step"], row[key]) for row in rows], colors[id(run)]))
        if series:
            stem = "".join(c if c.isalnum() else "_" for c in key)
            # As drawn: a NaN or infinite value (a diverged step) is left out of the plot.
            finite = {name: sum(map(math.isfinite, values)) for name, _, values, _ in series}
            few = [name for name, count in finite.items() if count < plots.FEW_POINTS]
            lost = [name for name, _, values, _ in series if finite[name] < len(values)]
            notes = [f"Drawn as points, too few logged steps for a curve: {', '.join(few)}." if few else ""]
            notes.append(f"Steps logged as NaN or infinite are not drawn: {', '.join(lost)}." if lost else "")
            result.append(Plot(f"train_{stem}", key, plots.curves(series, key, key), " ".join(filter(None, notes))))
    if omitted and result:
        result[-1].caption = " ".join(filter(None, [result[-1].caption, f"Not plotted: {', '.join(omitted)}."]))
    return result


def checkpoint_series(runs: list[Run]) -> dict[str, list[tuple[int, Run]]]:
    """Series folder name (the ``--output`` of ``evaluate --checkpoints``) → ``(step, run)`` by step,
    for runs whose ``results.json`` records the ``checkpoint_step`` they were evaluated at."""
    series: dict[str, list[tuple[int, Run]]] = defaultdict(list)
    for run in runs:
        step = (run.results.get("config") or {}).get("checkpoint_step")
        if isinstance(step, int) and not isinstance(step, bool):
            series[run.path.parent.name].append((step, run))
    return {name: sorted(members, key=lambda pair: pair[0]) for name, members in series.items()}


def _delta(run: Run, task: str, metric: str) -> float:
    value = run.metrics.get(task, {}).get(metric)
    base = run.base.metrics.get(task, {}).get(metric) if run.base is not None else None
    return math.nan if value is None or base is None else float(value) - float(base)


def _drift_mean(run: Run, key: str) -> float:
    value = ((run.drift or {}).get(key) or {}).get("mean")
    return float(value) if _number(value) else math.nan


def checkpoint_plots(runs: list[Run], tasks: list[str], colors: dict[int, str]) -> list[Plot]:
    """The tax over training: one plot per task (and drift measure) with a series of two or more
    checkpoints, one line per series. Task metrics are differences from the base (the tax and the
    gain read alike, 0 = the base), drift its mean KL and Δ NLL."""
    series = {name: members for name, members in checkpoint_series(runs).items() if len(members) >= 2}
    measures = []  # (name, title, y label, caption, the value of one checkpoint's run)
    for task in tasks:
        found = (
            headline_metric(task, run.metrics[task]) for ms in series.values() for _, run in ms if task in run.metrics
        )
        metric = next(found, None)
        if metric is not None:
            label = f"Δ {metric_label(metric)} vs base"
            caption = f"{label} of each saved checkpoint (`evaluate --checkpoints`); 0 is the base."
            value = functools.partial(_delta, task=task, metric=metric)
            measures.append((f"checkpoints_{task}", f"{task_title(task)} over training", label, caption, value))
    for key, label in (("kl", "mean KL to the base"), ("delta_nll", "mean Δ NLL")):
        caption = f"{label} on the drift corpus at each saved checkpoint."
        value = functools.partial(_drift_mean, key=key)
        measures.append((f"checkpoints_drift_{key}", f"Drift over training: {label}", label, caption, value))
    result = []
    for name, title, label, caption, value in measures:
        lines = [
            _line(folder, [(step, value(run)) for step, run in members], colors[id(members[-1][1])])
            for folder, members in series.items()
        ]
        if any(math.isfinite(v) for _, _, values, _ in lines for v in values):
            result.append(Plot(name, title, plots.curves(lines, title, label), caption))
    return result
