"""`sweep` and its output folder: locked before anything is written, and no stray copies after an error."""

from __future__ import annotations

from alignment_tax.evaluation.output_lock import OutputLock


def test_a_second_sweep_into_a_busy_output_writes_nothing(tiny_adapter_dir, tiny_lm_dir, tmp_path, capsys):
    """Another sweep is evaluating OUTPUT (its scale_0 evaluation holds OUTPUT/scale_0): this one is
    refused in one line before it writes a scaled copy the other would then evaluate and record."""
    from reliability_helpers import one_line_exit_2

    out = tmp_path / "sweep"
    argv = ["sweep", "--scales", "0,1", "--adapter", tiny_adapter_dir, "--model", tiny_lm_dir, "--tasks", "drift"]
    with OutputLock(out, "sweep"), OutputLock(out / "scale_0", "evaluate"):
        line = one_line_exit_2([*argv, "--device", "cpu", "--output", out], capsys)
    assert "is being written by another sweep" in line
    assert not (out / "adapters").exists()


def test_a_failed_sweep_leaves_no_scaled_copies(tiny_adapter_dir, tiny_lm_dir, tmp_path, capsys):
    from reliability_helpers import one_line_exit_2

    argv = ["sweep", "--scales", "0,0.5,1", "--adapter", tiny_adapter_dir, "--model", tiny_lm_dir]
    argv += ["--tasks", "bo_zh_mt", "--device", "cpu", "--data-dir", tmp_path / "no-such-data"]
    fresh = tmp_path / "fresh"
    assert "data folder not found" in one_line_exit_2([*argv, "--output", fresh], capsys)
    assert not fresh.exists()  # the folder this run made, and everything in it, went
    kept = tmp_path / "kept"
    (kept / "notes.txt").parent.mkdir()
    (kept / "notes.txt").write_text("mine", encoding="utf-8")
    assert "data folder not found" in one_line_exit_2([*argv, "--output", kept], capsys)
    assert sorted(p.name for p in kept.iterdir()) == [".lock", "notes.txt"]  # what was there stays
