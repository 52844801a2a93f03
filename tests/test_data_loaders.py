"""The data loaders on the real files in ../shared/data and on small files of every format."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alignment_tax.data import (
    DataDir,
    HeadlinePair,
    ParallelPair,
    QAItem,
    load_corpus,
    load_headlines,
    load_parallel,
    load_squad,
    read_records,
    read_table,
)

TSHEG_NB = "\u0f0c"


def write_jsonl(path, rows, blank_lines=False):
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    sep = "\n\n" if blank_lines else "\n"
    path.write_text(sep.join(lines) + "\n", encoding="utf-8")
    return path


def write_delimited(path, rows, delimiter):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


ROWS = [
    {"id": "p1", "bo": "བཀྲ་ཤིས" + TSHEG_NB + "བདེ་ལེགས།", "zh": "吉祥如意。"},
    {"id": "p2", "bo": "ཐུགས་རྗེ་ཆེ།", "zh": "谢谢，\n多谢。"},
]


# --- real data -------------------------------------------------------------------------------


def test_cmrc_dev_counts(shared_data):
    items = load_squad(shared_data / "cmrc2018" / "cmrc2018_dev.json")
    assert len(items) == 3219
    assert len({item.context for item in items}) == 848
    assert all(len(item.answers) == 3 for item in items)
    assert len({item.id for item in items}) == 3219
    first = items[0]
    assert isinstance(first, QAItem)
    assert first.id == "DEV_0_QUERY_0" and first.title == "战国无双3"
    assert first.answers[0] == "光荣和ω-force"
    assert first.context[first.context.index(first.answers[0]) :].startswith("光荣和ω-force")
    assert first.to_dict()["question"] == "《战国无双3》是由哪两个公司合作开发的？"


def test_cmrc_raw_strings_match_the_file(shared_data):
    path = shared_data / "cmrc2018" / "cmrc2018_dev.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    paragraph = raw["data"][0]["paragraphs"][0]
    item = load_squad(path, normalize=False)[0]
    assert item.context == paragraph["context"]
    assert item.answers == [a["text"] for a in paragraph["qas"][0]["answers"]]


def test_cmrc_trial_one_answer_each(shared_data):
    items = load_squad(shared_data / "cmrc2018" / "cmrc2018_trial.json")
    assert len(items) == 1002 and len({i.context for i in items}) == 256


def test_cmilbench_normalised(shared_data):
    path = shared_data / "bo_zh_mt" / "cmilbench_bo_zh.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert sum(TSHEG_NB in r["bo"] for r in raw) == 110
    pairs = load_parallel(path)
    assert len(pairs) == 450
    assert all(isinstance(p, ParallelPair) and p.source_lang == "bo" and p.target_lang == "zh" for p in pairs)
    assert not any(TSHEG_NB in p.source for p in pairs)
    assert [p.id for p in pairs] == [r["id"] for r in raw]
    assert pairs[0].source == raw[0]["bo"].replace(TSHEG_NB, "\u0f0b")


def test_openpecha_and_direction_swap(shared_data):
    path = shared_data / "bo_zh_mt" / "openpecha_bo_zh.jsonl"
    forward = load_parallel(path)
    backward = load_parallel(path, source_lang="zh", target_lang="bo")
    assert len(forward) == len(backward) == 2573
    assert (backward[5].source, backward[5].target) == (forward[5].target, forward[5].source)
    assert backward[5].source_lang == "zh" and backward[5].target_lang == "bo"


def test_tibetanqa_headlines(shared_data):
    path = shared_data / "bo_text" / "tibetanqa_title_passage.jsonl"
    pairs = load_headlines(path)
    assert len(pairs) == 1353
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert isinstance(pairs[0], HeadlinePair)
    assert pairs[0].headline == first["title"] and pairs[0].id == first["id"]
    assert pairs[0].article.startswith(first["context"][:20])
    assert not any(TSHEG_NB in p.article or TSHEG_NB in p.headline for p in pairs)


def test_cmrc_passages_as_corpus(shared_data):
    path = shared_data / "cmrc2018" / "cmrc2018_dev.json"
    passages = load_corpus(path, dedupe=True)
    items = load_squad(path)
    assert len(passages) == 848
    assert passages == list(dict.fromkeys(item.context for item in items))


def test_data_dir(shared_data):
    data = DataDir(shared_data)
    data.check()
    assert data.require("cmrc_dev") == data.cmrc_dev and data.cmrc_dev.name == "cmrc2018_dev.json"
    assert [p.name for p in data.mt_pairs] == ["cmilbench_bo_zh.jsonl", "openpecha_bo_zh.jsonl"]
    assert data.mt_test.is_file() and data.headlines.is_file()
    assert data.root.is_absolute()


# --- formats ---------------------------------------------------------------------------------


@pytest.fixture(params=["json", "json-data", "json-rows", "jsonl", "csv", "tsv", "parquet"])
def pairs_file(request, tmp_path):
    kind = request.param
    if kind == "json":
        path = tmp_path / "pairs.json"
        path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    elif kind == "json-data":
        path = tmp_path / "pairs.json"
        path.write_text(json.dumps({"version": 1, "data": ROWS}, ensure_ascii=False), encoding="utf-8")
    elif kind == "json-rows":  # the datasets-server layout
        path = tmp_path / "pairs.json"
        rows = [{"row_idx": i, "row": r} for i, r in enumerate(ROWS)]
        path.write_text(json.dumps({"rows": rows}, ensure_ascii=False), encoding="utf-8")
    elif kind == "jsonl":
        path = write_jsonl(tmp_path / "pairs.jsonl", ROWS, blank_lines=True)
    elif kind in ("csv", "tsv"):
        path = write_delimited(tmp_path / f"pairs.{kind}", ROWS, "," if kind == "csv" else "\t")
    else:
        path = tmp_path / "pairs.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS), path)
    return path


def test_every_format_gives_the_same_pairs(pairs_file):
    assert read_records(pairs_file) == ROWS
    pairs = load_parallel(pairs_file)
    assert [p.id for p in pairs] == ["p1", "p2"]
    assert pairs[0].source == "བཀྲ་ཤིས\u0f0bབདེ་ལེགས།"
    assert pairs[1].target == "谢谢，\n多谢。"


def test_line_numbers_skip_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS, blank_lines=True)
    table = read_table(path)
    assert table.lines == (1, 3)
    assert table.where(1) == f"{path} line 3"
    csv_table = read_table(write_delimited(tmp_path / "p.csv", ROWS, ","))
    assert csv_table.lines == (2, 3)  # the second row's target spans two lines from line 3


def test_nested_columns_and_generated_ids(tmp_path):
    rows = [{"translation": {"bo": r["bo"], "zh": r["zh"]}} for r in ROWS]
    path = write_jsonl(tmp_path / "wmt.jsonl", rows)
    explicit = load_parallel(path, source_column="translation.bo", target_column="translation.zh")
    automatic = load_parallel(path)  # falls back to translation.<code>
    assert explicit == automatic
    assert [p.id for p in explicit] == ["0", "1"]
    assert explicit[0].target == "吉祥如意。"
    swapped = load_parallel(path, source_lang="zh", target_lang="bo")
    assert swapped[0].source == "吉祥如意。"


def test_explicit_columns(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": 7, "tib": "ཀ", "chi": "甲"}])
    (pair,) = load_parallel(path, source_column="tib", target_column="chi")
    assert pair == ParallelPair("7", "ཀ", "甲", "bo", "zh")
    assert pair.to_dict() == {"id": "7", "source": "ཀ", "target": "甲", "source_lang": "bo", "target_lang": "zh"}


def test_skip_empty(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS + [{"id": "p3", "bo": "  ", "zh": "空"}])
    assert [p.id for p in load_parallel(path, skip_empty=True)] == ["p1", "p2"]


@pytest.mark.parametrize(
    "columns, expected",
    [
        ({"article": "A", "headline": "H"}, ("A", "H")),
        ({"text": "A", "summary": "H"}, ("A", "H")),
        ({"content": "A", "title": "H", "passage": "other"}, ("A", "H")),
        ({"document": "A", "headline": "H", "title": "other"}, ("A", "H")),
    ],
)
def test_headline_autodetection(tmp_path, columns, expected):
    path = write_jsonl(tmp_path / "h.jsonl", [columns])
    (pair,) = load_headlines(path)
    assert (pair.article, pair.headline, pair.id) == (*expected, "0")


def test_headline_explicit_columns(tmp_path):
    path = write_jsonl(tmp_path / "h.jsonl", [{"id": "x", "body": "A", "head": "H"}])
    assert load_headlines(path, article_column="body", headline_column="head") == [HeadlinePair("x", "A", "H")]


def test_flat_squad_layouts(tmp_path):
    hf = [
        {
            "id": "q1",
            "context": "北京是首都。",
            "question": "首都？",
            "answers": {"text": ["北京"], "answer_start": [0]},
        },
        {"id": "q2", "context": "拉萨在西藏。", "question": "在哪？", "answers": ["西藏", "西藏"]},
    ]
    jsonl = write_jsonl(tmp_path / "qa.jsonl", hf)
    parquet = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist([hf[0]]), parquet)
    items = load_squad(jsonl)
    assert [i.answers for i in items] == [["北京"], ["西藏", "西藏"]]
    assert load_squad(parquet)[0] == items[0]
    flat_json = tmp_path / "qa.json"
    flat_json.write_text(json.dumps({"data": hf}, ensure_ascii=False), encoding="utf-8")
    assert load_squad(flat_json) == items
    as_csv = write_delimited(tmp_path / "qa.csv", [dict(hf[1], answers=json.dumps(["西藏"], ensure_ascii=False))], ",")
    assert load_squad(as_csv)[0].answers == ["西藏"]


def test_squad_normalize_flag(tmp_path):
    doc = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "ཀ" + TSHEG_NB + "ཁ",
                        "qas": [
                            {
                                "id": "1",
                                "question": "ཀ" + TSHEG_NB,
                                "answers": [{"text": "ཁ" + TSHEG_NB, "answer_start": 2}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    normalised, raw = load_squad(path)[0], load_squad(path, normalize=False)[0]
    assert TSHEG_NB not in normalised.context + normalised.question + normalised.answers[0]
    assert raw.context == "ཀ" + TSHEG_NB + "ཁ" and raw.answers == ["ཁ" + TSHEG_NB]


def test_corpus_sources(tmp_path):
    txt = tmp_path / "c.txt"
    txt.write_text("一\n\n  \nཀ" + TSHEG_NB + "\n一\r\n", encoding="utf-8")
    assert load_corpus(txt) == ["一", "ཀ\u0f0b", "一"]
    assert load_corpus(txt, dedupe=True) == ["一", "ཀ\u0f0b"]
    jsonl = write_jsonl(tmp_path / "c.jsonl", [{"text": "a"}, {"text": ""}, {"text": "b"}, {"text": "a"}])
    assert load_corpus(jsonl) == ["a", "b", "a"]
    assert load_corpus(write_jsonl(tmp_path / "d.jsonl", ROWS), field="zh", dedupe=True) == [
        "吉祥如意。",
        "谢谢，\n多谢。",
    ]


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("\ufeffid,bo,zh\n1,ཀ,甲\n", encoding="utf-8")
    assert read_records(path) == [{"id": "1", "bo": "ཀ", "zh": "甲"}]
