"""Duplicated documents: the shipped samples hold none, and a task whose data does is said in one line
and counted in results.json (a copy scored twice overstates n and narrows every interval)."""

from __future__ import annotations

import json

from alignment_tax.data import samples


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_shipped_samples_hold_no_duplicates_and_no_test_line_in_training():
    for path, inputs in ((samples.HEADLINES, "article"), (samples.MT_TRAIN, "bo"), (samples.MT_TEST, "bo")):
        rows = _rows(path)
        assert len({row["id"] for row in rows}) == len(rows), path.name
        assert len({row[inputs] for row in rows}) == len(rows), path.name
    assert (len(_rows(samples.HEADLINES)), len(_rows(samples.MT_TRAIN)), len(_rows(samples.MT_TEST))) == (42, 319, 120)
    assert not {row["bo"] for row in _rows(samples.MT_TRAIN)} & {row["bo"] for row in _rows(samples.MT_TEST)}


def _pairs_with_copies(folder):
    rows = [{"id": f"p{i}", "bo": f"བོད་ཡིག་{i}", "zh": f"中文{i}"} for i in range(6)]
    # Ids a local file repeats are refused by its reader; copies under other ids are not.
    rows += [{**rows[1], "id": "copy-of-p1"}, {**rows[2], "id": "copy-of-p2"}]
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_duplicate_ids_and_inputs_are_counted_and_said_in_one_line(tmp_path, capsys, monkeypatch):
    from alignment_tax.evaluation.lm_eval_run import data_duplicates, load_tasks, task_data_hashes
    from alignment_tax.tasks.registry import resolve_tasks

    data = {"bo_zh_mt": str(_pairs_with_copies(tmp_path)), "bo_headline": str(samples.HEADLINES)}
    manager, names = resolve_tasks(["bo_zh_mt", "bo_headline"], {"data": data})
    tasks = load_tasks(names, manager)
    hashes = task_data_hashes(tasks)
    assert hashes["bo_zh_mt"]["n_docs"] == 8
    assert hashes["bo_zh_mt"]["duplicates"] == {"ids": 0, "inputs": 2}  # p1's and p2's input twice
    assert hashes["bo_headline"]["duplicates"] == {"ids": 0, "inputs": 0}
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert lines == [
        "alignment-tax evaluate: warning: bo_zh_mt: 2 of its 8 documents repeat an earlier one's input and 0 an "
        "earlier one's id; each copy counts as another item (n overstated, intervals too narrow): deduplicate the data"
    ]
    # A hub dataset or a built-in task is not checked by our readers: its repeated ids are counted too.
    docs = list(tasks["bo_zh_mt"].eval_docs)
    assert data_duplicates(tasks["bo_zh_mt"], [*docs, {**docs[0], "source": "new"}]) == {"ids": 1, "inputs": 2}
    # Under torchrun every process loads the tasks: only the main one says so, all of them count.
    monkeypatch.setattr("alignment_tax.evaluation.data_parallel.rank", lambda: 1)
    assert task_data_hashes(tasks)["bo_zh_mt"]["duplicates"] == {"ids": 0, "inputs": 2}
    assert "warning" not in capsys.readouterr().err


def test_results_json_counts_the_duplicates(tiny_lm_dir, tmp_path, capsys):
    from alignment_tax.cli import main

    out = tmp_path / "run"
    argv = [
        "evaluate",
        "--model",
        tiny_lm_dir,
        "--tasks",
        "bo_zh_mt",
        "--data",
        f"bo_zh_mt={_pairs_with_copies(tmp_path)}",
    ]
    argv += ["--limit", "2", "--max-gen-toks", "bo_zh_mt=4", "--device", "cpu", "--output", out]
    assert main([str(arg) for arg in argv]) == 0
    assert sum("deduplicate the data" in line for line in capsys.readouterr().err.splitlines()) == 1
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["data"]["bo_zh_mt"]["duplicates"] == {"ids": 0, "inputs": 2}
