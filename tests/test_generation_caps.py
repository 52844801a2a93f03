"""Generation caps (``max_gen_toks``) and the ``truncated`` flag of every generation."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.evaluation.generation_cache import GenerationCache, hf_rows_truncated
from alignment_tax.evaluation.generation_caps import (
    cap_for_references,
    check_caps,
    effective_caps,
    parse_max_gen_toks,
)
from alignment_tax.evaluation.served_lm import finish_reasons

LIMIT = 3


def test_a_row_is_truncated_only_when_the_batch_ran_to_the_cap_and_the_row_never_finished():
    finish = {0, 2}  # pad, eos
    rows = [[5, 6, 7], [5, 2, 0], [5, 6, 0], [5, 6, 8]]
    # row 0 ran out; row 1 ended with EOS; row 2 ended earlier (padded); row 3 met a stop string
    assert hf_rows_truncated(rows, 3, 3, finish, [False, False, False, True]) == [True, False, False, False]
    # a batch that stopped before the cap truncated nothing, whatever its last tokens
    assert hf_rows_truncated([[5, 6], [7, 8]], 2, 3, finish, [False, False]) == [False, False]
    assert hf_rows_truncated([[]], 0, 0, finish, [False]) == [False]


def test_finish_reasons_follow_the_choice_index_across_batches():
    outputs = [
        {
            "choices": [
                {"index": 1, "text": "b", "finish_reason": "length"},
                {"index": 0, "text": "a", "finish_reason": "stop"},
            ]
        },
        {"choices": [{"index": 0, "text": "c"}]},
    ]
    assert finish_reasons(outputs) == ["stop", "length", None]


def test_the_cache_keeps_flags_beside_responses_and_keys_both_by_the_model(tmp_path):
    args = ("prompt", {"until": ["\n\n"], "max_gen_toks": 8})
    cache = GenerationCache(tmp_path / "c.sqlite", "model-a")
    cache.put("generate_until", args, "text", truncated=True)
    cache.put("generate_until", ("other", {}), "text")  # flag unknown
    assert cache.truncated(args) is True and cache.truncated(("other", {})) is None
    cache.close()
    reopened = GenerationCache(tmp_path / "c.sqlite", "model-a")
    assert reopened.get("generate_until", args) == "text" and reopened.truncated(args) is True
    reopened.close()
    other_model = GenerationCache(tmp_path / "c.sqlite", "model-b")
    assert other_model.truncated(args) is None and other_model.get("generate_until", args) is None
    other_model.close()


def test_cap_overrides_parse_and_refuse_nonsense():
    assert parse_max_gen_toks(["cmrc2018=64", "bo_headline = 512"]) == {"cmrc2018": 64, "bo_headline": 512}
    for bad in ("cmrc2018", "cmrc2018=", "=5", "cmrc2018=0", "cmrc2018=-3", "cmrc2018=lots", "cmrc2018=1.5"):
        with pytest.raises(UserError, match="TASK=N"):
            parse_max_gen_toks([bad])
    assert check_caps({"bo_headline": 320}) == {"bo_headline": 320}
    with pytest.raises(UserError):
        check_caps(["bo_headline", 320])


def test_a_cap_grows_in_steps_of_64_to_hold_the_longest_reference_and_its_margin():
    assert cap_for_references(0, 256) == 256
    assert cap_for_references(240, 256) == 256  # 240 + 16 fits exactly
    assert cap_for_references(241, 256) == 320
    assert cap_for_references(700, 256) == 768


class FakeTask:
    def __init__(self, output_type, references, max_gen_toks=256):
        self.config = SimpleNamespace(output_type=output_type, generation_kwargs={"max_gen_toks": max_gen_toks})
        self.eval_docs = [{"reference": reference} for reference in references]


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


# A character the tiny tokenizer never saw in its corpus: byte-level BPE has no merge for it, so
# each of its 3 UTF-8 bytes (E2 98 83) is one token. 84 of them take 252 tokens; 252 + 16 (margin)
# = 268 > 256, and the next multiple of 64 is 320: the expected caps below are worked by hand.
SNOWMAN = "\u2603"
LONG_REFERENCE = SNOWMAN * 84
LONG_REFERENCE_TOKENS = 252
RAISED_CAP = 320


def count_tokens(tokenizer, text):
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_the_hand_counted_references_take_the_tokens_the_tokenizer_gives(tokenizer):
    # The independent count the expected caps rest on: the tokenizer itself, not effective_caps.
    assert count_tokens(tokenizer, SNOWMAN) == 3
    assert count_tokens(tokenizer, LONG_REFERENCE) == LONG_REFERENCE_TOKENS
    assert count_tokens(tokenizer, "北京") == 1 and count_tokens(tokenizer, "北京市") == 2  # a learned merge each


def test_effective_caps_follow_override_then_references_then_the_task(tokenizer):
    tasks = {
        "short": FakeTask("generate_until", ["北京", ["北京", "北京市"]]),
        "long": FakeTask("generate_until", ["短", LONG_REFERENCE]),
        "just_fits": FakeTask("generate_until", [SNOWMAN * 80]),  # 240 + 16 = 256: no raise
        "builtin": FakeTask("generate_until", [LONG_REFERENCE], max_gen_toks=32),
        "choice": FakeTask("multiple_choice", ["A"]),
    }
    tasks["short"].eval_docs[1] = {"reference": ["北京", "北京市"]}  # CMRC docs hold several answers
    caps = effective_caps(tasks, tokenizer, {"builtin": 48}, own_tasks=["short", "long", "just_fits"])
    assert caps == {
        "short": {"max_gen_toks": 256, "source": "task default", "longest_reference_tokens": 2},
        "long": {"max_gen_toks": RAISED_CAP, "source": "longest reference", "longest_reference_tokens": 252},
        "just_fits": {"max_gen_toks": 256, "source": "task default", "longest_reference_tokens": 240},
        "builtin": {"max_gen_toks": 48, "source": "override", "longest_reference_tokens": None},
    }  # loglikelihood tasks have no cap
    # A built-in task's docs are not measured: its own cap stands even under a long reference.
    builtin = effective_caps(tasks, tokenizer, {}, own_tasks=[])["builtin"]
    assert builtin == {"max_gen_toks": 32, "source": "task default", "longest_reference_tokens": None}
    with pytest.raises(UserError, match="does not generate text"):
        effective_caps(tasks, tokenizer, {"choice": 8}, own_tasks=[])
    with pytest.raises(UserError, match="is not among --tasks"):
        effective_caps(tasks, tokenizer, {"cmrc2018": 8}, own_tasks=[])


def read_items(folder, task):
    return [
        json.loads(line) for line in (folder / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    ]


@pytest.mark.slow
def test_capped_generations_are_flagged_counted_warned_and_recorded(
    tmp_path, shared_data, tiny_lm_dir, tiny_adapter_dir, capsys
):
    # The random adapter writes text without end; the bare tiny base ends at once (EOS): one run
    # holds a known change (every candidate generation hits the cap) and a zero (none of the base's).
    argv = [
        "evaluate",
        "--model",
        str(tiny_lm_dir),
        "--adapter",
        str(tiny_adapter_dir),
        "--base",
        "--tasks",
        "cmrc2018,bo_headline",
        "--limit",
        str(LIMIT),
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--data-dir",
        str(shared_data),
        "--max-gen-toks",
        "cmrc2018=8",
        "--max-gen-toks",
        "bo_headline=6",
        "--output",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    caps = results["config"]["generation_caps"]
    assert caps["cmrc2018"]["max_gen_toks"] == 8 and caps["cmrc2018"]["source"] == "override"
    assert caps["bo_headline"]["max_gen_toks"] == 6 and caps["bo_headline"]["source"] == "override"
    assert results["config"]["generation"]["cmrc2018"]["max_gen_toks"] == 8
    assert results["config"]["max_gen_toks"] == {"cmrc2018": 8, "bo_headline": 6}
    assert [item["truncated"] for item in read_items(tmp_path / "run", "cmrc2018")] == [True] * LIMIT
    assert results["tasks"]["cmrc2018"]["truncated_rate"] == 1.0
    assert results["health"]["cmrc2018"]["truncated_rate"] == 1.0  # one more output-health rate
    assert "truncated_rate" not in (results["tax"].get("cmrc2018") or {})  # and not a metric to take the tax of
    base_folder = Path(results["base"]["results"]).parent
    base = json.loads((base_folder / "results.json").read_text(encoding="utf-8"))
    assert [item["truncated"] for item in read_items(base_folder, "cmrc2018")] == [False] * LIMIT
    assert base["tasks"]["cmrc2018"]["truncated_rate"] == 0.0 and base["health"]["cmrc2018"]["truncated_rate"] == 0.0
    warnings = [line for line in err.splitlines() if "stopped at the" in line]
    assert any(
        "cmrc2018: 100.0%" in line and "8-token cap" in line and "--max-gen-toks cmrc2018=N" in line
        for line in warnings
    )
    assert not any(str(tiny_lm_dir) + "'s" in line for line in warnings)  # the base hit no cap

    # A rerun answers from the cache, flags included; another cap is another request.
    assert main(argv) == 0
    again = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert again["tasks"] == results["tasks"]
    argv[argv.index("cmrc2018=8")] = "cmrc2018=4"
    assert main(argv) == 0
    four = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert four["config"]["generation"]["cmrc2018"]["max_gen_toks"] == 4
    assert four["base"]["reused"] is False  # the base answers under the new cap too
    assert all(item["truncated"] for item in read_items(tmp_path / "run", "cmrc2018"))


@pytest.mark.slow
def test_a_cap_for_a_task_not_run_is_refused_before_anything_loads(tmp_path, shared_data, tiny_lm_dir, capsys):
    argv = [
        "evaluate",
        "--model",
        str(tiny_lm_dir),
        "--tasks",
        "cmrc2018",
        "--limit",
        "1",
        "--data-dir",
        str(shared_data),
        "--max-gen-toks",
        "bo_headline=8",
        "--output",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-gen-toks bo_headline: that task is not among --tasks" in err[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_long_reference_raises_the_cap_end_to_end(tmp_path, tiny_lm_dir, tiny_adapter_dir, tokenizer):
    # A headline file whose one long reference needs more than the task's 256 tokens; the random
    # adapter writes without end, so its generation shows the cap the run really used.
    data = tmp_path / "data"
    (data / "bo_text").mkdir(parents=True)
    rows = [
        {"id": "long", "context": "ས་ཡོམ་ཚད་རིམ་གྱིས་ས་འགུལ་རང་སྟེང་གི་དྲག་ཞན་ཆེ་ཆུང་མཚོན།", "title": LONG_REFERENCE},
        {"id": "short", "context": "བླ་གོས་ནི་གྲྭ་པའི་གོས་ཡིན།", "title": "བླ་གོས།"},
    ]
    (data / "bo_text" / "tibetanqa_title_passage.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    argv = ["evaluate", "--model", str(tiny_lm_dir), "--adapter", str(tiny_adapter_dir), "--tasks", "bo_headline"]
    argv += ["--limit", "1", "--device", "cpu", "--data-dir", str(data), "--output", str(tmp_path / "run")]
    assert main(argv) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert results["config"]["generation_caps"]["bo_headline"] == {
        "max_gen_toks": RAISED_CAP,
        "source": "longest reference",
        "longest_reference_tokens": LONG_REFERENCE_TOKENS,
    }
    assert results["config"]["generation"]["bo_headline"]["max_gen_toks"] == RAISED_CAP  # what lm-eval ran
    [item] = read_items(tmp_path / "run", "bo_headline")
    assert item["id"] == "long" and item["truncated"] is True
    # The same greedy decode outside the toolkit: the answer is the first 320 tokens, not 256.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tiny_adapter_dir).eval()
    prompt = tokenizer(item["input"], add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ids = model.generate(input_ids=prompt, max_new_tokens=RAISED_CAP, do_sample=False)[0, prompt.shape[1] :]
    assert len(ids) == RAISED_CAP and tokenizer.eos_token_id not in ids.tolist()
    assert item["output"] == tokenizer.decode(ids, skip_special_tokens=True)
    assert item["output"] != tokenizer.decode(ids[:256], skip_special_tokens=True)
