"""How many tokens each generation task may generate (``max_gen_toks``), decided before any run.

A cap that cuts answers makes a method look worse for writing longer, and by different amounts
for different methods, so the caps follow three rules, in order:

1. ``--max-gen-toks TASK=N`` (or a spec's ``evaluate.options.max_gen_toks``) sets ``N``;
2. otherwise the task's YAML value: 256 for the package's tasks, the completion cap the paper's
   GRPO preset trains with (``training.max_completion_length``); built-in tasks keep their own;
3. for the package's tasks, raised to cover the longest reference in the model's own tokens
   (plus a margin for the stop sequence, in steps of 64), since a byte-level tokenizer can split
   a Tibetan reference into more tokens than 256. With a base that has a tokenizer of its own,
   the longest reference in either tokenizer: one cap for both, which neither role's answers
   are cut by sooner than the other's.

The effective cap of each task is written to ``results.json`` (``config.generation_caps``),
keys the base's reuse and the generation cache, and every generation records whether it hit it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError

DEFAULT_CAP = 256  # lm-eval's own default when a generation task names none
REFERENCE_MARGIN = 16  # tokens past the longest reference: the stop sequence and a little slack
CAP_STEP = 64


def parse_max_gen_toks(pairs: Iterable[str]) -> dict[str, int]:
    """``["bo_headline=512"]`` → ``{"bo_headline": 512}``; a malformed pair is a :class:`UserError`.

    >>> parse_max_gen_toks(["bo_headline=512", " cmrc2018 = 64 "])
    {'bo_headline': 512, 'cmrc2018': 64}
    """
    caps: dict[str, int] = {}
    for pair in pairs:
        task, sep, value = str(pair).partition("=")
        task = task.strip()
        try:
            cap = int(value.strip())
        except ValueError:
            cap = 0
        if not sep or not task or cap < 1:
            raise UserError(f"--max-gen-toks expects TASK=N with N a positive integer, got {pair!r}")
        caps[task] = cap
    return caps


def check_caps(caps: Mapping[str, Any]) -> dict[str, int]:
    """A spec's or caller's ``{task: N}``, checked like the flag."""
    if not isinstance(caps, Mapping):
        raise UserError(f"max_gen_toks should map task names to token counts, got {type(caps).__name__}")
    return parse_max_gen_toks(f"{task}={value}" for task, value in caps.items())


def cap_for_references(longest_reference: int, default: int) -> int:
    """The task default, or the multiple of 64 that holds the longest reference and its margin.

    >>> cap_for_references(40, 256), cap_for_references(250, 256), cap_for_references(300, 256)
    (256, 320, 320)
    """
    needed = longest_reference + REFERENCE_MARGIN
    if needed <= default:
        return default
    return CAP_STEP * math.ceil(needed / CAP_STEP)


def _references(doc: Mapping[str, Any]) -> list[str]:
    reference = doc.get("reference")
    if isinstance(reference, str):
        return [reference]
    return [str(item) for item in reference or []]


def longest_reference_tokens(docs: Iterable[Mapping[str, Any]], tokenizer: Any) -> int:
    """The most tokens any reference of ``docs`` takes in ``tokenizer`` (special tokens excluded)."""
    texts = [text for doc in docs for text in _references(doc) if text]
    if not texts:
        return 0
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return max(len(ids) for ids in encoded)


def is_generation_task(task: Any) -> bool:
    return getattr(task.config, "output_type", None) == "generate_until"


def check_cap_overrides(tasks: Mapping[str, Any], overrides: Mapping[str, int]) -> None:
    """An override for a task that is not run, or does not generate, is a :class:`UserError`."""
    generating = [name for name, task in tasks.items() if is_generation_task(task)]
    for name in overrides:
        if name not in generating:
            what = "is not among --tasks" if name not in tasks else "does not generate text"
            raise UserError(
                f"--max-gen-toks {name}: that task {what}; generation tasks here: {', '.join(generating) or 'none'}"
            )


# lm-eval's resolve_max_length reads these, the text model's first (a composite config's top
# level may be an encoder's).
_CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")


def config_context(model: str | Path) -> int | None:
    """The context length a model's ``config.json`` states (a local folder's, or a hub id's cached
    copy), read as lm-eval reads it; None where there is no such file or key (lm-eval then asks
    the tokenizer)."""
    path = Path(model).expanduser() / "config.json"
    if not path.is_file():
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(str(model), "config.json")
        except ValueError:  # not a hub id either: the model load says so
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # the model load says what is wrong with it
    if not isinstance(config, dict):
        return None
    section = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    for key in _CONTEXT_KEYS:
        if isinstance(section.get(key), int):
            return section[key]
    return None


def check_caps_fit(overrides: Mapping[str, int], context: int | None, where: str = "--max-gen-toks") -> None:
    """A cap must leave the prompt room in the model's context: lm-eval asserts
    ``context - max_gen_toks > 0`` only when the first request is built, as a traceback.

    >>> check_caps_fit({"cmrc2018": 4096}, 2048)
    Traceback (most recent call last):
    alignment_tax.errors.UserError: --max-gen-toks cmrc2018=4096: the model's context is 2048 tokens, prompt and answer together; give a cap below 2048
    """
    if context is None:
        return
    for task, cap in overrides.items():
        if cap >= context:
            raise UserError(
                f"{where} {task}={cap}: the model's context is {context} tokens, prompt and answer together; "
                f"give a cap below {context}"
            )


def effective_caps(
    tasks: Mapping[str, Any],
    tokenizer: Any,
    overrides: Mapping[str, int],
    own_tasks: Iterable[str],
    other_tokenizers: Iterable[Any] = (),
) -> dict[str, dict[str, Any]]:
    """``{task: {"max_gen_toks", "source", "longest_reference_tokens"}}`` for every generation task.

    ``tasks`` are lm-eval Task objects by name; ``own_tasks`` the package's (whose docs carry
    ``reference``). An override for a task that is not run, or does not generate, is an error.
    ``other_tokenizers`` are those of the other models that answer under these caps (a base loaded
    on its own): the longest reference is counted in every tokenizer and the most taken, so that
    one cap holds it for each model and none is cut shorter than the other it is compared with.
    """
    check_cap_overrides(tasks, overrides)
    generating = {name: task for name, task in tasks.items() if is_generation_task(task)}
    own = set(own_tasks)
    tokenizers = [tokenizer, *other_tokenizers]
    caps: dict[str, dict[str, Any]] = {}
    for name, task in generating.items():
        default = int((task.config.generation_kwargs or {}).get("max_gen_toks") or DEFAULT_CAP)
        longest = max(longest_reference_tokens(task.eval_docs, t) for t in tokenizers) if name in own else None
        if name in overrides:
            cap, source = overrides[name], "override"
        elif longest is not None and cap_for_references(longest, default) > default:
            cap, source = cap_for_references(longest, default), "longest reference"
        else:
            cap, source = default, "task default"
        caps[name] = {"max_gen_toks": cap, "source": source, "longest_reference_tokens": longest}
    return caps


def apply_caps(task_manager: Any, caps: Mapping[str, Mapping[str, Any]]) -> None:
    """Make every task ``task_manager`` loads from now on generate at most its cap.

    lm-eval builds the tasks inside ``simple_evaluate`` (``TaskManager.load``); its only per-run
    generation setting is one ``gen_kwargs`` for all tasks, so the caps are set on each task as
    the manager loads it.
    """
    load = task_manager.load

    def load_with_caps(task_list: Any) -> dict:
        loaded = load(task_list)
        for name, task in loaded["tasks"].items():
            if name in caps and is_generation_task(task):
                settings = {**(task.config.generation_kwargs or {}), "max_gen_toks": caps[name]["max_gen_toks"]}
                task.set_config(key="generation_kwargs", value=settings)
        return loaded

    task_manager.load = load_with_caps
