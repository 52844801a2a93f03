"""Drift summaries for results.json, and the per-token and per-text files beside it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from alignment_tax.evaluation.drift import TokenDrift
from alignment_tax.metrics.stats import percentile_summary

TOKENS_FILE = "drift_tokens.npz"
TEXTS_FILE = "drift_texts.jsonl"
STATISTICS = ("mean", "p50", "p90", "p99")


def _statistics(values: np.ndarray) -> dict[str, float]:
    summary = percentile_summary(values)
    return {name: summary[name] for name in STATISTICS}


def summarize_drift(drift: TokenDrift) -> dict[str, Any]:
    """Pooled statistics over all scored tokens; ``delta_nll`` is candidate − base per statistic.

    The reference study reports exactly these: mean and p90 NLL shifts and KL percentiles.
    """
    nll = _statistics(drift.nll)
    base_nll = _statistics(drift.base_nll)
    return {
        "nll": nll,
        "base_nll": base_nll,
        "delta_nll": {name: nll[name] - base_nll[name] for name in STATISTICS},
        "kl": _statistics(drift.kl),
        "n_tokens": drift.n_tokens,
        "n_texts": int(np.unique(drift.text_index).size),
    }


def per_text_means(drift: TokenDrift) -> list[dict[str, float]]:
    rows = []
    for text_index in np.unique(drift.text_index):
        chosen = drift.text_index == text_index
        rows.append(
            {
                "text_index": int(text_index),
                "n_tokens": int(chosen.sum()),
                "nll": float(drift.nll[chosen].mean()),
                "base_nll": float(drift.base_nll[chosen].mean()),
                "kl": float(drift.kl[chosen].mean()),
            }
        )
    return rows


def write_drift_files(folder: Path, drift: TokenDrift, fingerprint: str | None = None) -> dict[str, str]:
    """The per-text means and the per-token arrays (compressed, for plots, with the pass's fingerprint).

    The token file is written last, and whole or not at all: it is what marks the pass finished.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_text_means(folder, drift)
    extra = {} if fingerprint is None else {"fingerprint": np.array(fingerprint)}
    temporary = folder / f"{TOKENS_FILE}.tmp.npz"
    np.savez_compressed(
        temporary,
        nll=drift.nll,
        base_nll=drift.base_nll,
        kl=drift.kl,
        text_index=drift.text_index,
        position=drift.position,
        **extra,
    )
    temporary.replace(folder / TOKENS_FILE)  # a half-written file is never taken for a finished pass
    return {"tokens": TOKENS_FILE, "texts": TEXTS_FILE}


def write_text_means(folder: Path, drift: TokenDrift) -> None:
    with (folder / TEXTS_FILE).open("w", encoding="utf-8") as handle:
        for row in per_text_means(drift):
            handle.write(json.dumps(row) + "\n")


def load_token_drift(path: str | Path) -> TokenDrift:
    with np.load(path) as arrays:
        return TokenDrift(**{name: arrays[name] for name in ("nll", "base_nll", "kl", "text_index", "position")})


def finished_drift(folder: Path, fingerprint: str) -> TokenDrift | None:
    """The per-token results of a finished pass with this fingerprint (same weights, corpus, windows), or None."""
    path = folder / TOKENS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as arrays:
            if "fingerprint" not in arrays.files or str(arrays["fingerprint"]) != fingerprint:
                return None
        return load_token_drift(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # unreadable: compute it again
        return None


def measure_drift(model, tokenizer, texts, batch_size: int = 8, max_length: int | None = None) -> dict[str, Any]:
    """:func:`summarize_drift` of :func:`~alignment_tax.evaluation.drift.token_drift`: one call for callbacks."""
    from alignment_tax.evaluation.drift import token_drift

    return summarize_drift(token_drift(model, tokenizer, list(texts), batch_size=batch_size, window=max_length))
