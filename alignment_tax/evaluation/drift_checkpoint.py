"""Partial drift results on disk, so that an interrupted pass resumes where it stopped.

The file holds the windows scored so far and a fingerprint of everything that decides their
values (weights, corpus, window plan); a file with another fingerprint is ignored and replaced.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


class DriftCheckpoint:
    def __init__(self, path: str | Path, fingerprint: str, every_seconds: float = 30.0):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.every_seconds = every_seconds
        self._last_save = time.monotonic()

    def load(self) -> dict[int, list[np.ndarray]]:
        """Scored windows ``{window index: [nll, base_nll, kl]}`` from an earlier, matching pass."""
        if not self.path.exists():
            return {}
        with np.load(self.path) as saved:
            if str(saved["fingerprint"]) != self.fingerprint:
                return {}
            bounds = np.concatenate([[0], np.cumsum(saved["lengths"])])
            return {
                int(window): [saved[name][bounds[k] : bounds[k + 1]] for name in ("nll", "base_nll", "kl")]
                for k, window in enumerate(saved["windows"])
            }

    def save(self, results: dict[int, list[np.ndarray]], force: bool = False) -> None:
        """Write every scored window, at most every ``every_seconds`` unless ``force``."""
        if not force and time.monotonic() - self._last_save < self.every_seconds:
            return
        windows = sorted(results)
        arrays = {
            name: np.concatenate([results[w][k] for w in windows]) if windows else np.zeros(0, np.float32)
            for k, name in enumerate(("nll", "base_nll", "kl"))
        }
        temporary = self.path.with_suffix(".tmp.npz")
        try:
            np.savez(
                temporary,
                fingerprint=np.array(self.fingerprint),
                windows=np.array(windows, dtype=np.int64),
                lengths=np.array([len(results[w][0]) for w in windows], dtype=np.int64),
                **arrays,
            )
            temporary.replace(self.path)  # never a half-written checkpoint
        except BaseException:  # a full disk: keep the previous checkpoint, leave no half-written one
            temporary.unlink(missing_ok=True)
            raise
        self._last_save = time.monotonic()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
