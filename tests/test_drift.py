"""Drift exactness: per-token NLL and KL against references, invariances, windowing, bad input."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.evaluation.drift import check_same_tokenizer, plan_windows, token_drift
from alignment_tax.evaluation.drift_results import load_token_drift, summarize_drift


@pytest.fixture(scope="module")
def drift(models, passages):
    tokenizer, candidate, _ = models
    return token_drift(candidate, tokenizer, passages, batch_size=4)


def reference_values(tokenizer, candidate, base, texts):
    """Full-sequence forwards of two separately loaded models, one text at a time."""
    nll, base_nll, kl = [], [], []
    for text in texts:
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(candidate(ids).logits.float(), -1)[0, :-1]
            base_logp = torch.log_softmax(base(ids).logits.float(), -1)[0, :-1]
        target = ids[0, 1:, None]
        nll.append(-logp.gather(-1, target)[:, 0])
        base_nll.append(-base_logp.gather(-1, target)[:, 0])
        kl.append((logp.exp() * (logp - base_logp)).sum(-1))
    return [torch.cat(values).numpy() for values in (nll, base_nll, kl)]


def test_matches_two_separately_loaded_models(models, passages, drift):
    tokenizer, candidate, base = models
    expected = reference_values(tokenizer, candidate, base, passages)
    for actual, reference in zip((drift.nll, drift.base_nll, drift.kl), expected):
        assert actual.shape == reference.shape
        assert np.abs(actual - reference).max() <= 1e-5
    assert drift.kl.mean() > 0  # the random adapter does move the distribution


def test_kl_of_a_model_to_itself_is_zero(models, passages):
    tokenizer, _, base = models
    itself = token_drift(base, tokenizer, passages, base_model=base, batch_size=4)
    assert np.abs(itself.kl).max() == 0
    assert np.array_equal(itself.nll, itself.base_nll)


@pytest.mark.parametrize("batch_size, padding_side", [(1, "right"), (3, "left"), (6, "left")])
def test_batch_size_and_padding_side_do_not_change_values(models, passages, drift, batch_size, padding_side):
    tokenizer, candidate, _ = models
    other = token_drift(candidate, tokenizer, passages, batch_size=batch_size, padding_side=padding_side)
    for a, b in ((drift.nll, other.nll), (drift.base_nll, other.base_nll), (drift.kl, other.kl)):
        assert np.abs(a - b).max() <= 1e-5


def test_chunking_along_the_sequence_does_not_change_values(models, passages, drift):
    tokenizer, candidate, _ = models
    chunked = token_drift(candidate, tokenizer, passages, batch_size=4, chunk_elements=4000 * 4 * 7)
    assert np.abs(chunked.kl - drift.kl).max() <= 1e-6


def test_windowing_scores_each_token_once(models, passages, drift):
    tokenizer, candidate, _ = models
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in passages]
    assert drift.n_tokens == sum(length - 1 for length in lengths)
    windowed = token_drift(candidate, tokenizer, passages, batch_size=4, window=48, stride=16)
    pairs = list(zip(windowed.text_index.tolist(), windowed.position.tolist()))
    assert len(pairs) == len(set(pairs)) == drift.n_tokens
    assert sorted(pairs) == sorted(zip(drift.text_index.tolist(), drift.position.tolist()))
    # A token inside the first window has all its context either way.
    first_window = (windowed.position < 48) & (windowed.text_index == 0)
    assert np.abs(windowed.nll[first_window] - drift.nll[first_window]).max() <= 1e-5


def test_plan_windows_by_hand():
    windows = plan_windows([list(range(10)), [7], [1, 2]], window=4, stride=3)
    scored = [(w.text_index, w.begin + i) for w in windows for i in range(w.first_scored, len(w.token_ids))]
    assert scored == [(0, i) for i in range(1, 10)] + [(2, 1)]
    assert [(w.begin, len(w.token_ids)) for w in windows] == [(0, 4), (3, 4), (6, 4), (0, 2)]


def test_summary_pools_tokens_with_linear_percentiles(drift):
    summary = summarize_drift(drift)
    assert summary["kl"]["p90"] == pytest.approx(float(np.percentile(drift.kl, 90)), abs=1e-6)
    assert summary["delta_nll"]["mean"] == pytest.approx(summary["nll"]["mean"] - summary["base_nll"]["mean"])
    assert summary["n_tokens"] == drift.n_tokens and summary["n_texts"] == 6


def test_bad_corpora_and_tokenizers(models, tiny_lm_dir):
    tokenizer, candidate, base = models
    with pytest.raises(UserError, match="empty"):
        token_drift(candidate, tokenizer, [])
    with pytest.raises(UserError, match="two or more tokens"):
        token_drift(candidate, tokenizer, ["", "a"])
    with pytest.raises(UserError, match="needs a base"):
        token_drift(base, tokenizer, ["北京大学"])
    other = AutoTokenizer.from_pretrained(tiny_lm_dir)
    other.add_tokens(["<new-token>"])
    with pytest.raises(UserError, match="tokenizers differ"):
        check_same_tokenizer(tokenizer, other)


def test_evaluate_drift_writes_summary_and_token_files(tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir):
    output = tmp_path / "run"
    args = ["evaluate", "--adapter", str(tiny_adapter_dir), "--tasks", "drift", "--limit", "4"]
    assert main([*args, "--data-dir", str(shared_data), "--output", str(output)]) == 0
    results = json.loads((output / "results.json").read_text(encoding="utf-8"))
    drift = results["drift"]
    assert set(drift["nll"]) == {"mean", "p50", "p90", "p99"}
    assert drift["n_texts"] == 4 and drift["base"] == "disabled adapter"
    assert drift["corpus"]["sha256"] == results["data"]["drift"]["sha256"]
    tokens = load_token_drift(output / drift["files"]["tokens"])
    assert tokens.n_tokens == drift["n_tokens"]
    assert drift["kl"]["mean"] == pytest.approx(float(tokens.kl.astype(np.float64).mean()))
    assert not (output / "drift_partial.npz").exists()  # the partial results go once the pass is done
    per_text = [json.loads(line) for line in (output / drift["files"]["texts"]).read_text().splitlines()]
    assert sum(row["n_tokens"] for row in per_text) == drift["n_tokens"]


def test_evaluate_drift_of_a_full_checkpoint_against_itself(tmp_path, tiny_lm_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("北京大学是一所大学。\nབཀྲ་ཤིས་བདེ་ལེགས།\n", encoding="utf-8")
    output = tmp_path / "run"
    args = ["evaluate", "--model", str(tiny_lm_dir), "--base", str(tiny_lm_dir), "--tasks", "drift"]
    assert main([*args, "--drift-corpus", str(corpus), "--output", str(output)]) == 0
    drift = json.loads((output / "results.json").read_text(encoding="utf-8"))["drift"]
    assert drift["kl"]["p99"] == 0 and drift["delta_nll"]["mean"] == 0


@pytest.mark.parametrize(
    "corpus_text, extra, message",
    [
        ("", [], "empty"),
        ("a\n", [], "two or more tokens"),
        ("北京大学\n", ["--no-adapter"], "give --adapter"),
    ],
)
def test_evaluate_drift_bad_input_exits_2(tmp_path, capsys, tiny_lm_dir, tiny_adapter_dir, corpus_text, extra, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text, encoding="utf-8")
    model = ["--model", str(tiny_lm_dir)] if extra else ["--adapter", str(tiny_adapter_dir)]
    args = ["evaluate", *model, "--tasks", "drift", "--drift-corpus", str(corpus), "--output", str(tmp_path / "o")]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_an_interrupted_pass_resumes_from_its_checkpoint(
    models, passages, drift, tmp_path, monkeypatch, kill_after_two_batches
):
    from alignment_tax.evaluation.drift_checkpoint import DriftCheckpoint

    tokenizer, candidate, _ = models
    checkpoint = DriftCheckpoint(tmp_path / "partial.npz", "fingerprint-1", every_seconds=0)
    kill_after_two_batches()
    with pytest.raises(KeyboardInterrupt):
        token_drift(candidate, tokenizer, passages, batch_size=2, checkpoint=checkpoint)
    monkeypatch.undo()
    assert len(checkpoint.load()) == 4  # the two finished batches of two windows were kept

    resumed = token_drift(candidate, tokenizer, passages, batch_size=2, checkpoint=checkpoint)
    assert np.abs(resumed.kl - drift.kl).max() <= 1e-5 and np.abs(resumed.nll - drift.nll).max() <= 1e-5
    assert DriftCheckpoint(tmp_path / "partial.npz", "another-model").load() == {}


def test_a_finished_pass_is_reused_and_recomputed_when_its_inputs_change(
    tmp_path, shared_data, tiny_adapter_dir, monkeypatch
):
    import alignment_tax.evaluation.drift as drift_module

    output = tmp_path / "run"
    args = [
        "evaluate",
        "--adapter",
        str(tiny_adapter_dir),
        "--tasks",
        "drift",
        "--data-dir",
        str(shared_data),
        "--output",
        str(output),
    ]
    assert main([*args, "--limit", "3"]) == 0
    first = json.loads((output / "results.json").read_text(encoding="utf-8"))["drift"]

    computed, real_token_drift = [], drift_module.token_drift

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished drift pass was computed again")

    monkeypatch.setattr(drift_module, "token_drift", must_not_run)
    assert main([*args, "--limit", "3"]) == 0
    again = json.loads((output / "results.json").read_text(encoding="utf-8"))["drift"]
    assert again.pop("reused") is True and first.pop("reused") is False and again == first
    assert not (output / "drift_partial.npz").exists()

    def counted(*args, **kwargs):
        computed.append(len(args[2]))
        return real_token_drift(*args, **kwargs)

    monkeypatch.setattr(drift_module, "token_drift", counted)
    assert main([*args, "--limit", "2"]) == 0  # another corpus: computed again
    other = json.loads((output / "results.json").read_text(encoding="utf-8"))["drift"]
    assert computed == [2] and other["reused"] is False and other["n_texts"] == 2
    tokens = load_token_drift(output / "drift_tokens.npz")
    assert tokens.n_tokens == other["n_tokens"] < first["n_tokens"]


def test_cpu_slices_hold_enough_rows_for_a_large_vocabulary():
    from alignment_tax.evaluation.drift import CPU_MIN_CHUNK_ROWS, DEFAULT_CHUNK_ELEMENTS, default_chunk_elements

    class Head(torch.nn.Module):
        base_model_prefix = "model"

        def __init__(self, vocab):
            super().__init__()
            self.model, self.lm_head = torch.nn.Identity(), torch.nn.Linear(4, vocab, bias=False)

        def get_output_embeddings(self):
            return self.lm_head

    assert default_chunk_elements(Head(151_936)) == CPU_MIN_CHUNK_ROWS * 151_936
    assert default_chunk_elements(Head(4_000)) == DEFAULT_CHUNK_ELEMENTS  # small vocabularies unchanged
