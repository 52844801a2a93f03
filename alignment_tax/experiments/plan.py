"""What a spec would run and what its report would hold, without running anything (``run --dry-run``).

The plan lists the models it loads or builds, the training stages in order with their inputs
and effective configuration files, the evaluations (run × task), the judge pairs, and the
report's rows (one per evaluated run, the baseline and controls marked) with the metrics each
task contributes. A replication spec can be checked against the paper's table this way before
any GPU hour is spent.
"""

from __future__ import annotations

from typing import Any

from alignment_tax.experiments.spec import Spec, stage_config_path

# What each of the package's tasks puts in the report (similarity only with an embedder).
TASK_METRICS = {
    "cmrc2018": ["em", "f1", "average"],
    "bo_zh_mt": ["bleu", "chrf", "lang_consistency", "similarity"],
    "zh_bo_mt": ["bleu", "chrf", "lang_consistency", "similarity"],
    "bo_headline": ["rouge_1", "rouge_2", "rouge_l", "lang_consistency", "similarity"],
    "drift": ["kl (mean, p50, p90, p99)", "nll", "delta_nll"],
}


def _model_line(model: dict[str, Any]) -> str:
    if "path" in model:
        return f"load {model['path']}"
    tiny = model["tiny"] or {}
    details = ", ".join(f"{k}={v}" for k, v in tiny.items())
    return f"build tiny ({details})" if details else "build tiny"


def _train_line(name: str, stage: dict[str, Any], spec: Spec) -> dict[str, Any]:
    if "command" in stage:
        return {
            "stage": name,
            "method": "command",
            "command": stage["command"],
            **{k: stage[k] for k in ("model", "adapter", "embedder", "train_data") if stage.get(k)},
        }
    line = {"stage": name, "method": stage["method"]}
    for key in ("model", "adapter", "embedder", "train_data", "task", "max_steps"):
        if stage.get(key) is not None:
            line[key] = stage[key]
    config = stage_config_path(spec, stage)
    line["config"] = config or f"the {stage['method']} preset"
    if stage.get("set"):
        line["set"] = dict(stage["set"])
    return line


def plan_experiment(spec: Spec) -> dict[str, Any]:
    """The stages ``run`` would execute for ``spec`` and the rows and columns its report would show."""
    evaluate = spec.evaluate or {}
    runs = list(evaluate.get("runs", []))
    tasks = list(evaluate.get("tasks", []))
    options = evaluate.get("options") or {}
    report = spec.report or {}
    controls = {run: role for role, run in (report.get("controls") or {}).items()}
    rows = []
    for run in runs:
        marks = [mark for mark, on in (("baseline", run == report.get("baseline")),) if on]
        if run in controls:
            marks.append(f"{controls[run]} control")
        rows.append({"run": run, "marks": marks})
    columns = {}
    for task in tasks:
        metrics = TASK_METRICS.get(task, ["the task's own metrics"])
        if "similarity" in metrics and not options.get("embedder"):
            metrics = [m for m in metrics if m != "similarity"]
        columns[task] = metrics
    judge = [f"{pair['a']} vs {pair['b']} on {pair['task']}" for pair in spec.judge.get("pairs", [])]
    return {
        "name": spec.name,
        "output": str(spec.output),
        "models": {name: _model_line(model) for name, model in spec.models.items()},
        "data": dict(spec.data),
        "train": [_train_line(name, stage, spec) for name, stage in spec.train.items()],
        "evaluate": [f"{run}: {', '.join(tasks)}" for run in runs]
        + [
            f"{run} swept at strengths {', '.join(f'{float(s):g}' for s in scales)}: {', '.join(tasks)}"
            for run, scales in (evaluate.get("sweep") or {}).items()
        ],
        "base_evaluated": bool(runs) and evaluate.get("include_base", True),
        "judge": judge,
        "report": {"rows": rows, "columns": columns, "judge_rows": judge, "formats": report.get("formats", ["html"])},
    }


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as the lines ``run --dry-run`` prints."""
    lines = [f"spec {plan['name']} -> {plan['output']} (dry run: nothing is run)"]
    for name, what in plan["models"].items():
        lines.append(f"  model {name}: {what}")
    for name, source in plan["data"].items():
        lines.append(f"  data {name}: {source}")
    for stage in plan["train"]:
        inputs = ", ".join(f"{k}={v}" for k, v in stage.items() if k not in ("stage", "method"))
        lines.append(f"  train {stage['stage']} ({stage['method']}): {inputs}")
    for line in plan["evaluate"]:
        lines.append(f"  evaluate {line}")
    if plan["base_evaluated"]:
        lines.append("  evaluate base (every run's tax is measured against it)")
    for line in plan["judge"]:
        lines.append(f"  judge {line}")
    lines.append(f"  report ({', '.join(plan['report']['formats'])}) rows:")
    for row in plan["report"]["rows"]:
        marks = f" [{', '.join(row['marks'])}]" if row["marks"] else ""
        lines.append(f"    {row['run']}{marks}")
    for task, metrics in plan["report"]["columns"].items():
        lines.append(f"  report columns {task}: {', '.join(metrics)}")
    return "\n".join(lines)
