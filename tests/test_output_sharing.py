"""Silent wrong results refused: two runs on one output folder, and a language model as the embedder."""

import json

import pytest
from engine_helpers import outputs

from alignment_tax.cli import main
from alignment_tax.evaluation.generation_cache import GenerationCache
from alignment_tax.evaluation.output_lock import OutputLock

pytestmark = pytest.mark.slow


def test_one_cache_file_serves_two_models_without_mixing_them(tmp_path):
    args = ("prompt", {"max_gen_toks": 4})
    first, second = GenerationCache(tmp_path / "c.sqlite", "model-a"), GenerationCache(tmp_path / "c.sqlite", "model-b")
    first.put("generate_until", args, "from a", truncated=False)
    second.put("generate_until", args, "from b", truncated=True)  # at once, in the same file
    assert first.get("generate_until", args) == "from a" and first.truncated(args) is False
    assert second.get("generate_until", args) == "from b" and second.truncated(args) is True
    first.close(), second.close()


def test_a_model_run_after_another_on_the_same_output_keeps_its_own_generations(
    tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir, monkeypatch
):
    common = [
        "evaluate",
        "--tasks",
        "cmrc2018",
        "--limit",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--data-dir",
        str(shared_data),
        "--max-gen-toks",
        "cmrc2018=6",
        "--output",
        str(tmp_path / "run"),
    ]
    adapter = ["--model", str(tiny_lm_dir), "--adapter", str(tiny_adapter_dir)]
    assert main([*common, *adapter]) == 0
    with_adapter = outputs(tmp_path / "run")
    assert main([*common, "--model", str(tiny_lm_dir)]) == 0  # another model, same folder
    bare = outputs(tmp_path / "run")
    assert bare != with_adapter

    from lm_eval.models.huggingface import HFLM

    def no_new_generations(self, requests, disable_tqdm=False):
        if requests:
            raise AssertionError(f"{len(requests)} generations were made again")
        return []

    monkeypatch.setattr(HFLM, "generate_until", no_new_generations)
    assert main([*common, *adapter]) == 0  # both models' answers are in the cache, each under its own key
    assert outputs(tmp_path / "run") == with_adapter
    assert main([*common, "--model", str(tiny_lm_dir)]) == 0
    assert outputs(tmp_path / "run") == bare


def test_a_second_evaluate_on_a_folder_in_use_refuses_in_one_line(tmp_path, shared_data, tiny_lm_dir, capsys):
    folder = tmp_path / "run"
    argv = [
        "evaluate",
        "--model",
        str(tiny_lm_dir),
        "--tasks",
        "cmrc2018",
        "--limit",
        "1",
        "--device",
        "cpu",
        "--data-dir",
        str(shared_data),
        "--output",
        str(folder),
    ]
    with OutputLock(folder, "evaluate"):  # what a running evaluate holds
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is being written by another evaluate (pid " in err[0], err
    assert not (folder / "results.json").exists() and not (folder / "cache").exists()
    assert main(argv) == 0  # the lock left with its holder


def test_an_output_on_a_filesystem_without_locking_is_one_line(tmp_path, shared_data, tiny_lm_dir, capsys, monkeypatch):
    import errno
    import fcntl

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")  # flock on an NFS mount without a lock manager

    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = tmp_path / "run"
    argv = ["evaluate", "--model", tiny_lm_dir, "--tasks", "cmrc2018", "--limit", "1", "--device", "cpu"]
    code = main([str(arg) for arg in [*argv, "--data-dir", shared_data, "--output", folder]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert f"{folder}: its filesystem does not support file locking (No locks available)" in err[0]
    assert not folder.exists()  # the folder it made is removed, as for any failure before writing


def test_a_language_model_given_as_the_embedder_is_one_line(tmp_path, tiny_lm_dir, tiny_embedder_dir, capsys):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(
        json.dumps({"prediction": "北京", "reference": "北京"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    argv = ["score", "mt", "--predictions", str(predictions), "--embedder"]
    assert main([*argv, str(tiny_lm_dir)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "is a language model (Qwen3ForCausalLM), not a sentence-transformers embedder" in err[0], (
        err
    )
    assert main([*argv, str(tiny_embedder_dir)]) == 0  # a real embedder still loads
