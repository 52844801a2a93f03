"""Every mistake is one line, exit 2, nothing lost: bad inputs driven through ``alignment_tax.cli.main``.

Each case asserts exit code 2, exactly one non-empty stderr line, no traceback, and a phrase of
that line. "Not readable" and "not writable" are real: permissions are enforced by running the
command as an unprivileged user (``seteuid``) when the tests run as root. A full disk is a real
``/dev/full`` or a small tmpfs where mounting one is allowed (else those cases are skipped, and
the same failures are also simulated so that they run everywhere).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from alignment_tax.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
PAIRS = EXAMPLES / "openpecha_bo_zh_sample.jsonl"
PREDICTIONS = EXAMPLES / "openpecha_bo_zh_sample_predictions.jsonl"
NOBODY = 65534


def one_line_exit_2(argv, capsys) -> str:
    """Run the CLI; assert exit 2 and one stderr line without a traceback; return that line."""
    code = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def ends_in_one_error_line(argv, capsys) -> str:
    """For a failure after work began: exit 2, no traceback, and one error line, the last one.

    The libraries' progress bars may come before it: they report work, not the failure.
    """
    code = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], err
    return lines[-1]


@contextmanager
def unprivileged():
    """File permissions apply inside: root becomes ``nobody`` for the duration (a real user needs nothing)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def shared_dir():
    """A folder anyone may enter and write in, outside pytest's private (0700) temporary root."""
    folder = Path(tempfile.mkdtemp(prefix="at-reliability-"))
    folder.chmod(0o777)
    yield folder
    for path in folder.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def a_spec(path: Path, **changes) -> Path:
    document = {
        "models": {"base": {"tiny": {"kind": "lm"}}, "emb": {"tiny": {"kind": "embedder"}}},
        "data": {"d": "samples:mt_train"},
        "train": {"s": {"method": "sft", "model": "base", "train_data": "d"}},
        "evaluate": {"runs": ["s"], "tasks": ["cmrc2018"]},
    }
    document.update(changes)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def where(tmp_path) -> dict[str, Path]:
    """The paths the argv templates name: a regular file, a judge run, specs."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x", encoding="utf-8")
    run = write_jsonl(tmp_path / "run.jsonl", [{"id": "1", "source": "ཀ", "output": "甲", "reference": "乙"}])
    return {"file": a_file, "run": run, "spec": a_spec(tmp_path / "spec.yaml"), "tmp": tmp_path}


# -- an output path that is a file, or lies under a file -------------------------------------

OUTPUT_UNDER_A_FILE = [
    ("evaluate", ["evaluate", "--model", "m", "--tasks", "cmrc2018", "--output", "{file}/out"]),
    ("train", ["train", "--method", "sft", "--model", "m", "--train-data", PAIRS, "--output", "{file}/out"]),
    ("report", ["report", "{tmp}/no-run", "--out", "{file}/report.html"]),
    ("run", ["run", "{spec}", "--out", "{file}/out"]),
    ("make-tiny-model", ["make-tiny-model", "{file}/out"]),
    ("judge", ["judge", "--a", "{run}", "--b", "{run}", "--task", "bo_zh_mt", "--output", "{file}/j.json"]),
    ("score mt --items", ["score", "mt", "--predictions", PREDICTIONS, "--items", "{file}/items.jsonl"]),
    ("calibrate-tau", ["calibrate-tau", "--model", "m", "--data", PAIRS, "--embedder", "e", "--output", "{file}/t.json"]),
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
    ("calibrate-tau", ["calibrate-tau", "--model", "m", "--data", PAIRS, "--embedder", "e", "--output", "{locked}/t.json"]),
]


@pytest.mark.parametrize("argv", [argv for _, argv in NOT_WRITABLE], ids=[n for n, _ in NOT_WRITABLE])
def test_an_output_folder_that_is_not_writable(argv, where, shared_dir, capsys):
    locked = shared_dir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    paths = {**where, "locked": locked, "run": shutil.copy(where["run"], shared_dir / "run.jsonl"),
             "spec": shutil.copy(where["spec"], shared_dir / "spec.yaml")}  # fmt: skip
    with unprivileged():
        line = one_line_exit_2(fill(argv, paths), capsys)
    assert f"cannot write in {locked} (permission denied)" in line
    assert list(locked.iterdir()) == []


# -- an input that is not readable (real permissions) -----------------------------------------


@pytest.mark.parametrize(
    "argv, name, content",
    [
        (["score", "mt", "--predictions", "{input}"], "p.jsonl", PREDICTIONS.read_text(encoding="utf-8")),
        (["score", "cmrc", "--data", "{input}", "--predictions", "{input}"], "d.json", "{}"),
        (["judge", "--a", "{input}", "--b", "{input}", "--task", "bo_zh_mt", "--output", "{dir}/j.json"], "a.jsonl", ""),
        (["train", "--method", "sft", "--model", "m", "--train-data", "{input}", "--output", "{dir}/t"], "pairs.jsonl",
         PAIRS.read_text(encoding="utf-8")),
        (["evaluate", "--adapter", "a", "--tasks", "drift", "--drift-corpus", "{input}", "--output", "{dir}/e"], "c.txt",
         "ཀ་ཁ་ག\n"),
        (["run", "{input}"], "spec.yaml", "name: x\n"),
    ],
    ids=["score-predictions", "score-data", "judge-run", "train-data", "evaluate-data", "spec"],
)  # fmt: skip
def test_an_input_that_is_not_readable(argv, name, content, shared_dir, capsys):
    unreadable = shared_dir / name
    unreadable.write_text(content, encoding="utf-8")
    unreadable.chmod(0)
    with unprivileged():
        line = one_line_exit_2(fill(argv, {"input": unreadable, "dir": shared_dir}), capsys)
    assert f"{unreadable}: permission denied" in line


def test_evaluate_data_that_is_not_readable(shared_dir, tiny_lm_dir, capsys):
    data = shared_dir / "cmrc.json"
    data.write_text(json.dumps({"data": []}), encoding="utf-8")
    data.chmod(0)
    argv = ["evaluate", "--model", tiny_lm_dir, "--tasks", "cmrc2018", "--data", f"cmrc2018={data}",
            "--output", shared_dir / "e"]  # fmt: skip
    with unprivileged():
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
        ([*EVALUATE, "--drift-window", "8", "--drift-stride", "8"], "--drift-stride must be at most --drift-window - 1"),
        ([*CALIBRATE, "--temperature", "-1"], "argument --temperature: the value must be > 0, got -1.0"),
        ([*CALIBRATE, "--top-p", "0"], "argument --top-p"),
        ([*TRAIN, "--set", "training.learning_rate=abc"], "training.learning_rate must be a number, got 'abc'"),
        ([*TRAIN, "--set", "training.num_train_epochs=-1"], "training.num_train_epochs must be > 0, got -1"),
        ([*TRAIN, "--set", "training.per_device_train_batch_size=0"], "per_device_train_batch_size must be ≥ 1"),
        ([*TRAIN, "--max-steps", "0"], "argument --max-steps"),
    ],
)  # fmt: skip
def test_a_wrong_value_is_refused_before_anything_loads(argv, phrase, where, capsys):
    assert phrase in one_line_exit_2(fill(argv, where), capsys)
    assert not (where["tmp"] / "out").exists()


def test_a_drift_stride_past_the_window_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import alignment_tax.evaluation.evaluate as evaluate

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the drift settings were checked")

    monkeypatch.setattr(evaluate, "load_for_evaluation", no_loading)
    argv = ["evaluate", "--adapter", "a", "--tasks", "drift", "--drift-window", "16", "--drift-stride", "20",
            "--output", tmp_path / "out"]  # fmt: skip
    assert "at most --drift-window - 1 (15), got 20" in one_line_exit_2(argv, capsys)


@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["evaluate", "--model", "m", "--tasks", "x", "--output", "o", "--limt", "3"],
         "alignment-tax evaluate: error: unrecognized arguments: --limt 3 (see alignment-tax evaluate --help)"),
        (["evaluate", "--model", "m"], "alignment-tax evaluate: error: the following arguments are required: --tasks"),
        (["score", "mt", "--predictions", "p", "--bogus"], "alignment-tax score mt: error: unrecognized arguments: --bogus"),
        (["no-such-command"], "alignment-tax: error: argument COMMAND: invalid choice: 'no-such-command'"),
        (["evaluate", "--device", "tpu", "--tasks", "x", "--output", "o"], "(see alignment-tax evaluate --help)"),
    ],
)  # fmt: skip
def test_a_usage_error_is_one_line_with_the_help_hint(argv, phrase, capsys):
    assert phrase in one_line_exit_2(argv, capsys)


def test_a_usage_error_from_the_installed_command(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "alignment_tax", "evaluate", "--limit", "0"],
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.count("\n") == 1 and "usage:" not in completed.stderr
    assert completed.stderr.startswith("alignment-tax evaluate: error: argument --limit")


# -- specs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, phrase",
    [
        ({"train": {"s": {"method": "sft", "model": "base", "train_data": "d", "max_steps": "lots"}}},
         "train.s.max_steps must be a whole number, got 'lots'"),
        ({"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"limit": -5}}},
         "evaluate.options.limit must be ≥ 1, got -5"),
        ({"evaluate": {"runs": ["s"], "tasks": ["cmrc2018"], "options": {"seed": "x"}}}, "evaluate.options.seed"),
        ({"train": {"s": {"method": "sft", "model": "base", "train_data": "d", "set": {"training.learning_rate": "abc"}}}},
         "train.s: config: training.learning_rate must be a number"),
        ({"train": {"s": {"command": "awk '{print $1}' {train_data} > {output}/x", "model": "base", "train_data": "d"}}},
         "unknown placeholder {print $1}"),
        ({"train": {"s": {"command": "echo {placeholder}", "model": "base", "train_data": "d"}}},
         "train.s.command: unknown placeholder {placeholder}"),
        ({"train": {"s": {"command": "echo }", "model": "base", "train_data": "d"}}}, "Single '}'"),
        ({"train": {"s": {"method": "grpo", "model": "base", "train_data": "d", "embedder": "s"}}},
         "the stages s → s form a dependency cycle"),
        ({"train": {"a": {"method": "grpo", "model": "base", "train_data": "d", "embedder": "b"},
                    "b": {"method": "grpo", "model": "base", "train_data": "d", "embedder": "a"}}},
         "the stages a → b → a form a dependency cycle"),
        ({"judge": {"options": {"limit": 0}}}, "judge.options.limit must be ≥ 1"),
    ],
)  # fmt: skip
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
    argv = ["judge", "--a", where["run"], "--b", where["run"], "--task", "bo_zh_mt",
            "--judge-model", f"hf:{tiny_embedder_dir}", "--output", where["tmp"] / "j.json"]  # fmt: skip
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
    argv = ["evaluate", "--adapter", adapter, "--tasks", "cmrc2018", "--samples", "--limit", "1",
            "--output", tmp_path / "out"]  # fmt: skip
    assert f"model folder {empty} is empty" in one_line_exit_2(argv, capsys)
    argv = ["make-tiny-model", tmp_path / "a2", "--kind", "adapter", "--base-model", empty]
    assert f"--base-model folder {empty} is empty" in one_line_exit_2(argv, capsys)


# -- a full disk ------------------------------------------------------------------------------------


def test_score_items_to_a_full_device(capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    argv = ["score", "mt", "--predictions", PREDICTIONS, "--items", "/dev/full"]
    assert one_line_exit_2(argv, capsys) == "alignment-tax: error: score: no space left on device while writing /dev/full"


@pytest.mark.slow
def test_calibrate_tau_to_a_full_device_still_shows_tau(tiny_lm_dir, tiny_embedder_dir, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    argv = ["calibrate-tau", "--model", tiny_lm_dir, "--data", PAIRS, "--embedder", tiny_embedder_dir, "--prompts", "2",
            "--samples", "2", "--max-new-tokens", "4", "--device", "cpu", "--output", "/dev/full"]  # fmt: skip
    assert main([str(arg) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert "tau" in json.loads(captured.out)  # minutes of sampling are not lost to the disk
    assert captured.err.splitlines()[-1] == "alignment-tax: error: calibrate-tau: no space left on device while writing /dev/full"
    assert captured.err.count("error") == 1 and "Traceback" not in captured.err


@pytest.mark.slow
def test_train_on_a_full_disk(full_disk, tiny_lm_dir, capsys):
    fill_up(full_disk)
    argv = ["train", "--method", "sft", "--model", tiny_lm_dir, "--train-data", PAIRS, "--max-steps", "1",
            "--output", full_disk / "run"]  # fmt: skip
    line = ends_in_one_error_line(argv, capsys)
    assert line.startswith("alignment-tax: error: train: no space left on device")


@pytest.fixture
def full_disk(tmp_path):
    """A 512 KiB tmpfs, filled after the test puts what it needs there (``fill_up(folder)``)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("filling a real disk needs root to mount a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_up(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as handle:  # unbuffered: closing writes nothing more
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def report_runs(root: Path) -> list[Path]:
    """Two tiny evaluated runs, enough for a report."""
    runs = []
    for name, bleu in (("a", 10.0), ("b", 12.0)):
        folder = root / name
        (folder / "samples").mkdir(parents=True)
        items = [{"id": str(i), "doc": {"id": str(i)}, "target": "乙", "bleu": bleu + i} for i in range(3)]
        write_jsonl(folder / "samples" / "bo_zh_mt.jsonl", items)
        results = {"model": name, "adapter": None, "tasks": {"bo_zh_mt": {"bleu": bleu}},
                   "samples": {"bo_zh_mt": "samples/bo_zh_mt.jsonl"}, "config": {}, "base": None, "tax": None}  # fmt: skip
        (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
        runs.append(folder)
    return runs


def test_a_report_on_a_full_disk_keeps_the_old_report_and_leaves_no_tmp(full_disk, tmp_path, capsys):
    runs = report_runs(tmp_path)
    out = full_disk / "report.html"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    fill_up(full_disk)
    line = one_line_exit_2(["report", *runs, "--out", out], capsys)
    assert "no space left on device" in line and line.startswith("alignment-tax: error: report:")
    assert out.read_bytes() == before
    assert not list(full_disk.glob("*.tmp"))


def test_a_report_write_that_fails_leaves_no_tmp(tmp_path, capsys, monkeypatch):
    """The same as on a real full disk, simulated, so that it runs without root."""
    runs = report_runs(tmp_path)
    out = tmp_path / "report.md"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    before = out.read_bytes()
    original = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.endswith(".tmp"):
            original(self, "half a rep", encoding="utf-8")  # what a full disk leaves behind
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    capsys.readouterr()
    assert "no space left on device while writing" in one_line_exit_2(["report", *runs, "--out", out], capsys)
    assert out.read_bytes() == before and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_make_tiny_model_on_a_full_disk(full_disk, capsys):
    fill_up(full_disk)
    line = one_line_exit_2(["make-tiny-model", full_disk / "lm"], capsys)
    assert line.startswith("alignment-tax: error: make-tiny-model: no space left on device")


@pytest.mark.slow
def test_evaluate_on_a_full_disk_keeps_earlier_results(full_disk, tiny_lm_dir, tiny_adapter_dir, capsys):
    out = full_disk / "eval"
    out.mkdir()
    (out / "results.json").write_text('{"earlier": true}', encoding="utf-8")
    fill_up(full_disk)
    argv = ["evaluate", "--model", tiny_lm_dir, "--adapter", tiny_adapter_dir, "--tasks", "cmrc2018", "--samples",
            "--limit", "1", "--output", out]  # fmt: skip
    line = ends_in_one_error_line(argv, capsys)  # after the model loaded: its progress bar may come first
    assert line.startswith("alignment-tax: error: evaluate:") and str(out) in line
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == {"earlier": True}
    assert not list(out.rglob("*.tmp"))


def test_run_on_a_full_disk(full_disk, tmp_path, capsys):
    spec = a_spec(tmp_path / "spec.yaml", models={"base": {"path": str(tmp_path)}}, evaluate={},
                  train={"mine": {"command": "true {output}", "model": "base", "train_data": "d"}})  # fmt: skip
    fill_up(full_disk)
    line = one_line_exit_2(["run", spec, "--out", full_disk / "out"], capsys)
    assert line == f"alignment-tax: error: run: no space left on device while writing {full_disk / 'out'}"


@pytest.mark.slow
def test_judge_on_a_full_disk(full_disk, tiny_lm_dir, where, capsys):
    fill_up(full_disk)
    argv = ["judge", "--a", where["run"], "--b", where["run"], "--task", "bo_zh_mt", "--judge-model", f"hf:{tiny_lm_dir}",
            "--output", full_disk / "judge.json"]  # fmt: skip
    assert "database or disk is full" in ends_in_one_error_line(argv, capsys)
    assert not (full_disk / "judge.json").exists()


# -- the translation itself: narrow ------------------------------------------------------------------


def test_only_environment_errors_become_one_line():
    from safetensors import SafetensorError

    from alignment_tax.paths import environment_error_line

    assert environment_error_line(OSError(errno.ENOSPC, "x"), "out") == "no space left on device while writing out"
    assert environment_error_line(PermissionError(errno.EACCES, "x", "/f")) == "/f: permission denied"
    assert environment_error_line(sqlite3.OperationalError("database or disk is full"), "o").startswith("no space")
    rust = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert environment_error_line(rust, "m") == "no space left on device while writing m"
    # Anything else may be a bug: it keeps its traceback.
    assert environment_error_line(FileNotFoundError(errno.ENOENT, "x", "/f")) is None
    assert environment_error_line(OSError(errno.EBADF, "x")) is None
    assert environment_error_line(sqlite3.OperationalError("no such table: replies")) is None
    assert environment_error_line(SafetensorError("invalid header")) is None


def test_a_bug_keeps_its_traceback(monkeypatch):
    import alignment_tax.cli as cli

    def broken(args):
        raise OSError(errno.EBADF, "Bad file descriptor")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["report"].set_defaults(handler=broken)
    with pytest.raises(OSError, match="Bad file descriptor"):
        main(["report", "x", "--out", "r.html"])


def test_a_write_to_a_special_file_does_not_replace_it(tmp_path):
    from alignment_tax.paths import write_text_atomically

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    write_text_atomically(fifo, "through\n")
    assert reader.communicate(timeout=10)[0] == "through\n"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
