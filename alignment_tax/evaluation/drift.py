"""Out-of-distribution drift: per-token NLL under the candidate and the base, and KL between them.

For every scored token of a corpus the candidate's NLL, the base's NLL and KL(candidate ‖ base)
over the full vocabulary, in float32. Each text is tokenised without special tokens and every
token after the first is scored exactly once; a text longer than the window is split into
windows with a stride, each window scoring only the tokens the previous one did not reach.

Work is batch by batch and, over the batch's scored tokens, chunk by chunk: the backbone's
hidden states are computed once per model and the LM head is applied to a slice of tokens at a
time, so neither model's logits for a whole batch (tokens × vocabulary) are ever held, let alone
the corpus's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alignment_tax.errors import UserError
from alignment_tax.evaluation import data_parallel
from alignment_tax.evaluation.drift_batches import layout_rows, plan_batches, resolve_packing
from alignment_tax.models.placement import execution_device, input_device

# Elements of one float32 logits slice (tokens × vocabulary): about 16 MB. Two such slices
# (candidate and base) are alive at a time. On a GPU a slice of a few rows would leave the LM
# head's matrix product starved, so there a slice is 16 times larger (256 MB; 441 tokens at
# Qwen3's 151,936-entry vocabulary).
DEFAULT_CHUNK_ELEMENTS = 4 * 1024 * 1024
GPU_CHUNK_ELEMENTS = 64 * 1024 * 1024
# On a CPU too, a slice needs enough rows: each slice's product streams the whole head matrix
# (1.5 GB in float32 at Qwen3-4B's width) from memory, so 27 rows ran at a third of the speed
# of 441 (measured on 2 cores: 32 ms against 9 ms per token and head). With a small vocabulary
# DEFAULT_CHUNK_ELEMENTS already gives more rows than this and nothing changes.
CPU_MIN_CHUNK_ROWS = 512


@dataclass(frozen=True)
class Window:
    text_index: int
    begin: int  # where the window starts in its text
    token_ids: list[int]
    first_scored: int  # positions first_scored..len-1 of this window are scored

    @property
    def n_scored(self) -> int:
        return len(self.token_ids) - self.first_scored


@dataclass
class TokenDrift:
    """Per-token values, aligned: token ``i`` belongs to text ``text_index[i]``."""

    nll: np.ndarray
    base_nll: np.ndarray
    kl: np.ndarray
    text_index: np.ndarray
    position: np.ndarray  # the token's position in its text

    @property
    def n_tokens(self) -> int:
        return int(self.nll.size)


def plan_windows(token_ids: list[list[int]], window: int, stride: int | None = None) -> list[Window]:
    """Windows that score every token after the first of each text exactly once.

    A text that fits is one window. A longer one advances by ``stride`` (default half the
    window) new tokens at a time; each window ends at the last token it scores and reaches back
    a full window, so every scored token has at least ``window - stride`` tokens of context.

    >>> [(w.begin, w.token_ids, w.first_scored) for w in plan_windows([[1, 2, 3, 4, 5, 6]], window=4, stride=2)]
    [(0, [1, 2, 3, 4], 1), (2, [3, 4, 5, 6], 2)]
    """
    if window < 2:
        raise UserError(f"the drift window must hold at least 2 tokens, got {window}")
    stride = max(1, window // 2) if stride is None else stride  # 0 is a mistake, not the default
    if not 1 <= stride <= window - 1:
        raise UserError(f"the drift stride must be between 1 and window - 1 ({window - 1}), got {stride}")
    windows = []
    for text_index, ids in enumerate(token_ids):
        if len(ids) < 2:
            continue
        scored_until = 1  # the first token has no context and is never scored
        end = min(window, len(ids))
        while True:
            # Each window ends at the last token it scores and reaches back a full window.
            begin = max(0, end - window)
            windows.append(Window(text_index, begin, ids[begin:end], scored_until - begin))
            if end == len(ids):
                break
            scored_until, end = end, min(end + stride, len(ids))
    return windows


def _causal_lm(model: Any) -> Any:
    """The transformers causal LM inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _backbone_and_head(model: Any) -> tuple[Any, Any]:
    causal_lm = _causal_lm(model)
    return getattr(causal_lm, causal_lm.base_model_prefix), causal_lm.get_output_embeddings()


def _batch_tensors(windows: list[Window], pad_id: int, padding_side: str, device, row_tokens: int | None = None):
    """(input ids, attention mask or None, position ids, (row, column) where each window starts).

    Padded (``row_tokens`` None): one window per row. Packed: windows concatenated into rows of at
    most ``row_tokens`` (see ``drift_batches``), positions restarting at 0 for each window, and no
    mask: transformers finds the windows from the positions and keeps attention within each.
    """
    if row_tokens is not None:
        return _packed_tensors(windows, pad_id, row_tokens, device)
    length = max(len(w.token_ids) for w in windows)
    input_ids = torch.full((len(windows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), length), dtype=torch.long)
    places = []
    for row, w in enumerate(windows):
        offset = length - len(w.token_ids) if padding_side == "left" else 0
        input_ids[row, offset : offset + len(w.token_ids)] = torch.tensor(w.token_ids)
        mask[row, offset : offset + len(w.token_ids)] = 1
        places.append((row, offset))
    # Explicit positions make left and right padding give the same values per token.
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return input_ids.to(device), mask.to(device), positions.to(device), places


def _packed_tensors(windows: list[Window], pad_id: int, row_tokens: int, device):
    rows = layout_rows([len(w.token_ids) for w in windows], row_tokens)
    width = max(sum(len(windows[k].token_ids) for k in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    # A short row's tail of pad tokens continues its last window's positions: causal attention
    # keeps every real token from seeing them, and a batch whose rows each hold one window then
    # needs no mask at all (SDPA's causal kernel), as transformers finds no second window.
    positions = torch.arange(width).repeat(len(rows), 1)
    places = [(0, 0)] * len(windows)
    for r, row in enumerate(rows):
        column = 0
        for k in row:
            n = len(windows[k].token_ids)
            input_ids[r, column : column + n] = torch.tensor(windows[k].token_ids)
            positions[r, column : column + n] = torch.arange(n)
            places[k] = (r, column)
            column += n
        positions[r, column:] = torch.arange(n, n + width - column)
    return input_ids.to(device), None, positions.to(device), places


def _hidden_states(backbone: Any, input_ids, mask, positions):
    # No KV cache: a single pass needs none, and with one transformers would not look for packed
    # windows in the positions (masking_utils), letting them attend to each other.
    return backbone(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False).last_hidden_state


def _score_batch(model, base_model, windows, pad_id, padding_side, chunk_elements, row_tokens=None):
    device = input_device(model)  # not the first parameter's: with offloaded weights that is a meta placeholder
    input_ids, mask, positions, places = _batch_tensors(windows, pad_id, padding_side, device, row_tokens)
    backbone, head = _backbone_and_head(model)
    hidden = _hidden_states(backbone, input_ids, mask, positions)
    if base_model is None:  # the same weights with the adapter off
        with model.disable_adapter():
            base_hidden = _hidden_states(backbone, input_ids, mask, positions)
        base_head = head
    else:
        base_backbone, base_head = _backbone_and_head(base_model)
        base_hidden = _hidden_states(base_backbone, input_ids, mask, positions)

    # Logits at position q predict the token at q + 1. Boolean selection keeps row-major
    # order, so the scored tokens come out in (row, position) order, as the windows list them
    # (packed rows hold the batch's windows in its order too).
    scored = torch.zeros_like(input_ids, dtype=torch.bool)
    for w, (row, offset) in zip(windows, places):
        scored[row, offset + w.first_scored - 1 : offset + len(w.token_ids) - 1] = True
    targets = torch.roll(input_ids, shifts=-1, dims=1)[scored].unsqueeze(-1)
    # A model spread over devices (accelerate) leaves the last hidden state where its last layer ran.
    hidden, base_hidden = hidden[scored.to(hidden.device)], base_hidden[scored.to(base_hidden.device)]
    targets = targets.to(execution_device(head))

    rows = max(1, chunk_elements // head.weight.shape[0])
    nll, base_nll, kl = [], [], []
    for start in range(0, targets.shape[0], rows):
        part = slice(start, start + rows)
        logp = torch.log_softmax(head(hidden[part]).float(), dim=-1)
        base_logp = torch.log_softmax(base_head(base_hidden[part]).float(), dim=-1).to(logp.device)
        nll.append(-logp.gather(-1, targets[part]).squeeze(-1))
        base_nll.append(-base_logp.gather(-1, targets[part]).squeeze(-1))
        # KL = Σ p·(log p − log q), in place: no third vocabulary-sized tensor is allocated.
        log_ratio = base_logp.sub_(logp).neg_()
        kl.append(torch.einsum("nv,nv->n", logp.exp_(), log_ratio).clamp(min=0.0))
    return [torch.cat(values).cpu().numpy() for values in (nll, base_nll, kl)]


def default_chunk_elements(model: Any) -> int:
    """The logits slice ``token_drift`` uses for ``model`` on its device (see the constants above)."""
    if execution_device(_backbone_and_head(model)[1]).type == "cuda":
        return GPU_CHUNK_ELEMENTS
    vocab = _backbone_and_head(model)[1].weight.shape[0]
    return max(DEFAULT_CHUNK_ELEMENTS, CPU_MIN_CHUNK_ROWS * vocab)


def _token_positions(windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    text_index, position = [], []
    for w in windows:
        text_index.extend([w.text_index] * w.n_scored)
        position.extend(range(w.begin + w.first_scored, w.begin + len(w.token_ids)))
    return np.asarray(text_index, dtype=np.int32), np.asarray(position, dtype=np.int32)


def tokenize_corpus(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


def model_window(model: Any, tokenizer: Any) -> int:
    """The longest window the model takes: its position limit, capped by the tokenizer's."""
    limit = getattr(_causal_lm(model).config, "max_position_embeddings", None) or 2048
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer_limit and tokenizer_limit < 10**8:
        limit = min(limit, tokenizer_limit)
    return int(limit)


@torch.no_grad()
def token_drift(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    base_model: Any | None = None,
    batch_size: int = 8,
    window: int | None = None,
    stride: int | None = None,
    padding_side: str = "right",
    chunk_elements: int | None = None,  # None: default_chunk_elements(model)
    progress: str | None = None,  # the bar's name; None: no bar
    checkpoint: Any | None = None,
    packing: str = "auto",  # "on", "off", or "auto": on for CUDA (drift_batches.resolve_packing)
    row_tokens: int | None = None,  # a packed row's capacity; None: the longest window
) -> TokenDrift:
    """Per-token NLL (candidate and base) and KL(candidate ‖ base) over ``texts``.

    ``model`` is a PEFT model whose disabled adapter is the base, unless ``base_model`` is
    given (a full fine-tune against its base; their tokenizers must be identical). With a
    :class:`~alignment_tax.evaluation.drift_checkpoint.DriftCheckpoint`, windows scored by an
    interrupted earlier pass are read back instead of recomputed. Packed, a batch is
    ``batch_size`` rows of concatenated windows (``drift_batches``); values equal the padded
    layout's to float32 rounding, not bit for bit.
    """
    if not texts:
        raise UserError("the drift corpus is empty")
    if base_model is None and not hasattr(model, "disable_adapter"):
        raise UserError("drift needs a base: evaluate an --adapter, or give --base for a full checkpoint")
    token_ids = tokenize_corpus(tokenizer, texts)
    windows = plan_windows(token_ids, model_window(model, tokenizer) if window is None else window, stride)
    if not windows:
        raise UserError("no text in the drift corpus has two or more tokens")
    # Longest first keeps padding low; values do not depend on the order (tested).
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i].token_ids))
    lengths = [len(w.token_ids) for w in windows]
    if resolve_packing(packing, input_device(model).type):
        row_tokens = max(lengths) if row_tokens is None else max(row_tokens, max(lengths))
    else:
        row_tokens = None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if chunk_elements is None:
        chunk_elements = default_chunk_elements(model)
    # Rank 0 reads the checkpoint for all: another rank might read it after rank 0 has saved.
    results: dict[int, list[np.ndarray]] = data_parallel.on_main(checkpoint.load) if checkpoint is not None else {}
    # Batches are planned over every window, then those already scored are skipped whole: a pass
    # resumed, or run by several processes (each takes every N-th batch), scores each window in the
    # same batch as one uninterrupted process would, so the values are identical, not merely close.
    batches = plan_batches(lengths, order, batch_size, row_tokens)
    todo = [chosen for chosen in batches if any(i not in results for i in chosen)]

    def score(chosen: list[int]) -> list[np.ndarray]:
        picked = [windows[i] for i in chosen]
        return _score_batch(model, base_model, picked, pad_id, padding_side, chunk_elements, row_tokens)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=progress, unit="batch")
    for done in data_parallel.in_rounds(todo, score):
        for index, values in done:
            cursor = 0
            for i in todo[index]:
                results[i] = [array[cursor : cursor + windows[i].n_scored] for array in values]
                cursor += windows[i].n_scored
        if checkpoint is not None and data_parallel.is_main():
            checkpoint.save(results)
        if bar is not None:
            bar.update(len(done))
    if bar is not None:
        bar.close()
    nll, base_nll, kl = (np.concatenate([results[i][k] for i in range(len(windows))]) for k in range(3))
    text_index, position = _token_positions(windows)
    return TokenDrift(nll.astype(np.float32), base_nll.astype(np.float32), kl.astype(np.float32), text_index, position)


def check_same_tokenizer(candidate: Any, base: Any) -> None:
    """Drift compares distributions token by token: both vocabularies must be identical."""
    if candidate.get_vocab() != base.get_vocab():
        raise UserError("the candidate's and the base's tokenizers differ (vocabularies are not identical)")
    probe = "Tibetan བོད་ཡིག Chinese 中文 123"
    if candidate(probe, add_special_tokens=False)["input_ids"] != base(probe, add_special_tokens=False)["input_ids"]:
        raise UserError("the candidate's and the base's tokenizers differ (they split the same text differently)")
