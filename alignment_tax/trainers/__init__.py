"""Training the paper's two adaptation methods, and the reward's embedder, over TRL and sentence-transformers.

::

    from alignment_tax.trainers import load_config, train
    config = load_config("grpo", "configs/paper/grpo.yaml", ["training.max_steps=100"])
    train(config, model="Qwen/Qwen3-4B-Instruct-2507", adapter="runs/sft_cold/adapter",
          train_data="pairs.jsonl", output="runs/grpo", embedder="runs/embedder/embedder")

* :mod:`~alignment_tax.trainers.config`: presets (the paper's values), YAML, ``--set``, checks;
* :mod:`~alignment_tax.trainers.training_examples`: task prompts → conversational examples with ``reference``;
* :mod:`~alignment_tax.trainers.sft`, :mod:`~alignment_tax.trainers.grpo`,
  :mod:`~alignment_tax.trainers.embedder`: the three methods;
* :mod:`~alignment_tax.trainers.run_folder`: output layout, resume, the run's record and log;
* :mod:`~alignment_tax.trainers.devices`: processes, precision, batch arithmetic;
* :mod:`~alignment_tax.trainers.lora_model`: the base model and its LoRA adapter;
* :mod:`~alignment_tax.trainers.callbacks`: ``train_log.jsonl`` and :class:`DriftCallback`;
* :mod:`~alignment_tax.trainers.calibrate`, :mod:`~alignment_tax.trainers.check_embedder`:
  ``calibrate-tau`` and ``check-embedder``;
* :mod:`~alignment_tax.trainers.commands`: the CLI subcommands (``register(subparsers)``).

Nothing heavy is imported until a function needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from alignment_tax.trainers.config import METHODS, default_config, load_config


def train(
    config: dict[str, Any],
    *,
    model: str | None,
    train_data: str,
    output: str,
    adapter: str | None = None,
    embedder: str | None = None,
) -> dict[str, Any]:
    """Run ``config["method"]`` and return a summary; writes ``OUTPUT/{adapter|embedder}``, config and log."""
    with _output_held(output), _quiet_data_preparation():
        return _train(config, model=model, train_data=train_data, output=output, adapter=adapter, embedder=embedder)


@contextlib.contextmanager
def _output_held(output: str) -> Iterator[None]:
    """``OUTPUT`` for this run alone, from before resuming looks at its checkpoints to the end.

    Resuming sets aside a newest checkpoint without ``trainer_state.json`` as incomplete; in a
    folder another run is training into, that is the checkpoint it is writing. So a second
    ``train`` into a live run's output is refused in one line. The main process holds the lock
    for all; when it refuses, the launcher (torchrun, accelerate) stops the other processes.
    """
    from alignment_tax.evaluation.output_lock import OutputLock, remove_if_unused
    from alignment_tax.paths import check_output_folder
    from alignment_tax.trainers.devices import is_main_process

    if not is_main_process():
        yield
        return
    folder = check_output_folder(output, "--output")  # a file there is one line, not a traceback
    created = not folder.exists()
    try:
        with OutputLock(folder, "train"):
            yield
    except BaseException:
        if created:  # an empty folder left by a run that failed early would look like a run
            remove_if_unused(folder)
        raise


@contextlib.contextmanager
def _quiet_data_preparation() -> Iterator[None]:
    """No bars for TRL's dataset passes (tokenizing, labels, truncating): seconds, named for no run.

    The training itself has its own bar, named for the run (``train grpo``).
    """
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_enabled = not are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            enable_progress_bars()


def _train(
    config: dict[str, Any],
    *,
    model: str | None,
    train_data: str,
    output: str,
    adapter: str | None,
    embedder: str | None,
) -> dict[str, Any]:
    method = config["method"]
    if method == "sft":
        from alignment_tax.trainers.sft import train_sft

        return train_sft(config, model=model, adapter=adapter, train_data=train_data, output=output)
    if method == "grpo":
        from alignment_tax.trainers.grpo import train_grpo

        return train_grpo(config, model=model, adapter=adapter, train_data=train_data, output=output, embedder=embedder)
    from alignment_tax.errors import UserError

    if adapter is not None:
        raise UserError("--adapter does not apply to --method embedder (it trains a sentence-transformers model)")
    from alignment_tax.trainers.embedder import train_embedder

    return train_embedder(config, model=model, train_data=train_data, output=output)


__all__ = ["METHODS", "default_config", "load_config", "train"]
