"""End to end: `alignment-tax evaluate` on a tiny model and a tiny adapter over the real data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from alignment_tax.cli import main

TASKS = "cmrc2018,bo_zh_mt,bo_headline"
LIMIT = 3


def evaluate_args(output, shared_data, *extra):
    return [
        "evaluate",
        "--tasks",
        TASKS,
        "--limit",
        str(LIMIT),
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--data-dir",
        str(shared_data),
        "--output",
        str(output),
        *map(str, extra),
    ]


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory, shared_data, tiny_lm_dir, tiny_adapter_dir, tiny_embedder_dir):
    root = tmp_path_factory.mktemp("runs")
    output = root / "adapter"
    args = evaluate_args(output, shared_data, "--model", tiny_lm_dir, "--adapter", tiny_adapter_dir)
    assert main([*args, "--base", "--embedder", str(tiny_embedder_dir)]) == 0
    return output, json.loads((output / "results.json").read_text(encoding="utf-8"))


def read_samples(output, task):
    lines = (output / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_results_carry_metrics_provenance_and_config(adapter_run, tiny_lm_dir, tiny_adapter_dir):
    _, results = adapter_run
    assert results["model"] == str(tiny_lm_dir) and results["adapter"] == str(tiny_adapter_dir)
    assert set(results["tasks"]) == set(TASKS.split(","))
    cmrc = results["tasks"]["cmrc2018"]
    assert {"em", "f1", "average", "em_stderr", "f1_stderr", "average_stderr"} <= set(cmrc)
    assert cmrc["average"] == pytest.approx((cmrc["em"] + cmrc["f1"]) / 2)
    assert {"bleu", "chrf", "lang_consistency", "similarity", "bleu_stderr"} <= set(results["tasks"]["bo_zh_mt"])
    assert {"rouge_l", "rouge_1", "rouge_2", "lang_consistency", "similarity"} <= set(results["tasks"]["bo_headline"])
    assert "tok:zh" in results["signatures"]["bo_zh_mt"]["bleu"]
    for package in ("python", "torch", "transformers", "peft", "trl", "lm-eval", "sacrebleu", "nltk"):
        assert results["versions"][package]
    assert results["data"]["bo_zh_mt"]["n_docs"] == 450 and len(results["data"]["bo_zh_mt"]["sha256"]) == 64
    assert results["config"]["limit"] == LIMIT and results["config"]["dtype"] == "float32"
    assert results["config"]["generation"]["cmrc2018"]["do_sample"] is False
    assert results["seed"] == 1234 and results["started"] <= results["finished"]


def test_samples_agree_with_aggregates(adapter_run):
    output, results = adapter_run
    for task in TASKS.split(","):
        items = read_samples(output, task)
        assert len(items) == LIMIT
        for item in items:
            assert {"id", "source", "input", "output", "reference"} <= set(item)
            assert "<|im_start|>user" in item["input"]
        for metric, value in results["tasks"][task].items():
            if metric.endswith("_stderr") or metric in ("bleu", "chrf"):
                continue  # corpus-level: the aggregate is not a mean of sentence scores
            field = "truncated" if metric == "truncated_rate" else metric  # the rate of the items' flags
            assert sum(item[field] for item in items) / LIMIT == pytest.approx(value), (task, metric)
    cmrc_item = read_samples(output, "cmrc2018")[0]
    assert isinstance(cmrc_item["reference"], list) and "passage" in json.dumps(cmrc_item["source"])


def test_generation_tasks_record_output_health(adapter_run):
    output, results = adapter_run
    base = json.loads(Path(results["base"]["results"]).read_text(encoding="utf-8"))
    for task in TASKS.split(","):
        items = read_samples(output, task)
        health = results["health"][task]
        assert health["n"] == LIMIT and set(base["health"][task]) == set(health)
        assert all(item["empty"] == (item["output"] == "") for item in items)
        assert health["empty_rate"] == pytest.approx(sum(item["empty"] for item in items) / LIMIT)
        assert health["repetition_rate"] == pytest.approx(sum(item["repetitive"] for item in items) / LIMIT)
        if task == "cmrc2018":  # no target language: no off-script flag
            assert "off_script_rate" not in health and "off_script" not in items[0]
        else:
            assert health["off_script_rate"] == pytest.approx(1 - results["tasks"][task]["lang_consistency"])
        assert not set(results["tasks"][task]) & {"empty_rate", "repetition_rate", "off_script_rate"}


def test_tax_is_candidate_minus_base(adapter_run):
    _, results = adapter_run
    base = results["base"]
    assert base["via"] == "disabled adapter" and base["reused"] is False
    base_results = json.loads(Path(base["results"]).read_text(encoding="utf-8"))
    assert base_results["adapter"] is None
    for task, deltas in results["tax"].items():
        for metric, delta in deltas.items():
            expected = results["tasks"][task][metric] - base_results["tasks"][task][metric]
            assert delta == pytest.approx(expected), (task, metric)
    assert set(results["tax"]["cmrc2018"]) == {"em", "f1", "average"}


def test_base_result_is_reused_from_the_output_root(
    adapter_run, shared_data, tiny_lm_dir, tiny_adapter_dir, tiny_embedder_dir
):
    output, first = adapter_run
    second_output = output.parent / "adapter-again"
    args = evaluate_args(second_output, shared_data, "--model", tiny_lm_dir, "--adapter", tiny_adapter_dir)
    assert main([*args, "--base", "--embedder", str(tiny_embedder_dir)]) == 0
    second = json.loads((second_output / "results.json").read_text(encoding="utf-8"))
    assert second["base"]["reused"] is True and second["base"]["results"] == first["base"]["results"]
    assert second["tax"] == first["tax"]


def test_a_base_answered_at_another_batch_size_is_not_reused(
    adapter_run, shared_data, tiny_lm_dir, tiny_adapter_dir, tiny_embedder_dir
):
    # Padding changes greedy outputs: the tax must not compare answers batched differently.
    output, first = adapter_run
    other = output.parent / "adapter-batch-1"
    args = evaluate_args(other, shared_data, "--model", tiny_lm_dir, "--adapter", tiny_adapter_dir)
    args[args.index("--batch-size") + 1] = "1"
    assert main([*args, "--base", "--embedder", str(tiny_embedder_dir)]) == 0
    second = json.loads((other / "results.json").read_text(encoding="utf-8"))
    assert second["base"]["reused"] is False and second["base"]["key"] != first["base"]["key"]
    key_settings = json.loads(Path(second["base"]["results"]).read_text(encoding="utf-8"))["config"]
    assert key_settings["batch_size"] == 1 and key_settings["device"] == "cpu"


def test_rerun_reuses_every_generation(adapter_run, shared_data, tiny_lm_dir, tiny_adapter_dir, monkeypatch):
    from lm_eval.models.huggingface import HFLM

    output, first = adapter_run

    def no_new_generations(self, requests, disable_tqdm=False):
        if requests:
            raise AssertionError(f"{len(requests)} generations were made again")
        return []

    monkeypatch.setattr(HFLM, "generate_until", no_new_generations)
    # Same arguments minus the base and embedder: every candidate generation comes from the cache.
    args = evaluate_args(output, shared_data, "--model", tiny_lm_dir, "--adapter", tiny_adapter_dir)
    assert main(args) == 0
    again = json.loads((output / "results.json").read_text(encoding="utf-8"))
    assert again["tasks"]["cmrc2018"] == first["tasks"]["cmrc2018"]


def test_full_checkpoint_with_a_separately_loaded_base(tmp_path, shared_data, tiny_lm_dir):
    output = tmp_path / "full"
    args = ["evaluate", "--tasks", "cmrc2018", "--limit", "2", "--data-dir", str(shared_data)]
    assert main([*args, "--model", str(tiny_lm_dir), "--base", str(tiny_lm_dir), "--output", str(output)]) == 0
    results = json.loads((output / "results.json").read_text(encoding="utf-8"))
    assert results["base"]["via"] == "separate load"
    assert all(delta == 0 for delta in results["tax"]["cmrc2018"].values())  # the same weights


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "alignment_tax", *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown_task", "unknown task 'no_such_task'"),
        ("missing_model", "model not found"),
        ("missing_adapter", "adapter not found"),
        ("adapter_mismatch", "does not fit base"),
        ("data_dir_lacks_file", "cmilbench_bo_zh.jsonl"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    case, message, tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir, mismatched_base
):
    cmrc_only = tmp_path / "data"  # has CMRC 2018 but no translation pairs
    (cmrc_only / "cmrc2018").mkdir(parents=True)
    (cmrc_only / "cmrc2018" / "cmrc2018_dev.json").symlink_to(shared_data / "cmrc2018" / "cmrc2018_dev.json")
    base = ["evaluate", "--output", tmp_path / "out", "--limit", "1", "--data-dir", cmrc_only]
    args = {
        "unknown_task": [*base, "--model", tiny_lm_dir, "--tasks", "cmrc2018,no_such_task"],
        "missing_model": [*base, "--model", tmp_path / "nope", "--tasks", "cmrc2018"],
        "missing_adapter": [*base, "--model", tiny_lm_dir, "--adapter", tmp_path / "nope", "--tasks", "cmrc2018"],
        "adapter_mismatch": [*base, "--model", mismatched_base, "--adapter", tiny_adapter_dir, "--tasks", "cmrc2018"],
        "data_dir_lacks_file": [*base, "--model", tiny_lm_dir, "--tasks", "bo_zh_mt"],
    }[case]
    completed = run_cli(*args)
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignment-tax: error:"), completed.stderr[-2000:]
    assert message in lines[0]
    assert "Traceback" not in completed.stderr
