"""An offline judge: a local causal LM that scores the verdict tokens (``--judge-model hf:PATH``).

Instead of generating, it renders the same messages with the model's chat template, appends
the opening of the requested reply (``{"verdict": "``), and compares the log-probabilities of
the three continuations ``first"``, ``second"`` and ``tie"`` (summed over their tokens, the
closing quote marking the word's end). The best one is returned as the same JSON object an
endpoint would write, with the three scores as the reason, so parsing, caching and records
are identical for both kinds of judge. No server and no network: the demo and tests use it.

The model runs in one worker thread, so the asyncio runner stays the same; calls are served
one at a time (a CPU forward pass gains nothing from overlapping).

Usage::

    judge = LocalLMJudge("path/to/model")
    asyncio.run(judge.complete(messages))
    # -> '{"verdict": "second", "reason": "log-probabilities: first=-7.31 second=-6.02 tie=-8.45"}'
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alignment_tax.errors import UserError
from alignment_tax.judge.verdicts import VERDICTS

PREFIX = '{"verdict": "'


def model_fingerprint(path: Path) -> str:
    """A short digest of the config and the weight files' names, sizes and times.

    Part of the cache key, so retraining a model in place does not reuse its old verdicts.
    """
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.suffix in {".json", ".safetensors", ".bin"} and file.is_file():
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class LocalLMJudge:
    """``await judge.complete(messages)`` → ``{"verdict": ..., "reason": ...}`` from token scores."""

    def __init__(self, path: str, device: str = "auto"):
        from alignment_tax.models.loading import load_causal_lm, resolve_device

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise UserError(f"judge model not found: {path} (hf:PATH takes a local model folder)")
        self.device = resolve_device(device)
        self.model, self.tokenizer = load_causal_lm(str(folder), device=self.device, dtype="float32")
        if not getattr(self.tokenizer, "chat_template", None):
            raise UserError(f"judge model {path} has no chat template; an instruction-tuned model is needed")
        self.identity = f"hf:{folder.resolve()}#{model_fingerprint(folder)}"
        self.base_url = None
        self.options: dict = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-judge")
        self._continuations = [self.tokenizer(f'{v}"', add_special_tokens=False).input_ids for v in VERDICTS]
        # transformers 5.2x renamed `past_key_values` to `cache` (the old name warns, then goes).
        accepted = inspect.signature(self.model.forward).parameters
        self._cache_argument = "cache" if "cache" in accepted else "past_key_values"

    async def complete(self, messages: list[dict[str, str]]) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.score, messages)

    def score(self, messages: list[dict[str, str]]) -> str:
        import torch

        prompt = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, enable_thinking=False
        )
        context = self.tokenizer(prompt + PREFIX, add_special_tokens=False).input_ids
        longest = max(map(len, self._continuations))
        limit = getattr(self.model.config, "max_position_embeddings", None) or 4096
        truncated = len(context) + longest > limit
        if truncated:  # keep the end: the candidates and the question sit there
            context = context[len(context) + longest - limit :]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        conts = self._continuations
        with torch.inference_mode():
            # The shared context once, its KV cache copied for the three continuations: the
            # prompt (nearly all the tokens) is not computed three times, and only the logits
            # needed are projected onto the vocabulary.
            head = self.model(input_ids=torch.tensor([context], device=self.device), use_cache=True, logits_to_keep=1)
            first_token = torch.log_softmax(head.logits[0, -1].float(), dim=-1)
            cache = head["cache"] if "cache" in head else head["past_key_values"]
            cache.batch_repeat_interleave(len(conts))
            rows = [cont + [pad] * (longest - len(cont)) for cont in conts]
            mask = [[1] * (len(context) + len(cont)) + [0] * (longest - len(cont)) for cont in conts]
            tail = self.model(
                input_ids=torch.tensor(rows, device=self.device),
                attention_mask=torch.tensor(mask, device=self.device),
                **{self._cache_argument: cache},
            )
            rest = torch.log_softmax(tail.logits.float(), dim=-1)  # position t predicts token t+1
        scores = [
            float(first_token[cont[0]]) + sum(float(rest[row, t, cont[t + 1]]) for t in range(len(cont) - 1))
            for row, cont in enumerate(conts)
        ]
        best = max(range(len(VERDICTS)), key=scores.__getitem__)
        reason = "log-probabilities: " + " ".join(f"{v}={s:.2f}" for v, s in zip(VERDICTS, scores))
        if truncated:
            reason += f" (prompt truncated to its last {len(context)} tokens)"
        return json.dumps({"verdict": VERDICTS[best], "reason": reason})

    async def close(self) -> None:
        self._executor.shutdown(wait=False)
