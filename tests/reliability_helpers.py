"""What the reliability tests share: running the CLI and asserting its one error line, and real bad paths.

"Not readable" and "not writable" are real: when the tests run as root, the command runs without
the capabilities that let root ignore file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).
A full disk is a small tmpfs where mounting one is allowed (the fixture skips elsewhere).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from alignment_tax.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
PAIRS = EXAMPLES / "openpecha_bo_zh_sample.jsonl"
PREDICTIONS = EXAMPLES / "openpecha_bo_zh_sample_predictions.jsonl"


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


# Linux capabilities: root reads and writes past any file mode through these two.
_DAC_OVERRIDE, _DAC_READ_SEARCH = 1, 2
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capabilities(change) -> None:
    """capget, ``change(data)``, capset: on this thread only."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    change(data)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


@contextmanager
def permissions_enforced():
    """File modes apply inside, to root too: it runs without its permission-override capabilities.

    The command runs in this thread, where the capabilities are dropped (they are per thread); a
    non-root user needs nothing. Root keeps its own (owner) access, so the interpreter still loads.
    """
    if os.geteuid() != 0:
        yield
        return
    override = (1 << _DAC_OVERRIDE) | (1 << _DAC_READ_SEARCH)
    try:
        _capabilities(lambda data: setattr(data[0], "effective", data[0].effective & ~override))
    except OSError as error:
        pytest.skip(f"cannot drop root's permission override here: {error}")
    try:
        yield
    finally:
        _capabilities(lambda data: setattr(data[0], "effective", data[0].effective | override))


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
        results = {
            "model": name,
            "adapter": None,
            "tasks": {"bo_zh_mt": {"bleu": bleu}},
            "samples": {"bo_zh_mt": "samples/bo_zh_mt.jsonl"},
            "config": {},
            "base": None,
            "tax": None,
        }
        (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
        runs.append(folder)
    return runs
