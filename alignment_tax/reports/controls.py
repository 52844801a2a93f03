"""Controls: runs whose answer is known in advance, checked so the report can vouch for the instrument.

* negative: a change that changes nothing (a LoRA adapter whose B matrices are zero). Every tax
  must read exactly 0, the KL to the base exactly 0, and every output must equal the base's.
  Anything else means the harness itself moves numbers: a cache crossing runs, a sampling seed,
  a base that is not the same weights.
* positive: a change known to cost the base something (strong SFT on Tibetan, which should make
  the base's Chinese text less likely). Its drift Δ NLL must be above zero with the whole 95%
  interval: an instrument that cannot see this cannot vouch for a "no tax" elsewhere.

A failed control is reported, never hidden: it says the other numbers are not to be trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from alignment_tax.errors import UserError
from alignment_tax.reports.comparisons import Comparator, Difference
from alignment_tax.reports.runs import Run, find_run

ROLES = ("negative", "positive")
CONTROLS_NOTE = (
    "Runs whose answer is known in advance. The negative control changes nothing (a LoRA adapter with B = 0): "
    "every tax, its KL and every output must equal the base's exactly. The positive control is a change known to "
    "cost the base (strong SFT on Tibetan): its drift Δ NLL must exceed 0 with the whole 95% interval. "
    "A failed control means the other numbers are not to be trusted."
)


@dataclass
class ControlCheck:
    role: str
    run: Run
    passed: bool
    evidence: list[str] = field(default_factory=list)
    interval: Difference | None = None  # the positive control's drift Δ NLL

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "FAILED"


def check_controls(
    controls: Mapping[str, str | Sequence[str]], runs: list[Run], comparator: Comparator
) -> list[ControlCheck]:
    """One check per named control run, in ``ROLES`` order; a role may name several runs
    (``--control negative=A --control negative=B``), and each is checked."""
    unknown = sorted(set(controls) - set(ROLES))
    if unknown:
        raise UserError(f"unknown control role(s) {', '.join(unknown)}: use {' or '.join(ROLES)}")
    checks = []
    for role in ROLES:
        names = controls.get(role) or []
        # Every name is resolved before any check runs, so a typo fails before the work.
        chosen = [
            find_run(runs, name, f"--control {role}=RUN:") for name in ([names] if isinstance(names, str) else names)
        ]
        for run in dict.fromkeys(chosen):  # a run named twice is checked once
            checks.append(negative_check(run, comparator) if role == "negative" else positive_check(run, comparator))
    return checks


def negative_check(run: Run, comparator: Comparator) -> ControlCheck:
    check = ControlCheck("negative", run, passed=True)
    if run.base is None:
        return _fail(check, "it has no base run to be compared with")
    taxes = sorted(
        (task, metric, value)
        for task, metrics in (run.results.get("tax") or {}).items()
        for metric, value in metrics.items()
        if isinstance(value, (int, float))
    )
    moved = [f"{task} {metric} {value:+.6g}" for task, metric, value in taxes if value != 0.0]
    if not taxes:
        _fail(check, "it has no tax to check")
    elif moved:
        _fail(check, f"tax not zero: {', '.join(moved)}")
    else:
        check.evidence.append(f"all {len(taxes)} tax values are exactly 0")
    drift = run.drift or {}
    if drift:
        kl, delta = drift["kl"]["mean"], drift["delta_nll"]["mean"]
        if kl == 0.0 and delta == 0.0:
            check.evidence.append(f"KL and Δ NLL exactly 0 over {drift['n_tokens']} tokens")
        else:
            _fail(check, f"drift not zero: KL {kl:.3g}, Δ NLL {delta:+.3g}")
    for task in run.tasks:
        paired = comparator.paired_items(task, run, run.base)
        if isinstance(paired, str):
            continue  # a task without per-item records (lm-eval's own) has only its tax to check
        same = sum(a.get("output") == b.get("output") for a, b in zip(*paired))
        if same == len(paired[0]):
            check.evidence.append(f"{task}: {same}/{same} outputs identical to the base's")
        else:
            _fail(check, f"{task}: {len(paired[0]) - same} of {len(paired[0])} outputs differ from the base's")
    return check


def positive_check(run: Run, comparator: Comparator) -> ControlCheck:
    check = ControlCheck("positive", run, passed=True)
    diff = comparator.drift("delta_nll", run, None)
    check.interval = diff
    if not diff.comparable:
        return _fail(check, f"no drift interval: {diff.flag or 'no drift results'}")
    low, high = diff.ci
    shown = f"Δ NLL {diff.difference:+.3f} nats/token, 95% CI [{low:+.3f}, {high:+.3f}] over {diff.n} texts"
    if low > 0:
        check.evidence.append(f"{shown}: the base's Chinese got less likely, and the interval excludes 0")
    else:
        _fail(check, f"{shown}: not detected (the interval reaches 0 or below)")
    return check


def _fail(check: ControlCheck, why: str) -> ControlCheck:
    check.passed = False
    check.evidence.append(why)
    return check
