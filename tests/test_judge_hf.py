"""The offline judge, `--judge-model hf:PATH`, end to end on the tiny local Qwen3 model (no server)."""

import asyncio
import json
import re

import pytest

from alignment_tax.cli import main
from alignment_tax.judge.hf_judge import PREFIX, LocalLMJudge
from alignment_tax.judge.verdicts import VERDICTS

# Added to the logits of one verdict's tokens: far beyond the few units that separate the random
# tiny model's logits, so that verdict's continuation is the judge model's known preference.
VERDICT_BIAS = 100.0
MESSAGES = [
    {"role": "system", "content": "You compare two headlines. Reply with JSON."},
    {"role": "user", "content": "Article: ཆབ་སྲིད།\nFirst: གསར་འགྱུར།\nSecond: བཀྲ་ཤིས།"},
]


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


def continuation(tokenizer, verdict):
    return tokenizer(f'{verdict}"', add_special_tokens=False).input_ids


def favour(judge, verdict):
    """Bias every position's logits toward the tokens of ``verdict"``; returns the hook's handle."""
    import torch

    favoured = continuation(judge.tokenizer, verdict)
    # The known preference needs every other verdict to hold a token outside the favoured ones
    # (their first tokens differ; only the closing quote is shared).
    for other in VERDICTS:
        assert other == verdict or set(continuation(judge.tokenizer, other)) - set(favoured), other
    head = judge.model.get_output_embeddings()
    bias = torch.zeros(head.out_features)
    bias[favoured] = VERDICT_BIAS
    return head.register_forward_hook(lambda module, args, output: output + bias)


def reason_scores(reply):
    return {verdict: float(value) for verdict, value in re.findall(r"(\w+)=(-?[\d.]+)", reply["reason"])}


def full_forward_scores(judge, messages):
    """Each verdict's log-probability from one plain forward pass over prompt and answer, in float64."""
    import torch

    tokenizer = judge.tokenizer
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, enable_thinking=False)
    context = tokenizer(prompt + PREFIX, add_special_tokens=False).input_ids
    scores = {}
    for verdict in VERDICTS:
        answer = continuation(tokenizer, verdict)
        with torch.no_grad():
            logits = judge.model(input_ids=torch.tensor([context + answer])).logits[0].double()
        log_probs = torch.log_softmax(logits, dim=-1)
        # position p predicts token p + 1: the answer's t-th token is predicted at len(context) - 1 + t
        scores[verdict] = sum(float(log_probs[len(context) - 1 + t, token]) for t, token in enumerate(answer))
    return scores


@pytest.fixture(scope="module")
def hf_judge(tiny_lm_dir):
    judge = LocalLMJudge(str(tiny_lm_dir), device="cpu")
    yield judge
    asyncio.run(judge.close())


@pytest.mark.slow
def test_the_verdict_is_the_continuation_with_the_highest_log_probability(hf_judge):
    expected = full_forward_scores(hf_judge, MESSAGES)
    reply = json.loads(hf_judge.score(MESSAGES))
    # The reason prints two decimals; the cached-prefix float32 path differs from this one by far less.
    assert reason_scores(reply) == pytest.approx(expected, abs=0.006)
    assert reply["verdict"] == max(expected, key=expected.get)


@pytest.mark.slow
@pytest.mark.parametrize("verdict", VERDICTS)
def test_the_verdict_follows_a_model_biased_toward_one_answer(hf_judge, verdict):
    handle = favour(hf_judge, verdict)
    try:
        reply = json.loads(hf_judge.score(MESSAGES))
        expected = full_forward_scores(hf_judge, MESSAGES)
    finally:
        handle.remove()
    assert reply["verdict"] == verdict
    scores = reason_scores(reply)
    assert scores == pytest.approx(expected, abs=0.006)
    # every other answer holds a token the bias pushed VERDICT_BIAS below the favoured ones
    assert all(scores[verdict] > scores[other] + VERDICT_BIAS / 2 for other in VERDICTS if other != verdict)


@pytest.mark.slow
def test_a_judge_model_that_always_prefers_first_gives_all_ties_end_to_end(tiny_lm_dir, tmp_path, monkeypatch):
    # Through the CLI: every verdict "first", so each pair's two orders name different runs (a tie),
    # and the summary shows the position bias as such.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    load = LocalLMJudge.__init__

    def biased(self, *args, **kwargs):
        load(self, *args, **kwargs)
        favour(self, "first")

    monkeypatch.setattr(LocalLMJudge, "__init__", biased)
    rl, sft = write_headline_runs(tmp_path, n=3)
    output = tmp_path / "judge.json"
    assert (
        judge_cli(
            "--a", rl, "--b", sft, "--task", "bo_headline", "--judge-model", f"hf:{tiny_lm_dir}", "--output", output
        )
        == 0
    )
    result = json.loads(output.read_text(encoding="utf-8"))
    records = [json.loads(line) for line in open(result["records"], encoding="utf-8")]
    assert [j["verdict"] for r in records for j in r["judgements"]] == ["first"] * 6
    assert (result["wins"], result["ties"], result["losses"]) == (0, 3, 0)
    assert result["position_consistency"] == 0.0 and result["first_position_share"] == 1.0


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
