"""The folders two runs may share: ``OUTPUT/../_base/KEY`` between evaluations, ``OUTPUT`` of a training run.

No model is loaded: the base's evaluation is replaced by a stand-in that records how often it ran.
"""

import json
import threading
import time

import pytest

from alignment_tax.evaluation.evaluate import EvaluateOptions, _Evaluation
from alignment_tax.evaluation.lm_eval_run import RoleRun
from alignment_tax.evaluation.output_lock import OutputLock
from alignment_tax.evaluation.task_results import TaskScores
from alignment_tax.models.loading import LoadedModel


class _Engine:
    def identity(self, role):
        return {}


class _Unprintable:
    def __str__(self):
        raise RuntimeError("cannot serialise this item")


def _evaluation(tmp_path, name, items, runs, delay=0.0, started=None):
    """An evaluation of candidate ``name`` beside others in ``tmp_path`` whose base run is a stand-in."""
    evaluation = _Evaluation(EvaluateOptions(tasks=["t"], output=str(tmp_path / name), base="the-base"), None)
    evaluation.settings = {"tasks": ["t"]}  # the same for every candidate: one base key
    evaluation.batching = {}

    def run_role(engine, role, cache_path, fingerprint, label):
        runs.append(label)
        if started is not None:
            started.set()
        time.sleep(delay)  # long enough for a second run to look for the base meanwhile
        return RoleRun({"t": TaskScores(metrics={"score": 1.0}, items=items)})

    evaluation._run_role = run_role
    evaluation._payload = lambda name, adapter, loaded, run: {"tasks": {"t": {"score": 1.0}}}
    return evaluation


LOADED = LoadedModel(None, None, "candidate", None, "cpu", "float32")


def test_two_runs_sharing_a_base_evaluate_it_once_the_second_waits_and_reuses_it(tmp_path, capsys):
    runs: list[str] = []
    started = threading.Event()
    first = _evaluation(tmp_path, "a", [{"output": "x"}], runs, delay=0.5, started=started)
    second = _evaluation(tmp_path, "b", [{"output": "x"}], runs)
    summaries = {}
    thread = threading.Thread(target=lambda: summaries.update(a=first._base(_Engine(), LOADED)))
    thread.start()
    assert started.wait(30)  # the first run holds the base folder and is evaluating it
    summaries["b"] = second._base(_Engine(), LOADED)
    thread.join()
    assert runs == ["base of a"]
    assert summaries["a"]["reused"] is False and summaries["b"]["reused"] is True
    assert summaries["b"]["tasks"] == {"t": {"score": 1.0}}
    waited = [line for line in capsys.readouterr().err.splitlines() if "waiting" in line]
    assert len(waited) == 1 and "b: waiting for another evaluate (pid " in waited[0], waited


def test_base_samples_are_written_whole_or_not_at_all(tmp_path):
    runs: list[str] = []
    items = [{"output": "first"}, {"output": _Unprintable()}]  # fails half way through the file
    evaluation = _evaluation(tmp_path, "a", items, runs)
    key_folder = None
    with pytest.raises(RuntimeError, match="cannot serialise"):
        evaluation._base(_Engine(), LOADED)
    (key_folder,) = (tmp_path / "_base").iterdir()
    samples = key_folder / "samples"
    # No half-written file where a later run (or a report) would read it, and no temporary left.
    assert not (samples / "t.jsonl").exists()
    assert [p.name for p in samples.iterdir()] == []
    assert not (key_folder / "results.json").exists()
    # An earlier complete file survives a failed rewrite.
    (samples / "t.jsonl").write_text(json.dumps({"output": "old"}) + "\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        _evaluation(tmp_path, "b", items, runs)._base(_Engine(), LOADED)
    assert (samples / "t.jsonl").read_text(encoding="utf-8") == '{"output": "old"}\n'


def test_a_second_train_into_a_live_runs_output_refuses_in_one_line(tmp_path, capsys):
    from alignment_tax.cli import main

    output = tmp_path / "run"
    (output / "checkpoints" / "checkpoint-3").mkdir(parents=True)  # being written by the live run
    argv = ["train", "--method", "sft", "--model", str(tmp_path / "m"), "--train-data", str(tmp_path / "d.jsonl")]
    with OutputLock(output, "train"):  # what a running train holds
        assert main([*argv, "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is being written by another train (pid " in err[0], err
    # The live run's newest checkpoint, still without trainer_state.json, was not set aside.
    assert [p.name for p in (output / "checkpoints").iterdir()] == ["checkpoint-3"]


def test_set_aside_checkpoints_count_toward_the_limit_and_go_first(tmp_path):
    from alignment_tax.trainers.callbacks import rotate_set_aside

    names = ["checkpoint-4", "checkpoint-6", "incomplete-checkpoint-5", "incomplete-checkpoint-5-2"]
    for name in [*names, "incomplete-checkpoint-10"]:
        (tmp_path / name).mkdir()
    deleted = rotate_set_aside(tmp_path, 3)  # five folders, three allowed: the two oldest set aside go
    assert [p.name for p in deleted] == ["incomplete-checkpoint-5", "incomplete-checkpoint-5-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-6", "incomplete-checkpoint-10"]
    rotate_set_aside(tmp_path, 1)  # never a complete checkpoint: the Trainer's rotation decides those
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-6"]
