#!/usr/bin/env bash
# A first look, offline, on a laptop CPU: build a tiny LM, a LoRA adapter on it and an embedder,
# evaluate the adapter against its base on bundled samples (the tax is candidate − base), and
# score a file of existing answers with the official CMRC 2018 semantics.
# Usage: bash examples/first-look.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-first-look}

alignment-tax make-tiny-model "$out/tiny-lm" --kind lm --size tiny
alignment-tax make-tiny-model "$out/tiny-adapter" --kind adapter --base-model "$out/tiny-lm"
alignment-tax make-tiny-model "$out/tiny-embedder" --kind embedder --size tiny

echo "== evaluate: the adapter against its base (adapter disabled), CMRC 2018 tax and Tibetan→Chinese"
alignment-tax evaluate --adapter "$out/tiny-adapter" --base \
    --tasks cmrc2018,bo_zh_mt \
    --data cmrc2018="$here/data/cmrc2018_trial_sample.json" \
    --data bo_zh_mt="$here/data/openpecha_bo_zh_sample.jsonl" \
    --embedder "$out/tiny-embedder" --output "$out/runs/tiny-adapter"

echo "== score: existing CMRC answers, exactly as the official scorer"
alignment-tax score cmrc --data "$here/data/cmrc2018_trial_sample.json" \
    --predictions "$here/data/cmrc2018_trial_sample_predictions.json"

echo
echo "results: $out/runs/tiny-adapter/results.json, per-item records: $out/runs/tiny-adapter/samples/"
echo "(a random tiny model's numbers show the pipeline working, not any method's merit)"
