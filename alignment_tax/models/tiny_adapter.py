"""A random LoRA adapter on a tiny model, for tests, benchmarks and the demo.

PEFT initialises LoRA's B matrix to zero, so a fresh adapter changes nothing; this one starts
from random A and B so that "candidate minus base" is a real, non-zero difference. With
``zero=True`` it is PEFT's own initialisation (random A, zero B): the negative control, whose
every output, tax and KL must equal the base's exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

from alignment_tax.errors import UserError
from alignment_tax.models.loading import check_causal_lm

# The paper's targets, so that a tiny adapter exercises the projections a real run trains.
from alignment_tax.trainers.presets import LORA_TARGETS


def check_adapter_base(base_dir: str | Path, rank: int) -> None:
    """Refuse, before anything is allocated, a base that is not a causal LM and a rank above its width.

    Every targeted projection has the hidden size on one side, so no LoRA update of it has a
    higher rank; a larger ``rank`` only allocates (rank 10^8 on a 64-wide model asked for 25 GB).
    """
    check_causal_lm(str(base_dir))  # an embedder has none of the targeted projections
    config_path = Path(base_dir) / "config.json"
    if not config_path.is_file():
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    hidden = (config.get("text_config") or config).get("hidden_size")
    if isinstance(hidden, int) and rank > hidden:
        raise UserError(
            f"LoRA rank {rank} is above the hidden size of {base_dir} ({hidden}): no update of its "
            f"projections has a higher rank; use a rank of at most {hidden}"
        )


def build_tiny_adapter(
    base_dir: str | Path, out_dir: str | Path, rank: int = 8, seed: int = 0, zero: bool = False
) -> Path:
    """Save a LoRA adapter (random A and B, or zero B, all linear projections) for the model in ``base_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    check_adapter_base(base_dir, rank)
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
