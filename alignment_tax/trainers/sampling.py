"""Sampling completions for chat prompts with ``model.generate`` (τ calibration, probes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alignment_tax.rewards.base import completion_text


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[dict[str, Any]]],
    n: int = 1,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    stop: Sequence[str] = (),
    chat_template_kwargs: dict[str, Any] | None = None,
    seed: int | None = None,
) -> list[list[str]]:
    """``n`` completions for each conversational prompt, cut at ``stop`` and stripped.

    Prompts go through the tokenizer's chat template with the generation prompt (as TRL and
    lm-eval send them), left-padded in batches of ``batch_size`` prompts.
    """
    import torch

    chat_template_kwargs = dict(chat_template_kwargs or {})
    device = next(model.parameters()).device
    texts = [
        tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False, **chat_template_kwargs)
        for p in prompts
    ]
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    generator_state = None
    if seed is not None:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
    results: list[list[str]] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id, "do_sample": do_sample}
            if do_sample:
                kwargs.update(temperature=temperature, top_p=top_p, top_k=0, num_return_sequences=n)
            with torch.no_grad():
                output = model.generate(**batch, **kwargs)
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            per_prompt = n if do_sample else 1
            for i in range(len(decoded) // per_prompt):
                results.append([completion_text(t, stop) for t in decoded[i * per_prompt : (i + 1) * per_prompt]])
    finally:
        model.train(was_training)
        tokenizer.padding_side = padding_side
        if generator_state is not None:
            torch.random.set_rng_state(generator_state)
    return results
