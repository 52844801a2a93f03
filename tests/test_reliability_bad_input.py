"""Every mistake is one line, exit 2, nothing lost: bad inputs driven through ``alignment_tax.cli.main``.

Each case asserts exit code 2, exactly one non-empty stderr line, no traceback, and a phrase of
that line. Unreadable inputs and unwritable folders are real (see ``reliability_helpers``); a full
disk is in ``test_reliability_full_disk``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import (
    PAIRS,
    PREDICTIONS,
    a_spec,
    one_line_exit_2,
    permissions_enforced,
)

# -- an output path that is a file, or lies under a file -------------------------------------

OUTPUT_UNDER_A_FILE = [
    ("evaluate", ["evaluate", "--model", "m", "--tasks", "cmrc2018", "--output", "{file}/out"]),
    ("train", ["train", "--method", "sft", "--model", "m", "--train-data", PAIRS, "--output", "{file}/out"]),
    ("report", ["report", "{tmp}/no-run", "--out", "{file}/report.html"]),
    ("run", ["run", "{spec}", "--out", "{file}/out"]),
    ("make-tiny-model", ["make-tiny-model", "{file}/out"]),
    ("judge", ["judge", "--a", "{run}", "--b", "{run}", "--task", "bo_zh_mt", "--output", "{file}/j.json"]),
    ("score mt --items", ["score", "mt", "--predictions", PREDICTIONS, "--items", "{file}/items.jsonl"]),
    (
        "calibrate-tau",
        ["calibrate-tau", "--model", "m", "--data", PAIRS, "--embedder", "e", "--output", "{file}/t.json"],
    ),
]


def fill(argv, paths) -> list[str]:
    return [str(arg).format(**paths) for arg in argv]


@pytest.mark.parametrize("argv", [argv for _, argv in OUTPUT_UNDER_A_FILE], ids=[n for n, _ in OUTPUT_UNDER_A_FILE])
def test_an_output_under_a_file(argv, where, capsys):
    line = one_line_exit_2(fill(argv, where), capsys)
    assert f"{where['file']} is a file, not a folder" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--model", "m", "--tasks", "cmrc2018", "--output", "{file}"],
        ["train", "--method", "sft", "--model", "m", "--train-data", PAIRS, "--output", "{file}"],
        ["make-tiny-model", "{file}"],
        ["run", "{spec}", "--out", "{file}"],
    ],
    ids=["evaluate", "train", "make-tiny-model", "run"],
)
def test_an_output_folder_that_is_a_file(argv, where, capsys):
    assert "exists and is not a folder" in one_line_exit_2(fill(argv, where), capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "{tmp}/no-run", "--out", "{tmp}/r.html"],
        ["judge", "--a", "{run}", "--b", "{run}", "--task", "bo_zh_mt", "--output", "{tmp}/j"],
        ["score", "mt", "--predictions", PREDICTIONS, "--items", "{tmp}/items"],
        ["calibrate-tau", "--model", "m", "--data", PAIRS, "--embedder", "e", "--output", "{tmp}/t"],
    ],
    ids=["report", "judge", "score", "calibrate-tau"],
)
def test_an_output_file_that_is_a_folder(argv, where, capsys):
    for name in ("r.html", "j", "items", "t"):
        (where["tmp"] / name).mkdir()
    assert "folder" in one_line_exit_2(fill(argv, where), capsys)


# -- an output folder this user cannot write to (real permissions) ---------------------------

NOT_WRITABLE = [
    ("evaluate", ["evaluate", "--model", "m", "--tasks", "cmrc2018", "--output", "{locked}/out"]),
    ("train", ["train", "--method", "sft", "--model", "m", "--train-data", PAIRS, "--output", "{locked}/out"]),
    ("report", ["report", "{locked}/no-run", "--out", "{locked}/report.md"]),
    ("run", ["run", "{spec}", "--out", "{locked}/out"]),
    ("make-tiny-model", ["make-tiny-model", "{locked}/out"]),
    ("judge", ["judge", "--a", "{run}", "--b", "{run}", "--task", "bo_zh_mt", "--output", "{locked}/j.json"]),
    ("score mt --items", ["score", "mt", "--predictions", PREDICTIONS, "--items", "{locked}/items.jsonl"]),
    (
        "calibrate-tau",
        ["calibrate-tau", "--model", "m", "--data", PAIRS, "--embedder", "e", "--output", "{locked}/t.json"],
    ),
]


@pytest.mark.parametrize("argv", [argv for _, argv in NOT_WRITABLE], ids=[n for n, _ in NOT_WRITABLE])
def test_an_output_folder_that_is_not_writable(argv, where, capsys):
    locked = where["tmp"] / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    with permissions_enforced():
        line = one_line_exit_2(fill(argv, {**where, "locked": locked}), capsys)
    assert f"cannot write in {locked} (permission denied)" in line
    assert list(locked.iterdir()) == []


# -- an input that is not readable (real permissions) -----------------------------------------


@pytest.mark.parametrize(
    "argv, name, content",
    [
        (["score", "mt", "--predictions", "{input}"], "p.jsonl", PREDICTIONS.read_text(encoding="utf-8")),
        (["score", "cmrc", "--data", "{input}", "--predictions", "{input}"], "d.json", "{}"),
        (
            ["judge", "--a", "{input}", "--b", "{input}", "--task", "bo_zh_mt", "--output", "{dir}/j.json"],
            "a.jsonl",
            "",
        ),
        (
            ["train", "--method", "sft", "--model", "m", "--train-data", "{input}", "--output", "{dir}/t"],
            "pairs.jsonl",
            PAIRS.read_text(encoding="utf-8"),
        ),
        # A real adapter: evaluate checks the model paths before it reads any data.
        (
            [
                "evaluate",
                "--adapter",
                "{adapter}",
                "--tasks",
                "drift",
                "--drift-corpus",
                "{input}",
                "--output",
                "{dir}/e",
            ],
            "c.txt",
            "ཀ་ཁ་ག\n",
        ),
        (["run", "{input}"], "spec.yaml", "name: x\n"),
    ],
    ids=["score-predictions", "score-data", "judge-run", "train-data", "evaluate-data", "spec"],
)
def test_an_input_that_is_not_readable(argv, name, content, tmp_path, tiny_adapter_dir, capsys):
    unreadable = tmp_path / name
    unreadable.write_text(content, encoding="utf-8")
    unreadable.chmod(0)
    with permissions_enforced():
        line = one_line_exit_2(fill(argv, {"input": unreadable, "dir": tmp_path, "adapter": tiny_adapter_dir}), capsys)
    assert f"{unreadable}: permission denied" in line


def test_evaluate_data_that_is_not_readable(tmp_path, tiny_lm_dir, capsys):
    data = tmp_path / "cmrc.json"
    data.write_text(json.dumps({"data": []}), encoding="utf-8")
    data.chmod(0)
    argv = [
        "evaluate",
        "--model",
        tiny_lm_dir,
        "--tasks",
        "cmrc2018",
        "--data",
        f"cmrc2018={data}",
        "--output",
        tmp_path / "e",
    ]
    with permissions_enforced():
        line = one_line_exit_2(argv, capsys)
    assert str(data) in line and "permission denied" in line


# -- values checked before anything loads -------------------------------------------------------

EVALUATE = ["evaluate", "--model", "m", "--tasks", "cmrc2018", "--output", "{tmp}/out"]
TRAIN = ["train", "--method", "sft", "--model", "m", "--train-data", PAIRS, "--output", "{tmp}/out"]
CALIBRATE = ["calibrate-tau", "--model", "m", "--data", PAIRS, "--embedder", "e"]


@pytest.mark.parametrize(
    "argv, phrase",
    [
        ([*EVALUATE, "--limit", "0"], "argument --limit: the value must be ≥ 1, got 0"),
        ([*EVALUATE, "--limit", "-5"], "must be ≥ 1, got -5"),
        ([*EVALUATE, "--limit", str(10**30)], "must be between 1 and"),
        ([*EVALUATE, "--seed", "-1"], "argument --seed: the value must be between 0 and 4294967295"),
        ([*EVALUATE, "--seed", str(2**32)], "must be between 0 and 4294967295"),
        ([*EVALUATE, "--drift-window", "0"], "argument --drift-window: the value must be ≥ 2, got 0"),
        ([*EVALUATE, "--drift-stride", "0"], "argument --drift-stride: the value must be ≥ 1, got 0"),
        (
            [*EVALUATE, "--drift-window", "8", "--drift-stride", "8"],
            "--drift-stride must be at most --drift-window - 1",
        ),
        ([*CALIBRATE, "--temperature", "-1"], "argument --temperature: the value must be > 0, got -1.0"),
        ([*CALIBRATE, "--top-p", "0"], "argument --top-p"),
        ([*TRAIN, "--set", "training.learning_rate=abc"], "training.learning_rate must be a number, got 'abc'"),
        ([*TRAIN, "--set", "training.num_train_epochs=-1"], "training.num_train_epochs must be > 0, got -1"),
        ([*TRAIN, "--set", "training.per_device_train_batch_size=0"], "per_device_train_batch_size must be ≥ 1"),
        ([*TRAIN, "--max-steps", "0"], "argument --max-steps"),
    ],
)
def test_a_wrong_value_is_refused_before_anything_loads(argv, phrase, where, capsys):
    assert phrase in one_line_exit_2(fill(argv, where), capsys)
    assert not (where["tmp"] / "out").exists()


def test_a_drift_stride_past_the_window_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import alignment_tax.evaluation.evaluate as evaluate

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the drift settings were checked")

    monkeypatch.setattr(evaluate, "load_for_evaluation", no_loading)
    argv = [
        "evaluate",
        "--adapter",
        "a",
        "--tasks",
        "drift",
        "--drift-window",
        "16",
        "--drift-stride",
        "20",
        "--output",
        tmp_path / "out",
    ]
    assert "at most --drift-window - 1 (15), got 20" in one_line_exit_2(argv, capsys)


@pytest.mark.parametrize(
    "argv, phrase",
    [
        (
            ["evaluate", "--model", "m", "--tasks", "x", "--output", "o", "--limt", "3"],
            "alignment-tax evaluate: error: unrecognized arguments: --limt 3 (see alignment-tax evaluate --help)",
        ),
        (["evaluate", "--model", "m"], "alignment-tax evaluate: error: the following arguments are required: --tasks"),
        (
            ["score", "mt", "--predictions", "p", "--bogus"],
            "alignment-tax score mt: error: unrecognized arguments: --bogus",
        ),
        (["no-such-command"], "alignment-tax: error: argument COMMAND: invalid choice: 'no-such-command'"),
        (["evaluate", "--device", "tpu", "--tasks", "x", "--output", "o"], "(see alignment-tax evaluate --help)"),
    ],
)
def test_a_usage_error_is_one_line_with_the_help_hint(argv, phrase, capsys):
    assert phrase in one_line_exit_2(argv, capsys)


def test_a_usage_error_from_the_installed_command(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "alignment_tax", "evaluate", "--limit", "0"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.count("\n") == 1 and "usage:" not in completed.stderr
    assert completed.stderr.startswith("alignment-tax evaluate: error: argument --limit")


# -- specs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, phrase",
    [
        (
            {"train": {"s": {"method": "sft", "model": "base", "train_data": "d", "max_steps": "lots"}}},
            "train.s.max_steps must be a whole number, got 'lots'",
        ),
        (
            {"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"limit": -5}}},
            "evaluate.options.limit must be ≥ 1, got -5",
        ),
        ({"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"seed": "x"}}}, "evaluate.options.seed"),
        (
            {
                "train": {
                    "s": {"method": "sft", "model": "base", "train_data": "d", "set": {"training.learning_rate": "abc"}}
                }
            },
            "train.s: config: training.learning_rate must be a number",
        ),
        (
            {
                "train": {
                    "s": {"command": "awk '{print $1}' {train_data} > {output}/x", "model": "base", "train_data": "d"}
                }
            },
            "unknown placeholder {print $1}",
        ),
        (
            {"train": {"s": {"command": "echo {placeholder}", "model": "base", "train_data": "d"}}},
            "train.s.command: unknown placeholder {placeholder}",
        ),
        ({"train": {"s": {"command": "echo }", "model": "base", "train_data": "d"}}}, "Single '}'"),
        (
            {"train": {"s": {"method": "grpo", "model": "base", "train_data": "d", "embedder": "s"}}},
            "the stages s → s form a dependency cycle",
        ),
        (
            {
                "train": {
                    "a": {"method": "grpo", "model": "base", "train_data": "d", "embedder": "b"},
                    "b": {"method": "grpo", "model": "base", "train_data": "d", "embedder": "a"},
                }
            },
            "the stages a → b → a form a dependency cycle",
        ),
        ({"judge": {"options": {"limit": 0}}}, "judge.options.limit must be ≥ 1"),
    ],
)
def test_a_spec_mistake_fails_when_the_spec_loads(change, phrase, tmp_path, capsys):
    spec = a_spec(tmp_path / "spec.yaml", **change)
    assert phrase in one_line_exit_2(["run", spec, "--out", tmp_path / "out"], capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["", "# nothing\n", "name: x\noutput: runs/x\n", "models: {m: {path: x}}\n"])
def test_an_empty_spec_says_so(text, tmp_path, capsys):
    spec = tmp_path / "empty.yaml"
    spec.write_text(text, encoding="utf-8")
    assert "nothing to run" in one_line_exit_2(["run", spec, "--out", tmp_path / "out"], capsys)


def test_a_spec_that_is_not_utf8(tmp_path, capsys):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes("name: café\n".encode("latin-1"))
    assert f"{spec}: not UTF-8 text" in one_line_exit_2(["run", spec], capsys)


def test_a_stage_may_use_one_defined_after_it():
    from alignment_tax.experiments.spec_checks import stage_order

    stages = {"grpo": {"adapter": "sft", "embedder": "emb"}, "sft": {}, "emb": {}}
    assert stage_order(stages) == ["sft", "emb", "grpo"]


# -- models -----------------------------------------------------------------------------------------


def test_an_encoder_as_the_hf_judge(tiny_embedder_dir, where, capsys):
    argv = [
        "judge",
        "--a",
        where["run"],
        "--b",
        where["run"],
        "--task",
        "bo_zh_mt",
        "--judge-model",
        f"hf:{tiny_embedder_dir}",
        "--output",
        where["tmp"] / "j.json",
    ]
    assert "is not a causal language model (its config names BertModel)" in one_line_exit_2(argv, capsys)


@pytest.fixture
def adapter_with_an_empty_base(tiny_adapter_dir, tmp_path) -> tuple[Path, Path]:
    empty = tmp_path / "empty-base"
    empty.mkdir()
    adapter = Path(shutil.copytree(tiny_adapter_dir, tmp_path / "adapter"))
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(empty)
    (adapter / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return adapter, empty


@pytest.mark.slow
def test_an_adapter_whose_base_folder_is_empty(adapter_with_an_empty_base, tmp_path, capsys):
    adapter, empty = adapter_with_an_empty_base
    argv = [
        "evaluate",
        "--adapter",
        adapter,
        "--tasks",
        "cmrc2018",
        "--samples",
        "--limit",
        "1",
        "--output",
        tmp_path / "out",
    ]
    assert f"model folder {empty} is empty" in one_line_exit_2(argv, capsys)
    argv = ["make-tiny-model", tmp_path / "a2", "--kind", "adapter", "--base-model", empty]
    assert f"--base-model folder {empty} is empty" in one_line_exit_2(argv, capsys)
