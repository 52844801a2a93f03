"""Embedding similarity of outputs (a metric): the cosine between each output and its reference.

Not the GRPO reward built on the same cosine: that is :mod:`alignment_tax.rewards.similarity`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from alignment_tax.data.normalize import normalize_text
from alignment_tax.errors import UserError


class Encoder(Protocol):
    """What a sentence-transformers model offers (and all this module needs)."""

    def encode(self, sentences: list[str], **kwargs) -> np.ndarray: ...


def pairwise_cosine(encoder: Encoder, outputs: list[str], references: list[str], batch_size: int = 64) -> list[float]:
    """Cosine of each output with its reference, in [-1, 1]; an empty output scores 0.

    The embedding of an empty string is the model's pooled special tokens, which can sit close
    to anything; scoring it 0 keeps "say nothing" from earning similarity.
    """
    if len(outputs) != len(references):
        raise UserError(f"{len(outputs)} outputs but {len(references)} references")
    outputs = [normalize_text(text) for text in outputs]
    references = [normalize_text(text) for text in references]
    non_empty = [i for i, text in enumerate(outputs) if text.strip()]
    scores = [0.0] * len(outputs)
    if not non_empty:
        return scores
    # One encode call for both sides keeps batches full and the model's state warm.
    texts = [outputs[i] for i in non_empty] + [references[i] for i in non_empty]
    embeddings = np.asarray(
        encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True),
        dtype=np.float64,
    )
    half = len(non_empty)
    cosines = np.sum(embeddings[:half] * embeddings[half:], axis=1)
    for i, cosine in zip(non_empty, cosines):
        scores[i] = float(np.clip(cosine, -1.0, 1.0))
    return scores


def mean_similarity(encoder: Encoder, outputs: list[str], references: list[str], batch_size: int = 64) -> float:
    """Mean of :func:`pairwise_cosine`: the task-level similarity metric."""
    scores = pairwise_cosine(encoder, outputs, references, batch_size)
    return float(np.mean(scores)) if scores else float("nan")
