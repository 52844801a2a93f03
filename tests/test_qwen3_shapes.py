"""Qwen3-shaped random models (make-tiny-model --shape): published widths, full vocabulary, adapters, drift."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alignment_tax.cli import main
from alignment_tax.models.qwen3_shapes import QWEN3_VOCAB_SIZE, shaped_config

IDS = {"eos_token_id": 2, "pad_token_id": 0, "bos_token_id": 0}


def test_published_widths():
    # Hand-copied from Qwen/Qwen3-4B and Qwen/Qwen3-0.6B config.json.
    big = shaped_config("qwen3-4b", None, IDS)
    assert (big.hidden_size, big.intermediate_size, big.num_hidden_layers) == (2560, 9728, 36)
    assert (big.num_attention_heads, big.num_key_value_heads, big.head_dim) == (32, 8, 128)
    small = shaped_config("qwen3-0.6b", 3, IDS)
    assert (small.hidden_size, small.intermediate_size, small.num_hidden_layers) == (1024, 3072, 3)
    assert (small.num_attention_heads, small.num_key_value_heads, small.head_dim) == (16, 8, 128)
    for config in (big, small):
        assert config.vocab_size == QWEN3_VOCAB_SIZE == 151_936 and config.tie_word_embeddings


@pytest.fixture(scope="module")
def shaped(tmp_path_factory):
    root = tmp_path_factory.mktemp("shaped")
    assert (
        main(["make-tiny-model", str(root / "m"), "--shape", "qwen3-0.6b", "--layers", "1", "--dtype", "bfloat16"]) == 0
    )
    assert (
        main(["make-tiny-model", str(root / "a"), "--kind", "adapter", "--base-model", str(root / "m"), "--rank", "64"])
        == 0
    )
    assert (
        main(
            [
                "make-tiny-model",
                str(root / "z"),
                "--kind",
                "adapter",
                "--base-model",
                str(root / "m"),
                "--rank",
                "64",
                "--zero",
            ]
        )
        == 0
    )
    return root


def test_shaped_model_and_rank64_adapter(shaped):
    from transformers import AutoModelForCausalLM

    manifest = json.loads((shaped / "m" / "alignment_tax_tiny.json").read_text())
    assert manifest["shape"] == "qwen3-0.6b" and manifest["layers"] == 1 and manifest["dtype"] == "bfloat16"
    # 151,936 × 1,024 tied embedding; one layer: q and o 2·1024·2048, k and v 2·1024·1024, MLP
    # 3·1024·3072; norms: two per layer (1,024), q and k (128 each), the final one (1,024).
    layer = 2 * 1024 * 2048 + 2 * 1024 * 1024 + 3 * 1024 * 3072 + 2 * 1024 + 2 * 128
    assert manifest["parameters"] == 151_936 * 1024 + layer + 1024 == 171_314_432
    model = AutoModelForCausalLM.from_pretrained(shaped / "m", dtype="auto")
    assert model.dtype == torch.bfloat16
    assert model.get_input_embeddings().weight.shape == (151_936, 1024)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    adapter = json.loads((shaped / "a" / "adapter_config.json").read_text())
    assert adapter["r"] == 64
    assert set(adapter["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }


def test_drift_at_full_vocabulary_controls(shaped):
    """A zero adapter reads exactly 0 KL over 151,936 entries; a random rank-64 one does not."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignment_tax.evaluation.drift import token_drift

    tokenizer = AutoTokenizer.from_pretrained(shaped / "m")
    texts = ["北京是中国的首都，也是一座历史悠久的城市。", "བོད་ཀྱི་སྐད་ཡིག"]
    drifts = {}
    for name in ("z", "a"):
        base = AutoModelForCausalLM.from_pretrained(shaped / "m", dtype=torch.float32)
        model = PeftModel.from_pretrained(base, shaped / name).eval()
        drifts[name] = token_drift(model, tokenizer, texts, batch_size=2, chunk_elements=151_936 * 5)
    zero, random = drifts["z"], drifts["a"]
    assert zero.n_tokens == random.n_tokens > 10
    assert np.all(zero.kl == 0.0) and np.array_equal(zero.nll, zero.base_nll)
    assert np.array_equal(random.base_nll, zero.base_nll)
    assert random.kl.mean() > 1e-4


def test_adapter_computes_in_a_half_precision_base_dtype(shaped):
    """PEFT would hold LoRA in fp32 on a bf16 base (72% slower at Qwen3-4B); evaluate keeps the base's dtype."""
    from peft import PeftModel

    from alignment_tax.models.loading import attach_adapter, load_causal_lm

    base, _ = load_causal_lm(str(shaped / "m"), "cpu", "bfloat16")
    network = attach_adapter(base, str(shaped / "a"), str(shaped / "m"))
    lora = {p.dtype for n, p in network.named_parameters() if "lora_" in n}
    assert lora == {torch.bfloat16}
    default = PeftModel.from_pretrained(load_causal_lm(str(shaped / "m"), "cpu", "bfloat16")[0], str(shaped / "a"))
    assert {p.dtype for n, p in default.named_parameters() if "lora_" in n} == {torch.float32}
    full, _ = load_causal_lm(str(shaped / "m"), "cpu", "float32")
    assert {p.dtype for n, p in attach_adapter(full, str(shaped / "a"), "m").named_parameters() if "lora_" in n} == {
        torch.float32
    }


def test_spec_accepts_a_shaped_tiny_model(tmp_path):
    from alignment_tax.errors import UserError
    from alignment_tax.experiments.spec import load_spec

    def spec(tiny: str) -> str:
        path = tmp_path / "spec.yaml"
        path.write_text(
            f"name: s\noutput: {tmp_path / 'out'}\nmodels:\n  base: {{tiny: {tiny}}}\n"
            "evaluate: {runs: [base], tasks: [drift]}\n",
            encoding="utf-8",
        )
        return str(path)

    assert load_spec(spec("{shape: qwen3-4b, layers: 2, dtype: bfloat16}")).models["base"]["tiny"]["layers"] == 2
    for bad in ("{shape: qwen3-4b, size: mini}", "{shape: qwen3-9b}", "{shape: qwen3-0.6b, layers: 29}"):
        with pytest.raises(UserError):
            load_spec(spec(bad))
