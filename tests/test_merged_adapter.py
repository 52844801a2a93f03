"""The candidate generates with its LoRA folded into the weights; the base's weights come back bit for bit."""

import json

import pytest
import torch

from alignment_tax.cli import main
from alignment_tax.evaluation.engines import HFEngine
from alignment_tax.evaluation.generation_cache import GenerationCache
from alignment_tax.evaluation.roles import Role
from alignment_tax.models.loading import load_for_evaluation
from alignment_tax.models.merged_adapter import merge_blocker, merged_adapter
from alignment_tax.models.tiny_adapter import build_tiny_adapter

PROMPTS = ["问题：北京是哪国的首都？\n答案：", "བོད་ཀྱི་རྒྱལ་ས་ནི", "天气很好，我们"]


@pytest.fixture(scope="module")
def rank16_adapter_dir(tiny_lm_dir, tmp_path_factory):
    """Random A and B at rank 16 on every projection: a change large enough to move greedy tokens."""
    return build_tiny_adapter(tiny_lm_dir, tmp_path_factory.mktemp("rank16"), rank=16, seed=3)


def load(tiny_lm_dir, adapter):
    return load_for_evaluation(str(tiny_lm_dir), str(adapter), "cpu", "float32")


def snapshot(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def greedy(loaded, n_tokens=12):
    tokenizer = loaded.tokenizer
    tokenizer.padding_side = "left"
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = loaded.model.generate(
            **batch,
            max_new_tokens=n_tokens,
            min_new_tokens=n_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return out[:, batch["input_ids"].shape[1] :]


def test_folded_generation_equals_unmerged_and_leaves_every_weight_as_it_was(tiny_lm_dir, rank16_adapter_dir):
    loaded = load(tiny_lm_dir, rank16_adapter_dir)
    assert merge_blocker(loaded.model) is None
    before = snapshot(loaded.model)
    unmerged = greedy(loaded)
    with loaded.model.disable_adapter():
        base = greedy(loaded)
    assert not torch.equal(unmerged, base)  # the adapter does change the greedy tokens

    layer = loaded.model.base_model.model.model.layers[0].self_attn.q_proj
    w, a, b = layer.base_layer.weight.detach().clone(), layer.lora_A["default"].weight, layer.lora_B["default"].weight
    with merged_adapter(loaded.model):
        q_proj = loaded.model.base_model.model.model.layers[0].self_attn.q_proj
        assert type(q_proj) is torch.nn.Linear  # PEFT's wrapper is out of the module tree
        assert torch.allclose(q_proj.weight, w + 2.0 * (b @ a), atol=1e-6)  # alpha / r = 32 / 16
        assert not torch.allclose(q_proj.weight, w, atol=1e-3)
        merged = greedy(loaded)
    assert torch.equal(merged, unmerged)

    after = loaded.model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name], before[name]) for name in before)
    # The wrappers are back and unmerged: the adapter still switches on and off.
    assert loaded.model.base_model.model.model.layers[0].self_attn.q_proj is layer and not layer.merged
    with loaded.model.disable_adapter():
        assert torch.equal(greedy(loaded), base)
    assert torch.equal(greedy(loaded), unmerged)


def test_weights_come_back_even_when_generation_fails(tiny_lm_dir, rank16_adapter_dir):
    loaded = load(tiny_lm_dir, rank16_adapter_dir)
    before = snapshot(loaded.model)
    with pytest.raises(RuntimeError, match="boom"), merged_adapter(loaded.model):
        raise RuntimeError("boom")
    after = loaded.model.state_dict()
    assert all(torch.equal(after[name], before[name]) for name in before)


def test_a_zero_adapter_folds_to_the_base_weights_exactly(tiny_lm_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    loaded = load(tiny_lm_dir, build_tiny_adapter(tiny_lm_dir, tmp_path / "zero", rank=8, zero=True))
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).state_dict()  # loaded on its own
    with merged_adapter(loaded.model):
        folded = loaded.model.get_base_model().state_dict()
        # W + s·0·A is W in every bit: the zero control's candidate is the base's weights.
        assert folded.keys() == base.keys() and all(torch.equal(folded[n], base[n]) for n in base)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({}, None),
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"trainable_token_indices": [1, 2]}, "trainable tokens"),
    ],
)
def test_what_cannot_be_folded_exactly_is_named(tiny_lm_dir, extra, reason):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", **extra)
    found = merge_blocker(get_peft_model(model, config))
    assert found == reason if reason is None else reason in found


def test_the_engine_folds_only_the_candidate_and_keys_it(tiny_lm_dir, rank16_adapter_dir, tmp_path):
    from alignment_tax.evaluation.evaluate import EvaluateOptions

    loaded = load(tiny_lm_dir, rank16_adapter_dir)
    candidate, base = Role(str(tiny_lm_dir), str(rank16_adapter_dir)), Role(str(tiny_lm_dir))
    engine = HFEngine(loaded, EvaluateOptions(tasks=["cmrc2018"], output=str(tmp_path), device="cpu"))
    assert engine.adapter_merge == {"merged": True}
    assert engine.identity(candidate) == {"adapter_merged": True} and engine.identity(base) == {}
    before = snapshot(loaded.model)
    cache = GenerationCache(tmp_path / "cache.sqlite", "key")
    with engine.lm(candidate, cache):
        assert type(loaded.model.base_model.model.model.layers[0].mlp.down_proj) is torch.nn.Linear
    with engine.lm(base, cache):
        assert type(loaded.model.base_model.model.model.layers[0].mlp.down_proj) is not torch.nn.Linear
    cache.close()
    assert all(torch.equal(loaded.model.state_dict()[name], before[name]) for name in before)

    off = HFEngine(loaded, EvaluateOptions(tasks=["cmrc2018"], output=str(tmp_path), merge_adapter=False))
    assert off.adapter_merge == {"merged": False, "reason": "--no-merge-adapter"}
    assert off.identity(candidate) == {}  # the unmerged path keeps the key it always had


def test_evaluate_records_the_merge_and_both_paths_answer_alike(tmp_path, shared_data, tiny_lm_dir, rank16_adapter_dir):
    common = ["evaluate", "--tasks", "cmrc2018", "--limit", "4", "--batch-size", "2", "--device", "cpu"]
    common += ["--data-dir", str(shared_data), "--max-gen-toks", "cmrc2018=12", "--adapter", str(rank16_adapter_dir)]
    common += ["--model", str(tiny_lm_dir)]
    assert main([*common, "--output", str(tmp_path / "merged")]) == 0
    assert main([*common, "--no-merge-adapter", "--output", str(tmp_path / "unmerged")]) == 0
    merged, unmerged = (json.loads((tmp_path / f / "results.json").read_text()) for f in ("merged", "unmerged"))
    assert merged["config"]["adapter_merge"] == {"merged": True} and merged["config"]["merge_adapter"] is True
    assert unmerged["config"]["adapter_merge"] == {"merged": False, "reason": "--no-merge-adapter"}
    outputs = [
        [json.loads(line)["output"] for line in (tmp_path / f / "samples" / "cmrc2018.jsonl").read_text().splitlines()]
        for f in ("merged", "unmerged")
    ]
    assert outputs[0] == outputs[1] and len(outputs[0]) == 4
    assert merged["tasks"] == unmerged["tasks"]
