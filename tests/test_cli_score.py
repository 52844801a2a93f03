"""`alignment-tax score` and the CLI's error contract: one line on stderr, exit 2, no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alignment_tax.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


def run_cli(*args):
    """The installed console script, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "alignment_tax", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_score_cmrc_prints_the_official_line(capsys):
    code = main(
        [
            "score",
            "cmrc",
            "--data",
            str(EXAMPLES / "cmrc2018_trial_sample.json"),
            "--predictions",
            str(EXAMPLES / "cmrc2018_trial_sample_predictions.json"),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 1
    result = json.loads(lines[0])
    assert list(result)[:5] == ["AVERAGE", "F1", "EM", "TOTAL", "SKIP"]
    assert (result["TOTAL"], result["SKIP"]) == (18, 4)
    assert float(result["AVERAGE"]) == pytest.approx((float(result["EM"]) + float(result["F1"])) / 2, abs=1e-3)


def test_score_cmrc_matches_the_official_numbers_on_dev(shared_data, tmp_path):
    dev = shared_data / "cmrc2018" / "cmrc2018_dev.json"
    dataset = json.loads(dev.read_text(encoding="utf-8"))
    predictions = {
        qa["id"]: paragraph["context"][:5]
        for article in dataset["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
    completed = run_cli("score", "cmrc", "--data", dev, "--predictions", path)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert (result["AVERAGE"], result["F1"], result["EM"]) == ("3.547", "6.939", "0.155")


def test_score_headline_with_items(tmp_path, capsys):
    rows = [
        {"prediction": "བཀྲ་ཤིས་བདེ་ལེགས།", "reference": "བཀྲ་ཤིས་བདེ་ལེགས།"},
        {"prediction": "北京", "reference": "བཀྲ་ཤིས་བདེ་ལེགས།"},
    ]
    predictions = tmp_path / "headlines.jsonl"
    predictions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    items = tmp_path / "items.jsonl"
    assert main(["score", "headline", "--predictions", str(predictions), "--items", str(items)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["rouge_l"] == pytest.approx(50.0)
    assert result["metrics"]["lang_consistency"] == pytest.approx(0.5)
    per_item = [json.loads(line) for line in items.read_text(encoding="utf-8").splitlines()]
    assert [item["rouge_l"] for item in per_item] == [100.0, 0.0]


def test_score_mt_similarity_with_the_tiny_embedder(tiny_embedder_dir, capsys):
    predictions = EXAMPLES / "openpecha_bo_zh_sample_predictions.jsonl"
    assert main(["score", "mt", "--predictions", str(predictions), "--embedder", str(tiny_embedder_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert set(metrics) == {"bleu", "chrf", "lang_consistency", "similarity"}
    # the mean cosine, computed here with sentence-transformers itself (no empty prediction in the file)
    from sentence_transformers import SentenceTransformer

    from alignment_tax.data.normalize import normalize_text

    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    texts = [normalize_text(row[key]) for key in ("prediction", "reference") for row in rows]
    assert all(texts)
    vectors = SentenceTransformer(str(tiny_embedder_dir), device="cpu").encode(texts, normalize_embeddings=True)
    cosines = np.sum(vectors[: len(rows)] * vectors[len(rows) :], axis=1)
    assert metrics["similarity"] == pytest.approx(float(np.mean(cosines)), abs=1e-5)


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, ["score", "mt", "--predictions", "{missing}"], "file not found"),
        ('{"prediction": "x"}\n', ["score", "headline", "--predictions", "{file}"], "missing reference"),
        ('{"prediction": "x", "reference": "y"}\n{oops\n', ["score", "mt", "--predictions", "{file}"], "line 2"),
        (
            '{"prediction": "x", "reference": "y"}\n',
            ["score", "mt", "--predictions", "{file}", "--target-lang", "xx"],
            "unknown language code",
        ),
        ("", ["score", "mt", "--predictions", "{file}"], "empty"),
        ('{"a": 1}', ["score", "cmrc", "--data", "{file}", "--predictions", "{file}"], "SQuAD"),
        (
            None,
            ["score", "mt", "--predictions", "{examples}", "--embedder", "./no-such-embedder"],
            "embedder not found",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, content, args, message):
    path = tmp_path / "input.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    mapping = {
        "{file}": str(path),
        "{missing}": str(tmp_path / "missing.jsonl"),
        "{examples}": str(EXAMPLES / "openpecha_bo_zh_sample_predictions.jsonl"),
    }
    completed = run_cli(*[mapping.get(arg, arg) for arg in args])
    assert completed.returncode == 2
    stderr_lines = completed.stderr.strip().splitlines()
    assert len(stderr_lines) == 1, completed.stderr
    assert stderr_lines[0].startswith("alignment-tax: error:") and message in stderr_lines[0]
    assert "Traceback" not in completed.stderr


def test_make_tiny_model_prints_its_folder(tmp_path):
    completed = run_cli("make-tiny-model", tmp_path / "lm", "--seed", "3")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(tmp_path / "lm")
    assert (tmp_path / "lm" / "config.json").exists()


def test_make_tiny_adapter_needs_a_base_model(tmp_path, tiny_lm_dir):
    assert main(["make-tiny-model", str(tmp_path / "a"), "--kind", "adapter"]) == 2
    assert (
        main(["make-tiny-model", str(tmp_path / "a"), "--kind", "adapter", "--base-model", str(tmp_path / "no")]) == 2
    )
    assert main(["make-tiny-model", str(tmp_path / "a"), "--kind", "adapter", "--base-model", str(tiny_lm_dir)]) == 0
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == str(tiny_lm_dir) and config["r"] == 8


def test_data_overrides_accept_paths_and_json():
    from alignment_tax.errors import UserError
    from alignment_tax.evaluation.commands import _parse_data_overrides

    parsed = _parse_data_overrides(["bo_zh_mt=pairs.jsonl", 'bo_headline={"path": "x/y", "article_column": "body"}'])
    assert parsed == {"bo_zh_mt": "pairs.jsonl", "bo_headline": {"path": "x/y", "article_column": "body"}}
    for bad in ("bo_zh_mt", "bo_zh_mt=", "bo_headline={oops"):
        with pytest.raises(UserError):
            _parse_data_overrides([bad])
