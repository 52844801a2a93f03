"""The ``vllm`` engine with lm-eval's own ``VLLM`` class: its cache, its truncation flags, and sweep.

:mod:`vllm_standin` replaces only the vLLM engine (greedy transformers under ``vllm.LLM``), so
lm-eval's ``VLLM.generate_until`` builds the requests and calls the cache hook as it does on a
GPU. lm-eval 0.4.13 hands the hook ``(context, kwargs | {"until": ..., "max_gen_toks": ...})``,
not the request's own ``(context, gen_kwargs)``: these tests fail if responses are stored under
that and a rerun, looking up the request, finds nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vllm_standin import GENERATED, vllm_standin

from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
from alignment_tax.evaluation.generation_cache import GenerationCache, resumable


@pytest.fixture
def standin(tmp_path):
    with vllm_standin(tmp_path / "site-packages") as lm_class:
        lm_class.built.clear()
        GENERATED.clear()
        yield lm_class


def samples(folder: Path, task: str) -> list[dict]:
    return [
        json.loads(line) for line in (folder / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def test_a_rerun_generates_nothing_and_truncation_is_recorded(
    standin, tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir
):
    run = EvaluateOptions(
        tasks=["cmrc2018", "bo_zh_mt"],
        output=str(tmp_path / "run"),
        limit=2,
        device="cpu",
        dtype="float32",
        data_dir=str(shared_data),
        engine="vllm",
        model=str(tiny_lm_dir),
        adapter=str(tiny_adapter_dir),
        base="auto",
        # Short caps keep a CPU run short; every translation stops at its cap (finish_reason "length").
        max_gen_toks={"bo_zh_mt": 3, "cmrc2018": 8},
    )
    assert standin.__bases__[0].__module__ == "lm_eval.models.vllm_causallms"  # lm-eval's own class
    first = evaluate(run, vllm_class=standin)
    requests = len(GENERATED)
    adapter = str(tiny_adapter_dir.resolve())
    # 2 tasks x 2 documents, for the adapter (its LoRA request) and for the base (none)
    assert requests == 8 and {None, adapter} == {g["lora"] and g["lora"].lora_path for g in GENERATED}
    assert len(standin.built) == 1 and standin.built[0]["lora_local_path"] == adapter

    # The flags come from vLLM's finish_reason through the cache, keyed as the scorer looks them up.
    assert first["tasks"]["bo_zh_mt"]["truncated_rate"] == 1.0
    assert all(sample["truncated"] is True for sample in samples(tmp_path / "run", "bo_zh_mt"))
    assert "truncated_rate" in first["tasks"]["cmrc2018"]
    outputs = {task: [s["output"] for s in samples(tmp_path / "run", task)] for task in ("cmrc2018", "bo_zh_mt")}

    again = evaluate(run, vllm_class=standin)
    assert len(GENERATED) == requests, f"{len(GENERATED) - requests} generations were made again"
    assert again["tasks"] == first["tasks"] and again["tax"] == first["tax"]
    assert {task: [s["output"] for s in samples(tmp_path / "run", task)] for task in outputs} == outputs


def test_sweep_runs_on_the_vllm_engine(standin, tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir):
    """The CLI's own path: ``vllm_lm_class()`` finds lm-eval's ``VLLM``, here on the stand-in engine."""
    from alignment_tax.cli import main

    root = tmp_path / "sweep"
    args = ["sweep", "--engine", "vllm", "--scales", "0,1", "--adapter", str(tiny_adapter_dir)]
    args += ["--model", str(tiny_lm_dir), "--tasks", "bo_zh_mt", "--limit", "2", "--device", "cpu"]
    args += ["--max-gen-toks", "bo_zh_mt=8", "--data-dir", str(shared_data), "--output", str(root)]
    assert main(args) == 0
    # Each strength is its scaled copy under a LoRA request; the base has none.
    copies = {str((root / "adapters" / f"scale_{s}").resolve()) for s in ("0", "1")}
    assert {g["lora"] and g["lora"].lora_path for g in GENERATED} == {None, *copies}
    requests = len(GENERATED)
    assert requests == 6  # 2 documents for the base, and for each strength

    read = lambda run: json.loads((root / run / "results.json").read_text(encoding="utf-8"))  # noqa: E731
    outputs = lambda folder: [s["output"] for s in samples(folder, "bo_zh_mt")]  # noqa: E731
    zero, one = read("scale_0"), read("scale_1")
    assert zero["config"]["engine"] == "vllm" and one["config"]["adapter_scale"] == 1.0
    assert all(delta == 0 for delta in zero["tax"]["bo_zh_mt"].values())  # B = 0: the base exactly
    base_folder = Path(zero["base"]["results"]).parent
    assert outputs(root / "scale_0") == outputs(base_folder) != outputs(root / "scale_1")

    assert main(args) == 0  # the copies are rewritten byte for byte, so their cached answers still count
    assert len(GENERATED) == requests


def test_without_vllm_a_vllm_sweep_is_one_line_and_writes_nothing(tmp_path, tiny_adapter_dir, capsys):
    from importlib.util import find_spec

    from alignment_tax.cli import main

    if find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    args = ["sweep", "--engine", "vllm", "--scales", "0,1", "--adapter", str(tiny_adapter_dir)]
    assert main([*args, "--tasks", "bo_zh_mt", "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and 'pip install "alignment-tax[vllm]"' in error[0]
    assert not (tmp_path / "out").exists()


class RewritingModel:
    """A model that hands the cache hook arguments of its own making, as lm-eval's ``VLLM`` does,
    changes each request's ``gen_kwargs`` in place, and answers in an order of its own."""

    def set_cache_hook(self, hook) -> None:
        self.cache_hook = hook

    def generate_until(self, requests, disable_tqdm=False):
        self.asked = [request.args for request in requests]
        answers = {}
        for index in sorted(range(len(requests)), key=lambda i: -len(requests[i].args[0])):  # stable, as lm-eval's
            context, kwargs = requests[index].args
            kwargs.setdefault("until", []).append("<eos>")
            answers[index] = f"{context}/{kwargs['n']}"
            self.cache_hook.add_partial("generate_until", (context, kwargs | {"max_gen_toks": 3}), answers[index])
        return [answers[index] for index in range(len(requests))]


def test_each_answer_is_filed_under_its_request_as_it_was_looked_up(tmp_path):
    from types import SimpleNamespace

    def requests():  # one context asked with two settings, and the same request twice
        asked = [("ab", 1), ("a", 2), ("ab", 3), ("a", 2)]
        return [SimpleNamespace(args=(context, {"n": n}), task_name="t") for context, n in asked]

    model = resumable(RewritingModel)()
    model.attach_cache(GenerationCache(tmp_path / "c.sqlite", "m"))
    assert model.generate_until(requests()) == ["ab/1", "a/2", "ab/3", "a/2"]
    assert len(model.asked) == 4
    again = resumable(RewritingModel)()
    again.attach_cache(GenerationCache(tmp_path / "c.sqlite", "m"))
    assert again.generate_until(requests()) == ["ab/1", "a/2", "ab/3", "a/2"]
    assert not hasattr(again, "asked")  # every answer came from the cache
