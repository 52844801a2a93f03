"""`sweep` of an adapter that replaces weights whole (modules_to_save, trainable tokens).

Scaling only the LoRA B matrices left those weights at the adapter's values, so strength 0 was
not the base (KL 0.104 measured). Strength 0 must give the base's logits exactly; strengths
between are exact only for a single layer, so a replaced block is refused in one line.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from alignment_tax.errors import UserError
from alignment_tax.evaluation.adapter_scaling import scale_adapter


def _adapter(base_dir, out, **extra):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(base_dir),
            LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False, **extra),
        )
        # Training would move the replaced weights away from the base's; so does this.
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and "lora_" not in name:
                parameter.data += 0.5 * torch.randn_like(parameter)
        model.save_pretrained(out)
    return out


def _logits(base_dir, adapter=None):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    with torch.no_grad():
        return model(torch.tensor([[3, 5, 7, 11, 13, 200]])).logits


@pytest.fixture(scope="module")
def replacing(tiny_lm_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("replacing")
    return {
        "head": _adapter(tiny_lm_dir, root / "head", modules_to_save=["lm_head", "model.norm"]),
        "tokens": _adapter(tiny_lm_dir, root / "tokens", trainable_token_indices=[3, 5, 200]),
        "block": _adapter(tiny_lm_dir, root / "block", modules_to_save=["layers.1.mlp"]),
    }


@pytest.mark.parametrize("kind", ["head", "tokens", "block"])
def test_strength_zero_is_the_base_and_one_the_adapter(replacing, kind, tiny_lm_dir, tmp_path):
    adapter = replacing[kind]
    base, full = _logits(tiny_lm_dir), _logits(tiny_lm_dir, adapter)
    assert not torch.allclose(base, full)
    assert torch.equal(_logits(tiny_lm_dir, scale_adapter(adapter, 0.0, tmp_path / "zero")), base)
    assert torch.equal(_logits(tiny_lm_dir, scale_adapter(adapter, 1.0, tmp_path / "one")), full)


@pytest.mark.parametrize("kind", ["head", "tokens"])
def test_a_replaced_layer_is_interpolated_from_the_base(replacing, kind, tiny_lm_dir, tmp_path):
    """Strength s of a replaced single layer is base + s·(saved − base): the layer's update times s."""
    from transformers import AutoModelForCausalLM

    adapter = replacing[kind]
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    half = load_file(str(scale_adapter(adapter, 0.5, tmp_path / "half") / "adapter_model.safetensors"))
    state = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).state_dict()
    replaced = [name for name in saved if "lora_" not in name]
    assert replaced
    for name in replaced:
        if name.endswith("trainable_tokens_delta"):
            base = state["model.embed_tokens.weight"][[3, 5, 200]]
        else:
            base = state[name.removeprefix("base_model.model.")]
        assert torch.allclose(half[name], base + 0.5 * (saved[name] - base), atol=1e-6), name
    for name in saved:
        if "lora_B" in name:
            assert torch.equal(half[name], saved[name] * 0.5)
    logits = _logits(tiny_lm_dir, tmp_path / "half")
    assert not torch.allclose(logits, _logits(tiny_lm_dir)) and not torch.allclose(
        logits, _logits(tiny_lm_dir, adapter)
    )


def test_a_replaced_block_between_zero_and_one_is_refused_in_one_line(replacing, tiny_lm_dir, tmp_path, capsys):
    from reliability_helpers import one_line_exit_2

    with pytest.raises(UserError, match=r"replaces all of model\.layers\.1\.mlp \(Qwen3MLP"):
        scale_adapter(replacing["block"], 0.5, tmp_path / "half")
    out = tmp_path / "sweep"
    argv = ["sweep", "--scales", "0,0.5,1", "--adapter", replacing["block"], "--model", tiny_lm_dir]
    line = one_line_exit_2([*argv, "--tasks", "drift", "--device", "cpu", "--output", out], capsys)
    assert "strength 0.5 cannot be had exactly" in line and "strengths 0 and 1 only" in line
    assert not out.exists()  # refused before any scaled copy was written
