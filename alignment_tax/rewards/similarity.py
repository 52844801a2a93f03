"""The paper's semantic reward: shaped cosine between a completion and its reference (§3.4.1)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from alignment_tax.errors import UserError
from alignment_tax.rewards.base import REFERENCE_COLUMN, RewardFunction


def shape_similarity(similarity: float, tau: float) -> float:
    """The paper's Eq. 2: 0 when ``s ≤ τ``, ``(s − τ) / (1 − τ)`` above, so 1 at ``s = 1``.

    >>> shape_similarity(1.0, 0.6), shape_similarity(0.5, 0.6), round(shape_similarity(0.8, 0.6), 6)
    (1.0, 0.0, 0.5)
    """
    if similarity <= tau:
        return 0.0
    return min(1.0, (similarity - tau) / (1.0 - tau))


def check_tau(tau: Any) -> float:
    """``tau`` as a float in [-1, 1): cosines live in [-1, 1] and τ = 1 would divide by zero."""
    try:
        value = float(tau)
    except (TypeError, ValueError):
        raise UserError(f"tau must be a number in [-1, 1), got {tau!r}") from None
    if not -1.0 <= value < 1.0:
        raise UserError(f"tau must be in [-1, 1), got {value}")
    return value


def _default_device() -> str:
    """This process's GPU (``LOCAL_RANK`` under accelerate/torchrun), else the CPU."""
    import torch

    if torch.cuda.is_available():
        local_rank = os.environ.get("LOCAL_RANK")
        index = int(local_rank) if local_rank and local_rank.isdigit() else torch.cuda.current_device()
        return f"cuda:{index % torch.cuda.device_count()}"
    return "cpu"


class SemanticSimilarityReward(RewardFunction):
    """Shaped cosine similarity between each completion and its reference.

    ``s = cos(f(completion), f(reference))`` with the sentence embedder ``f``; the reward is 0
    when ``s ≤ tau`` and ``(s − tau) / (1 − tau)`` above (the paper's Eq. 2), so an identical
    completion scores 1. An empty completion scores 0 (an empty string's embedding is the
    pooled special tokens, which can sit close to anything). A completion identical to its
    reference after normalisation scores exactly 1 without being encoded.

    Cost per call: the completions that are not empty, plus the distinct references not yet
    cached, are encoded in **one** ``encode`` call (``batch_size`` is its internal batch).
    Each distinct reference is encoded once per object and cached (``cache_hits`` and
    ``cache_misses`` count distinct references looked up per call); :meth:`precompute` fills
    the cache before training so that a step only encodes its completions.

    ``embedder`` is a sentence-transformers model or a path/hub id, loaded on first use on
    ``device`` (default: this process's GPU, else CPU). Given as a path, the object pickles to
    its settings alone (the model and the cache are rebuilt after unpickling).

    Example (the embedder is any object with sentence-transformers' ``encode``)::

        >>> import numpy as np
        >>> class Toy:
        ...     def encode(self, texts, **kwargs):
        ...         return np.array([[1.0, 0.0] if "猫" in t else [0.6, 0.8] for t in texts])
        >>> reward = SemanticSimilarityReward(Toy(), tau=0.5)
        >>> scores = reward(completions=[[{"role": "assistant", "content": "一只猫"}], "一条狗", ""],
        ...                 reference=["猫在睡觉", "猫在睡觉", "猫在睡觉"])
        >>> [round(score, 6) for score in scores]
        [1.0, 0.2, 0.0]
        >>> reward.cache_misses, reward.cache_hits
        (1, 0)
    """

    name = "similarity"
    needs_reference = True

    def __init__(
        self,
        embedder: Any,
        tau: float = 0.0,
        batch_size: int = 64,
        device: str | None = None,
        stop: Iterable[str] = (),
        reference_column: str = REFERENCE_COLUMN,
        name: str | None = None,
    ):
        super().__init__(stop=stop, reference_column=reference_column, name=name)
        self.tau = check_tau(tau)
        if isinstance(embedder, (str, os.PathLike)):
            self.embedder_path: str | None = str(embedder)
            self._model = None
        else:
            if not hasattr(embedder, "encode"):
                raise TypeError(f"embedder must have an encode() method or be a path, got {type(embedder).__name__}")
            self.embedder_path = None
            self._model = embedder
        self.batch_size = int(batch_size)
        self.device = device
        self._cache: dict[str, np.ndarray] = {}
        self.cache_hits = 0
        self.cache_misses = 0

    # -- the embedder ---------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The embedder, loaded on first use."""
        if self._model is None:
            from alignment_tax.models.loading import load_embedder

            self._model = load_embedder(self.embedder_path, device=self.device or _default_device())
        return self._model

    def load(self) -> SemanticSimilarityReward:
        """Load the embedder now (fails early on a missing one); returns ``self``."""
        self.model  # noqa: B018 - the property loads it
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.embedder_path is not None:
            state["_model"] = None
            state["_cache"] = {}
        return state

    def _encode(self, texts: list[str]) -> np.ndarray:
        embeddings = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        embeddings = np.asarray(embeddings, dtype=np.float64).reshape(len(texts), -1)
        # Normalise again in float64 (a toy or custom encoder may not), guarding zero vectors.
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        embeddings = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
        return np.nan_to_num(embeddings, nan=0.0, posinf=0.0, neginf=0.0)

    # -- the cache ------------------------------------------------------------------------
    def precompute(self, references: Iterable[str]) -> int:
        """Encode and cache every distinct reference not cached yet; returns how many were encoded."""
        from alignment_tax.rewards.base import completion_text

        missing = [r for r in dict.fromkeys(completion_text(r) for r in references) if r not in self._cache]
        if missing:
            for text, vector in zip(missing, self._encode(missing)):
                self._cache[text] = vector.astype(np.float32)
        return len(missing)

    def clear_cache(self) -> None:
        self._cache.clear()
        self.cache_hits = self.cache_misses = 0

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    # -- scoring --------------------------------------------------------------------------
    def similarities(self, texts: list[str], references: list[str]) -> list[float]:
        """Raw cosines in [-1, 1] (before shaping); an empty text scores 0."""
        if len(texts) != len(references):
            raise ValueError(f"{len(texts)} completions but {len(references)} references")
        scores = [0.0] * len(texts)
        to_encode = [i for i, text in enumerate(texts) if text and text != references[i]]
        for i, text in enumerate(texts):
            if text and text == references[i]:
                scores[i] = 1.0
        if not to_encode:
            return scores
        distinct = list(dict.fromkeys(references[i] for i in to_encode))
        missing = [r for r in distinct if r not in self._cache]
        self.cache_hits += len(distinct) - len(missing)
        self.cache_misses += len(missing)
        # One encode call: this call's completions and any reference not seen before.
        embeddings = self._encode([texts[i] for i in to_encode] + missing)
        for text, vector in zip(missing, embeddings[len(to_encode) :]):
            self._cache[text] = vector.astype(np.float32)
        completion_vectors = embeddings[: len(to_encode)]
        reference_vectors = np.stack([self._cache[references[i]] for i in to_encode]).astype(np.float64)
        cosines = np.clip(np.sum(completion_vectors * reference_vectors, axis=1), -1.0, 1.0)
        for i, cosine in zip(to_encode, cosines):
            scores[i] = float(cosine) if np.isfinite(cosine) else 0.0
        return scores

    def score(self, texts: list[str], references: list[str] | None) -> list[float]:
        return [shape_similarity(s, self.tau) for s in self.similarities(texts, references or [])]

    def __repr__(self) -> str:
        source = self.embedder_path or type(self._model).__name__
        return f"SemanticSimilarityReward(embedder={source!r}, tau={self.tau})"
