"""A model larger than its memory: ``--device-map auto`` with a budget that pushes part of it to disk.

On a CPU-only machine accelerate fills the CPU up to ``--max-memory cpu=...`` and offloads the
rest to disk, reading those weights back for each forward pass. Every value must be the one the
model held whole gives: the same weights, in the same dtype, on the same CPU.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.models.placement import Placement, parse_device_map, parse_max_memory, parse_size

TEXTS = [
    "《战国无双3》是由光荣和ω-force开发的战国无双系列的正统第三续作。本作以三大故事为主轴。",
    "བོད་ཀྱི་སྐད་ཡིག་ནི་བོད་རིགས་ཀྱི་སྐད་ཡིག་ཡིན། དེ་ནི་ཧི་མ་ལ་ཡའི་རི་རྒྱུད་ཀྱི་བྱང་ཕྱོགས་སུ་བེད་སྤྱོད་བྱེད།",
    "The quick brown fox jumps over the lazy dog, twice, and then once more for good measure.",
]


def weight_bytes(model_dir: Path) -> int:
    return (model_dir / "model.safetensors").stat().st_size


def budget(model_dir: Path, share: float) -> str:
    """A CPU budget of ``share`` of the weights' size, in bytes."""
    return str(int(share * weight_bytes(model_dir)))


def load(model_dir, adapter_dir, tmp_path, share=None):
    from alignment_tax.models.loading import load_for_evaluation

    if isinstance(share, dict):
        placement = Placement(share, None, str(tmp_path))
    else:
        placement = (
            Placement() if share is None else Placement("auto", {"cpu": budget(model_dir, share)}, str(tmp_path))
        )
    return load_for_evaluation(str(model_dir), str(adapter_dir), "cpu", "float32", placement)


# 0.9 of the weights: the embeddings (tied to the LM head) stay in memory and the layers go to disk.
# 0.2: nothing fits, so even the embeddings are on disk and the inputs' device comes from a hook.
# By hand: one layer in memory, the other on disk.
HAND_MAP = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk", "model.norm": "disk"}
HAND_MAP |= {"model.rotary_emb": "cpu", "lm_head": "cpu"}


@pytest.mark.parametrize("share, in_memory", [(0.9, {"cpu", "disk"}), (0.2, {"disk"}), (HAND_MAP, {"cpu", "disk"})])
def test_offloaded_drift_equals_the_model_held_whole(share, in_memory, tiny_lm_dir, tiny_adapter_dir, tmp_path):
    from alignment_tax.evaluation.drift import token_drift

    whole = load(tiny_lm_dir, tiny_adapter_dir, tmp_path)
    assert whole.device_map is None
    spread = load(tiny_lm_dir, tiny_adapter_dir, tmp_path / "offload", share)
    assert set(spread.device_map.values()) == in_memory
    # The adapter's weights were loaded, not left as the meta placeholders of their offloaded layers.
    assert not any(p.is_meta for name, p in spread.model.named_parameters() if "lora_" in name)

    expected = token_drift(whole.model, whole.tokenizer, TEXTS, batch_size=2, window=24, stride=12)
    got = token_drift(spread.model, spread.tokenizer, TEXTS, batch_size=2, window=24, stride=12)
    assert expected.kl.mean() > 1e-4  # a real adapter: the base pass (adapter disabled) differs
    for name in ("nll", "base_nll", "kl", "text_index", "position"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name  # bit for bit


def test_an_adapter_on_the_embeddings_works_offloaded(tiny_lm_dir, tmp_path):
    """LoRA on the embeddings wraps them: the inputs' device is then read from the wrapped layer's hook,
    and the embedding's LoRA weights are parameters, not modules, when they are given storage."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from alignment_tax.evaluation.drift import token_drift

    torch.manual_seed(1)
    targets = ["embed_tokens", "q_proj", "down_proj"]
    config = LoraConfig(r=4, target_modules=targets, init_lora_weights=False, lora_dropout=0.0)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), config).save_pretrained(tmp_path / "adapter")
    whole = load(tiny_lm_dir, tmp_path / "adapter", tmp_path)
    spread = load(tiny_lm_dir, tmp_path / "adapter", tmp_path / "offload", 0.2)
    assert spread.device_map == {"": "disk"}
    expected = token_drift(whole.model, whole.tokenizer, TEXTS, window=24, stride=12)
    got = token_drift(spread.model, spread.tokenizer, TEXTS, window=24, stride=12)
    assert expected.kl.mean() > 1e-4
    for name in ("nll", "base_nll", "kl"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name


def evaluate_args(output, shared_data, tiny_lm_dir, tiny_adapter_dir, *extra):
    args = ["evaluate", "--model", tiny_lm_dir, "--adapter", tiny_adapter_dir, "--base", "--tasks", "cmrc2018,drift"]
    # Short answers and whole-passage drift windows: each offloaded forward pass reads the layers from disk.
    args += ["--limit", "2", "--batch-size", "2", "--device", "cpu", "--data-dir", shared_data]
    args += ["--max-gen-toks", "cmrc2018=8", "--drift-window", "1024"]
    return [str(arg) for arg in [*args, "--output", output, *extra]]


def test_offloaded_evaluate_gives_the_same_outputs_and_metrics(tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir):
    # Separate roots: the base's results would otherwise be reused, not generated offloaded.
    whole, spread = tmp_path / "whole" / "run", tmp_path / "spread" / "run"
    assert main(evaluate_args(whole, shared_data, tiny_lm_dir, tiny_adapter_dir)) == 0
    # All on disk, the embeddings too: the model's first parameter (where lm-eval would put inputs) is meta.
    offload = ["--device-map", "auto", "--max-memory", f"cpu={budget(tiny_lm_dir, 0.2)}"]
    assert main(evaluate_args(spread, shared_data, tiny_lm_dir, tiny_adapter_dir, *offload)) == 0

    expected, got = (json.loads((run / "results.json").read_text(encoding="utf-8")) for run in (whole, spread))
    assert expected["config"]["device_map"] is None
    assert got["config"]["device_map"] == {"": "disk"}  # hf_device_map, as resolved
    assert got["config"]["max_memory"] == {"cpu": budget(tiny_lm_dir, 0.2)}
    assert not list(spread.glob(".offload-*"))  # the temporary offload folder is gone
    assert got["tasks"] == expected["tasks"] and got["tax"] == expected["tax"] and got["drift"] == expected["drift"]
    base_results = (Path(got["base"]["results"]), Path(expected["base"]["results"]))
    assert base_results[0] != base_results[1]  # the base generated again, from the disabled adapter, offloaded
    assert json.loads(base_results[0].read_text())["tasks"] == json.loads(base_results[1].read_text())["tasks"]
    assert json.loads(base_results[0].read_text())["config"]["device_map"] == got["config"]["device_map"]

    def outputs(run):
        lines = (run / "samples" / "cmrc2018.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["output"] for line in lines]

    assert outputs(spread) == outputs(whole) and len(outputs(whole)) == 2
    assert outputs(base_results[0].parent) == outputs(base_results[1].parent)
    assert outputs(spread) != outputs(base_results[0].parent)  # the adapter took part in generating


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("0=70XB", "expected a size"),
        ("gpu=70GiB", "unknown device 'gpu'"),
        ("0=0GiB", "above zero"),
        ("70GiB", "DEVICE=SIZE"),
    ],
)
def test_a_bad_memory_budget_is_one_line(text, phrase):
    with pytest.raises(UserError, match=phrase):
        parse_max_memory(text)


def test_sizes_and_maps_are_read_as_accelerate_takes_them():
    assert parse_max_memory("0=70GiB, cuda:1=1.5GB,cpu=100GiB") == {"0": "70GiB", "1": "1.5GB", "cpu": "100GiB"}
    assert parse_size("70GiB", "x") == 70 * 2**30 and parse_size("8Gb", "x") == 8 * 10**9  # bytes, not bits
    kwargs = Placement({"model.layers": "1", "lm_head": "disk"}, {"0": "2GiB", "cpu": "1MB"}).from_pretrained_kwargs()
    assert kwargs == {"device_map": {"model.layers": 1, "lm_head": "disk"}, "max_memory": {0: 2 * 2**30, "cpu": 10**6}}
    assert parse_device_map('{"": "cpu"}') == {"": "cpu"}
    with pytest.raises(UserError, match="expected one of auto"):
        parse_device_map("everywhere")
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        parse_device_map('{"lm_head": "tpu"}')


@pytest.mark.parametrize(
    "extra, phrase",
    [
        (["--max-memory", "cpu=1GiB"], "only apply with --device-map"),
        (["--device-map", "auto", "--max-memory", "7=1GiB"], "GPU 7 was named"),
        (["--device-map", "everywhere"], "expected one of auto"),
        (["--device-map", "auto", "--engine", "server", "--base-url", "http://127.0.0.1:9/v1"], "drift is not among"),
    ],
)
def test_placement_mistakes_are_refused_before_anything_loads(extra, phrase, tmp_path, tiny_lm_dir, capsys):
    from reliability_helpers import one_line_exit_2

    argv = ["evaluate", "--model", tiny_lm_dir, "--tasks", "cmrc2018", "--samples", "--output", tmp_path / "o", *extra]
    assert phrase in one_line_exit_2(argv, capsys)
    assert not (tmp_path / "o").exists()
