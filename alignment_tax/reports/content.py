"""Everything a report shows, computed once and rendered as HTML or Markdown.

:func:`assemble` loads the runs (and their bases) and judge files, checks them, and computes the
headline sections, every difference with its interval, drift, judge results, the plots (SVG
text) and the item browser. Renderers only format what is here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from alignment_tax import __version__
from alignment_tax.errors import UserError
from alignment_tax.reports import about, figures, headline, items
from alignment_tax.reports.comparisons import Comparator, Difference
from alignment_tax.reports.controls import ControlCheck, check_controls
from alignment_tax.reports.figures import Plot
from alignment_tax.reports.health import HealthTable, health_table
from alignment_tax.reports.judges import Judgement, load_judgements
from alignment_tax.reports.published import Shown, attach
from alignment_tax.reports.references import load_reference, matcher, parse_map
from alignment_tax.reports.runs import Run, all_runs, check_overlap, find_run, is_named, load_runs, task_order
from alignment_tax.reports.svg import BASE_COLOR, color


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
    """Per task: each run against its base on every metric it has, then against the baseline on those both have."""
    result = {}
    for task in tasks:
        diffs = [
            comparator.metric(task, metric, run, run.base)
            for run in runs
            if run.base is not None and task in run.base.metrics
            for metric in run.metrics.get(task, {})
        ]
        diffs += [
            comparator.metric(task, metric, run, baseline)
            for run in runs
            if run is not baseline
            for metric in run.metrics.get(task, {})
            if metric in baseline.metrics.get(task, {})
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


def default_baseline(runs: list[Run], controls: dict[str, str | list[str]]) -> Run:
    """The base when it was given as a run, else the first run that is not a control.

    Never a control by default: the positive control is built to do damage, so a gap row against
    it makes every run look better than it is, and the negative control is the base again.
    """
    bases = {run.base.path.resolve() for run in runs if run.base is not None}
    for run in runs:
        if run.path.resolve() in bases:
            return run
    named = [name for names in controls.values() for name in ([names] if isinstance(names, str) else names)]
    return next((run for run in runs if not any(is_named(run, name) for name in named)), runs[0])


def assemble(
    run_dirs: list[str | Path],
    baseline: str | None = None,
    judge_files: list[str | Path] = (),
    comparator: Comparator | None = None,
    max_items: int = items.MAX_ITEMS,
    controls: dict[str, str | list[str]] | None = None,
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
    chosen = find_run(runs, baseline) if baseline is not None else default_baseline(runs, controls or {})
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
        "tradeoff": figures.tradeoff_plots(runs, tasks, comparator, colors),
        "drift": figures.drift_plots(runs, colors),
        "judge": figures.judge_plots(judgements),
        "training": figures.training_plots(runs, colors) + figures.checkpoint_plots(runs, tasks, colors),
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
