"""Drift with packed windows: the padded default unchanged to the bit, packed values equal to
one-window-at-a-time values, attention that does not cross windows, and the batching helper."""

import hashlib
import json

import numpy as np
import pytest
from peft import PeftModel
from transformers import AutoModelForCausalLM

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.evaluation import drift as drift_module
from alignment_tax.evaluation.drift import plan_windows, token_drift, tokenize_corpus
from alignment_tax.evaluation.drift_batches import layout_rows, padding_share, plan_batches, resolve_packing

# The float32 bytes of (nll, base_nll, kl) from the padded implementation as it was before
# packing existed (commit 8940941), on the tiny model (seed 0) with its rank-4 adapter (seed 0)
# over the first N deduplicated CMRC dev passages; the same on 1 and 2 threads.
BEFORE_PACKING = {
    (6, (("batch_size", 4),)): "d2865241604434e584a5685b64f72e53e8236a11deae15655bf472d8e4e71a60",
    (2, (("batch_size", 3), ("window", 48), ("stride", 16))): (
        "5c2e24e560112f76ce4ca07b029f529b0ed498a8e0b7177a9017593d7676e2b5"
    ),
}
# Packed against one window at a time: the same products over other shapes, so float32 rounding
# may differ (the test_drift tolerance for other batch sizes).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def mixed(passages):
    """Passages and short texts (their openings), so that whole texts share rows too."""
    return passages[:3] + [text[:40] for text in passages[:4]]


@pytest.fixture(scope="module")
def one_at_a_time(models, mixed):
    """Padded batches of one window: nothing shares a row, nothing is padded."""
    tokenizer, candidate, _ = models
    done = {}

    def values(window):
        if window not in done:
            stride = None if window is None else 16
            done[window] = token_drift(
                candidate, tokenizer, mixed, batch_size=1, window=window, stride=stride, packing="off"
            )
        return done[window]

    return values


def digest(result) -> str:
    arrays = (result.nll, result.base_nll, result.kl)
    return hashlib.sha256(b"".join(np.ascontiguousarray(a, dtype=np.float32).tobytes() for a in arrays)).hexdigest()


def max_difference(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in ((a.nll, b.nll), (a.base_nll, b.base_nll), (a.kl, b.kl)))


@pytest.mark.parametrize("n_passages, settings", list(BEFORE_PACKING))
def test_the_cpu_default_is_bit_identical_to_before_packing(models, passages, n_passages, settings):
    tokenizer, candidate, _ = models
    texts = passages[:n_passages]
    default = token_drift(candidate, tokenizer, texts, **dict(settings))  # packing "auto": off on a CPU
    assert digest(default) == BEFORE_PACKING[n_passages, settings]
    off = token_drift(candidate, tokenizer, texts, packing="off", **dict(settings))
    assert digest(off) == BEFORE_PACKING[n_passages, settings]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("window, batch_size, row_tokens", [(None, 2, None), (48, 2, 200)])
def test_packed_values_equal_one_window_at_a_time(
    models, mixed, one_at_a_time, attention, window, batch_size, row_tokens
):
    tokenizer, candidate, _ = models
    windows = plan_windows(tokenize_corpus(tokenizer, mixed), window or 10**6, None if window is None else 16)
    lengths = [len(w.token_ids) for w in windows]
    order = sorted(range(len(windows)), key=lambda i: -lengths[i])
    capacity = row_tokens or max(lengths)  # None: rows as long as the longest window
    batches = plan_batches(lengths, order, batch_size, capacity)
    rows = [row for batch in batches for row in layout_rows([lengths[i] for i in batch], capacity)]
    assert max(len(row) for row in rows) >= 2  # windows do share rows here

    candidate.get_base_model().set_attn_implementation(attention)
    try:
        settings = dict(batch_size=batch_size, window=window, stride=None if window is None else 16)
        packed = token_drift(candidate, tokenizer, mixed, packing="on", row_tokens=row_tokens, **settings)
    finally:
        candidate.get_base_model().set_attn_implementation("sdpa")
    reference = one_at_a_time(window)
    assert np.array_equal(packed.text_index, reference.text_index)
    assert np.array_equal(packed.position, reference.position)
    assert max_difference(packed, reference) <= TOLERANCE


def test_attention_leaking_across_windows_would_be_detected(models, mixed, one_at_a_time, monkeypatch):
    # With transformers' default KV cache the packed windows are not looked for and attend to each other.
    def with_cache(backbone, input_ids, mask, positions):
        return backbone(input_ids=input_ids, attention_mask=mask, position_ids=positions).last_hidden_state

    tokenizer, candidate, _ = models
    monkeypatch.setattr(drift_module, "_hidden_states", with_cache)
    leaking = token_drift(candidate, tokenizer, mixed, batch_size=2, window=48, stride=16, packing="on", row_tokens=200)
    assert max_difference(leaking, one_at_a_time(48)) > 100 * TOLERANCE


def test_kl_is_exactly_zero_against_itself_and_a_zero_adapter_when_packed(models, mixed, tiny_lm_dir, tmp_path):
    from alignment_tax.models.tiny_adapter import build_tiny_adapter

    tokenizer, _, base = models
    itself = token_drift(base, tokenizer, mixed, base_model=base, batch_size=2, packing="on")
    assert np.abs(itself.kl).max() == 0 and np.array_equal(itself.nll, itself.base_nll)
    zero_dir = build_tiny_adapter(tiny_lm_dir, tmp_path / "zero", rank=4, seed=0, zero=True)
    zero = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), zero_dir).eval()
    controlled = token_drift(zero, tokenizer, mixed, batch_size=2, packing="on")
    assert np.abs(controlled.kl).max() == 0 and np.array_equal(controlled.nll, controlled.base_nll)


def test_a_packed_pass_resumes_by_window_index_to_the_same_bits(
    models, passages, tmp_path, monkeypatch, kill_after_two_batches
):
    from alignment_tax.evaluation.drift_checkpoint import DriftCheckpoint

    tokenizer, candidate, _ = models
    passages = passages[:2]
    settings = dict(batch_size=1, window=48, stride=16, packing="on", row_tokens=100)
    whole = token_drift(candidate, tokenizer, passages, **settings)
    checkpoint = DriftCheckpoint(tmp_path / "partial.npz", "fingerprint", every_seconds=0)
    kill_after_two_batches()
    with pytest.raises(KeyboardInterrupt):
        token_drift(candidate, tokenizer, passages, checkpoint=checkpoint, **settings)
    monkeypatch.undo()
    saved = checkpoint.load()
    windows = plan_windows(tokenize_corpus(tokenizer, passages), 48, 16)
    assert 2 < len(saved) < len(windows)  # two rows of several windows each, keyed by window index
    assert all(len(values[0]) == windows[i].n_scored for i, values in saved.items())
    resumed = token_drift(candidate, tokenizer, passages, checkpoint=checkpoint, **settings)
    assert digest(resumed) == digest(whole)


def test_plan_batches_places_every_window_once_within_its_rows():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 60, size=200).tolist()
    order = sorted(range(200), key=lambda i: -lengths[i])
    assert plan_batches(lengths, order, 8) == [order[s : s + 8] for s in range(0, 200, 8)]
    batches = plan_batches(lengths, order, 4, row_tokens=64)
    assert sorted(i for batch in batches for i in batch) == list(range(200))
    for batch in batches:
        rows = layout_rows([lengths[i] for i in batch], 64)
        assert len(rows) <= 4 and all(sum(lengths[batch[k]] for k in row) <= 64 for row in rows)
    with pytest.raises(ValueError, match="more than a row"):
        plan_batches([10, 70], [1, 0], 2, row_tokens=64)


def test_padding_share_by_hand():
    lengths, order = [6, 5, 4, 3, 2], [0, 1, 2, 3, 4]
    # Padded in twos: [6, 5] [4, 3] [2] fill 12 + 8 + 2 positions with 20 tokens.
    assert padding_share(lengths, plan_batches(lengths, order, 2), None) == pytest.approx(2 / 22)
    # Rows of 8 filled first-fit: [6, 2] [5, 3] [4], two rows a batch: 2 × 8 + 1 × 4 positions, no padding.
    packed = plan_batches(lengths, order, 2, row_tokens=8)
    assert packed == [[0, 4, 1, 3], [2]] and padding_share(lengths, packed, 8) == 0
    assert padding_share(lengths, [[0, 1, 2]], 11) == pytest.approx(1 - 15 / 22)  # rows [6, 5] [4]


def test_packing_modes():
    assert resolve_packing("auto", "cuda") and not resolve_packing("auto", "cpu") and not resolve_packing("off", "cuda")
    with pytest.raises(UserError, match="drift packing"):
        resolve_packing("yes", "cpu")
    from alignment_tax.evaluation.checks import check_evaluate_values

    check_evaluate_values({"drift_packing": "on"})
    with pytest.raises(UserError, match="evaluate.options.drift_packing must be auto, on or off"):  # a spec's value
        check_evaluate_values({"drift_packing": True}, name_of=lambda key: f"evaluate.options.{key}")


def test_evaluate_records_packing_and_keys_its_stored_pass_on_it(tmp_path, shared_data, tiny_adapter_dir, capsys):
    output = tmp_path / "run"
    args = ["evaluate", "--adapter", str(tiny_adapter_dir), "--tasks", "drift", "--data-dir", str(shared_data)]
    args += ["--output", str(output), "--limit", "2"]
    assert main(args) == 0
    results = json.loads((output / "results.json").read_text(encoding="utf-8"))
    off = results["drift"]
    assert off["packing"] == "off" and results["config"]["drift_packing"] == "auto"
    assert main([*args, "--drift-packing", "on"]) == 0
    on = json.loads((output / "results.json").read_text(encoding="utf-8"))["drift"]
    assert on["packing"] == "on" and on["reused"] is False  # not the padded pass read back
    assert on["n_tokens"] == off["n_tokens"] and abs(on["kl"]["mean"] - off["kl"]["mean"]) <= TOLERANCE
    assert main([*args, "--drift-packing", "on"]) == 0
    assert json.loads((output / "results.json").read_text(encoding="utf-8"))["drift"]["reused"] is True
    assert main([*args, "--drift-packing", "sometimes"]) == 2
    assert "--drift-packing" in capsys.readouterr().err


def test_rows_of_one_window_need_no_mask_and_shared_rows_are_found():
    from transformers.masking_utils import find_packed_sequence_indices

    from alignment_tax.evaluation.drift import Window, _batch_tensors

    windows = [Window(0, 0, [5, 6, 7, 8, 9], 1), Window(1, 0, [5, 6, 7], 1)]
    ids, mask, positions, places = _batch_tensors(windows, 0, "right", "cpu", row_tokens=5)
    # The shorter row's pads continue its window (3, 4): no second window, so a plain causal pass.
    assert positions.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]] and ids[1].tolist() == [5, 6, 7, 0, 0]
    assert mask is None and find_packed_sequence_indices(positions) is None and places == [(0, 0), (1, 0)]
    ids, mask, positions, places = _batch_tensors(windows, 0, "right", "cpu", row_tokens=8)
    assert positions.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]] and places == [(0, 0), (0, 5)]
    assert find_packed_sequence_indices(positions).tolist() == [[0, 0, 0, 0, 0, 1, 1, 1]]
