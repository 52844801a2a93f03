"""Experiment specs: validation, content-cached stages, and a shortened demo end to end."""

import json
from pathlib import Path

import pytest
import yaml

from alignment_tax.errors import UserError
from alignment_tax.experiments.runner import DONE_FILE, run_experiment, run_stage
from alignment_tax.experiments.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs" / "experiments").glob("*.yaml"))
DEMO = REPO / "alignment_tax" / "experiments" / "specs" / "demo.yaml"


@pytest.mark.parametrize("path", [*SHIPPED, DEMO], ids=lambda p: p.stem)
def test_shipped_specs_and_their_training_configs_are_valid(path):
    from alignment_tax.trainers import load_config

    spec = load_spec(path)
    assert spec.train and spec.evaluate["tasks"]
    for stage in spec.train.values():
        config = stage.get("config")
        config = str((path.parent / config).resolve()) if config else None
        overrides = [f"{key}={json.dumps(value)}" for key, value in (stage.get("set") or {}).items()]
        load_config(stage["method"], config, overrides, task=stage.get("task"), max_steps=stage.get("max_steps"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": "blue"}, "unknown key(s) colour"),
        ({"train": {"s": {"method": "sft", "model": "nope", "train_data": "d"}}}, "'nope' is not a defined model"),
        ({"train": {"s": {"method": "dpo", "model": "base", "train_data": "d"}}}, "method should be one of"),
        ({"train": {"s": {"method": "sft", "model": "base", "train_data": "zzz"}}}, "not defined under data"),
        ({"judge": {"pairs": [{"a": "s", "b": "x", "task": "bo_zh_mt"}]}}, "not an evaluated run"),
        ({"judge": {"options": {"concurency": 4}}}, "judge.options: unknown key(s) concurency"),
        ({"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"limt": 3}}}, "unknown key(s) limt"),
        ({"evaluate": {"runs": ["s"], "tasks": ["cmrc2018", "bo_zh_mtt"]}}, "evaluate.tasks: unknown task 'bo_zh_mtt'"),
        (
            {"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"engine": "tgi"}}},
            "'tgi' is not one of hf, vllm, server",
        ),
        (
            {"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"max_gen_toks": {"cmrc2018": 0}}}},
            "evaluate.options.max_gen_toks: --max-gen-toks expects TASK=N",
        ),
        (
            {"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"vllm": {"tp": 2}}}},
            "evaluate.options.vllm: unknown key(s) tp",
        ),
        (
            {"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"server": {"url": "http://x/v1"}}}},
            "evaluate.options.server: unknown key(s) url",
        ),
        ({"models": {"base": {"tiny": {"kind": "lm", "seed": "x"}}}}, "models.base.tiny.seed must be a whole number"),
        ({"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "include_base": "no"}}, "include_base should be true or"),
        ({"judge": {"pairs": [{"a": "s", "b": "base"}]}}, "task: name the task whose outputs are judged, got None"),
        ({"report": {"formats": "html"}}, "report.formats should be a list of names, got 'html'"),
    ],
)
def test_spec_mistakes_are_one_line_errors(tmp_path, change, message):
    document = {
        "models": {"base": {"tiny": {"kind": "lm"}}},
        "data": {"d": "samples:mt_train"},
        "train": {"s": {"method": "sft", "model": "base", "train_data": "d"}},
        "evaluate": {"runs": ["s"], "tasks": ["cmrc2018"]},
    }
    document.update(change)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_spec(path)


def test_a_stage_runs_once_and_reruns_when_its_inputs_change(tmp_path):
    calls = []

    def work(folder):
        calls.append(folder.name)
        (folder / "made.txt").write_text("x")
        return {"n": len(calls)}

    key, summary = run_stage(tmp_path / "stage", {"lr": 1}, work)
    assert run_stage(tmp_path / "stage", {"lr": 1}, work) == (key, summary) and len(calls) == 1
    (tmp_path / "stage" / "stale.txt").write_text("from the old inputs")
    new_key, new_summary = run_stage(tmp_path / "stage", {"lr": 2}, work)
    assert new_key != key and new_summary == {"n": 2}
    assert not (tmp_path / "stage" / "stale.txt").exists()  # what the old inputs made is gone


def test_an_interrupted_stage_reruns_in_place(tmp_path):
    def crash(folder):
        (folder / "checkpoint").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_stage(tmp_path / "stage", {"a": 1}, crash)
    kept = []
    run_stage(tmp_path / "stage", {"a": 1}, lambda folder: kept.append((folder / "checkpoint").exists()) or {})
    assert kept == [True]  # same inputs: the partial work is there to resume from


SHORT_DEMO = """
name: short-demo
models:
  base: {tiny: {kind: lm, size: tiny, seed: 0}}
  embedder: {tiny: {kind: embedder, size: tiny, seed: 0}}
data:
  mt_train: samples:mt_train
train:
  sft_cold_start:
    {method: sft, model: base, train_data: mt_train, max_steps: 2,
     set: {data.limit: 16, global_batch_size: 8, training.per_device_train_batch_size: 8}}
  grpo:
    method: grpo
    model: base
    adapter: sft_cold_start
    embedder: embedder
    train_data: mt_train
    max_steps: 1
    set: {data.skip: 16, data.limit: 8, global_batch_size: 8, training.per_device_train_batch_size: 8,
          training.num_generations: 4, training.max_completion_length: 8, reward.tau: 0.2}
evaluate:
  runs: [sft_cold_start, grpo]
  tasks: [cmrc2018, bo_zh_mt, drift]
  options: {samples: true, limit: 4, embedder: embedder, max_gen_toks: {cmrc2018: 16, bo_zh_mt: 16}}
judge:
  judge_model: hf:base
  options: {limit: 2}
  pairs: [{a: grpo, b: sft_cold_start, task: bo_zh_mt}]
report: {baseline: sft_cold_start, formats: [html, md]}
"""


def test_short_demo_end_to_end_then_cached_then_partly_rerun(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text(SHORT_DEMO, encoding="utf-8")
    out = tmp_path / "run"
    first = run_experiment(load_spec(path, output=str(out)))
    assert Path(first["reports"][0]).exists() and Path(first["reports"][1]).exists()
    results = json.loads((out / "eval" / "grpo" / "results.json").read_text(encoding="utf-8"))
    assert {"cmrc2018", "bo_zh_mt"} <= set(results["tasks"]) and results["drift"]["n_tokens"] > 0
    judge = json.loads(Path(first["judgements"][0]).read_text(encoding="utf-8"))
    assert judge["n_pairs"] == 2
    log = [json.loads(line) for line in (out / "train" / "grpo" / "train_log.jsonl").read_text().splitlines()]
    assert any("rewards/similarity/mean" in entry or any(k.startswith("rewards/") for k in entry) for entry in log)

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob(DONE_FILE)}
    assert run_experiment(load_spec(path, output=str(out)))["stages"] == first["stages"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob(DONE_FILE)} == stamps  # nothing reran

    path.write_text(SHORT_DEMO.replace("reward.tau: 0.2", "reward.tau: 0.3"), encoding="utf-8")
    third = run_experiment(load_spec(path, output=str(out)))
    changed = {name for name, key in third["stages"].items() if first["stages"].get(name) != key}
    assert changed == {"grpo", "eval:grpo", "judge:grpo_vs_sft_cold_start_bo_zh_mt"}


def test_a_custom_training_command_is_a_stage(tmp_path):
    spec_path = tmp_path / "custom.yaml"
    command = "alignment-tax make-tiny-model {output}/adapter --kind adapter --base-model {model} --seed 3"
    spec_path.write_text(
        yaml.safe_dump(
            {
                "models": {"base": {"tiny": {"kind": "lm"}}},
                "data": {"d": "samples:mt_train"},
                "train": {"mine": {"command": command, "model": "base", "train_data": "d"}},
                "evaluate": {"runs": ["mine"], "tasks": ["cmrc2018"], "options": {"samples": True, "limit": 2}},
            }
        ),
        encoding="utf-8",
    )
    summary = run_experiment(load_spec(spec_path, output=str(tmp_path / "out")))
    results = json.loads((Path(summary["evaluations"]["mine"]) / "results.json").read_text(encoding="utf-8"))
    assert results["adapter"].endswith("adapter") and set(results["tax"]) == {"cmrc2018"}

    spec_path.write_text(spec_path.read_text().replace("--seed 3", "--seed 3 && false"), encoding="utf-8")
    with pytest.raises(UserError, match="the command failed"):
        run_experiment(load_spec(spec_path, output=str(tmp_path / "out")))


def test_demo_help_says_what_the_demo_does(capsys):
    from alignment_tax.cli import main

    assert main(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "end to end" in out and "no network" in out


def test_the_demo_says_once_that_its_short_caps_are_its_choice():
    from alignment_tax.experiments.commands import demo_caps_note

    note = demo_caps_note(load_spec(DEMO))
    assert "cmrc2018 32" in note and "bo_zh_mt 64" in note and "on purpose" in note


@pytest.mark.parametrize("warn", [True, False])
def test_truncation_warnings_follow_the_option(warn, monkeypatch, capsys):
    import contextlib
    from types import SimpleNamespace

    from alignment_tax.evaluation import evaluate as module
    from alignment_tax.evaluation.roles import Role

    run = SimpleNamespace(scores={"cmrc2018": SimpleNamespace(metrics={"truncated_rate": 0.5})})
    monkeypatch.setattr(module, "run_role", lambda *a: run)
    monkeypatch.setattr(module, "GenerationCache", lambda *a: SimpleNamespace(close=lambda: None))
    evaluation = module._Evaluation.__new__(module._Evaluation)
    evaluation.options = module.EvaluateOptions(tasks=["cmrc2018"], output="", warn_truncation=warn)
    evaluation.caps = {"cmrc2018": {"max_gen_toks": 32}}
    evaluation.task_names = evaluation.task_manager = evaluation.encoder = None
    engine = SimpleNamespace(lm=lambda role, cache: contextlib.nullcontext(None))
    evaluation._run_role(engine, Role(model="m"), Path("unused"), "f", "x")
    assert ("stopped at the 32-token cap" in capsys.readouterr().err) == warn
