"""The ``repetitive`` flag's error rates, measured on held-out real text and on a real model's outputs.

The measurement is ``bench/health_flags.py`` (its docstring says what each set is). The module's
thresholds must be justified by the *tune* split alone (strings whose SHA-256 starts with an even
byte); the rates are asserted on the *test* split (odd first byte), whose degenerate outputs are
built from its own strings, and on SmolLM2's real outputs, labelled by hand. Run with ``-s`` to
see the counts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from alignment_tax.metrics import health

BENCH = Path(__file__).resolve().parents[1] / "bench" / "health_flags.py"
# Stated bounds: below 1 in 1,000 real strings flagged, 1 in 100 degenerate outputs missed.
MAX_FALSE_POSITIVE_RATE = 0.001
MAX_FALSE_NEGATIVE_RATE = 0.01


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("health_flags", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def splits(bench, shared_data):
    gold = bench.gold_strings(shared_data)
    return bench.split(gold, "tune"), bench.split(gold, "test")


def test_the_splits_are_disjoint_halves(bench, splits):
    tune, test = splits
    assert not {s for t in tune.values() for s in t} & {s for t in test.values() for s in t}
    n_tune, n_test = sum(map(len, tune.values())), sum(map(len, test.values()))
    assert n_tune > 5000 and n_test > 5000 and abs(n_tune - n_test) < 0.05 * (n_tune + n_test)


def test_the_thresholds_hold_on_the_tune_split(bench, splits):
    tune, _ = splits
    margins = bench.tune_margins(tune, bench.degenerate_outputs(tune, seed=0))
    print(f"\ntune split: {margins}")
    # A real string is flagged only past these: the thresholds clear the tune split's worst ...
    assert margins["gold_max_loop_share"] < health.LOOP_SHARE
    assert margins["gold_min_distinct_share"] >= health.MIN_DISTINCT_SHARE
    # ... and still catch its degenerate outputs.
    assert margins["degenerate_missed_rate"] <= MAX_FALSE_NEGATIVE_RATE


def test_false_positives_on_held_out_real_text(bench, splits):
    _, test = splits
    found = bench.rates(test, want=False)
    print(f"\nfalse positives, test split: {found['all']['wrong']} of {found['all']['n']} real strings")
    for name, rate in found.items():
        print(f"  {name}: {rate['wrong']} of {rate['n']}")
    assert found["all"]["n"] > 5000
    assert found["all"]["rate"] < MAX_FALSE_POSITIVE_RATE, found


def test_false_negatives_on_held_out_degenerate_outputs(bench, splits):
    _, test = splits
    found = bench.rates(bench.degenerate_outputs(test, seed=2), want=True)
    print(f"\nfalse negatives, test split: {found['all']['wrong']} of {found['all']['n']} degenerate outputs")
    for name, rate in found.items():
        print(f"  {name}: {rate['wrong']} of {rate['n']}")
    assert set(found) == {"char repeat", "phrase loop", "sentence loop", "tail loop", "numbered-list loop", "all"}
    assert all(rate["rate"] <= MAX_FALSE_NEGATIVE_RATE for rate in found.values()), found


def test_rates_on_a_real_models_outputs(bench):
    outputs = bench.model_outputs()
    healthy = [o["output"] for o in outputs if not o["degenerate"]]
    degenerate = [o for o in outputs if o["degenerate"]]
    flagged_healthy = [text for text in healthy if health.is_repetitive(text)]
    missed = [o for o in degenerate if not health.is_repetitive(o["output"])]
    print(
        f"\nSmolLM2: {len(flagged_healthy)} of {len(healthy)} healthy outputs flagged, "
        f"{len(missed)} of {len(degenerate)} degenerate outputs missed:"
    )
    for row in missed:
        print(f"  {row['why']}")
    assert len(outputs) == 36 and len(degenerate) == 25
    assert flagged_healthy == []
    # Its numbered lists stuck on one item (issue 25) are all caught.
    assert not [o for o in missed if "list" in o["why"]]
    # Measured: 8 of 25 missed, each a loop the flag leaves alone by design: two copies then the cap
    # (two copies are ordinary in real text), copies with fillers between, or a loop under half the
    # output. The `truncated` flag beside it tells that such an output ran to the cap.
    assert len(missed) <= 8
