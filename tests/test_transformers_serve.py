"""`evaluate --engine server` and `judge` against a real `transformers serve` on 127.0.0.1.

transformers' own OpenAI-compatible server takes `/v1/completions` prompts as one string only
(`400 prompt must be a string.` to token ids) and applies stop strings across the prompt's end;
the engine must still give exactly the hf engine's greedy fp32 outputs on the same tiny model.
One server (tests/transformers_server.py) serves the module, pinned to the tiny model's folder.
"""

import gc
import json
import re

import pytest
from transformers_server import TransformersServer, serving_missing

from alignment_tax.cli import main
from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
from alignment_tax.evaluation.served import ServerOptions

TASKS = ["cmrc2018", "bo_zh_mt"]
LIMIT = 2
# The server is never told "\n\n" (every prompt ends in "\n": see served_lm), so the tiny model,
# which rarely ends an answer, would run to each task's full cap; a small cap keeps the test short.
CAPS = {task: 16 for task in TASKS}


@pytest.fixture(scope="module")
def server(tiny_lm_dir, tmp_path_factory):
    missing = serving_missing()
    if missing:
        pytest.skip(missing)
    with TransformersServer(tiny_lm_dir, tmp_path_factory.mktemp("transformers-serve") / "serve.log") as running:
        yield running


def options(output, shared_data, tiny_lm_dir, engine, **server):
    return EvaluateOptions(
        tasks=TASKS,
        output=str(output),
        model=str(tiny_lm_dir),
        limit=LIMIT,
        batch_size=1,
        device="cpu",
        dtype="float32",
        data_dir=str(shared_data),
        max_gen_toks=CAPS,
        engine=engine,
        server=ServerOptions(**server),
    )


def outputs(folder, task):
    lines = (folder / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["output"] for line in lines]


def test_text_prompts_give_the_hf_engines_outputs_and_auto_switches_once(
    tmp_path, server, shared_data, tiny_lm_dir, capfd
):
    hf = evaluate(options(tmp_path / "hf", shared_data, tiny_lm_dir, "hf"))
    capfd.readouterr()
    served = evaluate(options(tmp_path / "served", shared_data, tiny_lm_dir, "server", base_url=server.url))
    notes = [line for line in capfd.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "takes no token ids (HTTP 400: prompt must be a string.)" in notes[0], notes
    for task in TASKS:
        assert outputs(tmp_path / "served", task) == outputs(tmp_path / "hf", task)
    assert served["tasks"] == hf["tasks"]
    assert served["config"]["server"]["prompt_format"] == "text"  # what auto found the server takes
    # Asked for text from the start, on the same output: every answer is the cached one (both
    # formats give the same answers, so the format is not part of the cache key).
    asked = server.completions()
    again = evaluate(
        options(tmp_path / "served", shared_data, tiny_lm_dir, "server", base_url=server.url, prompt_format="text")
    )
    assert server.completions() == asked and again["tasks"] == hf["tasks"]


BAR = re.compile(r"\| *\d+/\d+ \[")  # a progress bar's line (not an error): "...| 2/4 [00:01<..."


def test_token_ids_refused_are_one_line_and_exit_2(tmp_path, server, shared_data, tiny_lm_dir, capfd):
    argv = ["evaluate", "--engine", "server", "--base-url", server.url, "--prompt-format", "tokens"]
    argv += ["--model", str(tiny_lm_dir), "--tasks", ",".join(TASKS), "--limit", "4", "--concurrency", "8"]
    argv += ["--data-dir", str(shared_data), "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    gc.collect()  # an asyncio task whose exception nobody retrieved reports it when collected
    err = [line for line in re.split(r"[\r\n]+", capfd.readouterr().err) if line.strip() and not BAR.search(line)]
    assert len(err) == 1, err
    assert "refused a request: HTTP 400: prompt must be a string." in err[0] and "--prompt-format text" in err[0]


def write_runs(root):
    """Two `evaluate` output folders with bo_zh_mt samples, the judge's input."""
    runs = []
    for name, outputs_ in (("a", ["扎西德勒。", "今天天气很好。"]), ("b", ["吉祥。", "天气好。"])):
        samples = root / name / "samples"
        samples.mkdir(parents=True)
        rows = [{"id": f"bo_{i}", "source": f"བཀྲ་ཤིས། {i}", "output": text} for i, text in enumerate(outputs_)]
        (samples / "bo_zh_mt.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
        runs.append(root / name)
    return runs


def test_the_judge_runs_end_to_end_and_a_refusal_is_one_line(tmp_path, server, tiny_lm_dir, capfd):
    a, b = write_runs(tmp_path)
    common = ["judge", "--a", str(a), "--b", str(b), "--task", "bo_zh_mt", "--base-url", server.url]
    common += ["--max-tokens", "8"]  # else each reply is transformers serve's 1024 tokens
    assert main([*common, "--judge-model", str(tiny_lm_dir), "--output", str(tmp_path / "j.json")]) == 0
    result = json.loads((tmp_path / "j.json").read_text(encoding="utf-8"))
    # The tiny model answers nonsense: every verdict unreadable, each order asked twice, and counted.
    assert result["n_pairs"] == 2 and result["n_valid"] + result["n_invalid"] == 2
    assert result["calls"]["made"] >= 4 and result["calls"]["rejected"] == 0
    capfd.readouterr()
    assert main([*common, "--judge-model", "not-served", "--output", str(tmp_path / "k.json")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused the call: HTTP 400" in err[0] and "pinned" in err[0], err


def test_the_text_sent_tokenises_to_the_ids_the_other_engines_send(tiny_lm_dir):
    from tokenizers import processors
    from transformers import AutoTokenizer

    from alignment_tax.errors import UserError
    from alignment_tax.evaluation.served_lm import ServerRefused, server_stops, text_prompt

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True
    )
    assert text_prompt(tokenizer, text) == text  # Qwen-style: no BOS, nothing added
    # A tokenizer that adds a BOS its template also writes: the server would see two; sent without one.
    bos = "<|endoftext|>"
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tokenizer.convert_tokens_to_ids(bos))]
    )
    tokenizer.bos_token = bos
    assert text_prompt(tokenizer, bos + text) == text
    assert tokenizer(text)["input_ids"] == tokenizer(bos + text, add_special_tokens=False)["input_ids"]
    with pytest.raises(UserError, match="would add special tokens"):
        text_prompt(tokenizer, text)  # a BOS the template did not write: no text gives the same ids
    assert server_stops(["\n\n", "<|im_end|>"], text) == ["<|im_end|>"] and server_stops(["\n\n"], "答：") == ["\n\n"]
    assert ServerRefused(400, "prompt must be a string.").wants_text
    assert not ServerRefused(400, "This model's maximum context length is 2048 tokens").wants_text
