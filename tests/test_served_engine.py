"""`evaluate --engine server` against a real OpenAI-compatible server on 127.0.0.1.

The server (tests/completions_server.py) generates with transformers from the token ids it is
sent, as `vllm serve` does, and serves the tiny model under two names: the base, and the
adapter (as `--lora-modules`). Greedy answers must then equal the `hf` engine's exactly.
"""

import pytest
from completions_server import CompletionsServer, Served
from engine_helpers import outputs

from alignment_tax.cli import main
from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
from alignment_tax.evaluation.served import ServerOptions

TASKS = ["cmrc2018", "bo_zh_mt"]
LIMIT = 2


@pytest.fixture(scope="module")
def served(tiny_lm_dir, tiny_adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    network = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tiny_adapter_dir).eval()
    return {"tiny-base": Served(network, tokenizer, adapter_on=False), "tiny-lora": Served(network, tokenizer)}


def options(output, shared_data, tiny_lm_dir, tiny_adapter_dir, engine, **server):
    return EvaluateOptions(
        tasks=TASKS,
        output=str(output),
        model=str(tiny_lm_dir),
        adapter=str(tiny_adapter_dir),
        base="auto",
        limit=LIMIT,
        batch_size=1,
        device="cpu",
        dtype="float32",
        data_dir=str(shared_data),
        engine=engine,
        server=ServerOptions(**server),
    )


def test_served_answers_equal_the_hf_engine_and_a_rerun_asks_nothing(
    tmp_path, served, shared_data, tiny_lm_dir, tiny_adapter_dir
):
    hf = evaluate(options(tmp_path / "hf" / "run", shared_data, tiny_lm_dir, tiny_adapter_dir, "hf"))
    with CompletionsServer(served) as server:
        settings = dict(base_url=server.url, model="tiny-lora", base_model="tiny-base", concurrency=4)
        run = options(tmp_path / "server" / "run", shared_data, tiny_lm_dir, tiny_adapter_dir, "server", **settings)
        result = evaluate(run)
        assert server.completions == 2 * len(TASKS) * LIMIT  # candidate and base
        evaluate(run)
        assert server.completions == 2 * len(TASKS) * LIMIT  # every answer came from the cache
    assert result["tasks"] == hf["tasks"] and result["tax"] == hf["tax"]
    for task in TASKS:
        assert outputs(tmp_path / "server" / "run", task) == outputs(tmp_path / "hf" / "run", task)
    assert result["config"]["server"]["model"] == "tiny-lora" and result["config"]["engine"] == "server"


def test_a_server_failing_midway_is_one_line_and_a_rerun_asks_only_the_rest(
    tmp_path, served, shared_data, tiny_lm_dir, tiny_adapter_dir
):
    output = tmp_path / "run"
    settings = dict(model="tiny-lora", base_model="tiny-base", concurrency=1, max_retries=1)
    with CompletionsServer(served, fail_after=3) as failing:
        with pytest.raises(Exception) as raised:
            evaluate(
                options(output, shared_data, tiny_lm_dir, tiny_adapter_dir, "server", base_url=failing.url, **settings)
            )
    message = str(raised.value)
    assert type(raised.value).__name__ == "UserError" and "\n" not in message
    assert "the generation server" in message and "500" in message and "a rerun asks only for the rest" in message
    with CompletionsServer(served) as healthy:
        evaluate(
            options(output, shared_data, tiny_lm_dir, tiny_adapter_dir, "server", base_url=healthy.url, **settings)
        )
        assert healthy.completions == 2 * len(TASKS) * LIMIT - 3


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown name", "serves tiny-base, tiny-lora, not 'tiny-dpo'"),
        ("adapter unnamed", "--served-model: name the adapter is served under"),
        ("no server", "cannot reach the generation server"),
        ("no url", "--engine server needs --base-url"),
    ],
)
def test_bad_server_settings_are_one_line(
    case, message, tmp_path, served, shared_data, tiny_lm_dir, tiny_adapter_dir, capsys
):
    argv = [
        "evaluate",
        "--engine",
        "server",
        "--model",
        str(tiny_lm_dir),
        "--adapter",
        str(tiny_adapter_dir),
        "--tasks",
        "cmrc2018",
        "--limit",
        "1",
        "--data-dir",
        str(shared_data),
        "--output",
        str(tmp_path / "out"),
    ]
    with CompletionsServer(served) as server:
        extra = {
            # With --base too: the base must not be asked before the candidate's name is found wrong.
            "unknown name": [
                "--base-url",
                server.url,
                "--served-model",
                "tiny-dpo",
                "--base",
                "--served-base",
                "tiny-base",
            ],
            "adapter unnamed": ["--base-url", server.url],
            "no server": ["--base-url", "http://127.0.0.1:9/v1"],
            "no url": [],
        }[case]
        assert main([*argv, *extra]) == 2
        assert server.completions == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
