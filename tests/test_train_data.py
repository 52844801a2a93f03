"""Training examples: the evaluation tasks' prompts, the reference column, row selection."""

import pytest

from alignment_tax.errors import UserError
from alignment_tax.tasks.prompts import build_doc, render_prompt
from alignment_tax.trainers.config import SECTION_DEFAULTS
from alignment_tax.trainers.training_examples import apply_prompt_cap, load_training_data, select_rows

DATA = SECTION_DEFAULTS["data"]


def test_translation_examples_use_the_task_template(shared_data):
    from alignment_tax.data import load_parallel

    path = shared_data / "bo_zh_mt" / "cmilbench_bo_zh.jsonl"
    data = load_training_data("zh_bo_mt", str(path), {**DATA, "limit": 3})
    pair = load_parallel(path, "zh", "bo")[0]
    example = data.examples[0]
    assert example["prompt"] == [{"role": "user", "content": render_prompt("zh_bo_mt", build_doc("zh_bo_mt", pair))}]
    assert example["reference"] == pair.target and example["completion"][0]["content"] == pair.target
    assert (data.target_lang, data.stop, len(data.examples), data.n_rows) == ("bo", ["\n\n"], 3, 450)
    assert "\u0f0c" not in example["reference"]  # normalised by the loader


def test_headline_examples(shared_data):
    data = load_training_data(
        "bo_headline", str(shared_data / "bo_text" / "tibetanqa_title_passage.jsonl"), {**DATA, "limit": 2}
    )
    content = data.examples[0]["prompt"][0]["content"]
    assert content.startswith("请为下面这篇藏文文章写一个藏文标题") and "文章：" in content
    assert data.target_lang == "bo" and data.examples[0]["reference"]


def test_row_selection():
    rows = list(range(10))
    assert select_rows(rows, {"skip": 2, "limit": 3}, "x") == [2, 3, 4]
    shuffled = select_rows(rows, {"shuffle_seed": 1}, "x")
    assert sorted(shuffled) == rows and shuffled != rows and shuffled == select_rows(rows, {"shuffle_seed": 1}, "x")
    with pytest.raises(UserError, match="data.skip is 10 but the data has 10 rows"):
        select_rows(rows, {"skip": 10}, "x")
    with pytest.raises(UserError, match="unknown training task 'cmrc2018'"):
        load_training_data("cmrc2018", "x", DATA)


def test_long_prompts_are_left_out_and_counted(shared_data, tiny_lm_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    data = load_training_data(
        "bo_zh_mt", str(shared_data / "bo_zh_mt" / "cmilbench_bo_zh.jsonl"), {**DATA, "limit": 20}
    )
    lengths = [
        len(tokenizer.apply_chat_template(e["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False))
        for e in data.examples
    ]
    limit = sorted(lengths)[10]
    over = sum(length > limit for length in lengths)
    assert 0 < over < 20
    record = apply_prompt_cap(data, tokenizer, limit, {})
    assert record == {
        "max_prompt_length": limit,
        "rule": "drop prompts over the cap (chat template applied)",
        "examples": 20,
        "over_cap": over,
        "dropped": over,
        "longest_prompt": max(lengths),
    }
    assert len(data.examples) == 20 - over and data.notes["prompt_cap"] == record
    with pytest.raises(UserError, match="every prompt is longer than data.max_prompt_length=5"):
        apply_prompt_cap(data, tokenizer, 5, {})


def test_no_cap_keeps_every_prompt_and_still_records_the_longest(shared_data, tiny_lm_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    data = load_training_data("bo_zh_mt", str(shared_data / "bo_zh_mt" / "cmilbench_bo_zh.jsonl"), {**DATA, "limit": 5})
    record = apply_prompt_cap(data, tokenizer, None, {})
    assert len(data.examples) == 5 and record["rule"] == "no cap" and record["dropped"] == 0
    assert record["longest_prompt"] > 0
