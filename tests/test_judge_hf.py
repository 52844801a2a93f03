"""The offline judge, `--judge-model hf:PATH`, end to end on the tiny local Qwen3 model (no server)."""

import json

import pytest

from alignment_tax.cli import main


def judge_cli(*argv) -> int:
    return main(["judge", *map(str, argv)])


def write_headline_runs(root, n=4):
    for name, prefix in (("rl", "བཀྲ་ཤིས་"), ("sft", "")):
        samples = root / name / "samples"
        samples.mkdir(parents=True)
        rows = [
            {"id": i, "source": "ཆབ་སྲིད་ཀྱི་གནས་ཚུལ། " * (i + 1), "output": f"{prefix}གསར་འགྱུར་{i}", "reference": "ཁ་བྱང"}
            for i in range(n)
        ]
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (samples / "bo_headline.jsonl").write_text(lines, encoding="utf-8")
    return root / "rl", root / "sft"


@pytest.mark.slow
def test_the_hf_judge_scores_verdict_tokens_end_to_end(tiny_lm_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # no key, no server
    rl, sft = write_headline_runs(tmp_path)
    argv = [
        "--a",
        rl,
        "--b",
        sft,
        "--task",
        "bo_headline",
        "--judge-model",
        f"hf:{tiny_lm_dir}",
        "--output",
        tmp_path / "judge" / "rl_vs_sft.json",
    ]
    assert judge_cli(*argv) == 0
    result = json.loads((tmp_path / "judge" / "rl_vs_sft.json").read_text(encoding="utf-8"))
    assert result["judge"]["model"].startswith(f"hf:{tiny_lm_dir.resolve()}#")
    assert result["judge"]["template"] == "headline@1" and result["complete"]
    assert result["n_pairs"] == result["n_valid"] == 4 and result["calls"]["made"] == 8
    assert result["wins"] + result["ties"] + result["losses"] == 4
    records = [json.loads(line) for line in open(result["records"], encoding="utf-8")]
    for judgement in (j for r in records for j in r["judgements"]):
        assert judgement["verdict"] in ("first", "second", "tie")
        assert judgement["reason"].startswith("log-probabilities: first=")
    # position consistency recounted by hand from the records: a verdict names a position, the
    # order shown ("ab" or "ba") says which run sat there; a pair is consistent when both agree
    named = [
        ["tie" if j["verdict"] == "tie" else j["shown"][0 if j["verdict"] == "first" else 1] for j in r["judgements"]]
        for r in records
    ]
    assert all(len(winners) == 2 for winners in named)
    assert result["position_consistency"] == sum(w[0] == w[1] for w in named) / len(named)
    capsys.readouterr()
    assert judge_cli(*argv) == 0  # a rerun: every verdict from the cache, same numbers
    again = json.loads((tmp_path / "judge" / "rl_vs_sft.json").read_text(encoding="utf-8"))
    assert again["calls"]["made"] == 0 and again["wins"] == result["wins"] and again["ties"] == result["ties"]


def test_a_missing_hf_judge_is_one_line(tmp_path, capsys):
    rl, sft = write_headline_runs(tmp_path, n=1)
    code = judge_cli(
        "--a",
        rl,
        "--b",
        sft,
        "--task",
        "bo_headline",
        "--judge-model",
        f"hf:{tmp_path / 'nope'}",
        "--output",
        tmp_path / "j.json",
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "judge model not found" in err
