"""A first run without friction: bad input fails before anything loads, and leaves nothing behind."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignment_tax.cli import main
from alignment_tax.evaluation.output_lock import LOCK_FILE, remove_if_unused
from alignment_tax.tasks import names

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def nothing_loads(monkeypatch):
    """Any model load or lm-eval task index fails the test: the checks must come first."""
    import alignment_tax.evaluation.evaluate as evaluate_module
    import alignment_tax.tasks.registry as registry

    def forbidden(*args, **kwargs):
        raise AssertionError("loaded before the input was checked")

    for module, name in (
        (evaluate_module, "load_for_evaluation"),
        (evaluate_module, "describe_for_evaluation"),
        (registry, "task_manager"),
    ):
        monkeypatch.setattr(module, name, forbidden)


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_typo_in_tasks_fails_before_the_model_or_the_task_index(tmp_path, tiny_lm_dir, nothing_loads, capsys):
    output = tmp_path / "out"
    code = main(
        ["evaluate", "--model", str(tiny_lm_dir), "--tasks", "cmrc2018,cmmmlu", "--samples", "--output", str(output)]
    )
    assert code == 2
    line = error_line(capsys)
    assert "unknown task 'cmmlu'" not in line and "unknown task 'cmmmlu'" in line
    assert "did you mean" in line and "cmmlu" in line
    assert not output.exists()


def test_the_cheap_name_check_never_rejects_what_lm_eval_knows():
    # A sample of lm-eval's own names (tasks, groups, tags, some only in include files).
    for name in ("cmmlu", "belebele_bod_Tibt", "belebele_zho_Hans", "mmlu", "acp_bench", "afrixnli_en_direct"):
        assert names.may_be_builtin(name), name
    for name in ("cmrc2019", "belebele_bod", "mmlu_x", ""):
        assert not names.may_be_builtin(name), name


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model", "{tmp}/no-model"], "model not found: {tmp}/no-model"),
        (["--model", "{lm}", "--adapter", "{tmp}/no-adapter"], "adapter not found: {tmp}/no-adapter"),
        (["--model", "{lm}", "--base"], "--base needs a model path or id"),
        (["--model", "{lm}", "--base", "{tmp}/no-base"], "base model (--base) not found: {tmp}/no-base"),
        (["--model", "{lm}", "--base", "{adapter}"], "has no config.json"),  # an adapter given as the base
        (["--model", "{lm}", "--embedder", "{tmp}/no-embedder"], "embedder not found: {tmp}/no-embedder"),
        (["--model", "{lm}", "--data", "cmrc2018={tmp}/no.json"], "--data cmrc2018: file not found: {tmp}/no.json"),
        (["--model", "{lm}", "--data-dir", "{tmp}/no-data"], "data folder not found"),
    ],
)
def test_bad_paths_and_base_fail_before_anything_loads(
    flags, message, tmp_path, tiny_lm_dir, tiny_adapter_dir, nothing_loads, capsys
):
    output = tmp_path / "out"
    values = {"tmp": str(tmp_path), "lm": str(tiny_lm_dir), "adapter": str(tiny_adapter_dir)}
    args = ["evaluate", "--tasks", "cmrc2018", "--output", str(output), *(flag.format(**values) for flag in flags)]
    assert main(args) == 2
    assert message.format(**values) in error_line(capsys)
    assert not output.exists()


def test_a_run_that_fails_after_creating_its_folder_removes_it(tmp_path, tiny_lm_dir, monkeypatch, capsys):
    import alignment_tax.evaluation.evaluate as evaluate_module
    from alignment_tax.errors import UserError

    def failing_load(*args, **kwargs):
        raise UserError("the model would not load")

    monkeypatch.setattr(evaluate_module, "load_for_evaluation", failing_load)
    args = ["evaluate", "--model", str(tiny_lm_dir), "--tasks", "cmrc2018", "--samples", "--limit", "1"]
    fresh = tmp_path / "fresh"
    assert main([*args, "--output", str(fresh)]) == 2
    assert "the model would not load" in error_line(capsys)
    assert not fresh.exists()
    existing = tmp_path / "existing"  # a folder the user made stays, even empty
    existing.mkdir()
    assert main([*args, "--output", str(existing)]) == 2
    capsys.readouterr()
    assert existing.is_dir()


def test_remove_if_unused_keeps_any_result(tmp_path):
    empty = tmp_path / "empty"
    (empty / "cache" / "deeper").mkdir(parents=True)
    (empty / LOCK_FILE).write_text("pid 1")
    assert remove_if_unused(empty) and not empty.exists()
    kept = tmp_path / "kept"
    (kept / "cache").mkdir(parents=True)
    (kept / LOCK_FILE).write_text("pid 1")
    (kept / "cache" / "candidate.sqlite").write_bytes(b"x")
    assert not remove_if_unused(kept)
    assert (kept / "cache" / "candidate.sqlite").exists() and (kept / LOCK_FILE).exists()


@pytest.mark.slow
def test_evaluate_outside_a_git_checkout_prints_no_git_error(tmp_path, tiny_lm_dir):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert subprocess.run(["git", "rev-parse"], cwd=outside, capture_output=True).returncode != 0, (
        "tmp is in a checkout"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignment_tax",
            "evaluate",
            "--model",
            str(tiny_lm_dir),
            "--tasks",
            "cmrc2018",
            "--samples",
            "--limit",
            "2",
            "--device",
            "cpu",
            "--output",
            "out",
        ],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "fatal:" not in completed.stderr
    results = json.loads((outside / "out" / "results.json").read_text(encoding="utf-8"))
    assert "cmrc2018" in results["tasks"]


def test_first_look_writes_under_the_ignored_runs_folder():
    script = (REPO_ROOT / "examples" / "first-look.sh").read_text(encoding="utf-8")
    assert "out=${1:-runs/first-look}" in script
    if (REPO_ROOT / ".git").exists():  # a checkout: git must ignore what the script writes
        ignored = subprocess.run(["git", "check-ignore", "-q", "runs/first-look/report.html"], cwd=REPO_ROOT)
        assert ignored.returncode == 0


def test_lm_eval_bars_name_the_run_the_stage_and_the_tasks():
    import lm_eval.api.task
    import lm_eval.models.huggingface as hf

    from alignment_tax.progress import lm_eval_bars, working_on

    original = hf.tqdm
    with lm_eval_bars("evaluate grpo"):
        with working_on(["bo_zh_mt", "bo_zh_mt", "cmrc2018"]):
            bar = hf.tqdm(total=1, desc="Running generate_until requests", file=io.StringIO())
        assert bar.desc == "evaluate grpo: bo_zh_mt, cmrc2018 generation"
        assert lm_eval.api.task.tqdm([], file=io.StringIO()).desc == "evaluate grpo: prompts"
    assert hf.tqdm is original


def test_stage_log_lines_name_the_kind_of_stage(tmp_path, capsys):
    from alignment_tax.experiments.runner import run_stage

    for kind in ("train", "eval"):
        run_stage(tmp_path / kind / "grpo", {"kind": kind}, lambda folder: {})
    lines = capsys.readouterr().err.splitlines()
    running = [line for line in lines if "running" in line]
    assert [line.split(" (key")[0] for line in running] == ["[run] train grpo: running", "[run] evaluate grpo: running"]


def test_trainer_progress_is_one_named_bar_not_printed_dicts():
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from alignment_tax.trainers.callbacks import StageProgressCallback, report_progress_as

    class Trainer:
        def __init__(self):
            self.callbacks = [PrinterCallback(), ProgressCallback()]

        def remove_callback(self, kind):
            self.callbacks = [callback for callback in self.callbacks if not isinstance(callback, kind)]

        def add_callback(self, callback):
            self.callbacks.append(callback)

    trainer = Trainer()
    report_progress_as(trainer, "train grpo")
    assert [type(callback) for callback in trainer.callbacks] == [StageProgressCallback]
    assert trainer.callbacks[0].name == "train grpo"


def test_known_library_warnings_are_filtered_by_name_only():
    import warnings

    from alignment_tax.quiet_libraries import quiet_libraries

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        quiet_libraries()
        warnings.warn_explicit(
            "'pin_memory' argument is set as true but no accelerator is found, then device pinned memory won't be used.",
            UserWarning,
            "dataloader.py",
            1,
            module="torch.utils.data.dataloader",
        )
        warnings.warn_explicit(
            "`gradient_checkpointing_enable` is deprecated and will be removed in v6. Use `activation_checkpointing_enable`",
            FutureWarning,
            "modeling_utils.py",
            1,
            module="transformers.modeling_utils",
        )
        warnings.warn_explicit(
            "something new", FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils"
        )
    assert [str(warning.message) for warning in caught] == ["something new"]


def test_the_packages_own_deprecation_warnings_are_not_hidden_by_the_cli():
    """The CLI's filters name a library's module and message: the package's own deprecations still show."""
    import re
    import warnings

    from alignment_tax.cli import main
    from alignment_tax.quiet_libraries import KNOWN_LIBRARY_WARNINGS

    for message, _category, module in KNOWN_LIBRARY_WARNINGS:
        assert message and module and not re.match(module, "alignment_tax"), (message, module)

    deprecated = "`old_option` is deprecated and will be removed; use `new_option`"
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        assert main(["--version"]) == 0  # installs the CLI's filters, as every command does
        for category in (FutureWarning, DeprecationWarning):
            warnings.warn_explicit(deprecated, category, "config.py", 1, module="alignment_tax.trainers.config")
        # even with a filtered message: the filter is about transformers' code, not ours
        warnings.warn_explicit(
            "`gradient_checkpointing_enable` is deprecated", FutureWarning, "x.py", 1, module="alignment_tax.models"
        )
    assert [(warning.category, str(warning.message)) for warning in caught] == [
        (FutureWarning, deprecated),
        (DeprecationWarning, deprecated),
        (FutureWarning, "`gradient_checkpointing_enable` is deprecated"),
    ]
