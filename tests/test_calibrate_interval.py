"""τ's bootstrap interval: resampled by prompt, hand-checked on small cases, and its warning."""

from __future__ import annotations

import numpy as np
import pytest

from alignment_tax.errors import UserError
from alignment_tax.trainers.calibrate import calibrate_from_model, tau_from_similarities, tau_interval


def test_identical_prompts_give_a_zero_width_interval():
    interval = tau_interval([0.3, 0.3, 0.3, 0.3], [0, 0, 1, 1], 0.25)
    assert (interval["low"], interval["high"], interval["width"]) == (0.3, 0.3, 0.0)


def test_prompts_are_resampled_whole():
    # Two prompts, each with identical completions: every resample is {a,a}, {b,b} or {a,b}
    # pooled, so the median can only be 0.2, 0.8 or 0.5, never anything in between.
    similarities, groups = [0.2, 0.2, 0.8, 0.8], [0, 0, 1, 1]
    interval = tau_interval(similarities, groups, 0.5, n_resamples=500)
    assert interval["low"] == 0.2 and interval["high"] == 0.8
    assert interval["prompts"] == 2


def test_interval_narrows_with_more_prompts_and_covers_tau():
    rng = np.random.default_rng(0)
    widths = []
    for prompts in (16, 256):
        values = rng.normal(0.6, 0.1, size=prompts * 4).clip(-1, 1).tolist()
        groups = np.repeat(np.arange(prompts), 4).tolist()
        interval = tau_interval(values, groups, 0.25, n_resamples=400)
        assert interval["low"] <= tau_from_similarities(values, 0.25) <= interval["high"]
        widths.append(interval["width"])
    assert widths[1] < widths[0] / 2  # about 1/sqrt(16) as wide


def test_interval_covers_the_true_quantile_in_simulation():
    """Coverage, checked against a known truth: 16 prompts × 4 completions from N(0.6, 0.1²),
    whose 0.25 quantile is 0.6 − 0.1·0.67449 = 0.532551; a 95% interval should hold it in
    about 95% of samples (the percentile bootstrap of a quantile runs a little under)."""
    rng = np.random.default_rng(11)
    truth = 0.6 - 0.1 * 0.6744897501960817
    groups = np.repeat(np.arange(16), 4).tolist()
    runs = 120
    covered = 0
    for k in range(runs):
        values = rng.normal(0.6, 0.1, size=64).tolist()
        interval = tau_interval(values, groups, 0.25, n_resamples=200, seed=k)
        covered += interval["low"] <= truth <= interval["high"]
    assert 0.85 <= covered / runs <= 0.99


def test_mismatched_labels_are_a_user_error():
    with pytest.raises(UserError):
        tau_interval([0.1, 0.2], [0], 0.25)


class _Similarity:
    def __init__(self, values):
        self.values = values

    def similarities(self, texts, references):
        return self.values[: len(texts)]


def test_calibration_warns_when_the_interval_is_wide(monkeypatch):
    from alignment_tax.trainers import sampling

    monkeypatch.setattr(sampling, "generate", lambda model, tokenizer, prompts, n, **kw: [["x"] * n for _ in prompts])
    examples = [{"prompt": [{"role": "user", "content": str(i)}], "reference": "y"} for i in range(4)]
    spread = _Similarity([0.1, 0.1, 0.9, 0.9, 0.2, 0.2, 0.8, 0.8])
    result = calibrate_from_model(None, None, examples, spread, "zh", [], prompts=4, samples_per_prompt=2)
    assert result["tau_ci"]["width"] > 0.05 and "raise calibration.prompts" in result["warning"]
    flat = _Similarity([0.5] * 8)
    result = calibrate_from_model(None, None, examples, flat, "zh", [], prompts=4, samples_per_prompt=2)
    assert result["warning"] is None and result["tau"] == 0.5
