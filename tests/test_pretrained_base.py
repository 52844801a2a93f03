"""The demo's pretrained base: shipped weights that know Chinese, reproducible pretraining, the zero adapter."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from alignment_tax.errors import UserError
from alignment_tax.models import pretrain
from alignment_tax.models.tiny import MANIFEST_NAME, build_tiny_model, build_tokenizer
from alignment_tax.models.tiny_adapter import build_tiny_adapter


@pytest.fixture(scope="module")
def shipped_base(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("mini") / "base", kind="lm", size="mini", pretrained=True)


def _nll(model_dir, texts):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return pretrain.mean_nll(model, AutoTokenizer.from_pretrained(model_dir), texts)


def test_the_shipped_base_knows_the_chinese_passages_the_demo_measures(shipped_base):
    manifest = json.loads((shipped_base / MANIFEST_NAME).read_text(encoding="utf-8"))
    record = manifest["pretrained"]
    assert manifest["size"] == "mini" and record["steps"] >= 100 and "shipped" in record["source"]
    assert record["seen"] == pretrain.SEEN_NOTE  # the banner carries it: the measured passages were trained on
    uniform = math.log(manifest["vocab_size"])
    measured = _nll(shipped_base, pretrain.measured_passages())
    assert measured <= 0.6 * uniform  # the bar: at most 60% of a uniform guess
    # The record was written from the fp32 weights; the shipped fp16 copy scores within rounding.
    assert measured == pytest.approx(record["nll_measured_passages"], abs=0.02)
    held_out = _nll(shipped_base, pretrain.corpus_passages()[1])
    assert held_out == pytest.approx(record["nll_held_out_passages"], abs=0.02)
    assert measured < held_out < uniform  # memorised more than learnt, but better than a guess


def test_the_held_out_passages_are_neither_trained_on_nor_measured():
    trained, held_out, tibetan = pretrain.corpus_passages()
    measured = pretrain.measured_passages()
    assert len(trained) == 240 and len(held_out) == 16 and len(tibetan) == 80
    assert len(measured) == 21 and set(measured) <= set(trained)  # seen: the report says so
    assert not set(held_out) & (set(trained) | set(measured))


def test_the_shipped_weights_are_fp16_and_tied(shipped_base):
    state = load_file(str(pretrain.SHIPPED_WEIGHTS))
    assert {tensor.dtype for tensor in state.values()} == {torch.float16}
    assert "lm_head.weight" not in state and "model.embed_tokens.weight" in state
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(shipped_base)
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    assert torch.equal(model.model.embed_tokens.weight, state["model.embed_tokens.weight"].float())


def test_pretraining_is_reproducible_and_changes_the_weights(tmp_path):
    config = pretrain.PretrainConfig(steps=2, seq_len=32, batch_size=2, warmup_steps=1)
    logged = []
    first = build_tiny_model(tmp_path / "a", kind="lm", size="mini", seed=5, pretrain=config, log=logged.append)
    second = build_tiny_model(tmp_path / "b", kind="lm", size="mini", seed=5, pretrain=config, log=lambda _: None)
    random = build_tiny_model(tmp_path / "c", kind="lm", size="mini", seed=5)
    weights = [load_file(str(folder / "model.safetensors")) for folder in (first, second, random)]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not torch.equal(weights[0]["model.norm.weight"], weights[2]["model.norm.weight"])
    record = json.loads((first / MANIFEST_NAME).read_text(encoding="utf-8"))["pretrained"]
    assert record["steps"] == 2 and record["tokens_seen"] == 2 * 2 * 32 and record["config"]["seed"] == 0
    assert logged == ["pretrain step 1/2: loss " + logged[0].rsplit(" ", 1)[1], logged[1]] and len(logged) == 2
    assert "pretrained" not in json.loads((random / MANIFEST_NAME).read_text(encoding="utf-8"))


def test_token_rows_cut_one_eos_separated_stream():
    tokenizer = build_tokenizer()
    rows, n_tokens = pretrain.token_rows(tokenizer, ["甲乙", "丙"], seq_len=2, seed=0)
    expected = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in ("甲乙", "丙"))
    assert n_tokens == expected and rows.shape == (expected // 2, 2)
    assert (rows == tokenizer.eos_token_id).sum() >= 1


def test_only_the_mini_lm_comes_pretrained(tmp_path):
    with pytest.raises(UserError, match="only the lm of size mini"):
        build_tiny_model(tmp_path / "x", kind="lm", size="tiny", pretrained=True)
    with pytest.raises(UserError, match="only the lm of size mini"):
        build_tiny_model(tmp_path / "x", kind="embedder", size="mini", pretrained=True)
    cli = [sys.executable, "-m", "alignment_tax", "make-tiny-model", str(tmp_path / "y")]
    result = subprocess.run(cli + ["--size", "tiny", "--pretrained"], capture_output=True, text=True)
    assert result.returncode != 0 and result.stderr.strip().count("\n") == 0 and "only the lm" in result.stderr
    result = subprocess.run(cli + ["--zero"], capture_output=True, text=True)
    assert result.returncode != 0 and "--zero is for --kind adapter" in result.stderr


def test_a_zero_adapter_changes_no_logit(shipped_base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = build_tiny_adapter(shipped_base, tmp_path / "zero", zero=True)
    state = load_file(str(adapter / "adapter_model.safetensors"))
    b_matrices = [tensor for name, tensor in state.items() if "lora_B" in name]
    assert len(b_matrices) == 4 * 7 and all(not tensor.any() for tensor in b_matrices)
    assert any(tensor.any() for name, tensor in state.items() if "lora_A" in name)
    ids = torch.tensor([[5, 17, 300, 2999, 42]])
    base = AutoModelForCausalLM.from_pretrained(shipped_base)
    with torch.no_grad():
        expected = base(ids).logits
        candidate = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(shipped_base), adapter)(ids).logits
    assert torch.equal(candidate, expected)  # exactly, not approximately


def test_a_spec_asks_for_pretrained_weights_only_where_they_exist(tmp_path):
    import yaml

    from alignment_tax.experiments.spec import load_spec

    spec = {
        "models": {"base": {"tiny": {"kind": "lm", "pretrained": True}}},
        "evaluate": {"runs": ["base"], "tasks": ["cmrc2018"]},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(
        UserError,
        match=r"^models.base.tiny.pretrained: only the lm of size mini comes pretrained, "
        r"not the lm of size tiny$",
    ):
        load_spec(path)
    spec["models"]["base"]["tiny"]["size"] = "mini"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    assert load_spec(path).models["base"]["tiny"]["pretrained"] is True
