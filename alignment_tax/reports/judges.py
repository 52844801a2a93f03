"""Judge summaries (``alignment-tax judge --output FILE``) matched to the runs of a report.

A summary names its task and the two runs it compared (``run_a``, ``run_b``: run folders or
``samples/<task>.jsonl`` files), and carries A's ``wins``/``ties``/``losses`` with
``win_pct_a``/``win_pct_b``, ``win_rate`` and its interval, and the sign test's ``p_value``.
Per-pair records (``records``, ``<stem>.pairs.jsonl``) are read when present, for the item
browser. Missing keys that can be derived from the counts are derived; a missing count is an
error naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.metrics.stats import outcome_bootstrap, win_rate
from alignment_tax.reports.runs import Run, read_json, read_jsonl

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
COUNTS = ("wins", "ties", "losses")


@dataclass
class Judgement:
    """One judge file: run ``a`` against run ``b`` on ``task``."""

    path: Path
    task: str
    a: Run
    b: Run
    wins: int  # a's
    ties: int
    losses: int
    summary: dict[str, Any]
    outcomes: dict[str, str] = field(default_factory=dict)  # item id -> a | b | tie | invalid | pending

    @property
    def n_valid(self) -> int:
        return self.wins + self.ties + self.losses

    def pct(self, side: str) -> float | None:
        """Share of valid pairs ``side`` (a, b or tie) wins, in percent."""
        if not self.n_valid:
            return None
        count = {"a": self.wins, "b": self.losses, "tie": self.ties}[side]
        return 100.0 * count / self.n_valid

    def side_of(self, run: Run) -> str | None:
        return "a" if run is self.a else "b" if run is self.b else None

    def other(self, run: Run) -> Run:
        return self.b if run is self.a else self.a

    @property
    def p_value(self) -> float | None:
        value = self.summary.get("p_value")
        return float(value) if isinstance(value, (int, float)) else None

    def win_rate_interval(self) -> tuple[float, float] | None:
        """95% interval of A's win rate, (wins + ties/2)/valid: the file's own, else recomputed."""
        recorded = self.summary.get("win_rate_ci")
        if (
            isinstance(recorded, (list, tuple))
            and len(recorded) == 2
            and all(isinstance(v, (int, float)) for v in recorded)
        ):
            return float(recorded[0]), float(recorded[1])
        return self._multinomial(win_rate)

    def gap(self, run: Run) -> tuple[float, tuple[float, float] | None] | None:
        """``run``'s win % minus the other side's, in points, and its 95% interval (the study's "Gap")."""
        side = self.side_of(run)
        if side is None or not self.n_valid:
            return None
        sign = 1.0 if side == "a" else -1.0
        interval = self._multinomial(lambda draws, n: sign * 100.0 * (draws[:, 0] - draws[:, 2]) / n)
        return sign * (self.pct("a") - self.pct("b")), interval

    def _multinomial(self, statistic) -> tuple[float, float] | None:
        interval = outcome_bootstrap(self.wins, self.ties, self.losses, statistic, CONFIDENCE, N_RESAMPLES, seed=0)
        return tuple(interval) if interval else None


def _run_folder(value: Any, judge_file: Path) -> list[Path]:
    """Folders the judge's ``run_a``/``run_b`` may mean: as written, or relative to the judge file."""
    path = Path(str(value))
    return [
        candidate.parent.parent if candidate.suffix == ".jsonl" and candidate.parent.name == "samples" else candidate
        for candidate in (path, judge_file.parent / path)
    ]


def _match(value: Any, runs: list[Run], judge_file: Path) -> Run | None:
    candidates = _run_folder(value, judge_file)
    for candidate in candidates:
        if candidate.exists():
            for run in runs:
                if candidate.resolve() == run.path.resolve():
                    return run
    name = candidates[0].name
    by_name = [run for run in runs if name in (run.path.name, run.name)]
    return by_name[0] if len(by_name) == 1 else None


def _count(summary: dict[str, Any], key: str, path: Path) -> int:
    value = summary.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or int(value) != value:
        raise UserError(f"judge file {path} is corrupt: `{key}` is {value!r}, expected a count")
    return int(value)


def _outcomes(summary: dict[str, Any], path: Path) -> dict[str, str]:
    records = summary.get("records")
    if not isinstance(records, str):
        return {}
    candidates = [Path(records), path.parent / Path(records).name]
    for candidate in candidates:
        if candidate.is_file():
            return {
                str(row["id"]): str(row.get("outcome"))
                for row in read_jsonl(candidate, "judge records file")
                if "id" in row
            }
    return {}


def load_judgement(path: str | Path, runs: list[Run]) -> Judgement:
    """One judge file, with its two runs found among ``runs`` (the report's runs and their bases)."""
    path = Path(path)
    summary = read_json(path, "judge file")
    if not isinstance(summary, dict):
        raise UserError(f"judge file {path} is corrupt: expected a JSON object")
    missing = [key for key in ("task", "run_a", "run_b", *COUNTS) if key not in summary]
    if missing:
        raise UserError(f"judge file {path} lacks {', '.join(missing)} (not written by `alignment-tax judge`?)")
    wins, ties, losses = (_count(summary, key, path) for key in COUNTS)
    sides = []
    for key in ("run_a", "run_b"):
        run = _match(summary[key], runs, path)
        if run is None:
            names = ", ".join(run.name for run in runs)
            raise UserError(f"judge file {path}: its {key} {summary[key]} is none of the runs given ({names})")
        sides.append(run)
    if sides[0] is sides[1]:
        raise UserError(f"judge file {path} compares {sides[0].name} with itself")
    return Judgement(
        path, str(summary["task"]), sides[0], sides[1], wins, ties, losses, summary, _outcomes(summary, path)
    )


def load_judgements(paths: list[str | Path], runs: list[Run]) -> list[Judgement]:
    for path in paths:
        if Path(path).is_dir():
            raise UserError(f"--judge {path} is a folder, not a judge file (list the run folders before --judge)")
    return [load_judgement(path, runs) for path in paths]
