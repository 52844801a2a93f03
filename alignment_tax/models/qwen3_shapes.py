"""Randomly initialised models with the published widths of Qwen3 checkpoints.

No weights can be downloaded on the machines this project is built on, but the cost of drift's
full-vocabulary KL, of the LM head, of rank-64 LoRA on every projection and of GRPO's groups of
generations depends on the shapes, not on what the weights know. A shaped model has the
checkpoint's hidden size, MLP width, attention heads, head size, a 151,936-row tied embedding
(Qwen3's padded vocabulary) and its layer count unless fewer are asked for, with the package's
own 4,000-token tokenizer: ids it has no token for decode to nothing, as the padding rows of a
real Qwen3 vocabulary do.

The widths are those of the checkpoints' ``config.json`` files (Qwen/Qwen3-0.6B, Qwen/Qwen3-4B).
"""

from __future__ import annotations

from alignment_tax.errors import UserError

QWEN3_VOCAB_SIZE = 151_936
QWEN3_MAX_POSITIONS = 40_960
QWEN3_SHAPES = {
    "qwen3-0.6b": dict(
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
    ),
    "qwen3-4b": dict(
        hidden_size=2560,
        intermediate_size=9728,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
    ),
}
DTYPES = ("float32", "bfloat16", "float16")


def check_shape(shape: str, layers: int | None, dtype: str) -> None:
    if shape not in QWEN3_SHAPES:
        raise UserError(f"unknown model shape {shape!r}: choose one of {', '.join(QWEN3_SHAPES)}")
    published = QWEN3_SHAPES[shape]["num_hidden_layers"]
    if layers is not None and not 1 <= layers <= published:
        raise UserError(f"--layers must be between 1 and {published} (the layers of {shape}), got {layers}")
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")


def shaped_config(shape: str, layers: int | None, special_ids: dict[str, int], dtype: str = "float32"):
    """The ``Qwen3Config`` of ``shape``, with ``layers`` decoder layers (default: the published number)."""
    from transformers import Qwen3Config

    check_shape(shape, layers, dtype)
    widths = dict(QWEN3_SHAPES[shape])
    if layers is not None:
        widths["num_hidden_layers"] = layers
    return Qwen3Config(
        **widths,
        vocab_size=QWEN3_VOCAB_SIZE,
        max_position_embeddings=QWEN3_MAX_POSITIONS,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        dtype=dtype,
        **special_ids,
    )


def new_shaped_lm(config, device: str | None = None):
    """A random Qwen3 LM for ``config``, initialised directly in its dtype (a 4B model in fp32 would need 16 GB)."""
    import torch
    from transformers import Qwen3ForCausalLM

    dtype = getattr(torch, config.dtype) if isinstance(config.dtype, str) else config.dtype
    with torch.device(device or "cpu"):
        model = Qwen3ForCausalLM._from_config(config, dtype=dtype)
    return model.eval()
