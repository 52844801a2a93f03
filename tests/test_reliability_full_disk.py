"""A full disk, or a write that fails, is one line and exit 2, and leaves earlier results whole.

A real full disk: ``/dev/full``, or a small tmpfs where it can be mounted (root); the report's
case is also simulated so that it runs everywhere. The last tests show the translation of OS
errors to be narrow: what may be a bug keeps its traceback.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from reliability_helpers import (
    PAIRS,
    PREDICTIONS,
    a_spec,
    ends_in_one_error_line,
    fill_up,
    one_line_exit_2,
    report_runs,
)

import alignment_tax.paths
from alignment_tax.cli import main


def test_score_items_to_a_full_device(capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    argv = ["score", "mt", "--predictions", PREDICTIONS, "--items", "/dev/full"]
    assert (
        one_line_exit_2(argv, capsys) == "alignment-tax: error: score: no space left on device while writing /dev/full"
    )


@pytest.mark.slow
def test_calibrate_tau_to_a_full_device_still_shows_tau(tiny_lm_dir, tiny_embedder_dir, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    argv = [
        "calibrate-tau",
        "--model",
        tiny_lm_dir,
        "--data",
        PAIRS,
        "--embedder",
        tiny_embedder_dir,
        "--prompts",
        "2",
        "--samples",
        "2",
        "--max-new-tokens",
        "4",
        "--device",
        "cpu",
        "--output",
        "/dev/full",
    ]
    assert main([str(arg) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert "tau" in json.loads(captured.out)  # minutes of sampling are not lost to the disk
    assert (
        captured.err.splitlines()[-1]
        == "alignment-tax: error: calibrate-tau: no space left on device while writing /dev/full"
    )
    assert captured.err.count("error") == 1 and "Traceback" not in captured.err


@pytest.mark.slow
def test_train_on_a_full_disk(full_disk, tiny_lm_dir, capsys):
    fill_up(full_disk)
    argv = [
        "train",
        "--method",
        "sft",
        "--model",
        tiny_lm_dir,
        "--train-data",
        PAIRS,
        "--max-steps",
        "1",
        "--output",
        full_disk / "run",
    ]
    line = ends_in_one_error_line(argv, capsys)
    assert line.startswith("alignment-tax: error: train: no space left on device")


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

    def full(source, target):
        # The temporary file is written (half a report, on a real full disk); the rename never comes.
        assert Path(source).name.endswith(".tmp") and Path(source).exists()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(alignment_tax.paths.os, "replace", full)
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
    argv = [
        "evaluate",
        "--model",
        tiny_lm_dir,
        "--adapter",
        tiny_adapter_dir,
        "--tasks",
        "cmrc2018",
        "--samples",
        "--limit",
        "1",
        "--output",
        out,
    ]
    line = ends_in_one_error_line(argv, capsys)  # after the model loaded: its progress bar may come first
    assert line.startswith("alignment-tax: error: evaluate:") and str(out) in line
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == {"earlier": True}
    assert not list(out.rglob("*.tmp"))


def test_run_on_a_full_disk(full_disk, tmp_path, capsys):
    spec = a_spec(
        tmp_path / "spec.yaml",
        models={"base": {"path": str(tmp_path)}},
        evaluate={},
        train={"mine": {"command": "true {output}", "model": "base", "train_data": "d"}},
    )
    fill_up(full_disk)
    line = one_line_exit_2(["run", spec, "--out", full_disk / "out"], capsys)
    assert line == f"alignment-tax: error: run: no space left on device while writing {full_disk / 'out'}"


@pytest.mark.slow
def test_judge_on_a_full_disk(full_disk, tiny_lm_dir, where, capsys):
    fill_up(full_disk)
    argv = [
        "judge",
        "--a",
        where["run"],
        "--b",
        where["run"],
        "--task",
        "bo_zh_mt",
        "--judge-model",
        f"hf:{tiny_lm_dir}",
        "--output",
        full_disk / "judge.json",
    ]
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
