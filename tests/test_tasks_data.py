"""Where the tasks' docs come from (data > data_dir > hub), the doc schemas and the prompts."""

import json

import datasets  # noqa: F401 - imported before the offline variables are set (see data/hub.py)
import pytest

from alignment_tax.data import HeadlinePair, ParallelPair, QAItem
from alignment_tax.errors import UserError
from alignment_tax.tasks import OUR_TASKS
from alignment_tax.tasks.loading import load_task_docs
from alignment_tax.tasks.prompts import build_doc, render_prompt
from alignment_tax.tasks.registry import task_manager


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_build_doc_schemas():
    qa = build_doc("cmrc2018", QAItem("q1", "北京是首都。", "首都是哪里？", ["北京", "北京"]))
    assert qa == {
        "id": "q1",
        "source": {"passage": "北京是首都。", "question": "首都是哪里？"},
        "reference": ["北京", "北京"],
    }
    mt = build_doc("bo_zh_mt", ParallelPair("7", "ཀ", "甲", "bo", "zh"))
    assert mt == {"id": "7", "source": "ཀ", "reference": "甲", "source_lang": "bo", "target_lang": "zh"}
    assert build_doc("bo_headline", HeadlinePair("3", "article", "head")) == {
        "id": "3",
        "source": "article",
        "reference": "head",
    }
    with pytest.raises(UserError, match="zh_bo_mt translates zh→bo but pair '7' is bo→zh"):
        build_doc("zh_bo_mt", ParallelPair("7", "ཀ", "甲", "bo", "zh"))
    with pytest.raises(TypeError, match="built from QAItem"):
        build_doc("cmrc2018", HeadlinePair("3", "a", "h"))
    with pytest.raises(UserError, match="unknown task 'cmrc'; this package's tasks: cmrc2018, bo_zh_mt"):
        build_doc("cmrc", HeadlinePair("3", "a", "h"))


def test_render_prompt_fills_the_template():
    doc = build_doc("cmrc2018", QAItem("q1", "北京是首都。", "首都是哪里？", ["北京"]))
    assert render_prompt("cmrc2018", doc).endswith("\n\n文章：北京是首都。\n\n问题：首都是哪里？")
    with pytest.raises(UserError, match="lacks a field"):
        render_prompt("bo_headline", {"id": "1"})


def test_render_prompt_equals_lm_evals_doc_to_text(shared_data):
    tasks = task_manager({"data_dir": str(shared_data)}).load(list(OUR_TASKS))["tasks"]
    for name in OUR_TASKS:
        task = tasks[name]
        for doc in list(task.eval_docs)[:5]:
            assert render_prompt(name, doc) == task.doc_to_text(doc)
            assert task.doc_to_target(doc) == doc["reference"]


def test_data_dir_feeds_every_task(shared_data):
    sizes = {name: len(load_task_docs(name, {"data_dir": shared_data})) for name in OUR_TASKS}
    assert sizes == {"cmrc2018": 3219, "bo_zh_mt": 450, "zh_bo_mt": 450, "bo_headline": 1353}
    back = load_task_docs("zh_bo_mt", {"data_dir": shared_data})[0]
    there = load_task_docs("bo_zh_mt", {"data_dir": shared_data})[0]
    assert (back["source"], back["reference"]) == (there["reference"], there["source"])


def test_data_override_beats_data_dir_through_the_harness(shared_data, tmp_path):
    rows = [{"id": "a", "bo": "ཀ་ཁ།", "zh": "甲乙"}, {"id": "b", "bo": "ག།", "zh": "丙"}]
    path = write_jsonl(tmp_path / "mine.jsonl", rows)
    metadata = {"data_dir": shared_data, "data": {"bo_zh_mt": path}}  # Paths are accepted
    tasks = task_manager(metadata).load(["bo_zh_mt", "zh_bo_mt"])["tasks"]
    assert [doc["id"] for doc in tasks["bo_zh_mt"].eval_docs] == ["a", "b"]
    assert len(tasks["zh_bo_mt"].eval_docs) == 450  # no override for this one: data_dir
    assert tasks["bo_zh_mt"].config.metadata["data"] == {"bo_zh_mt": str(path)}


def test_data_override_with_columns(tmp_path):
    headlines = write_jsonl(tmp_path / "h.jsonl", [{"id": 1, "body": "ཀ་ཁ་ག།", "head": "ཀ།"}])
    spec = {"path": str(headlines), "article_column": "body", "headline_column": "head"}
    assert load_task_docs("bo_headline", {"data": {"bo_headline": spec}}) == [
        {"id": "1", "source": "ཀ་ཁ་ག།", "reference": "ཀ།"}
    ]
    qa = write_jsonl(
        tmp_path / "qa.jsonl", [{"id": "x", "context": "北京是首都。", "question": "哪里？", "answers": ["北京"]}]
    )
    assert load_task_docs("cmrc2018", {"data": {"cmrc2018": str(qa)}})[0]["reference"] == ["北京"]
    pairs = write_jsonl(tmp_path / "p.jsonl", [{"translation": {"zh": "甲", "bo": "ཀ"}}])
    spec = {"path": str(pairs), "source_column": "translation.zh", "target_column": "translation.bo"}
    docs = load_task_docs("zh_bo_mt", {"data": {"zh_bo_mt": spec}})
    assert docs == [{"id": "0", "source": "甲", "reference": "ཀ", "source_lang": "zh", "target_lang": "bo"}]


def test_bad_data_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"data\['cmrc2018'\]: unknown key\(s\) 'source_column'; accepted: path"):
        load_task_docs("cmrc2018", {"data": {"cmrc2018": {"path": "x.json", "source_column": "a"}}})
    with pytest.raises(UserError, match="has no 'path'"):
        load_task_docs("bo_headline", {"data": {"bo_headline": {"split": "test"}}})
    with pytest.raises(UserError, match="data given for unknown task 'cmmlu'"):
        load_task_docs("cmrc2018", {"data": {"cmmlu": "x"}})
    with pytest.raises(UserError, match="file not found"):
        load_task_docs("bo_headline", {"data": {"bo_headline": str(tmp_path / "missing.jsonl")}})
    with pytest.raises(UserError, match="data folder not found"):
        load_task_docs("cmrc2018", {"data_dir": tmp_path / "nowhere"})


def test_data_dir_without_the_tasks_file_names_it(tmp_path):
    (tmp_path / "cmrc2018").mkdir()
    with pytest.raises(UserError, match=r"bo_text/tibetanqa_title_passage\.jsonl: not found in the data folder"):
        task_manager({"data_dir": str(tmp_path)}).load(["bo_headline"])
    with pytest.raises(UserError, match=r"cmrc2018/cmrc2018_dev\.json: not found"):
        load_task_docs("cmrc2018", {"data_dir": tmp_path})


def test_hub_defaults_offline_are_user_errors(offline):
    with pytest.raises(UserError, match=r"cmrc2018: no data_dir or data\['cmrc2018'\] given.*'hfl/cmrc2018'.*offline"):
        task_manager({}).load(["cmrc2018"])
    with pytest.raises(UserError, match=r"'openlanguagedata/flores_plus' \(config 'cmn_Hans'.*offline"):
        load_task_docs("zh_bo_mt")
    with pytest.raises(UserError, match=r"'KEVVVV/CMHG'.*offline"):
        load_task_docs("bo_headline", {})


def test_a_hub_id_override_goes_to_the_hub(offline):
    with pytest.raises(UserError, match=r"'someone/tibetan-news' \(config 'bo', split 'dev'\).*offline"):
        spec = {"path": "someone/tibetan-news", "config": "bo", "split": "dev"}
        load_task_docs("bo_headline", {"data": {"bo_headline": spec}})
