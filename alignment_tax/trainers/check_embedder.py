"""The paper's sanity check of the reward's embedder (§3.4): does similarity follow graded meaning?

From real parallel pairs, each source sentence gets three candidates in the target language:

* grade 2, its true translation;
* grade 1, a partly corrupted translation: ``corruption`` (default half) of the translation's
  units (Han characters, Tibetan syllables, words; see :mod:`alignment_tax.metrics.segmentation`)
  replaced, at seeded random positions, by units of another pair's translation;
* grade 0, an unrelated sentence: another pair's translation.

It reports the Spearman correlation (scipy) between cosine similarity and grade over all
candidates, the mean similarity per grade, the margins (true − corrupted, corrupted − unrelated,
mean and per-item share above 0), and the share of sources whose three similarities are in the
right order. A useful reward embedder has ρ well above 0 and positive margins.

That check is cross-lingual (Tibetan source against Chinese candidates), but the reward compares
within one language: a Chinese translation with its Chinese reference, a Tibetan headline with
its Tibetan reference. ``within_language`` repeats the check in each language of the pairs, the
anchor being a sentence itself: grade 2 the sentence lightly corrupted (``light_corruption``,
default a tenth of its units, so that "true" is not trivially identical), grade 1 corrupted as
above, grade 0 another sentence of the same language.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from alignment_tax.errors import UserError
from alignment_tax.metrics.scripts import HAN, TIBETAN, script_for
from alignment_tax.metrics.segmentation import segment


def _joiner(language: str) -> str:
    script = script_for(language)
    if script is HAN:
        return ""
    if script is TIBETAN:
        return "་"
    return " "


def corrupt(text: str, donor: str, fraction: float, rng: random.Random, language: str) -> str:
    """``text`` with ``fraction`` of its units replaced by units of ``donor``, positions drawn from ``rng``.

    >>> corrupt("我爱北京", "他们喜欢上海", 0.5, random.Random(0), "zh") != "我爱北京"
    True
    """
    units = segment(text, keep_punctuation=True, lowercase=False)
    donor_units = segment(donor, keep_punctuation=False, lowercase=False) or units
    if not units:
        return text
    count = max(1, round(fraction * len(units)))
    positions = rng.sample(range(len(units)), min(count, len(units)))
    for position in positions:
        units[position] = rng.choice(donor_units)
    return _joiner(language).join(units)


def build_graded_pairs(
    pairs: list[tuple[str, str]], fraction: float = 0.5, seed: int = 0, language: str = "zh"
) -> list[dict[str, Any]]:
    """Three graded candidates per (source, translation) pair (see the module docstring)."""
    return _graded([source for source, _ in pairs], [target for _, target in pairs], fraction, seed, language)


def build_graded_within(
    texts: list[str], fraction: float = 0.5, light: float = 0.1, seed: int = 0, language: str = "zh"
) -> list[dict[str, Any]]:
    """Three graded same-language candidates per sentence (see the module docstring)."""
    return _graded(texts, texts, fraction, seed, language, light=light)


def _graded(
    anchors: list[str], targets: list[str], fraction: float, seed: int, language: str, light: float | None = None
) -> list[dict[str, Any]]:
    """For each anchor: its target (lightly corrupted when ``light``), the target corrupted, another target."""
    if len(targets) < 3:
        raise UserError(f"check-embedder needs at least 3 pairs to draw unrelated sentences, got {len(targets)}")
    rng = random.Random(seed)
    n = len(targets)
    items = []
    for i, target in enumerate(targets):
        other = (i + rng.randrange(1, n)) % n  # any sentence but this one
        donor = (i + rng.randrange(1, n)) % n
        true = target if light is None else corrupt(target, targets[donor], light, rng, language)
        candidates = [(2, true), (1, corrupt(target, targets[donor], fraction, rng, language)), (0, targets[other])]
        items.append({"index": i, "source": anchors[i], "candidates": candidates})
    return items


def score_graded(encoder: Any, items: list[dict[str, Any]], batch_size: int = 64) -> dict[str, Any]:
    """Similarities, Spearman ρ, per-grade means and margins for :func:`build_graded_pairs` items."""
    from scipy.stats import spearmanr

    sources = [item["source"] for item in items]
    candidates = [text for item in items for _, text in item["candidates"]]
    grades = [grade for item in items for grade, _ in item["candidates"]]
    kwargs = {
        "batch_size": batch_size,
        "normalize_embeddings": True,
        "convert_to_numpy": True,
        "show_progress_bar": False,
    }
    source_vectors = np.asarray(encoder.encode(sources, **kwargs), dtype=np.float64)
    candidate_vectors = np.asarray(encoder.encode(candidates, **kwargs), dtype=np.float64)
    per_item = len(items[0]["candidates"])
    repeated = np.repeat(source_vectors, per_item, axis=0)
    similarity = np.nan_to_num(np.sum(repeated * candidate_vectors, axis=1))
    rho, p_value = spearmanr(similarity, grades)
    table = similarity.reshape(len(items), per_item)  # columns: grade 2, 1, 0
    true_minus_corrupted = table[:, 0] - table[:, 1]
    corrupted_minus_unrelated = table[:, 1] - table[:, 2]
    return {
        "spearman": float(rho) if np.isfinite(rho) else 0.0,
        "spearman_p": float(p_value) if np.isfinite(p_value) else 1.0,
        "mean_similarity": {
            "true": float(table[:, 0].mean()),
            "corrupted": float(table[:, 1].mean()),
            "unrelated": float(table[:, 2].mean()),
        },
        "margins": {
            "true_minus_corrupted": float(true_minus_corrupted.mean()),
            "corrupted_minus_unrelated": float(corrupted_minus_unrelated.mean()),
            "true_minus_unrelated": float((table[:, 0] - table[:, 2]).mean()),
            "share_true_above_corrupted": float(np.mean(true_minus_corrupted > 0)),
            "share_corrupted_above_unrelated": float(np.mean(corrupted_minus_unrelated > 0)),
        },
        "ordered": float(np.mean((true_minus_corrupted > 0) & (corrupted_minus_unrelated > 0))),
        "n_sources": len(items),
        "n_candidates": len(candidates),
        "examples": [
            {
                "source": item["source"],
                "candidates": [
                    {"grade": grade, "text": text, "similarity": float(sim)}
                    for (grade, text), sim in zip(item["candidates"], row)
                ],
            }
            for item, row in list(zip(items, table))[:3]
        ],
    }


def check_embedder(
    embedder: str,
    pairs_path: str,
    *,
    source_lang: str = "bo",
    target_lang: str = "zh",
    limit: int | None = 200,
    corruption: float = 0.5,
    seed: int = 0,
    source_column: str | None = None,
    target_column: str | None = None,
    batch_size: int = 64,
    light_corruption: float = 0.1,
) -> dict[str, Any]:
    """``alignment-tax check-embedder``: graded pairs from ``pairs_path``, scored with ``embedder``.

    The top-level numbers are the cross-lingual check; ``within_language`` holds the same
    numbers for each language against itself, which is what the reward compares.
    """
    from alignment_tax.data.parallel import load_parallel
    from alignment_tax.models.loading import load_embedder

    if not 0.0 < corruption < 1.0:
        raise UserError(f"--corruption must be between 0 and 1 (exclusive), got {corruption}")
    if not 0.0 < light_corruption < corruption:
        raise UserError(
            f"--light-corruption must be above 0 and below --corruption ({corruption}), got {light_corruption}"
        )
    if embedder is None:
        raise UserError("check-embedder needs --embedder PATH")
    pairs = load_parallel(
        pairs_path, source_lang, target_lang, source_column, target_column, split="train", skip_empty=True
    )
    if limit is not None:
        pairs = pairs[: int(limit)]
    items = build_graded_pairs([(p.source, p.target) for p in pairs], corruption, seed, target_lang)
    encoder = load_embedder(embedder)
    result = score_graded(encoder, items, batch_size)
    result["within_language"] = {}
    for language, texts in ((target_lang, [p.target for p in pairs]), (source_lang, [p.source for p in pairs])):
        within = build_graded_within(texts, corruption, light_corruption, seed, language)
        result["within_language"][language] = score_graded(encoder, within, batch_size)
    result.update(
        {
            "embedder": str(embedder),
            "pairs": str(pairs_path),
            "source_lang": source_lang,
            "target_lang": target_lang,
            "corruption": corruption,
            "light_corruption": light_corruption,
            "seed": seed,
        }
    )
    return result
