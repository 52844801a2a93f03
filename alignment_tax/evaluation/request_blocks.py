"""transformers generation in whole batches of the one-process schedule, shared out over processes.

lm-eval's ``HFLM.generate_until`` groups requests by their generation arguments, sorts each group
longest context first (its ``Collator`` with the key ``(-len(tokens), context)``) and cuts it into
batches of ``batch_size``. :func:`generation_blocks` reproduces those batches. Any subset of whole
blocks, handed back to ``generate_until``, is batched exactly as the blocks were: within a group
every block but the last is full, so sorting the subset again cuts it at the same places.

So a block is the unit of work: block ``i`` goes to rank ``i mod N`` (lm-eval's own multi-process
path, disabled anyway for a model passed as an object, would deal requests out one by one and
change every batch), and a run resumed after a kill recomputes whole blocks, not the scattered
requests another number of processes left missing. Either way each response comes from the same
batch as in one uninterrupted process, so outputs are identical, not merely close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alignment_tax.evaluation import data_parallel
from alignment_tax.progress import request_tasks, working_on


def generation_blocks(lm: Any, requests: list) -> list[list[int]]:
    """Indices into ``requests`` of each batch ``lm.generate_until`` (HFLM, fixed batch size) would run."""
    from lm_eval.models.utils import Collator

    def longest_first(item: tuple) -> tuple[int, str]:  # HFLM.generate_until's own key
        return -len(lm.tok_encode(item[0])), item[0]

    collator = Collator(
        [(*request.args, index) for index, request in enumerate(requests)],
        sort_fn=longest_first,
        group_by="gen_kwargs",
        group_fn=lambda item: item[1],
    )
    return [[item[2] for item in batch] for batch in collator.get_batched(n=lm.batch_size)]


def generate_in_blocks(lm: Any, requests: list, cached: list, generate: Callable[[list], list]) -> list:
    """Every response to ``requests``: ``cached`` ones (None where missing) and the rest from ``generate``.

    ``generate`` is the parent class's ``generate_until``; it runs on this rank's blocks only, and
    every rank returns the full list (lm-eval then scores the same responses on every rank).
    """
    blocks = generation_blocks(lm, requests)
    # Rank 0's reading of the shared cache decides: another rank could read later and find
    # responses that rank 0 has meanwhile written, and plan other blocks.
    todo = data_parallel.on_main(lambda: [block for block in blocks if any(cached[i] is None for i in block)])
    indices = [i for block in data_parallel.mine(todo) for i in block]
    part = [requests[i] for i in indices]
    with working_on(request_tasks(part)):  # so the bar names them
        responses = generate(part) if part else []
    fresh: dict[int, Any] = {}
    for share in data_parallel.gathered(dict(zip(indices, responses, strict=True))):
        fresh.update(share)
    # A request outside ``todo`` was cached when rank 0 looked, and entries are never removed:
    # this rank's reading, taken before it received the decision, holds it too.
    return [fresh[i] if i in fresh else cached[i] for i in range(len(requests))]
