#!/usr/bin/env bash
# A first look, offline, on a laptop CPU: build a tiny LM, a LoRA adapter on it and an embedder,
# evaluate the adapter against its base on the bundled samples (the tax is candidate − base, plus
# drift), judge the two blind with the tiny LM as an offline judge, write the HTML report, and
# score a file of existing answers with the official CMRC 2018 semantics.
# Usage: bash examples/first-look.sh [OUT_DIR]   (default: runs/first-look, which git ignores)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-runs/first-look}

alignment-tax make-tiny-model "$out/tiny-lm" --kind lm --size tiny
alignment-tax make-tiny-model "$out/tiny-adapter" --kind adapter --base-model "$out/tiny-lm"
alignment-tax make-tiny-model "$out/tiny-embedder" --kind embedder --size tiny

echo "== evaluate: the adapter against its base (adapter disabled) on the bundled samples"
alignment-tax evaluate --adapter "$out/tiny-adapter" --base --samples --limit 20 \
    --tasks cmrc2018,bo_zh_mt,bo_headline,drift \
    --embedder "$out/tiny-embedder" --output "$out/runs/tiny-adapter"

echo "== judge: the adapter against its base, blind, with the tiny LM as an offline judge"
alignment-tax judge --a "$out/runs/tiny-adapter" --b "$(dirname "$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"]["results"])' "$out/runs/tiny-adapter/results.json")")" \
    --task bo_zh_mt --judge-model "hf:$out/tiny-lm" --limit 10 --output "$out/runs/judge-bo_zh_mt.json"

echo "== report"
alignment-tax report "$out/runs/tiny-adapter" --judge "$out/runs/judge-bo_zh_mt.json" --out "$out/report.html"

echo "== score: existing CMRC answers, exactly as the official scorer"
alignment-tax score cmrc --data "$here/data/cmrc2018_trial_sample.json" \
    --predictions "$here/data/cmrc2018_trial_sample_predictions.json"

echo
echo "report: $out/report.html"
echo "results: $out/runs/tiny-adapter/results.json, per-item records: $out/runs/tiny-adapter/samples/"
echo "(a random tiny model's numbers show the pipeline working, not any method's merit)"
