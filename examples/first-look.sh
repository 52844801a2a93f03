#!/usr/bin/env bash
# A first look, offline: build a tiny LM and embedder locally, then score bundled sample outputs.
# Usage: bash examples/first-look.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-first-look}

alignment-tax make-tiny-model "$out/tiny-lm" --kind lm --size tiny
alignment-tax make-tiny-model "$out/tiny-embedder" --kind embedder --size tiny

echo "== CMRC 2018 (official scorer semantics) on a trial-set sample"
alignment-tax score cmrc --data "$here/data/cmrc2018_trial_sample.json" \
    --predictions "$here/data/cmrc2018_trial_sample_predictions.json"

echo "== Tibetan→Chinese translation outputs, similarity from the tiny embedder"
alignment-tax score mt --predictions "$here/data/openpecha_bo_zh_sample_predictions.jsonl" \
    --target-lang zh --embedder "$out/tiny-embedder" --items "$out/mt_items.jsonl"
echo "per-item values: $out/mt_items.jsonl"
