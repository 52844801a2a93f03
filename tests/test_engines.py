"""The generation engines: vLLM's arguments, its LoRA handling, and the vllm engine's orchestration.

vLLM needs a GPU and is not installed here. The end-to-end tests below run the ``vllm``
engine's orchestration (one engine per base model, the base as "no LoRA request", release
before drift) with :class:`HFLMAsVLLM`, a stand-in that has lm-eval's ``VLLM`` constructor and
``lora_request`` attribute but generates with transformers (lm-eval's ``HFLM``).

What these tests prove: the engine is built with the right arguments, once per base model; the
adapter is served under a LoRA request and the base with none; the results are filed and keyed
as the ``hf`` engine's are. That its outputs equal the ``hf`` engine's follows from it *being*
transformers, so the equality checks only the routing (the adapter changes the outputs, so a
base served with the adapter, or the reverse, would differ). What they do not prove: that real
vLLM generates what transformers does (kernels, batching, LoRA arithmetic): that needs a GPU
and vLLM (``tests/gpu``). Nor does :class:`HFLMAsVLLM` build requests as lm-eval's ``VLLM``
does (it is HFLM underneath): ``tests/test_vllm_cache.py`` runs lm-eval's ``VLLM`` class itself,
with only the vLLM engine replaced, for the cache keys and truncation flags that depend on that.
"""

import json
from pathlib import Path

import pytest
from engine_helpers import outputs
from lm_eval.models.huggingface import HFLM

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.evaluation.engines import (
    Role,
    VLLMOptions,
    parse_engine_args,
    vllm_lora_rank,
    vllm_model_args,
)
from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate


def write_adapter_config(folder, **config):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "config, rank",
    [
        ({"r": 4}, 8),
        ({"r": 8}, 8),
        ({"r": 64}, 64),
        ({"r": 65}, 128),
        ({"r": 16, "rank_pattern": {"q_proj": 300}}, 320),
    ],
)
def test_lora_rank_rounds_up_to_what_vllm_allocates(tmp_path, config, rank):
    assert vllm_lora_rank(str(write_adapter_config(tmp_path / "a", **config))) == rank


@pytest.mark.parametrize("config, message", [({"r": 1024}, "above the 512"), ({"r": 8, "use_dora": True}, "DoRA")])
def test_adapters_vllm_cannot_serve_are_refused(tmp_path, config, message):
    with pytest.raises(UserError, match=message):
        vllm_lora_rank(str(write_adapter_config(tmp_path / "a", **config)))


def test_model_args_for_lm_eval_vllm(tmp_path):
    adapter = write_adapter_config(tmp_path / "adapter", r=64)
    options = EvaluateOptions(
        tasks=["cmrc2018"],
        output="x",
        engine="vllm",
        seed=7,
        vllm=VLLMOptions(tensor_parallel_size=2, max_model_len=4096, extra={"enforce_eager": True}),
    )
    args = vllm_model_args(Role("Qwen/Qwen3-4B"), str(adapter), "bfloat16", options)
    assert args["pretrained"] == "Qwen/Qwen3-4B" and args["dtype"] == "bfloat16" and args["seed"] == 7
    assert args["tensor_parallel_size"] == 2 and args["data_parallel_size"] == 1
    assert args["max_model_len"] == 4096 and args["enforce_eager"] is True
    assert args["lora_local_path"] == str(adapter.resolve()) and args["max_lora_rank"] == 64
    assert args["batch_size"] == "auto" and args["gpu_memory_utilization"] == 0.85
    no_lora = vllm_model_args(Role("Qwen/Qwen3-4B"), None, "auto", options)
    assert "lora_local_path" not in no_lora and "max_model_len" in no_lora


def test_engine_args_parse_json_values():
    assert parse_engine_args(["enforce_eager=true", "quantization=fp8", "max_num_seqs=32"]) == {
        "enforce_eager": True,
        "quantization": "fp8",
        "max_num_seqs": 32,
    }
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_engine_args(["enforce_eager"])
    with pytest.raises(UserError, match="gpu-memory-utilization"):
        VLLMOptions(gpu_memory_utilization=1.5)


def test_adapter_fit_is_checked_without_loading_weights(tiny_lm_dir, tiny_adapter_dir, mismatched_base):
    from alignment_tax.models.loading import describe_for_evaluation

    described = describe_for_evaluation(None, str(tiny_adapter_dir), "cpu", "auto")
    assert described.model is None and described.name == str(tiny_lm_dir) and described.tokenizer.chat_template
    with pytest.raises(UserError, match="does not fit base .*q_proj.lora_A.*shape"):
        describe_for_evaluation(str(mismatched_base), str(tiny_adapter_dir), "cpu", "auto")


def test_without_vllm_the_engine_is_one_line(tmp_path, tiny_lm_dir, capsys):
    from importlib.util import find_spec

    if find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    code = main(
        [
            "evaluate",
            "--engine",
            "vllm",
            "--model",
            str(tiny_lm_dir),
            "--tasks",
            "cmrc2018",
            "--samples",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and 'pip install "alignment-tax[vllm]"' in error[0]
    assert not (tmp_path / "out").exists()  # refused before any data or model loaded


class HFLMAsVLLM(HFLM):
    """Not vLLM: lm-eval's ``HFLM`` (transformers) behind ``VLLM``'s constructor and ``lora_request``.

    It records every engine built (``built``) and the LoRA request each generation ran under
    (``requests``), so a test can check the orchestration; its outputs say nothing about vLLM's.
    """

    built: list[dict] = []
    requests: list[tuple | None] = []

    def __init__(
        self, pretrained, lora_local_path=None, enable_thinking=False, think_end_token=None, dtype="auto", **engine
    ):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        HFLMAsVLLM.built.append(
            {"pretrained": pretrained, "lora_local_path": lora_local_path, "dtype": dtype, **engine}
        )
        network = AutoModelForCausalLM.from_pretrained(pretrained).eval()
        if lora_local_path:
            network = PeftModel.from_pretrained(network, lora_local_path).eval()
        super().__init__(
            pretrained=network,
            tokenizer=AutoTokenizer.from_pretrained(pretrained),
            batch_size=4,
            device="cpu",
            enable_thinking=enable_thinking,
            think_end_token=think_end_token,
        )
        self.lora_request = ("finetuned", 1, lora_local_path) if lora_local_path else None

    def generate_until(self, requests, disable_tqdm=False):
        HFLMAsVLLM.requests.append(self.lora_request)
        if self.lora_request is None and hasattr(self.model, "disable_adapter"):
            with self.model.disable_adapter():
                return super().generate_until(requests, disable_tqdm)
        return super().generate_until(requests, disable_tqdm)


def run(engine, output, shared_data, tasks=("cmrc2018", "bo_zh_mt"), **fields):
    options = EvaluateOptions(
        tasks=list(tasks),
        output=str(output),
        limit=2,
        batch_size=4,
        device="cpu",
        dtype="float32",
        data_dir=str(shared_data),
        engine=engine,
        **fields,
    )
    return evaluate(options, vllm_class=HFLMAsVLLM)


def test_vllm_engine_serves_adapter_and_base_from_one_engine(tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir):
    HFLMAsVLLM.built.clear()
    HFLMAsVLLM.requests.clear()
    fields = dict(
        model=str(tiny_lm_dir),
        adapter=str(tiny_adapter_dir),
        base="auto",
        drift_window=64,
        tasks=("cmrc2018", "bo_zh_mt", "drift"),
    )
    hf = run("hf", tmp_path / "hf" / "run", shared_data, **fields)
    vllm = run("vllm", tmp_path / "vllm" / "run", shared_data, **fields)
    assert len(HFLMAsVLLM.built) == 1  # the base is the same engine with no LoRA request
    built = HFLMAsVLLM.built[0]
    assert built["pretrained"] == str(tiny_lm_dir) and built["lora_local_path"] == str(tiny_adapter_dir.resolve())
    assert built["max_lora_rank"] == 8 and built["batch_size"] == "auto" and built["dtype"] == "float32"
    assert vllm["tasks"] == hf["tasks"] and vllm["tax"] == hf["tax"]
    # generations ran under the adapter's LoRA request (the model) and under none (the base)
    adapter_request = ("finetuned", 1, str(tiny_adapter_dir.resolve()))
    assert set(HFLMAsVLLM.requests) == {adapter_request, None}
    base_samples = Path(hf["base"]["results"]).parent
    for task in ("cmrc2018", "bo_zh_mt"):
        finetuned = outputs(tmp_path / "hf" / "run", task)
        # the adapter changes the outputs, so the equality below tells adapter from base
        assert finetuned != outputs(base_samples, task)
        assert outputs(tmp_path / "vllm" / "run", task) == finetuned
    base_hf = json.loads(open(hf["base"]["results"], encoding="utf-8").read())
    base_vllm = json.loads(open(vllm["base"]["results"], encoding="utf-8").read())
    assert base_vllm["tasks"] == base_hf["tasks"] and base_vllm["config"]["engine"] == "vllm"
    assert hf["base"]["key"] != vllm["base"]["key"]  # engines never reuse each other's base results
    assert vllm["drift"]["kl"] == hf["drift"]["kl"]  # drift loads the weights with transformers


def test_vllm_engine_builds_one_engine_per_model(tmp_path, shared_data, tiny_lm_dir):
    import shutil

    base = shutil.copytree(tiny_lm_dir, tmp_path / "base-copy")
    HFLMAsVLLM.built.clear()
    results = run("vllm", tmp_path / "run", shared_data, model=str(tiny_lm_dir), base=str(base))
    assert [engine["pretrained"] for engine in HFLMAsVLLM.built] == [str(base), str(tiny_lm_dir)]
    assert all(engine["lora_local_path"] is None for engine in HFLMAsVLLM.built)
    assert results["base"]["via"] == "separate load"
    assert all(delta == 0 for delta in results["tax"]["cmrc2018"].values())  # the same weights
