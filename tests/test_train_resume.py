"""Resuming a training run: incomplete checkpoints are skipped, and train_loss covers the whole run."""

import json
import os
from pathlib import Path

import pytest
from test_train_runs import SFT_SMALL, last_json, read_log, run_cli
from transformers import TrainerCallback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pairs(shared_data):
    return shared_data / "bo_zh_mt" / "openpecha_bo_zh.jsonl"


def train_cli(tiny_lm_dir, pairs, output, capsys, steps=2, keep=10):
    argv = [
        "train",
        "--method",
        "sft",
        "--model",
        tiny_lm_dir,
        "--train-data",
        pairs,
        "--output",
        output,
        "--max-steps",
        str(steps),
        "--set",
        *SFT_SMALL,
        f"training.save_total_limit={keep}",  # set-aside checkpoints count toward it
    ]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    return last_json(out), [line for line in err.splitlines() if "incomplete" in line]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a disk that filled up half way through the write


def test_an_incomplete_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
    tiny_lm_dir, pairs, tmp_path, capsys
):
    from alignment_tax.trainers.checkpoints import is_complete

    output = tmp_path / "run"
    checkpoints = output / "checkpoints"
    train_cli(tiny_lm_dir, pairs, output, capsys)
    assert is_complete(checkpoints / "checkpoint-1") and is_complete(checkpoints / "checkpoint-2")

    # Killed before trainer_state.json (written last) was saved.
    (checkpoints / "checkpoint-2" / "trainer_state.json").unlink()
    summary, said = train_cli(tiny_lm_dir, pairs, output, capsys)
    assert said == [
        "alignment-tax train: checkpoint-2 is incomplete (interrupted while saving; moved to "
        "incomplete-checkpoint-2); resuming from checkpoint-1"
    ]
    assert summary["resumed_from"].endswith("checkpoint-1") and summary["global_step"] == 2
    assert (checkpoints / "incomplete-checkpoint-2").is_dir() and is_complete(checkpoints / "checkpoint-2")
    assert [e["step"] for e in read_log(output / "train_log.jsonl") if "loss" in e] == [1, 2]

    # The disk filled up while the weights were written; an earlier set-aside folder keeps its name.
    truncate(checkpoints / "checkpoint-2" / "adapter_model.safetensors")
    summary, said = train_cli(tiny_lm_dir, pairs, output, capsys)
    assert said == [
        "alignment-tax train: checkpoint-2 is incomplete (interrupted while saving; moved to "
        "incomplete-checkpoint-2-2); resuming from checkpoint-1"
    ]
    assert summary["resumed_from"].endswith("checkpoint-1") and summary["global_step"] == 2

    # Nothing complete left: a fresh start, said in one line.
    truncate(checkpoints / "checkpoint-2" / "optimizer.pt")
    (checkpoints / "checkpoint-1" / "trainer_state.json").write_text('{"global_step": 1, "log_hist')
    summary, said = train_cli(tiny_lm_dir, pairs, output, capsys)
    assert len(said) == 1 and said[0].startswith("alignment-tax train: checkpoint-1, checkpoint-2 are incomplete")
    assert said[0].endswith("no complete checkpoint, starting from step 0")
    assert summary["resumed_from"] is None and summary["global_step"] == 2
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == [
        "checkpoint-1",
        "checkpoint-2",
        "incomplete-checkpoint-1",
        "incomplete-checkpoint-2",
        "incomplete-checkpoint-2-2",
        "incomplete-checkpoint-2-3",
    ]

    # Set-aside folders count in the rotation, and go before any complete checkpoint.
    summary, said = train_cli(tiny_lm_dir, pairs, output, capsys, steps=3, keep=2)
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 3
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == ["checkpoint-2", "checkpoint-3"]


class InterruptAfterSaving(TrainerCallback):
    """Stops the run like Ctrl-C right after checkpoint ``step`` is saved."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_train_loss_covers_the_whole_run_after_a_resume(tiny_lm_dir, pairs, tmp_path):
    from alignment_tax.trainers import load_config, train
    from alignment_tax.trainers.sft import build_sft, finish

    config = load_config("sft", overrides=SFT_SMALL, max_steps=4)
    whole = train(config, model=str(tiny_lm_dir), train_data=str(pairs), output=str(tmp_path / "one-go"))

    built = build_sft(
        config, model=str(tiny_lm_dir), adapter=None, train_data=str(pairs), output=str(tmp_path / "resumed")
    )
    built.trainer.add_callback(InterruptAfterSaving(2))
    with pytest.raises(KeyboardInterrupt):
        finish(built)
    resumed = train(config, model=str(tiny_lm_dir), train_data=str(pairs), output=str(tmp_path / "resumed"))
    assert resumed["resumed_from"].endswith("checkpoint-2") and resumed["global_step"] == 4

    # Tiny model, CPU, fixed seed, RNG state restored on resume: every step's loss is the same.
    steps = {
        name: [e["loss"] for e in read_log(tmp_path / name / "train_log.jsonl") if "loss" in e]
        for name in ("one-go", "resumed")
    }
    assert steps["resumed"] == pytest.approx(steps["one-go"], rel=1e-6) and len(steps["one-go"]) == 4
    final = read_log(tmp_path / "resumed" / "train_log.jsonl")[-1]
    assert final["train_loss"] == pytest.approx(sum(steps["one-go"]) / 4, rel=1e-6) and final["train_loss_steps"] == 4
    assert whole["train_loss"] == pytest.approx(sum(steps["one-go"]) / 4, rel=1e-6)
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-6)
    assert resumed["train_loss_this_session"] == pytest.approx(sum(steps["resumed"][2:]) / 2, rel=1e-6)
    assert final["train_loss"] == resumed["train_loss"]
    record = json.loads((tmp_path / "resumed" / "train_config.json").read_text(encoding="utf-8"))
    assert record["train_loss"] == resumed["train_loss"]


def test_whole_run_loss_weights_each_entry_by_the_steps_it_covers():
    from alignment_tax.trainers.callbacks import whole_run_loss

    # Logged every 5 steps; resumed at 12 (steps 11-12 never logged), logged at 15, resumed at 15.
    history = [
        {"loss": 1.0, "step": 5},
        {"loss": 2.0, "step": 10},
        {"loss": 4.0, "step": 15, "loss_steps": 3},
        {"kl": 0.1, "step": 15},
    ]
    mean, steps = whole_run_loss(history, resumed_step=15, session_loss=3.0, session_steps=5)
    assert steps == 18 and mean == pytest.approx((5 * 1.0 + 5 * 2.0 + 3 * 4.0 + 5 * 3.0) / 18)
    assert whole_run_loss([], 0, 2.5, 4) == (2.5, 4)
