"""``alignment-tax sweep``: one adapter evaluated at several strengths, for its tax–gain frontier.

A LoRA layer adds ``scaling · B·A·x`` to the base layer's output. Multiplying every ``B`` by ``s``
scales that update by exactly ``s``: ``s = 0`` is the base (the update is an exact zero, so every
output, tax and KL equals the base's), ``s = 1`` is the adapter itself (its files are copied
unchanged). Weights the adapter replaces whole (``modules_to_save``, trainable tokens) are
scaled as ``evaluation.adapter_scaling`` says, or refused where no strength but 0 and 1 is exact. Each strength is a scaled copy of the adapter under ``OUTPUT/adapters/`` and an
ordinary evaluation under ``OUTPUT/scale_<s>/`` whose ``results.json`` records ``adapter_scale``;
every strength shares the base's results (stored once under ``OUTPUT/_base/``). Because a scaled
copy is an ordinary adapter folder, the ``vllm`` engine takes it as it takes any adapter.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.evaluation import data_parallel
from alignment_tax.evaluation.output_lock import held_by_main, remove_if_unused
from alignment_tax.paths import check_output_folder

MAX_SCALE = 4.0  # beyond the adapter (s > 1) is allowed, as an extrapolation, up to this


def parse_scales(text: str, where: str = "--scales") -> list[float]:
    """``"0,0.5,1"`` → ``[0.0, 0.5, 1.0]`` (sorted, duplicates dropped); errors name ``where``.

    >>> parse_scales("1, 0.25,0,0.25")
    [0.0, 0.25, 1.0]
    """
    try:
        scales = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"{where}: expected numbers separated by commas, got {text!r}") from None
    if not scales:
        raise UserError(f"{where}: name at least one strength")
    bad = [s for s in scales if not 0.0 <= s <= MAX_SCALE]
    if bad:
        raise UserError(f"{where}: every strength must be between 0 and {MAX_SCALE:g}, got {bad[0]:g}")
    check_distinct_labels(scales, where)
    return scales


def scale_label(scale: float) -> str:
    return f"scale_{scale:g}"


def check_distinct_labels(scales: list[float], where: str) -> None:
    """Refuse two strengths that would share a run folder (and a report row), before anything is written.

    Labels keep 6 significant digits, so ``0.5`` and ``0.50000001`` would both be ``scale_0.5``:
    the second run would overwrite the first.

    >>> check_distinct_labels([0.5, 0.50000001], "--scales")
    Traceback (most recent call last):
    alignment_tax.errors.UserError: --scales: 0.5 and 0.50000001 would both be written to scale_0.5 (strengths must differ within 6 significant digits)
    """
    seen: dict[str, float] = {}
    for scale in scales:
        label = scale_label(scale)
        if label in seen:
            first = seen[label]
            if first == scale:
                raise UserError(f"{where}: strength {scale!r} is listed twice")
            raise UserError(
                f"{where}: {first!r} and {scale!r} would both be written to {label}"
                " (strengths must differ within 6 significant digits)"
            )
        seen[label] = scale


def sweep(options: Any, scales: list[float], prefix: str = "", adapters: str | Path | None = None) -> dict[str, Any]:
    """Evaluate ``options.adapter`` at each strength; ``options.output`` is the sweep's folder.

    Each strength's run is ``OUTPUT/<prefix>scale_<s>`` and its scaled copy is under ``adapters``
    (default ``OUTPUT/adapters``): a spec puts several sweeps beside its other evaluations this
    way, so that all of them share one base evaluation.
    """
    if not options.adapter:
        raise UserError("sweep needs --adapter (the adapter whose strength it varies)")
    if options.engine == "server":
        raise UserError("sweep generates with --engine hf or vllm; a server would need each scaled copy served")
    if options.engine == "vllm":
        from alignment_tax.evaluation.engines import vllm_lm_class

        vllm_lm_class()  # without vLLM: one line, before any scaled copy is written
    from alignment_tax.evaluation.adapter_scaling import AdapterScaler

    scaler = AdapterScaler(options.adapter, options.model)
    scaler.check(scales)  # a strength that cannot be had exactly is refused before anything is written
    root = check_output_folder(options.output, "--output")
    copies = Path(adapters or root / "adapters")
    # The folder holding the copies is locked before any is written: a second sweep into it would
    # otherwise overwrite the copies the first one is evaluating, and each would record the other's.
    # Under torchrun rank 0 holds it, and writes the copies, for every process.
    holder = copies.parent
    created = data_parallel.on_main(lambda: [folder for folder in (holder, copies) if not folder.exists()])
    try:
        with held_by_main(holder, "sweep"):
            summary = {}
            for scale in scales:
                label = prefix + scale_label(scale)
                summary[label] = _evaluate_strength(options, scaler, scale, root, label, copies / label)
    except BaseException:
        # A copy that backs a finished strength stays (its results.json names it); the rest went already.
        if data_parallel.is_main():
            if copies in created and copies.is_dir() and not any(copies.iterdir()):
                copies.rmdir()
            if holder in created:
                remove_if_unused(holder)
        raise
    return {"adapter": str(options.adapter), "output": str(root), "runs": summary}


def _evaluate_strength(options: Any, scaler: Any, scale: float, root: Path, label: str, copy: Path) -> dict[str, Any]:
    """Write one strength's copy (just before its evaluation) and evaluate it; a failure removes a copy it made."""
    made = data_parallel.on_main(lambda: not copy.exists())
    try:
        data_parallel.on_main(lambda: scaler.write(scale, copy))
        recorded = {"adapter_scale": scale, "adapter_scaled_from": str(options.adapter)}
        return _evaluate_one(options, root, label, copy, recorded)
    except BaseException:
        if made and data_parallel.is_main():
            shutil.rmtree(copy, ignore_errors=True)
        raise


def evaluate_series(options: Any, runs: list[tuple[str, str | Path, dict[str, Any]]]) -> dict[str, Any]:
    """Evaluate each ``(label, adapter, recorded options)`` as ``OUTPUT/<label>``, all against one base.

    The runs share ``options.output`` as their root, so the base is evaluated once, under
    ``OUTPUT/_base/``, and reused (``sweep`` and ``evaluate --checkpoints`` both go through here).
    """
    root = Path(options.output)
    return {label: _evaluate_one(options, root, label, adapter, recorded) for label, adapter, recorded in runs}


def _evaluate_one(
    options: Any, root: Path, label: str, adapter: str | Path, recorded: dict[str, Any]
) -> dict[str, Any]:
    from alignment_tax.evaluation.evaluate import evaluate

    run = replace(options, adapter=str(adapter), output=str(root / label), base=options.base or "auto", **recorded)
    results = evaluate(run)
    return {
        **recorded,
        "results": str(root / label / "results.json"),
        "tax": results.get("tax"),
        "tasks": results.get("tasks"),
    }
