"""Every prompt and its generation cap must fit the model's context, or the run stops in one line.

lm-eval makes room for ``max_gen_toks`` new tokens by cutting the *start* of a prompt that is too
long (``HFLM.generate_until``'s ``left_truncate_len``; vLLM's model does the same), with at most a
log warning: with a 1,800-token cap on a 2,048-token model, CMRC prompts of ~485 tokens lost their
first 237 and every output changed from the first token. A silently shortened prompt is another
question, so the scores would compare answers to different prompts. Checked before any request
of a role is generated, on every request (cached or not: the rule is the same for both).
"""

from __future__ import annotations

from typing import Any

from alignment_tax.errors import UserError


def check_prompts_fit(lm: Any, requests: list) -> None:
    """Refuse, naming the task, where a prompt's tokens plus its cap exceed ``lm.max_length``.

    ``lm`` is an lm-eval model with ``tok_encode``, ``max_length`` and ``max_gen_toks``; models
    without them (a stand-in) are not checked.
    """
    from lm_eval.models.utils import normalize_gen_kwargs

    encode = getattr(lm, "tok_encode", None)
    try:
        context_limit = int(lm.max_length)
        default_cap = int(getattr(lm, "max_gen_toks", 256))
    except (AttributeError, TypeError, ValueError):
        return
    if encode is None:
        return
    worst: dict[str, tuple[int, int]] = {}  # task → (longest prompt, cap)
    for request in requests:
        context, gen_kwargs = request.args[0], request.args[1]
        cap = int(normalize_gen_kwargs(dict(gen_kwargs), default_cap)["max_gen_toks"])
        length = len(encode(context))
        task = getattr(request, "task_name", None) or "a task"
        if length + cap > context_limit and length > worst.get(task, (0, 0))[0]:
            worst[task] = (length, cap)
    if worst:
        task, (length, cap) = next(iter(worst.items()))
        room = context_limit - length
        fix = f"lower it with --max-gen-toks {task}={room}" if room > 0 else "the prompt alone fills the context"
        raise UserError(
            f"{task}: a prompt of {length} tokens and the {cap}-token generation cap exceed the model's "
            f"{context_limit}-token context, and lm-eval would cut the prompt's start; {fix}"
        )
