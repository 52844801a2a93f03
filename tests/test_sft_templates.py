"""SFT supervises the reply alone under real chat templates that are not the tiny model's.

A user trains a real instruct model: its template has no ``{% generation %}`` markers and TRL
may not know how to patch it (SmolLM2's ChatML with a default system prompt did not train).
The models here are tiny Llama (and Qwen3) models built locally whose tokenizers carry the real
templates verbatim: SmolLM2's from ``tests/data/chat_templates.json`` (see its ``source``), and
Mistral Nemo's likewise, and Gemma's, Llama 3.2's and Qwen3's from the copies of the originals that TRL ships in
``trl/chat_templates`` (a dependency already, so nothing is downloaded).
"""

import json
import os
from importlib import resources
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

pytestmark = pytest.mark.slow

TEMPLATES_FILE = Path(__file__).with_name("data") / "chat_templates.json"

# Per template: where it comes from, the special tokens it writes, bos and eos, what ends a reply,
# and what the template writes after that (never generated, so never supervised).
TEMPLATES = {
    "smollm2": dict(
        source="data",
        specials=[],
        bos="<|im_start|>",
        eos="<|im_end|>",
        end_of_turn="<|im_end|>",
        trailer="\n",
        architecture="llama",
    ),
    "mistral_nemo": dict(
        source="data",
        specials=["<s>", "</s>", "[INST]", "[/INST]"],
        bos="<s>",
        eos="</s>",
        end_of_turn="</s>",
        trailer="",
        architecture="mistral",
    ),
    "gemma": dict(
        source="trl",
        specials=["<bos>", "<start_of_turn>", "<end_of_turn>"],
        bos="<bos>",
        eos="<end_of_turn>",
        end_of_turn="<end_of_turn>",
        trailer="\n",
        architecture="llama",
    ),
    "llama3_2": dict(
        source="trl",
        specials=["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        end_of_turn="<|eot_id|>",
        trailer="",
        architecture="llama",
    ),
    "qwen3": dict(
        source="trl",
        specials=[],
        bos=None,
        eos="<|im_end|>",
        end_of_turn="<|im_end|>",
        trailer="\n",
        architecture="qwen3",
    ),
}

SFT_FEW = [
    "lora.r=4",
    "lora.alpha=8",
    "training.activation_checkpointing=false",
    "training.logging_steps=1",
    "training.dataloader_pin_memory=false",
    "training.per_device_train_batch_size=2",
    "global_batch_size=2",
    "training.max_length=256",
    "training.save_strategy=no",
    "data.limit=8",
]


def chat_template(name: str) -> str:
    if TEMPLATES[name]["source"] == "data":
        return json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))[name]["chat_template"]
    return (resources.files("trl") / "chat_templates" / f"{name}.jinja").read_text(encoding="utf-8")


def build_model(out: Path, name: str) -> Path:
    """A ~0.3M-parameter model of the template's architecture whose tokenizer carries the template."""
    import torch
    import transformers

    from alignment_tax.models.tiny import LM_SHAPES, build_tokenizer

    spec = TEMPLATES[name]
    tokenizer = build_tokenizer()
    if spec["specials"]:
        tokenizer.add_tokens(spec["specials"], special_tokens=True)
    if spec["bos"]:
        tokenizer.bos_token = spec["bos"]
    tokenizer.eos_token = spec["eos"]
    tokenizer.chat_template = chat_template(name)
    ids = {
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id if spec["bos"] else tokenizer.pad_token_id,
    }
    shape = dict(LM_SHAPES["tiny"], vocab_size=len(tokenizer), tie_word_embeddings=True, **ids)
    prefix = {"llama": "Llama", "mistral": "Mistral", "qwen3": "Qwen3"}[spec["architecture"]]
    config = getattr(transformers, f"{prefix}Config")(**shape)
    torch.manual_seed(0)
    model = getattr(transformers, f"{prefix}ForCausalLM")(config).float()
    model.generation_config = transformers.GenerationConfig(**ids)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def pairs(shared_data):
    return shared_data / "bo_zh_mt" / "openpecha_bo_zh.jsonl"


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("smollm2-template"), "smollm2")


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_sft_masks_the_prompt_and_keeps_the_reply(name, pairs, tmp_path):
    from alignment_tax.trainers import load_config
    from alignment_tax.trainers.sft import build_sft

    model_dir = build_model(tmp_path / "model", name)
    config = load_config("sft", overrides=SFT_FEW, max_steps=1)
    built = build_sft(config, model=str(model_dir), adapter=None, train_data=str(pairs), output=str(tmp_path / "run"))
    tokenizer = built.tokenizer
    assert len(built.trainer.train_dataset) == len(built.data.examples) > 1
    for row, example in zip(built.trainer.train_dataset, built.data.examples):
        prompt_ids = tokenizer.apply_chat_template(
            example["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False, enable_thinking=False
        )
        labels = row["labels"]
        # Every prompt token (system prompt, user turn, the assistant header) is masked ...
        assert row["input_ids"][: len(prompt_ids)] == prompt_ids
        assert all(label == -100 for label in labels[: len(prompt_ids)])
        # ... and the reply with its end of turn is supervised (so a model learns to stop) ...
        supervised = [label for label in labels if label != -100]
        end = len(prompt_ids) + len(supervised)
        assert supervised == row["input_ids"][len(prompt_ids) : end]
        reply = tokenizer.decode(supervised).removeprefix("<think>\n\n</think>\n\n")  # Qwen3's empty thought
        assert reply == example["reference"] + TEMPLATES[name]["end_of_turn"]
        # ... but not what the template writes after the turn, which is never generated.
        assert tokenizer.decode(row["input_ids"][end:]) == TEMPLATES[name]["trailer"]


def test_train_sft_then_grpo_on_a_llama_model_with_smollm2s_template(
    smollm2_dir, tiny_embedder_dir, pairs, tmp_path, capsys
):
    from alignment_tax.cli import main

    base = ["train", "--model", str(smollm2_dir), "--train-data", str(pairs), "--max-steps", "2"]
    sft = tmp_path / "sft"
    code = main(base + ["--method", "sft", "--output", str(sft), "--set", *SFT_FEW])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads((sft / "train_config.json").read_text(encoding="utf-8"))
    assert record["status"] == "finished" and record["resolved"]["supervise"] == "assistant"
    assert record["training_args"]["completion_only_loss"] is True
    assert (sft / "adapter" / "adapter_model.safetensors").is_file()

    grpo = tmp_path / "grpo"
    grpo_set = [
        *SFT_FEW[:5],
        "data.skip=0",
        "data.limit=4",
        "training.per_device_train_batch_size=4",
        "global_batch_size=4",
        "training.num_generations=4",
        "training.max_completion_length=8",
        "reward.tau=0.5",
    ]
    argv = ["--method", "grpo", "--adapter", str(sft / "adapter"), "--embedder", str(tiny_embedder_dir)]
    code = main(base + argv + ["--output", str(grpo), "--set", *grpo_set])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads((grpo / "train_config.json").read_text(encoding="utf-8"))["status"] == "finished"
