"""`evaluate` over two processes (torchrun and accelerate launch, gloo on the CPU) against one process.

Identity comes from whole batches of the one-process schedule: the unit tests check that the
blocks are HFLM's own batches and that a subset of blocks is batched as they were; the launched
runs check that every output, metric and drift value is equal to one process's, and that a cache
left scattered by two processes resumes in one process to the same results.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alignment_tax.evaluation.output_lock import OutputLock
from alignment_tax.evaluation.request_blocks import generate_in_blocks, generation_blocks

ACCELERATE_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
REPO = Path(__file__).resolve().parents[1]
LIMIT = 6
BATCH = 2  # 6 requests per task: three batches, two on rank 0 and one on rank 1


@pytest.fixture(scope="module")
def tiny_hflm(tiny_lm_dir):
    from lm_eval.models.huggingface import HFLM

    from alignment_tax.models.loading import load_causal_lm

    model, tokenizer = load_causal_lm(str(tiny_lm_dir), "cpu", "float32")
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=3, device="cpu")


def _requests(count=12):
    from lm_eval.api.instance import Instance

    texts = ["中文" * (1 + (7 * k) % 5) + str(k) for k in range(count)]
    kwargs = [{"until": ["。"], "max_gen_toks": 2, "do_sample": False}, {"until": ["\n"], "max_gen_toks": 2}]
    return [Instance("generate_until", {}, (text, dict(kwargs[k % 3 == 0])), idx=0) for k, text in enumerate(texts)]


def _batches_seen(lm, monkeypatch, requests):
    """The contexts of each batch ``lm.generate_until`` runs."""
    seen = []
    encode = type(lm).tok_batch_encode

    def spy(self, strings, *args, **kwargs):
        seen.append(list(strings))
        return encode(self, strings, *args, **kwargs)

    monkeypatch.setattr(type(lm), "tok_batch_encode", spy)
    lm.generate_until(requests, disable_tqdm=True)
    return seen


def test_blocks_are_the_batches_hflm_runs_and_a_subset_of_blocks_keeps_them(tiny_hflm, monkeypatch):
    requests = _requests()
    blocks = generation_blocks(tiny_hflm, requests)
    assert sorted(i for block in blocks for i in block) == list(range(len(requests)))
    assert {len(block) for block in blocks} == {3, 1, 2}  # each group ends with a short block
    expected = [[requests[i].args[0] for i in block] for block in blocks]
    assert _batches_seen(tiny_hflm, monkeypatch, requests) == expected
    # What one rank of two is given (every other block, in another order): the same batches.
    share = blocks[1::2]
    subset = [requests[i] for block in reversed(share) for i in block]
    seen = _batches_seen(tiny_hflm, monkeypatch, subset)
    assert sorted(seen) == sorted([requests[i].args[0] for i in block] for block in share)


def test_a_resume_recomputes_whole_blocks_and_keeps_cached_responses(tiny_hflm):
    requests = _requests()
    blocks = generation_blocks(tiny_hflm, requests)
    # One response missing from the second block only, as a killed run with two processes can leave.
    cached = [f"cached {i}" for i in range(len(requests))]
    cached[blocks[1][-1]] = None
    calls = []

    def generate(part):
        calls.append([requests.index(request) for request in part])
        return [f"new {requests.index(request)}" for request in part]

    responses = generate_in_blocks(tiny_hflm, requests, cached, generate)
    assert calls == [blocks[1]]  # the whole block, so that its batch is the one-process batch
    for i, response in enumerate(responses):
        assert response == (f"new {i}" if i in blocks[1] else f"cached {i}")
    calls.clear()
    assert generate_in_blocks(tiny_hflm, requests, [f"c{i}" for i in range(len(requests))], generate)[0] == "c0"
    assert calls == []


@pytest.fixture
def one_thread():
    """Many tiny batches: on a loaded machine, torch's thread pool costs more than it brings (40x here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_drift_checkpoint_left_by_two_processes_resumes_to_the_one_process_values(
    shared_data, tiny_lm_dir, tiny_adapter_dir, tmp_path, monkeypatch, one_thread
):
    import alignment_tax.evaluation.drift as drift_module
    from alignment_tax.data import load_corpus
    from alignment_tax.evaluation.drift_checkpoint import DriftCheckpoint
    from alignment_tax.models.loading import load_for_evaluation

    loaded = load_for_evaluation(str(tiny_lm_dir), str(tiny_adapter_dir), "cpu", "float32")
    texts = load_corpus(shared_data / "cmrc2018" / "cmrc2018_dev.json", dedupe=True)[:4]
    scored, score = [], drift_module._score_batch

    def recording(model, base_model, windows, *args):
        scored.append(len(windows))
        return score(model, base_model, windows, *args)

    monkeypatch.setattr(drift_module, "_score_batch", recording)
    whole = drift_module.token_drift(loaded.model, loaded.tokenizer, texts, batch_size=3, window=32)
    n_batches = len(scored)
    # Rank 1 of 2 saved its batches (the odd ones) before a kill; rank 0's are missing.
    windows = drift_module.plan_windows(drift_module.tokenize_corpus(loaded.tokenizer, texts), 32)
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i].token_ids))
    odd = [i for start in range(3, len(order), 6) for i in order[start : start + 3]]
    offsets = np.concatenate([[0], np.cumsum([w.n_scored for w in windows])])
    checkpoint = DriftCheckpoint(tmp_path / "partial.npz", "f", every_seconds=0)
    checkpoint.save(
        {i: [v[offsets[i] : offsets[i + 1]] for v in (whole.nll, whole.base_nll, whole.kl)] for i in odd}, force=True
    )
    scored.clear()
    resumed = drift_module.token_drift(
        loaded.model, loaded.tokenizer, texts, batch_size=3, window=32, checkpoint=checkpoint
    )
    assert len(scored) == n_batches - n_batches // 2  # only the even batches, each whole
    for name in ("nll", "base_nll", "kl", "text_index", "position"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name), err_msg=name)


def test_several_processes_need_the_hf_engine_and_a_fixed_batch_size(monkeypatch):
    from alignment_tax.errors import UserError
    from alignment_tax.evaluation import data_parallel

    data_parallel.check_supported("vllm", "auto")  # one process: anything goes
    monkeypatch.setattr(data_parallel, "world_size", lambda: 2)
    with pytest.raises(UserError, match="--engine vllm runs in one process"):
        data_parallel.check_supported("vllm", 4)
    with pytest.raises(UserError, match="fixed --batch-size"):
        data_parallel.check_supported("hf", "auto:4")
    data_parallel.check_supported("hf", 4)


def _environment(tmp_path):
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _evaluate_args(output, shared_data, lm, adapter, *extra, tasks="cmrc2018,bo_zh_mt,drift"):
    return [
        "evaluate",
        *("--tasks", tasks, "--limit", str(LIMIT), "--batch-size", str(BATCH), "--device", "cpu"),
        *("--data-dir", shared_data, "--model", lm, "--adapter", adapter, "--drift-window", "48"),
        *("--output", output, *extra),
    ]


def _run(launcher, args, tmp_path, expect_ok=True):
    done = subprocess.run(
        [*launcher, "-m", "alignment_tax", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_environment(tmp_path),
    )
    if expect_ok:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def _torchrun(processes):
    return [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", str(processes)] + [
        "--master_port",
        str(_free_port()),
    ]


def _read(output):
    results = json.loads((output / "results.json").read_text(encoding="utf-8"))
    samples = {
        task: (output / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
        for task in results["samples"]
    }
    with np.load(output / "drift_tokens.npz") as arrays:
        tokens = {name: arrays[name] for name in arrays.files}
    return results, samples, tokens


def _assert_same_run(first, second):
    (results_a, samples_a, tokens_a), (results_b, samples_b, tokens_b) = first, second
    for key in ("tasks", "health", "tax", "drift", "signatures", "data"):
        assert results_a[key] == results_b[key], key
    assert results_a["base"]["key"] == results_b["base"]["key"]
    assert samples_a == samples_b  # every sample: input, output text, truncation flag, per-item metrics
    assert tokens_a.keys() == tokens_b.keys()
    for name in tokens_a:
        np.testing.assert_array_equal(tokens_a[name], tokens_b[name], err_msg=name)


@pytest.mark.slow
@pytest.mark.skipif(not Path(sys.executable).with_name("torchrun").exists(), reason="torchrun not installed")
def test_two_processes_equal_one_and_resume_in_one(
    shared_data, tiny_lm_dir, tiny_adapter_dir, tiny_embedder_dir, tmp_path
):
    models = (tiny_lm_dir, tiny_adapter_dir, "--base", "--embedder", tiny_embedder_dir)
    models += ("--max-gen-toks", "cmrc2018=24", "--max-gen-toks", "bo_zh_mt=24")  # short: the test stays quick
    one, two = tmp_path / "one" / "run", tmp_path / "two" / "run"
    _run([sys.executable], _evaluate_args(one, shared_data, *models), tmp_path)
    done = _run(_torchrun(2), _evaluate_args(two, shared_data, *models, "--json"), tmp_path)
    assert done.stdout.count('"results"') == 1  # rank 0 alone prints the summary
    single, double = _read(one), _read(two)
    assert single[0]["config"]["world_size"] == 1 and double[0]["config"]["world_size"] == 2
    assert {task: len(lines) for task, lines in double[1].items()} == {"cmrc2018": LIMIT, "bo_zh_mt": LIMIT}
    _assert_same_run(single, double)
    base_folder = Path(double[0]["base"]["results"]).parent
    assert json.loads((base_folder / "results.json").read_text(encoding="utf-8"))["config"]["world_size"] == 2

    # A kill leaves responses scattered over blocks of both ranks: drop every third one (and
    # the finished files), then resume in one process over the same folder.
    with sqlite3.connect(two / "cache" / "candidate.sqlite") as db:
        keys = [row[0] for row in db.execute("SELECT key FROM keyed_responses ORDER BY rowid")]
        db.executemany("DELETE FROM keyed_responses WHERE key = ?", [(key,) for key in keys[::3]])
    for name in ("results.json", "drift_tokens.npz"):
        (two / name).unlink()
    _run([sys.executable], _evaluate_args(two, shared_data, *models), tmp_path)
    resumed = _read(two)
    assert resumed[0]["base"]["reused"] is True
    _assert_same_run(single, resumed)


@pytest.mark.slow
@pytest.mark.skipif(not Path(sys.executable).with_name("torchrun").exists(), reason="torchrun not installed")
def test_a_locked_folder_stops_every_process_with_one_line(shared_data, tiny_lm_dir, tiny_adapter_dir, tmp_path):
    output = tmp_path / "locked"
    args = _evaluate_args(output, shared_data, tiny_lm_dir, tiny_adapter_dir, tasks="drift")
    with OutputLock(output, "evaluate"):
        done = _run(_torchrun(2), args, tmp_path, expect_ok=False)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("alignment-tax: error:")]
    assert len(lines) == 2 and lines[0] == lines[1] and "is being written by another evaluate" in lines[0]


@pytest.mark.slow
@pytest.mark.skipif(not Path(sys.executable).with_name("accelerate").exists(), reason="accelerate CLI not installed")
def test_accelerate_launch_gives_the_drift_of_one_process(shared_data, tiny_lm_dir, tiny_adapter_dir, tmp_path):
    # As in test_train_distributed: `--cpu --num_processes 2` starts one process in accelerate
    # 1.15, so the shipped multi-GPU config with two processes, which stays on the CPU here.
    accelerate = [
        str(Path(sys.executable).with_name("accelerate")),
        *("launch", "--config_file", str(ACCELERATE_CONFIGS / "multi_gpu.yaml"), "--num_processes", "2"),
        *("--main_process_port", str(_free_port())),
    ]
    runs = {}
    for name, launcher in (("one", [sys.executable]), ("two", accelerate)):
        output = tmp_path / name
        args = [
            *("evaluate", "--tasks", "drift", "--limit", str(LIMIT), "--batch-size", "1", "--device", "cpu"),
            *("--data-dir", shared_data, "--model", tiny_lm_dir, "--adapter", tiny_adapter_dir),
            *("--drift-window", "32", "--output", output),
        ]
        _run(launcher, args, tmp_path)
        runs[name] = json.loads((output / "results.json").read_text(encoding="utf-8"))
        with np.load(output / "drift_tokens.npz") as arrays:
            runs[name]["tokens"] = {key: arrays[key] for key in arrays.files}
    assert runs["two"]["config"]["world_size"] == 2
    assert runs["one"]["drift"] == runs["two"]["drift"]
    for key, values in runs["one"]["tokens"].items():
        np.testing.assert_array_equal(values, runs["two"]["tokens"][key], err_msg=key)
