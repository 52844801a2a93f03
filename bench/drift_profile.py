"""Where the drift pass's time goes at a real width, part by part, and what a decode step costs.

    python bench/drift_profile.py [--shape qwen3-4b] [--layers N] [--out DIR] [--summary FILE]

On the Qwen3 shape (all layers in bf16 on a GPU; fp32 and ``--layers 2`` on a CPU) with a
rank-64 adapter, over the bundled CMRC trial passages in the drift pass's own batches, times
separately: the base's backbone (adapter disabled), the candidate's backbone with the adapter's
weights in fp32 (PEFT's default for a bf16 base, as for trained adapters) and in the base's
dtype, and the LM head with log-softmax, NLL and KL over the scored tokens at two slice sizes.
Each part's model-FLOPs utilisation is printed against the card's bf16 peak. Then the top
kernels of one drift batch (torch.profiler), and greedy decode steps with and without the stop
strings evaluate uses. One JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_parts as parts  # noqa: E402


def timed(fn, repeat: int = 1) -> float:
    parts._sync()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    parts._sync()
    return (time.perf_counter() - start) / repeat


def main(argv: list[str] | None = None) -> int:
    import torch

    from alignment_tax.evaluation import drift as d

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="qwen3-4b", choices=["qwen3-4b", "qwen3-0.6b"])
    parser.add_argument("--layers", type=int)
    parser.add_argument("--passages", type=int)
    parser.add_argument("--out")
    parser.add_argument("--summary")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    work = Path(args.out or tempfile.mkdtemp(prefix="bench-profile-"))
    env = parts.environment(cuda, None)
    peak = env.get("peak_bf16_tflops")
    if not (work / "base" / "config.json").is_file():
        parts.build(work, args.shape, args.layers or (None if cuda else 2), cuda)
    model, tokenizer = parts._drift_model(work)
    config = model.get_base_model().config
    texts = parts._passages(args.passages or (256 if cuda else 8))
    batch_size = 16 if cuda else 4
    windows = d.plan_windows(d.tokenize_corpus(tokenizer, texts), 2048)
    order = sorted(range(len(windows)), key=lambda k: -len(windows[k].token_ids))
    batches = [[windows[k] for k in order[s : s + batch_size]] for s in range(0, len(order), batch_size)]
    device = "cuda" if cuda else "cpu"
    tensors = [d._batch_tensors(b, tokenizer.pad_token_id, "right", device)[:3] for b in batches]
    backbone, head = d._backbone_and_head(model)
    tokens = sum(len(w.token_ids) for w in windows)
    scored = sum(w.n_scored for w in windows)
    backbone_flops = 2 * tokens * config.num_hidden_layers * parts.linear_params(config)
    head_flops = 2 * 2 * scored * config.vocab_size * config.hidden_size

    def mfu(flops, seconds):
        return round(flops / seconds / 1e12 / peak, 3) if peak else None

    result: dict = {"environment": env, "tokens": tokens, "batches": len(batches), "batch_size": batch_size}
    with torch.no_grad():

        def backbones(disabled: bool):
            for ids, mask, pos in tensors:
                if disabled:
                    with model.disable_adapter():
                        d._hidden_states(backbone, ids, mask, pos)
                else:
                    d._hidden_states(backbone, ids, mask, pos)

        backbones(True)  # warm-up
        base_s = timed(lambda: backbones(True))
        cast_lora_s = timed(lambda: backbones(False))  # as evaluate loads it: LoRA in the base's dtype
        base_dtype = next(model.get_base_model().parameters()).dtype
        for dtype in (torch.float32, base_dtype):  # PEFT's default, then back
            for name, parameter in model.named_parameters():
                if "lora_" in name:
                    parameter.data = parameter.data.to(dtype)
            if dtype == torch.float32:
                fp32_lora_s = timed(lambda: backbones(False))
        result["backbone"] = {
            "base_seconds": round(base_s, 2),
            "base_mfu": mfu(backbone_flops, base_s),
            "candidate_fp32_lora_seconds": round(fp32_lora_s, 2),
            "candidate_lora_in_base_dtype_seconds": round(cast_lora_s, 2),
        }
        for chunk in (d.GPU_CHUNK_ELEMENTS if cuda else d.DEFAULT_CHUNK_ELEMENTS, 4 * d.GPU_CHUNK_ELEMENTS):

            def whole(chunk=chunk):
                for batch in batches:
                    d._score_batch(model, None, batch, tokenizer.pad_token_id, "right", chunk)

            whole_s = timed(whole)
            result[f"drift_pass_chunk_{chunk}"] = {
                "seconds": round(whole_s, 2),
                "head_and_kl_seconds": round(whole_s - base_s - cast_lora_s, 2),
                "mfu": mfu(backbone_flops * 2 + head_flops, whole_s),
            }
        if cuda:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                d._score_batch(
                    model, None, batches[len(batches) // 2], tokenizer.pad_token_id, "right", d.GPU_CHUNK_ELEMENTS
                )
                parts._sync()
            result["top_kernels"] = prof.key_averages().table(
                sort_by="cuda_time_total", row_limit=15, max_name_column_width=60
            )
    model = None  # frees the GPU memory for the next part
    parts._reset_peak()
    result["decode"] = decode_steps(work, tokenizer, cuda)
    text = json.dumps(result, indent=2)
    print(text)
    if args.summary:
        Path(args.summary).write_text(text + "\n", encoding="utf-8")
    return 0


def decode_steps(work: Path, tokenizer, cuda: bool) -> dict:
    import torch

    from alignment_tax.models import loading

    model, tokenizer = loading.load_causal_lm(str(work / "base"), "cuda" if cuda else "cpu", parts._build_dtype(work))
    prompts = parts._cmrc_prompts(tokenizer, 32 if cuda else 4)
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = {}
    for label, extra in (("stop_strings", {"stop_strings": ["\n\n"], "tokenizer": tokenizer}), ("plain", {})):
        for steps in (2, 34):
            seconds = timed(
                lambda steps=steps, extra=extra: model.generate(
                    **batch,
                    max_new_tokens=steps,
                    min_new_tokens=steps,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    **extra,
                )
            )
            out[f"{label}_{steps}"] = seconds
        out[f"{label}_ms_per_step"] = round(1000 * (out[f"{label}_34"] - out[f"{label}_2"]) / 32, 2)
    out["batch"] = len(prompts)
    out["prompt_tokens"] = int(batch["input_ids"].shape[1])
    with torch.no_grad():
        cache_out = model(**batch, use_cache=True)
        step_ids = batch["input_ids"][:, -1:]
        mask = torch.cat([batch["attention_mask"], batch["attention_mask"][:, -1:]], dim=1)
        forward_s = timed(
            lambda: model(
                input_ids=step_ids, attention_mask=mask, past_key_values=cache_out.past_key_values, use_cache=True
            ),
            repeat=1,
        )
    out["one_cached_forward_ms"] = round(1000 * forward_s, 2)
    return out


if __name__ == "__main__":
    sys.exit(main())
