"""Generation throughput of `alignment-tax evaluate` against a bare batched `model.generate`.

Both sides generate for the same CMRC 2018 prompts (the task's chat-templated instruction),
greedy, with the same batch size, the same token budget and the same stop rule ("\\n\\n" or
end of turn), on the `small` tiny model (~27M parameters) or, with ``--shape``, a random model
at a published Qwen3 width (151,936-row vocabulary) with ``--layers`` decoder layers. The
evaluate side is the whole `evaluate()` call with an empty output folder: task and data set-up,
lm-eval's request handling, the generation cache, scoring and writing results; the model is
loaded once, before either timer starts, so both sides time the same weights.

Same work on both sides: the bare loop stops the way evaluate's engine (lm-eval's HFLM) does,
with lm-eval's own stop-sequence criteria for "\n\n" and the end-of-turn string, not
transformers' ``stop_strings`` (whose per-step check costs about as much as a small model's
decode step, and would have made the bare side the slow one). Both sides are warmed up first:
the bare loop on one batch, evaluate with a short run into another folder (imports, task
set-up, first forward passes), so neither timer holds one-off costs.

Both sides' calls to `model.generate` are counted: the tokens each row generated (up to its
end-of-sequence padding) and the decoding steps times the rows, which is what the model
computed. A random model with a 152k vocabulary mostly generates ids the 4,000-token tokenizer
has no token for (they decode to ''), so its outputs run to the cap. No ratio is reported
unless every output and both counts are identical: a ratio of unlike work means nothing.

Usage: python bench/evaluate_throughput.py [--n 48] [--batch-size 8] [--data-dir ../shared/data]
       python bench/evaluate_throughput.py --shape qwen3-0.6b --layers 2 --n 16 --max-new-tokens 32
Prints the ratio evaluate / bare (target: at most 1.2), or why there is none (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from lm_eval.models.utils import handle_stop_sequences
from lm_eval.models.utils_hf import stop_sequences_criteria

from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
from alignment_tax.models import loading
from alignment_tax.models.qwen3_shapes import QWEN3_SHAPES
from alignment_tax.models.tiny import build_tiny_model
from alignment_tax.tasks.loading import load_task_docs
from alignment_tax.tasks.prompts import render_prompt

STOP = "\n\n"


def bare_generate(model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    """Left-padded batches through `model.generate`, stopping at end of turn or a blank line.

    The stop rule is lm-eval's, as its HFLM builds it for evaluate: ``until`` plus the decoded
    end-of-turn token, each checked by ``stop_sequences_criteria`` on the last few tokens.
    """
    tokenizer.padding_side = "left"
    until = handle_stop_sequences([STOP], eos=tokenizer.decode([tokenizer.eos_token_id], skip_special_tokens=False))
    outputs = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(
            prompts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(model.device)
        rows, prompt_length = batch["input_ids"].shape
        with torch.no_grad():
            generated = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                stopping_criteria=stop_sequences_criteria(tokenizer, until, prompt_length, rows),
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in generated[:, prompt_length:]:
            text = tokenizer.decode(row, skip_special_tokens=True)
            for stop in until:
                text = text.split(stop)[0]
            outputs.append(text)
    return outputs


class GenerateCounter:
    """Wraps `model.generate` to count what it generated, whoever calls it."""

    def __init__(self, model, pad_id: int):
        self.model, self.original, self.pad_id = model, model.generate, pad_id
        self.tokens = self.positions = self.steps = 0

    def __call__(self, *args, **kwargs):
        output = self.original(*args, **kwargs)
        prompt = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        new = output[:, prompt.shape[1] :]
        self.positions += new.numel()
        self.steps += new.shape[1]
        self.tokens += int((new != self.pad_id).sum())  # rows that stopped early are padded
        return output

    def __enter__(self):
        self.model.generate = self
        return self

    def __exit__(self, *exc):
        del self.model.generate  # the class's method again


def cmrc_prompts(tokenizer, docs: list[dict]) -> list[str]:
    """The CMRC task's chat-templated instructions, as evaluate renders them."""
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": render_prompt("cmrc2018", doc)}], tokenize=False, add_generation_prompt=True
        )
        for doc in docs
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="CMRC 2018 questions")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    parser.add_argument(
        "--max-new-tokens", type=int, default=64, help="both sides' cap (evaluate: --max-gen-toks cmrc2018=N)"
    )
    parser.add_argument(
        "--shape", choices=list(QWEN3_SHAPES), help="a published Qwen3 width (default: the small tiny model)"
    )
    parser.add_argument("--layers", type=int, default=2, help="decoder layers of the --shape model")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    work = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    if args.shape:
        model_dir = build_tiny_model(
            work / args.shape, shape=args.shape, layers=args.layers, dtype=args.dtype, seed=0, log=lambda *a: None
        )
    else:
        model_dir = build_tiny_model(work / "small", kind="lm", size="small", seed=0)
    model, tokenizer = loading.load_causal_lm(str(model_dir), "cpu", args.dtype)

    prompts = cmrc_prompts(tokenizer, load_task_docs("cmrc2018", {"data_dir": args.data_dir})[: args.n])

    def evaluate_options(folder: str, limit: int, cap: int) -> EvaluateOptions:
        return EvaluateOptions(
            tasks=["cmrc2018"],
            output=str(work / folder),
            model=str(model_dir),
            limit=limit,
            batch_size=args.batch_size,
            device="cpu",
            dtype="float32",
            data_dir=args.data_dir,
            max_gen_toks={"cmrc2018": cap},
        )

    # The model is already in memory: time evaluate's own work, not a second load from disk.
    preloaded = mock.patch.object(loading, "load_causal_lm", return_value=(model, tokenizer))
    # Warm-ups, one per side: a short run of each, so neither timer pays first-call costs.
    bare_generate(model, tokenizer, prompts[: args.batch_size], args.batch_size, 4)
    with preloaded:
        evaluate(evaluate_options("warm-up", args.batch_size, 4))  # its own folder: no cache to reuse

    with GenerateCounter(model, tokenizer.pad_token_id) as bare_count:
        start = time.perf_counter()
        bare_outputs = bare_generate(model, tokenizer, prompts, args.batch_size, args.max_new_tokens)
        bare_seconds = time.perf_counter() - start

    with preloaded, GenerateCounter(model, tokenizer.pad_token_id) as evaluate_count:
        start = time.perf_counter()
        results = evaluate(evaluate_options("run", args.n, args.max_new_tokens))
        evaluate_seconds = time.perf_counter() - start

    items = [json.loads(line) for line in (work / "run" / "samples" / "cmrc2018.jsonl").read_text().splitlines()]
    same = sum(item["output"] == bare.strip() for item, bare in zip(items, bare_outputs))
    print(f"prompts: {len(prompts)}, batch size {args.batch_size}, max new tokens {args.max_new_tokens}")
    print(f"model: {args.shape + f' ({args.layers} layers, {args.dtype})' if args.shape else 'small'}")
    print(f"outputs identical to the bare loop: {same}/{len(items)}")
    print(
        f"generated tokens: bare {bare_count.tokens}, evaluate {evaluate_count.tokens};"
        f" decoding positions (steps x rows): bare {bare_count.positions}, evaluate {evaluate_count.positions}"
    )
    print(f"mean output length: {sum(len(item['output']) for item in items) / len(items):.1f} characters")
    print(f"bare model.generate: {bare_seconds:.2f} s")
    print(
        f"alignment-tax evaluate: {evaluate_seconds:.2f} s (CMRC average {results['tasks']['cmrc2018']['average']:.2f})"
    )
    unlike = []
    if len(items) != len(prompts) or same != len(prompts):
        unlike.append(f"{len(prompts) - same} of {len(prompts)} outputs differ")
    if (bare_count.tokens, bare_count.positions) != (evaluate_count.tokens, evaluate_count.positions):
        unlike.append("the sides generated different token or position counts")
    if unlike:
        raise SystemExit(f"no ratio: the two sides did not do the same work ({'; '.join(unlike)})")
    print(f"ratio evaluate/bare: {evaluate_seconds / bare_seconds:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
