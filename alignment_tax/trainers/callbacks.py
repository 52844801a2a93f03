"""Trainer callbacks: the training log as JSONL, and drift from the base every N steps.

Both are ``transformers.TrainerCallback`` subclasses and work with any HF-style trainer (TRL's
SFT and GRPO trainers, sentence-transformers' trainer).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from alignment_tax.errors import UserError


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def write_log_history(path: str | Path, history: Sequence[dict[str, Any]]) -> None:
    """Write a trainer's ``log_history`` as JSONL, one entry a line (NaN/inf as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for entry in history:
            handle.write(json.dumps(_plain(entry), ensure_ascii=False) + "\n")


def whole_run_loss(
    history: Sequence[dict[str, Any]], resumed_step: int, session_loss: float, session_steps: int
) -> tuple[float | None, int]:
    """(mean loss per step over the whole run, steps it covers): earlier sessions' logged losses and this session's.

    transformers' ``train_loss`` is the mean over the steps run in this process only. Each earlier
    ``loss`` entry is the mean over ``loss_steps`` steps (written by :class:`LogHistoryCallback`;
    for entries without it, the steps since the previous entry). Steps an interrupted session ran
    after its last log and before its checkpoint were never logged and are not counted.
    """
    total, steps, previous = 0.0, 0, 0
    for entry in history:
        if "loss" not in entry or entry.get("step", 0) > resumed_step or entry["loss"] is None:
            continue
        span = int(entry.get("loss_steps") or entry["step"] - previous)
        total, steps, previous = total + float(entry["loss"]) * span, steps + span, entry["step"]
    total, steps = total + float(session_loss) * session_steps, steps + session_steps
    return (total / steps if steps else None), steps


class LogHistoryCallback(TrainerCallback):
    """Appends each log entry to ``path`` as it is made; rewrites the file from ``log_history`` at the end.

    An interrupted run keeps what it logged; a resumed run's final file is the trainer's own
    history (restored from the checkpoint), so entries logged after the last checkpoint of an
    interrupted run and logged again on resume appear once.

    Each ``loss`` entry gains ``loss_steps`` (how many steps its mean covers), and the final entry's
    ``train_loss`` becomes the whole run's mean (:func:`whole_run_loss`) after a resume, with this
    session's own as ``train_loss_this_session``: the entries are ``log_history``'s own, so the
    checkpoints' ``trainer_state.json`` carry them to later sessions.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.resumed_step = 0
        self.last_logged = 0

    def on_train_begin(self, args, state, control, **kwargs):
        # Called after the checkpoint's state is restored: global_step is where this session starts.
        self.resumed_step = self.last_logged = state.global_step

    def _complete(self, state, logs: dict[str, Any]) -> dict[str, Any]:
        entry = state.log_history[-1] if state.log_history else None
        ours = entry is not None and entry.get("step") == state.global_step
        if not ours or any(entry.get(key) is not value for key, value in logs.items()):
            return {**logs, "step": state.global_step}  # not the trainer's own entry: leave history alone
        if "loss" in logs:
            entry["loss_steps"] = state.global_step - self.last_logged
            self.last_logged = state.global_step
        if "train_loss" in logs:
            session_steps = state.global_step - self.resumed_step
            whole, steps = whole_run_loss(state.log_history[:-1], self.resumed_step, logs["train_loss"], session_steps)
            entry.update(train_loss=whole, train_loss_this_session=logs["train_loss"], train_loss_steps=steps)
        return entry

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None:
            return
        entry = self._complete(state, logs)
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(_plain(entry), ensure_ascii=False) + "\n")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_log_history(self.path, state.log_history)


def default_measure() -> Callable[..., dict[str, Any]]:
    """The package's drift summary (base logits from the same weights, adapter disabled)."""
    from alignment_tax.evaluation.drift_results import measure_drift

    return measure_drift


def _summary_metrics(result: dict[str, Any], prefix: str = "drift") -> dict[str, float]:
    """Flatten ``measure_drift``'s result: ``{"kl": {"mean": …}}`` → ``{"drift/kl/mean": …}``."""
    flat: dict[str, float] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            for stat, number in value.items():
                if isinstance(number, (int, float)) and not isinstance(number, bool):
                    flat[f"{prefix}/{key}/{stat}"] = float(number)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}/{key}"] = float(value)
    return flat


class DriftCallback(TrainerCallback):
    """Measures drift from the base model every ``every`` optimizer steps and logs it with the step.

    Calls ``alignment_tax.evaluation.drift_results.measure_drift(model, tokenizer, texts,
    batch_size, max_length)`` (base logits come from the same weights with the adapter disabled) on the main process, with the model in eval mode and no gradients, and logs every
    number of its summary as ``drift/<key>/<stat>`` (e.g. ``drift/kl/mean``, ``drift/delta_nll/p90``) in the
    step's log entry, so a run's drift can be plotted against its steps from ``train_log.jsonl``.
    ``probes`` are extra ``fn(model, tokenizer) -> {name: number}`` measurements (e.g.
    :func:`cmrc_probe`) logged the same way under ``probe/<name>``.

    Attach it to the trainer (``callback.attach(trainer)``) so the values join the trainer's own
    metrics for that step; unattached, it appends a separate entry to ``state.log_history``.
    ``measure`` replaces ``measure_drift`` (tests use a stand-in).
    """

    def __init__(
        self,
        texts: Sequence[str],
        every: int,
        tokenizer: Any = None,
        batch_size: int = 8,
        max_length: int | None = None,
        probes: Sequence[Callable[[Any, Any], dict[str, float]]] = (),
        measure: Callable[..., dict[str, Any]] | None = None,
        at_start: bool = False,
    ):
        if every < 1:
            raise ValueError(f"every must be ≥ 1, got {every}")
        self.texts = list(texts)
        self.every = int(every)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.probes = list(probes)
        self.measure = measure
        self.at_start = at_start
        self.trainer: Any = None
        self.measured_steps: list[int] = []

    def attach(self, trainer: Any) -> DriftCallback:
        self.trainer = trainer
        return self

    def _measure_fn(self) -> Callable[..., dict[str, Any]]:
        if self.measure is None:
            self.measure = default_measure()
        return self.measure

    def _run(self, model: Any, tokenizer: Any) -> dict[str, float]:
        import torch

        model = getattr(model, "module", model)  # DDP/accelerate wrapper
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                result = self._measure_fn()(
                    model, tokenizer, self.texts, batch_size=self.batch_size, max_length=self.max_length
                )
                metrics = _summary_metrics(result)
                for probe in self.probes:
                    for name, value in probe(model, tokenizer).items():
                        metrics[f"probe/{name}"] = float(value)
        finally:
            model.train(was_training)
        return metrics

    def _trainer_metrics(self) -> dict | None:
        store = getattr(self.trainer, "_metrics", None) if self.trainer is not None else None
        return store if isinstance(store, dict) and "train" in store else None

    def _record(self, state, metrics: dict[str, float]) -> None:
        self.measured_steps.append(state.global_step)
        store = self._trainer_metrics()
        if store is not None:
            # TRL's SFT/GRPO trainers average their `_metrics` into the next log entry.
            for key, value in metrics.items():
                store["train"][key].append(value)
        else:
            state.log_history.append({**metrics, "step": state.global_step})

    def _maybe(self, args, state, control, model, tokenizer) -> None:
        if self._trainer_metrics() is not None:
            # Log this step on every process: the trainer's log all-gathers the loss, so a log on
            # the main process alone would wait for the others forever.
            control.should_log = True
        if not state.is_world_process_zero or model is None:
            return
        tokenizer = self.tokenizer or tokenizer
        self._record(state, self._run(model, tokenizer))

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.at_start and state.global_step == 0 and state.is_world_process_zero and model is not None:
            # Before the first step: nothing to log with yet, so a separate entry at step 0.
            metrics = self._run(model, self.tokenizer or processing_class)
            self.measured_steps.append(0)
            state.log_history.append({**metrics, "step": 0})

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step % self.every == 0:
            self._maybe(args, state, control, model, processing_class)
        return control


def drift_callback(config: dict[str, Any], tokenizer: Any, enable_thinking: bool = False):
    """A :class:`DriftCallback` when ``drift.every`` > 0, else None."""
    drift = config.get("drift") or {}
    every = int(drift.get("every") or 0)
    if every <= 0:
        return None
    from alignment_tax.data.corpus import load_corpus

    if not drift.get("data"):
        raise UserError("drift.every is set but drift.data is not: give a text corpus (e.g. CMRC passages)")
    texts = load_corpus(drift["data"], field=drift.get("field") or "text", dedupe=True)
    if drift.get("limit"):
        texts = texts[: int(drift["limit"])]
    probes = []
    if drift.get("cmrc_data") and int(drift.get("cmrc_limit") or 0) > 0:
        probes.append(
            cmrc_probe(
                drift["cmrc_data"],
                int(drift["cmrc_limit"]),
                int(drift.get("cmrc_max_new_tokens") or 64),
                enable_thinking,
            )
        )
    return DriftCallback(
        texts,
        every,
        tokenizer=tokenizer,
        batch_size=int(drift.get("batch_size") or 8),
        max_length=drift.get("max_length"),
        probes=probes,
    )


def cmrc_probe(data_path: str, limit: int, max_new_tokens: int = 64, enable_thinking: bool = False):
    """A probe for :class:`DriftCallback`: greedy CMRC 2018 EM/F1 (0–100) on the first ``limit`` questions.

    Prompts come from the ``cmrc2018`` task's template through the chat template, generations are
    cut at the task's stop strings, and scoring is the official scorer's (``metrics.cmrc``).
    """
    from alignment_tax.data.squad import load_squad
    from alignment_tax.tasks.prompts import build_doc, render_prompt
    from alignment_tax.trainers.training_examples import task_stop

    stop = task_stop("cmrc2018")
    items = load_squad(data_path)[: int(limit)]
    docs = [build_doc("cmrc2018", item) for item in items]
    prompts = [[{"role": "user", "content": render_prompt("cmrc2018", doc)}] for doc in docs]

    def probe(model: Any, tokenizer: Any) -> dict[str, float]:
        from alignment_tax.metrics.cmrc import cmrc_em, cmrc_f1
        from alignment_tax.trainers.sampling import generate

        outputs = generate(
            model,
            tokenizer,
            prompts,
            n=1,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            stop=stop,
            chat_template_kwargs={"enable_thinking": enable_thinking},
        )
        answers = [texts[0] for texts in outputs]
        em = [cmrc_em(answer, doc["reference"]) for answer, doc in zip(answers, docs)]
        f1 = [cmrc_f1(answer, doc["reference"]) for answer, doc in zip(answers, docs)]
        n = max(len(docs), 1)
        return {"cmrc_em": 100.0 * sum(em) / n, "cmrc_f1": 100.0 * sum(f1) / n}

    return probe


class StageProgressCallback(TrainerCallback):
    """One progress bar named for the run (``train grpo``), with the last logged loss beside it.

    It takes the place of transformers' own reporting: with its bar off (the CLI's log level),
    the trainer prints every log entry as a raw dict on stdout, in among the command's JSON;
    the entries are in ``train_log.jsonl`` instead.
    """

    def __init__(self, name: str):
        self.name = name
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        import sys

        from tqdm import tqdm

        if state.is_world_process_zero:
            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc=self.name,
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4g}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def report_progress_as(trainer: Any, name: str) -> None:
    """Replace the trainer's printed log dicts and unnamed bar with :class:`StageProgressCallback`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StageProgressCallback(name))


def rotate_set_aside(folder: Path, limit: int | None) -> list[Path]:
    """Delete set-aside ``incomplete-checkpoint-N`` folders, oldest first, while the checkpoints
    (complete and set aside) number more than ``limit``; the deleted folders.

    The Trainer's own rotation globs ``checkpoint-*`` and never sees them, so without this every
    interrupted save would stay on disk for good, beyond ``save_total_limit``. They go first: a
    complete checkpoint can be resumed from, a set-aside one cannot.
    """
    from alignment_tax.trainers.checkpoints import INCOMPLETE_PREFIX

    if not limit or limit <= 0 or not folder.is_dir():
        return []
    folders = [path for path in folder.iterdir() if path.is_dir()]
    complete = [path for path in folders if path.name.startswith("checkpoint-")]
    aside = [path for path in folders if path.name.startswith(INCOMPLETE_PREFIX)]
    deleted = []
    for path in sorted(aside, key=_step_then_count)[: max(0, len(complete) + len(aside) - limit)]:
        shutil.rmtree(path, ignore_errors=True)
        deleted.append(path)
    return deleted


def _step_then_count(path: Path) -> list[int]:
    """``incomplete-checkpoint-5-2`` → [5, 2]: the second folder set aside at step 5."""
    return [int(part) for part in path.name.split("-") if part.isdigit()]


class SetAsideRotation(TrainerCallback):
    """After each save, set-aside checkpoints count toward ``save_total_limit`` (see :func:`rotate_set_aside`)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            rotate_set_aside(self.folder, args.save_total_limit)
