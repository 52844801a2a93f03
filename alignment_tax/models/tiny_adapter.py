"""A random LoRA adapter on a tiny model, for tests, benchmarks and the demo.

PEFT initialises LoRA's B matrix to zero, so a fresh adapter changes nothing; this one starts
from random A and B so that "candidate minus base" is a real, non-zero difference. With
``zero=True`` it is PEFT's own initialisation (random A, zero B): the negative control, whose
every output, tax and KL must equal the base's exactly.
"""

from __future__ import annotations

from pathlib import Path

# The paper's targets, so that a tiny adapter exercises the projections a real run trains.
from alignment_tax.trainers.presets import LORA_TARGETS


def build_tiny_adapter(
    base_dir: str | Path, out_dir: str | Path, rank: int = 8, seed: int = 0, zero: bool = False
) -> Path:
    """Save a LoRA adapter (random A and B, or zero B, all linear projections) for the model in ``base_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = Path(out_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # The base's own dtype: a bf16 Qwen3-4B shape would take 16 GB in fp32.
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
        config = LoraConfig(
            r=rank,
            lora_alpha=2 * rank,
            lora_dropout=0.0,
            target_modules=list(LORA_TARGETS),
            init_lora_weights=zero,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(base, config)
        model.save_pretrained(out)
    return out
