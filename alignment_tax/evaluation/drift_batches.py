"""How the drift pass groups its windows into batches: padded, or packed without padding.

Padded (today's layout, and the CPU default): ``batch_size`` windows per batch, longest first,
one window per row, rows padded to the batch's longest window.

Packed: windows are concatenated into rows of at most ``row_tokens`` tokens, each window's
position ids restarting at 0, and no attention mask is given. transformers 5.24 then reads the
window boundaries from the position ids (``masking_utils.find_packed_sequence_indices``) and
masks attention across them, as long as no KV cache is passed (``use_cache=False``: with a
cache the detection is skipped and windows would attend to each other; tested). A batch is
``batch_size`` such rows, so its token budget is ``batch_size × row_tokens``, and its peak
memory is the padded layout's first (largest) batch. Rows are filled first-fit decreasing; a
row shorter than the batch's longest ends in pad tokens that extend its last window, after the
real ones, where causal attention keeps every real token from seeing them.

Rows are no longer than the longest window (by default) because SDPA with a materialised mask
costs the whole row's square, not the sum of its windows' squares: rows of a whole batch
(several thousand tokens) would multiply attention's work by the number of windows in them.
"""

from __future__ import annotations

from collections.abc import Sequence

from alignment_tax.errors import UserError

PACKING_MODES = ("auto", "on", "off")


def resolve_packing(mode: str, device_type: str) -> bool:
    """Whether to pack: ``auto`` packs on CUDA only, where padding is paid in GPU time; on a CPU
    the padded layout stays the default so that its values stay bit-identical to earlier runs.

    >>> resolve_packing("auto", "cuda"), resolve_packing("auto", "cpu"), resolve_packing("on", "cpu")
    (True, False, True)
    """
    if mode not in PACKING_MODES:
        raise UserError(f"drift packing must be one of {', '.join(PACKING_MODES)}, got {mode!r}")
    return mode == "on" or (mode == "auto" and device_type == "cuda")


def layout_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Positions in ``lengths`` laid out row by row, in order, a new row whenever the next one
    does not fit (next fit). On a batch from :func:`plan_batches` this gives back its rows.

    >>> layout_rows([5, 3, 2, 4], row_tokens=8)
    [[0, 1], [2, 3]]
    """
    rows: list[list[int]] = []
    used = row_tokens  # no open row yet
    for k, length in enumerate(lengths):
        if length > row_tokens:
            raise ValueError(f"a window of {length} tokens does not fit a row of {row_tokens}")
        if used + length > row_tokens:
            rows.append([])
            used = 0
        rows[-1].append(k)
        used += length
    return rows


def plan_batches(
    lengths: Sequence[int], order: Sequence[int], batch_size: int, row_tokens: int | None = None
) -> list[list[int]]:
    """The drift pass's batches: lists of window indices (into ``lengths``), taken in ``order``.

    Padded (``row_tokens`` None): ``batch_size`` consecutive windows of ``order`` per batch.
    Packed: windows (in ``order``, longest first) go into the first row with room for them
    (first-fit decreasing), then ``batch_size`` rows per batch, each batch listing its windows
    row by row. Next fit over that list (:func:`layout_rows`) gives the same rows back: a window
    of a later row did not fit an earlier one when placed, and rows only fill up since.

    >>> plan_batches([5, 3, 2, 4, 6], [4, 0, 3, 1, 2], batch_size=2)
    [[4, 0], [3, 1], [2]]
    >>> plan_batches([5, 3, 2, 4, 6], [4, 0, 3, 1, 2], batch_size=2, row_tokens=8)
    [[4, 2, 0, 1], [3]]
    """
    if batch_size < 1:
        raise UserError(f"the drift batch size must be at least 1, got {batch_size}")
    if row_tokens is None:
        return [list(order[start : start + batch_size]) for start in range(0, len(order), batch_size)]
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        if lengths[i] > row_tokens:
            raise ValueError(f"window {i} has {lengths[i]} tokens, more than a row's {row_tokens}")
        # First fit over every open row: a linear scan, fine for the thousands of windows of a corpus.
        row = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if row is None:
            rows.append([])
            room.append(row_tokens)
            row = len(rows) - 1
        rows[row].append(i)
        room[row] -= lengths[i]
    return [[i for row in rows[start : start + batch_size] for i in row] for start in range(0, len(rows), batch_size)]


def batch_shape(lengths: Sequence[int], row_tokens: int | None) -> tuple[int, int]:
    """(rows, width) of the tensors of one batch whose windows have ``lengths``, in batch order."""
    if row_tokens is None:
        return len(lengths), max(lengths)
    rows = layout_rows(lengths, row_tokens)
    return len(rows), max(sum(lengths[k] for k in row) for row in rows)


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]], row_tokens: int | None) -> float:
    """The share of the batches' positions that hold padding rather than a window's token."""
    total = tokens = 0
    for batch in batches:
        rows, width = batch_shape([lengths[i] for i in batch], row_tokens)
        total += rows * width
        tokens += sum(lengths[i] for i in batch)
    return 1 - tokens / total if total else 0.0
