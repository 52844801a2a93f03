"""The GPU paths in one short run, for a session lent a device machine (CI has no GPU).

    python tests/gpu/check.py [--out DIR] [--summary FILE]

Runs ``tests/gpu/check.yaml`` (the demo's stages on the 27M ``small`` model: cold-start SFT,
GRPO with the semantic reward and its calibration, evaluation with drift, the ``hf:`` judge
and the report) on whatever torch sees, then checks what a GPU run must show: CUDA chosen,
bf16 chosen where the card has it (training precision and evaluation dtype), finite losses,
rewards and drift, and every artefact written. Prints one JSON summary (also written to
``--summary``) and exits 1 if a check fails. It runs on a CPU too, where fp32 is expected.

On the device machines, whose image lacks some of this project's packages, carry wheels made
by ``tests/gpu/fetch_wheels.sh`` (see its header for the ``run`` command).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def check(out: Path) -> dict:
    import torch

    from alignment_tax.experiments.runner import run_experiment
    from alignment_tax.experiments.spec import load_spec

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    started = time.perf_counter()
    run_experiment(load_spec(HERE / "check.yaml", output=str(out)))
    seconds = time.perf_counter() - started

    checks: dict[str, bool] = {}
    summary: dict = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "seconds": round(seconds, 1),
        "checks": checks,
    }
    for stage in ("sft", "grpo"):
        record = json.loads((out / "train" / stage / "train_config.json").read_text(encoding="utf-8"))
        log = [
            json.loads(line)
            for line in (out / "train" / stage / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        losses = [entry.get("loss", entry.get("train_loss")) for entry in log if {"loss", "train_loss"} & set(entry)]
        summary[f"{stage}_precision"] = record["resolved"]["precision"]
        checks[f"{stage}: precision {'bf16' if bf16 else 'fp32'}"] = record["resolved"]["precision"] == (
            "bf16" if bf16 else "fp32"
        )
        checks[f"{stage}: finite losses"] = bool(losses) and all(_finite(loss) for loss in losses)
        checks[f"{stage}: adapter written"] = (
            out / "train" / stage / "adapter" / "adapter_model.safetensors"
        ).is_file()
        if stage == "grpo":
            rewards = [entry["reward"] for entry in log if "reward" in entry]
            checks["grpo: finite rewards"] = bool(rewards) and all(_finite(r) for r in rewards)
    for run in ("sft", "grpo"):
        results = json.loads((out / "eval" / run / "results.json").read_text(encoding="utf-8"))
        summary[f"eval_{run}"] = {
            "device": results["config"]["device"],
            "dtype": results["config"]["dtype"],
            "kl_mean": results["drift"]["kl"]["mean"],
        }
        checks[f"eval {run}: device {'cuda' if cuda else 'cpu'}"] = results["config"]["device"] == (
            "cuda" if cuda else "cpu"
        )
        checks[f"eval {run}: dtype {'bfloat16' if bf16 else 'float32'}"] = results["config"]["dtype"] == (
            "bfloat16" if bf16 else "float32"
        )
        checks[f"eval {run}: finite drift"] = all(
            _finite(results["drift"][key]["mean"]) for key in ("kl", "nll", "base_nll")
        )
        checks[f"eval {run}: every task scored"] = set(results["tasks"]) == {"cmrc2018", "bo_zh_mt", "bo_headline"}
    judge = json.loads(next((out / "judge").glob("*/judge.json")).read_text(encoding="utf-8"))
    checks["judge: complete"] = judge["complete"] is True and judge["n_pairs"] > 0
    checks["report: html and md"] = (out / "report.html").is_file() and (out / "report.md").is_file()
    summary["passed"] = all(checks.values())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu-check", help="the study's folder (a rerun reuses finished stages)")
    parser.add_argument("--summary", help="also write the JSON summary here")
    args = parser.parse_args(argv)
    summary = check(Path(args.out))
    text = json.dumps(summary, indent=2)
    print(text)
    if args.summary:
        Path(args.summary).write_text(text + "\n", encoding="utf-8")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
