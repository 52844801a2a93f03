"""Damaged adapters (weights empty or cut short, a config that is not JSON): one line in `evaluate`,
`sweep` and `evaluate --engine vllm`'s shape check; `evaluate --checkpoints` skips a damaged checkpoint
with one line and goes on. A checkpoint is complete by one rule, training's (models.saved_files)."""

from __future__ import annotations

import json
import shutil

import pytest

from alignment_tax.evaluation.checkpoint_series import saved_checkpoints
from alignment_tax.trainers.checkpoints import is_complete

WEIGHTS = "adapter_model.safetensors"


def _damage(folder, how):
    if how == "empty weights":
        (folder / WEIGHTS).write_bytes(b"")
    elif how == "cut-short weights":
        data = (folder / WEIGHTS).read_bytes()
        (folder / WEIGHTS).write_bytes(data[: len(data) // 2])
    else:
        (folder / "adapter_config.json").write_text('{"peft_type": "LORA", ', encoding="utf-8")
    return folder


DAMAGE = ["empty weights", "cut-short weights", "config not JSON"]
REASON = {"empty weights": "is empty or cut short", "cut-short weights": "is empty or cut short"}
REASON["config not JSON"] = "adapter_config.json is not valid JSON"


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("command", ["evaluate", "sweep", "vllm"])
def test_a_damaged_adapter_is_one_line(how, command, tiny_adapter_dir, tiny_lm_dir, tmp_path, capsys):
    from reliability_helpers import one_line_exit_2

    from alignment_tax.errors import UserError
    from alignment_tax.models.loading import check_adapter_fits

    adapter = _damage(shutil.copytree(tiny_adapter_dir, tmp_path / "adapter"), how)
    if command == "vllm":  # the engines that load the adapter themselves check it through this
        with pytest.raises(UserError, match=f"adapter {adapter} is damaged: .*{REASON[how]}"):
            check_adapter_fits(str(tiny_lm_dir), str(adapter))
        return
    out = tmp_path / "out"
    argv = [command, "--adapter", adapter, "--model", tiny_lm_dir, "--tasks", "drift", "--output", out]
    if command == "sweep":
        argv += ["--scales", "0,0.5,1"]
    line = one_line_exit_2(argv, capsys)
    assert f"adapter {adapter} is damaged: " in line and REASON[how] in line
    assert not out.exists()


def _checkpoint(run, step, adapter):
    folder = shutil.copytree(adapter, run / "checkpoints" / f"checkpoint-{step}")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}), encoding="utf-8")
    return folder


@pytest.fixture
def damaged_run(tiny_adapter_dir, tmp_path):
    run = tmp_path / "run"
    _checkpoint(run, 1, tiny_adapter_dir)
    _damage(_checkpoint(run, 2, tiny_adapter_dir), "cut-short weights")  # state written, weights cut short
    _damage(_checkpoint(run, 3, tiny_adapter_dir), "empty weights")
    _damage(_checkpoint(run, 4, tiny_adapter_dir), "config not JSON")
    (_checkpoint(run, 5, tiny_adapter_dir) / "trainer_state.json").unlink()  # killed before the state was saved
    _damage(shutil.copytree(tiny_adapter_dir, run / "adapter"), "empty weights")
    return run


def test_the_series_and_resume_judge_a_checkpoint_by_one_rule(damaged_run, capsys):
    found = saved_checkpoints(damaged_run)
    assert [step for step, _ in found] == [1]
    for step in range(1, 6):
        folder = damaged_run / "checkpoints" / f"checkpoint-{step}"
        # Resume reads no adapter config (4); every cut-short file and a missing state count for both.
        assert is_complete(folder) == (step in (1, 4)), step
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and all(line.startswith("alignment-tax evaluate: warning: skipping ") for line in lines)
    assert "checkpoint-2: adapter_model.safetensors is empty or cut short" in lines[0]
    assert "checkpoint-5: no trainer_state.json" in lines[3]


def test_the_series_skips_damaged_checkpoints_and_goes_on(damaged_run, tiny_lm_dir, shared_data, tmp_path, capsys):
    from alignment_tax.cli import main

    out = tmp_path / "series"
    argv = ["evaluate", "--checkpoints", damaged_run, "--model", tiny_lm_dir, "--tasks", "drift", "--limit", "2"]
    argv += ["--drift-window", "32", "--device", "cpu", "--data-dir", shared_data, "--output", out]
    assert main([str(arg) for arg in argv]) == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if "warning: skipping" in line]
    assert len(skipped) == 5  # checkpoints 2 to 5 and the final adapter, each once
    assert (out / "step_1" / "results.json").is_file()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["_base", "step_1"]
