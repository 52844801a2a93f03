"""Hashes, FLORES+ row alignment, hub-id detection, local dataset folders and the docstrings."""

import doctest
import importlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alignment_tax.data import ParallelPair, file_sha256, load_parallel, read_table, records_sha256, zip_rows
from alignment_tax.data.flores import language_of_config
from alignment_tax.data.hub import hub_failure_reason, looks_like_hub_id
from alignment_tax.errors import UserError

MODULES = ["corpus", "fields", "flores", "hashing", "headlines", "hub", "layout", "parallel", "readers", "squad"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"alignment_tax.data.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0  # a module without examples would pass unseen


def test_file_and_records_hashes(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "1", "bo": "ཀ", "zh": "甲"}\n', encoding="utf-8")
    # Literal digests, computed once outside Python: printf '...' | sha256sum
    assert file_sha256(path) == "f73d654799ac7771fc1a84738effa3d7b96a896ac77512e8173292707e09ca8e"
    assert read_table(path).sha256() == file_sha256(path)
    a = records_sha256([{"id": "1", "bo": "ཀ"}])
    assert a == records_sha256([{"bo": "ཀ", "id": "1"}])
    assert a != records_sha256([{"id": "1", "bo": "ཁ"}])
    # the canonical JSON: sorted keys, no spaces, UTF-8 kept (printf '[{"bo":"ཀ","id":"1"}]' | sha256sum)
    assert a == "f6009fe01fb07c9638ab15fd19ec3ff544390d2e0b0e469727c30bc1b12a8723"


def test_real_file_hash_is_stable(shared_data):
    path = shared_data / "bo_zh_mt" / "cmilbench_bo_zh.jsonl"
    # sha256sum ../shared/data/bo_zh_mt/cmilbench_bo_zh.jsonl: the file the results' data hashes name
    assert file_sha256(path) == "8421b5c7bd48d4d340ad1c257f914d1a966258bcdc3f7dfb290a2b8d63ad04c2"


def test_zip_rows_aligns_by_row():
    bo = [{"id": 0, "text": "ཀ\u0f0c"}, {"id": 1, "text": "ཁ"}]
    zh = [{"id": 0, "text": "甲"}, {"id": 1, "text": "乙"}]
    pairs = zip_rows(bo, zh, "bo", "zh")
    assert pairs == [ParallelPair("0", "ཀ\u0f0b", "甲", "bo", "zh"), ParallelPair("1", "ཁ", "乙", "bo", "zh")]
    assert zip_rows([{"text": "a"}], [{"text": "甲"}], "en", "zh")[0].id == "0"


@pytest.mark.parametrize(
    "source, target, fragment",
    [
        ([{"text": "a"}], [], "source has 1 rows, target has 0"),
        ([{"id": 0, "text": "a"}], [{"id": 5, "text": "b"}], "row 0 has id 0 in source but 5 in target"),
        ([{"id": 0, "sentence": "a"}], [{"id": 0, "text": "b"}], "no text in column 'text' (columns: id, sentence)"),
        ([], [], "are empty"),
    ],
)
def test_zip_rows_errors(source, target, fragment):
    with pytest.raises(UserError, match=None) as info:
        zip_rows(source, target, "bo", "zh")
    assert fragment in str(info.value)


def test_flores_config_languages():
    assert language_of_config("bod_Tibt") == "bo" and language_of_config("cmn_Hans") == "zh"
    with pytest.raises(UserError, match="unknown FLORES\\+ config 'xxx_Latn'"):
        language_of_config("xxx_Latn")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("hfl/cmrc2018", True),
        ("cmrc2018", True),
        ("openlanguagedata/flores_plus", True),
        ("KEVVVV/CMHG", True),
        ("data.jsonl", False),
        ("dir/data.parquet", False),
        ("a/b/c", False),
        ("/abs/path", False),
        ("../x", False),
        ("", False),
    ],
)
def test_looks_like_hub_id(name, expected):
    assert looks_like_hub_id(name) is expected


def test_hub_failure_reasons():
    class GatedRepoError(Exception):
        pass

    class DatasetNotFoundError(FileNotFoundError):
        pass

    assert hub_failure_reason(GatedRepoError("Access to dataset x is restricted")).startswith("gated")
    assert hub_failure_reason(DatasetNotFoundError("Dataset 'x/y' doesn't exist on the Hub")) == "not found"
    assert hub_failure_reason(ValueError("BuilderConfig 'bo' not found. Available: ['ug']")).startswith(
        "unknown config"
    )
    assert hub_failure_reason(ValueError("Unknown split \"dev\". Should be one of ['test'].")).startswith(
        "unknown split"
    )


def test_local_dataset_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "repo"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([{"bo": "ཀ", "zh": "甲"}, {"bo": "ཁ", "zh": "乙"}]), folder / "test.parquet")
    pairs = load_parallel(folder, split="test")
    assert [(p.id, p.source, p.target) for p in pairs] == [("0", "ཀ", "甲"), ("1", "ཁ", "乙")]
    with pytest.raises(UserError, match="unknown split"):
        load_parallel(folder, split="validation")


def test_table_columns_and_where(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"a": 1}, {"b": 2, "a": 3}]), encoding="utf-8")
    table = read_table(path)
    assert table.columns() == ["a", "b"]
    assert table.where(1) == f"{path} row 1"
