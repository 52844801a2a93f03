"""``evaluate`` over several processes (``torchrun --nproc_per_node N`` or ``accelerate launch``).

Each process holds a whole copy of the model and takes a share of the work; rank 0 writes.
Identity with one process comes from sharing out whole batches of the one-process schedule:
every batch has the same members, hence the same padding, the same greedy tokens and the same
float rounding, whichever process runs it. Generation is shared in
:mod:`alignment_tax.evaluation.request_blocks`, drift's windows in ``drift.token_drift``.

A decision that reads the disk (is the folder locked? is a base result or a drift checkpoint
already there?) is taken by rank 0 alone and sent to the others, since another rank may look a
moment later, after rank 0 has written. Every rank runs the same checks on the same arguments,
so a mistake fails all of them alike, each with the same one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from alignment_tax.errors import UserError

T = TypeVar("T")
R = TypeVar("R")


def _group() -> Any | None:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world_size() -> int:
    dist = _group()
    return dist.get_world_size() if dist is not None else 1


def rank() -> int:
    dist = _group()
    return dist.get_rank() if dist is not None else 0


def is_main() -> bool:
    return rank() == 0


@contextmanager
def processes(device: str) -> Iterator[int]:
    """The process group the launcher asked for (``WORLD_SIZE`` > 1), for the block; yields its size.

    gloo on the CPU; NCCL on GPUs, each process on ``cuda:LOCAL_RANK`` (set as the current
    device, so that the rest of the package can keep saying "cuda").
    """
    import torch
    import torch.distributed as dist

    wanted = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if wanted <= 1 or dist.is_initialized():
        yield world_size()
        return
    on_gpu = device != "cpu" and torch.cuda.is_available()
    if on_gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0") or 0))
    dist.init_process_group(backend="nccl" if on_gpu else "gloo")
    try:
        with _bars_on_rank_0_only():
            yield dist.get_world_size()
    finally:
        dist.destroy_process_group()


@contextmanager
def _bars_on_rank_0_only() -> Iterator[None]:
    """One set of progress bars. TQDM_DISABLE is read when tqdm is imported (too early to set
    here), and lm-eval passes ``disable=False`` explicitly, so the flag is forced on the class."""
    from tqdm import tqdm

    if rank() == 0:
        yield
        return
    original = tqdm.__init__

    def quiet(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        original(self, *args, **kwargs)

    tqdm.__init__ = quiet
    try:
        yield
    finally:
        tqdm.__init__ = original


def check_supported(engine: str, batch_size: int | str) -> None:
    """What several processes need; the same answer on every rank."""
    if world_size() == 1:
        return
    if engine != "hf":
        raise UserError(
            f"--engine {engine} runs in one process (vLLM shares out work itself: --data-parallel-size); "
            "launch it without torchrun or accelerate"
        )
    if not isinstance(batch_size, int):
        # Each process would measure its own "auto" size, and batches would no longer match.
        raise UserError("several processes need a fixed --batch-size (a number, not auto)")


def on_main(decide: Callable[[], T]) -> T:
    """``decide()`` run by rank 0 alone, its result (or its UserError) given to every rank."""
    dist = _group()
    if dist is None or dist.get_world_size() == 1:
        return decide()
    outcome: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            outcome = [("ok", decide())]
        except UserError as error:
            dist.broadcast_object_list([("user_error", (str(error), error.exit_code))], src=0)
            raise
        except BaseException as error:
            dist.broadcast_object_list([("failed", f"{type(error).__name__}: {error}")], src=0)
            raise
    dist.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if kind == "user_error":
        error = UserError(value[0])
        error.exit_code = value[1]  # a subclass's code, so that every rank exits as rank 0 does
        raise error
    if kind == "failed":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value


def mine(items: list[T]) -> list[T]:
    """This rank's share: items rank, rank + N, rank + 2N, ..."""
    return items[rank() :: world_size()]


def gathered(value: T) -> list[T]:
    """``value`` from every rank, in rank order (``[value]`` in one process)."""
    dist = _group()
    if dist is None or dist.get_world_size() == 1:
        return [value]
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def in_rounds(blocks: list[T], compute: Callable[[T], R]) -> Iterator[list[tuple[int, R]]]:
    """``compute`` over ``blocks``, one round of N blocks at a time (block ``k·N + rank`` on each rank).

    Yields every round's ``(block index, result)`` pairs, gathered from all ranks, so that each
    rank holds all results as they come (rank 0 can checkpoint them).
    """
    size, me = world_size(), rank()
    for start in range(0, len(blocks), size):
        index = start + me
        result = compute(blocks[index]) if index < len(blocks) else None
        yield [(i, r) for i, r in gathered((index, result)) if i < len(blocks)]
