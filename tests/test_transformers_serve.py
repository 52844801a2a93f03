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
from engine_helpers import outputs
from transformers_server import TransformersServer, serving_missing

from alignment_tax.cli import main
from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
from alignment_tax.evaluation.served import ServerOptions

TASKS = ["cmrc2018", "bo_zh_mt"]
LIMIT = 2
# The server is never told "\n\n" (every prompt ends in "\n": see served_lm), so the jittered tiny
# model, which never ends an answer, runs to each task's cap: a small cap keeps the test short.
CAPS = {task: 16 for task in TASKS}


@pytest.fixture(scope="module")
def model_dir(tiny_lm_dir, tmp_path_factory):
    """The tiny model with its weights jittered: the plain one answers every prompt with newlines
    (empty outputs once cut at "\n\n"), this one with varied text, so that equality means something."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=noise))
    folder = tmp_path_factory.mktemp("talkative-lm")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_lm_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    missing = serving_missing()
    if missing:
        pytest.skip(missing)
    with TransformersServer(model_dir, tmp_path_factory.mktemp("transformers-serve") / "serve.log") as running:
        yield running


def options(output, shared_data, model_dir, engine, **server):
    return EvaluateOptions(
        tasks=TASKS,
        output=str(output),
        model=str(model_dir),
        limit=LIMIT,
        batch_size=1,
        device="cpu",
        dtype="float32",
        data_dir=str(shared_data),
        max_gen_toks=CAPS,
        engine=engine,
        server=ServerOptions(**server),
    )


def test_text_prompts_give_the_hf_engines_outputs_and_auto_switches_once(
    tmp_path, server, shared_data, model_dir, capfd
):
    hf = evaluate(options(tmp_path / "hf", shared_data, model_dir, "hf"))
    capfd.readouterr()
    served = evaluate(options(tmp_path / "served", shared_data, model_dir, "server", base_url=server.url))
    notes = [line for line in capfd.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "takes no token ids (HTTP 400: prompt must be a string.)" in notes[0], notes
    for task in TASKS:
        assert outputs(tmp_path / "served", task) == outputs(tmp_path / "hf", task)
        assert all(outputs(tmp_path / "hf", task))  # text, not only empty strings
    assert served["tasks"] == hf["tasks"]
    assert served["config"]["server"]["prompt_format"] == "text"  # what auto found the server takes
    # Asked for text from the start, on the same output: every answer is the cached one (both
    # formats give the same answers, so the format is not part of the cache key).
    asked = server.completions()
    again = evaluate(
        options(tmp_path / "served", shared_data, model_dir, "server", base_url=server.url, prompt_format="text")
    )
    assert server.completions() == asked and again["tasks"] == hf["tasks"]


BAR = re.compile(r"\| *\d+/\d+ \[")  # a progress bar's line (not an error): "...| 2/4 [00:01<..."


def test_token_ids_refused_are_one_line_and_exit_2(tmp_path, server, shared_data, model_dir, capfd):
    argv = ["evaluate", "--engine", "server", "--base-url", server.url, "--prompt-format", "tokens"]
    argv += ["--model", str(model_dir), "--tasks", ",".join(TASKS), "--limit", "4", "--concurrency", "8"]
    argv += ["--data-dir", str(shared_data), "--output", str(tmp_path / "out")]
    asked = server.completions()
    assert main(argv) == 2
    assert server.completions() - asked <= 8  # one try per prompt at most: a refusal is not retried
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


def test_the_judge_runs_end_to_end_and_a_refusal_is_one_line(tmp_path, server, model_dir, capfd):
    a, b = write_runs(tmp_path)
    common = ["judge", "--a", str(a), "--b", str(b), "--task", "bo_zh_mt", "--base-url", server.url]
    common += ["--max-tokens", "8"]  # else each reply is transformers serve's 1024 tokens
    assert main([*common, "--judge-model", str(model_dir), "--output", str(tmp_path / "j.json")]) == 0
    result = json.loads((tmp_path / "j.json").read_text(encoding="utf-8"))
    # The tiny model answers nonsense: unreadable verdicts are asked again once, then counted invalid.
    assert result["n_pairs"] == 2 and result["n_valid"] + result["n_invalid"] == 2
    assert 4 <= result["calls"]["made"] <= 8 and result["calls"]["rejected"] == 0
    assert result["judge"]["model"] == f"{model_dir} (max_tokens=8)"  # capped replies are cached apart
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


def test_a_stop_the_prompts_end_could_complete_does_not_cut_the_served_answer_short(tmp_path, server, model_dir):
    """transformers' stop strings look across the prompt's end: given "\\n" + the answer's first
    character, the server would stop after one token (the prompt ends in "\\n"). Not sent, the stop
    is applied here, and the answer equals transformers' own greedy one, cut as the hf engine cuts."""
    from types import SimpleNamespace

    import torch
    from lm_eval.api.instance import Instance
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignment_tax.evaluation.generation_cache import GenerationCache
    from alignment_tax.evaluation.roles import Role
    from alignment_tax.evaluation.served import ServerEngine
    from alignment_tax.models.loading import describe_for_evaluation

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # An answer whose first token is whole characters ("非"), not a byte of one: a stop string can match it.
    chat = [{"role": "user", "content": "阅读文章并回答问题：北京是中国的首都。问题：中国的首都是哪里？"}]
    prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=8, do_sample=False)[0, ids["input_ids"].shape[1] :]
    expected = tokenizer.decode(generated, skip_special_tokens=True)
    until = ["\n" + tokenizer.decode(generated[:1])]  # never in the answer; with the prompt's "\n", at once
    assert prompt.endswith("\n") and len(generated) == 8 and until[0] not in expected and "\ufffd" not in until[0]

    settings = ServerOptions(base_url=server.url, prompt_format="text")
    options = SimpleNamespace(server=settings, enable_thinking=False, base=None, seed=1234)
    engine = ServerEngine(describe_for_evaluation(str(model_dir), None, "cpu", "float32"), options)
    request = Instance("generate_until", doc={}, arguments=(prompt, {"until": until, "max_gen_toks": 8}), idx=0)
    cache = GenerationCache(tmp_path / "cache.sqlite", "fingerprint")
    try:
        with engine.lm(Role(str(model_dir)), cache) as lm:
            assert lm.generate_until([request]) == [expected]
    finally:
        cache.close()
