"""Choosing τ, the similarity threshold of the semantic reward, from the cold-start policy.

The paper sets τ at "a minimal semantic adequacy level achieved after cold-start fine-tuning"
(§3.4.1) without a formula. The rule here is explicit and configurable:

    τ = the ``quantile``-th quantile of the cosine similarities between the
        cold-start policy's sampled completions and their references,

sampled as GRPO samples (the task's prompts through the chat template, with GRPO's temperature,
top-p and completion length by default; completions cut at the task's stop strings, as the
reward cuts them), ``samples_per_prompt`` completions for each of ``prompts`` prompts. Empty
completions count with similarity 0. The defaults are GRPO's preset (its ``calibration``
section, :data:`~alignment_tax.trainers.presets.CALIBRATION_DEFAULTS`). With its quantile,
0.25, three quarters of what the cold-start policy already produces clears the threshold and
earns some similarity reward, and the quarter below it (off-target, degenerate) earns none. The whole distribution is reported, so another
rule (a higher quantile for a sharper signal) can be read off the same run. τ is capped at 0.99.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alignment_tax.errors import UserError
from alignment_tax.trainers.presets import CALIBRATION_DEFAULTS, DEFAULTS

MAX_TAU = 0.99


def tau_from_similarities(similarities: list[float], quantile: float) -> float:
    """The rule: the ``quantile`` of ``similarities`` (numpy's linear interpolation), capped at 0.99.

    >>> tau_from_similarities([0.1, 0.2, 0.3, 0.4, 0.5], 0.25)
    0.2
    """
    if not similarities:
        raise UserError("no similarities to calibrate tau from")
    if not 0.0 <= quantile <= 1.0:
        raise UserError(f"quantile must be in [0, 1], got {quantile}")
    value = float(np.quantile(np.asarray(similarities, dtype=np.float64), quantile))
    return round(min(max(value, -1.0), MAX_TAU), 6)


def tau_interval(
    similarities: list[float],
    groups: list[int],
    quantile: float,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """A percentile bootstrap interval for τ that resamples prompts, not completions.

    The completions of one prompt are alike (same source, same reference), so they are resampled
    together: ``groups[i]`` is the prompt of ``similarities[i]``. With one completion per prompt
    this is the ordinary bootstrap.

    >>> interval = tau_interval([0.5] * 8, [0, 0, 1, 1, 2, 2, 3, 3], 0.25)
    >>> interval["low"], interval["high"], interval["width"]
    (0.5, 0.5, 0.0)
    """
    values = np.asarray(similarities, dtype=np.float64)
    labels = np.asarray(groups)
    if values.shape != labels.shape or values.size == 0:
        raise UserError("tau's interval needs one prompt label per similarity")
    members = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    rng = np.random.default_rng(seed)
    estimates = np.empty(n_resamples)
    for k in range(n_resamples):
        chosen = rng.integers(0, len(members), size=len(members))
        estimates[k] = tau_from_similarities(values[np.concatenate([members[c] for c in chosen])].tolist(), quantile)
    tail = (1.0 - confidence) / 2
    low, high = (float(x) for x in np.quantile(estimates, [tail, 1.0 - tail]))
    return {
        "low": round(low, 6),
        "high": round(high, 6),
        "width": round(high - low, 6),
        "confidence": confidence,
        "n_resamples": n_resamples,
        "resampled": "prompts",
        "prompts": len(members),
        "seed": seed,
    }


def _distribution(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    stats = {
        "n": int(array.size),
        "mean": float(array.mean()),
        "std": float(array.std(ddof=0)),
        "min": float(array.min()),
        "max": float(array.max()),
    }
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        stats[f"p{int(q * 100)}"] = float(np.quantile(array, q))
    return stats


def calibrate_from_model(
    model: Any,
    tokenizer: Any,
    examples: list[dict[str, Any]],
    similarity: Any,
    language: str,
    stop: list[str],
    *,
    quantile: float = CALIBRATION_DEFAULTS["quantile"],
    prompts: int = CALIBRATION_DEFAULTS["prompts"],
    samples_per_prompt: int = CALIBRATION_DEFAULTS["samples_per_prompt"],
    temperature: float = CALIBRATION_DEFAULTS["temperature"],
    top_p: float = CALIBRATION_DEFAULTS["top_p"],
    max_new_tokens: int = CALIBRATION_DEFAULTS["max_new_tokens"],
    batch_size: int = CALIBRATION_DEFAULTS["batch_size"],
    seed: int = CALIBRATION_DEFAULTS["seed"],
    chat_template_kwargs: dict[str, Any] | None = None,
    max_ci_width: float = CALIBRATION_DEFAULTS["max_ci_width"],
) -> dict[str, Any]:
    """Sample from ``model`` on the first ``prompts`` examples and apply the rule.

    ``similarity`` is a :class:`~alignment_tax.rewards.SemanticSimilarityReward` (its raw,
    unshaped cosines are used). Returns ``tau``, its bootstrap interval over prompts
    (``tau_ci``), a ``warning`` when that interval is wider than ``max_ci_width``, and the
    distribution behind it.
    """
    from alignment_tax.metrics.scripts import is_script_consistent
    from alignment_tax.rewards.base import completion_text
    from alignment_tax.trainers.sampling import generate

    if prompts < 1 or samples_per_prompt < 1:
        raise UserError("calibration needs at least one prompt and one sample per prompt")
    chosen = examples[:prompts]
    outputs = generate(
        model,
        tokenizer,
        [example["prompt"] for example in chosen],
        n=samples_per_prompt,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        stop=stop,
        chat_template_kwargs=chat_template_kwargs,
        seed=seed,
    )
    texts, references, groups = [], [], []
    for index, (example, samples) in enumerate(zip(chosen, outputs)):
        for text in samples:
            texts.append(text)
            references.append(example["reference"])
            groups.append(index)
    similarities = similarity.similarities(texts, [completion_text(r) for r in references])
    tau = tau_from_similarities(similarities, quantile)
    interval = tau_interval(similarities, groups, quantile, seed=seed)
    warning = None
    if interval["width"] > max_ci_width:
        warning = (
            f"tau's 95% interval [{interval['low']:.3f}, {interval['high']:.3f}] is wider than {max_ci_width}: "
            f"{len(chosen)} prompts x {samples_per_prompt} samples are too few to pin it down "
            f"(raise calibration.prompts)"
        )
        import logging

        logging.getLogger("alignment_tax").warning(warning)
    return {
        "tau": tau,
        "tau_ci": interval,
        "warning": warning,
        "rule": f"tau = quantile {quantile} of the cold-start policy's completion-reference cosine similarities",
        "quantile": quantile,
        "prompts": len(chosen),
        "samples_per_prompt": samples_per_prompt,
        "similarity": _distribution(similarities),
        "above_tau": float(np.mean([s > tau for s in similarities])),
        "empty": float(np.mean([not t for t in texts])),
        "language_consistency": float(np.mean([is_script_consistent(t, language) for t in texts])),
        "sampling": {
            "temperature": temperature,
            "top_p": top_p,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
            "stop": list(stop),
        },
        "examples": [
            {"completion": t, "reference": r, "similarity": s}
            for t, r, s in list(zip(texts, references, similarities))[:5]
        ],
    }


def calibrate_tau(
    *,
    model: str | None,
    adapter: str | None,
    data: str,
    embedder: str,
    task: str = DEFAULTS["grpo"]["task"],
    device: str = "auto",
    data_options: dict[str, Any] | None = None,
    enable_thinking: bool = DEFAULTS["grpo"]["enable_thinking"],
    **calibration: Any,
) -> dict[str, Any]:
    """``alignment-tax calibrate-tau``: load the cold-start policy and the embedder, then apply the rule.

    ``calibration`` holds :func:`calibrate_from_model`'s settings (quantile, prompts, ...,
    max_ci_width); those not given take GRPO's preset.
    """
    from alignment_tax.models.loading import load_embedder, load_for_evaluation
    from alignment_tax.rewards import SemanticSimilarityReward
    from alignment_tax.trainers.config import SECTION_DEFAULTS
    from alignment_tax.trainers.training_examples import load_training_data

    options = {**SECTION_DEFAULTS["data"], **(data_options or {})}
    training_data = load_training_data(task, data, options)
    if embedder is None:
        raise UserError("calibrate-tau needs --embedder PATH (the reward's sentence-transformers model)")
    encoder = load_embedder(embedder)
    loaded = load_for_evaluation(model, adapter, device, "auto")
    result = calibrate_from_model(
        loaded.model,
        loaded.tokenizer,
        training_data.examples,
        SemanticSimilarityReward(encoder),
        training_data.target_lang,
        training_data.stop,
        chat_template_kwargs={"enable_thinking": enable_thinking},
        **calibration,
    )
    result.update(
        {
            "model": loaded.name,
            "adapter": adapter,
            "data": str(data),
            "task": task,
            "embedder": str(embedder),
            "suggested_set": f"--set reward.tau={result['tau']}",
        }
    )
    return result
