"""The judge's parts without a server: parser, templates, pairing, outcomes, statistics, keys."""

import doctest
import importlib
import json
from pathlib import Path

import pytest
from scipy.stats import binomtest

from alignment_tax.errors import UserError
from alignment_tax.judge.aggregate import outcome, summarize
from alignment_tax.judge.openai_judge import public_url, redact, resolve_api_key
from alignment_tax.judge.pairing import Pair, load_run, pair_runs
from alignment_tax.judge.pipeline import plan
from alignment_tax.judge.retry import RetryPolicy, parse_retry_after
from alignment_tax.judge.runner import Judgement
from alignment_tax.judge.templates import load_template, template_for_task
from alignment_tax.judge.verdicts import Verdict, parse_verdict


@pytest.mark.parametrize("module", ["verdicts", "templates", "pairing", "cache", "retry", "aggregate", "openai_judge"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"alignment_tax.judge.{module}"))
    assert result.failed == 0 and result.attempted > 0  # a module without examples would pass unseen


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ('{"verdict": "second", "reason": "r"}', "second"),
        ('After comparing: {"verdict": "first", "reason": "r"} That is all.', "first"),
        ('```json\n{\n  "verdict": "TIE",\n  "reason": "both fine"\n}\n```', "tie"),
        ('<think>maybe {"verdict": "first"}</think>{"verdict": "second", "reason": ""}', "second"),
        ('{"verdict": "first", "reason": {"meaning": "kept"}}', "first"),
        ('{"verdict": "first"} and again {"verdict": "first", "reason": "same"}', "first"),
    ],
)
def test_parser_accepts_the_object_alone_or_in_text(reply, verdict):
    assert parse_verdict(reply).verdict == verdict


@pytest.mark.parametrize(
    "reply",
    [
        "",
        None,
        "Candidate 1.",
        '{"verdict": "candidate 1"}',
        '{"winner": "first"}',
        "{'verdict': 'first'}",
        '{"verdict": "first"} no wait {"verdict": "second"}',
        '{"verdict": "first" | "second" | "tie"}',
    ],
)
def test_parser_refuses_unreadable_or_conflicting_replies(reply):
    assert parse_verdict(reply) is None


def test_templates_are_versioned_blind_and_direction_aware():
    mt, reverse, headline = (template_for_task(t) for t in ("bo_zh_mt", "zh_bo_mt", "bo_headline"))
    assert mt is reverse and (mt.label, headline.label) == ("translation@1", "headline@1")
    forward = mt.render("bo_zh_mt", source="SRC", first="ONE", second="TWO", reference="REF")[1]["content"]
    backward = mt.render("zh_bo_mt", source="SRC", first="ONE", second="TWO")[1]["content"]
    assert "Tibetan text and two candidate translations of it into Simplified Chinese" in forward
    assert "Simplified Chinese text and two candidate translations of it into Tibetan" in backward
    assert forward.index("ONE") < forward.index("TWO") and "REF" not in forward  # reference-free
    assert '{"verdict": "first" | "second" | "tie"' in forward
    article = headline.render("bo_headline", source="ARTICLE", first="H1", second="H2")
    assert "<article>\nARTICLE\n</article>" in article[1]["content"]
    with pytest.raises(UserError, match="no judge template for task 'cmrc2018'"):
        template_for_task("cmrc2018")


def test_a_template_file_can_ask_for_the_reference(tmp_path):
    text = Path(template_for_task("bo_zh_mt").path).read_text(encoding="utf-8")
    custom = (
        text.replace("uses_reference: false", "uses_reference: true")
        .replace(
            "<source>\n  $source\n  </source>",
            "<source>\n  $source\n  </source>\n\n  <reference>\n  $reference\n  </reference>",
        )
        .replace("version: 1", "version: 7")
    )
    path = tmp_path / "with_reference.yaml"
    path.write_text(custom, encoding="utf-8")
    template = template_for_task("bo_zh_mt", path)
    assert template.label == "translation@7" and template.uses_reference
    content = template.render("bo_zh_mt", source="S", first="1", second="2", reference="REF")[1]["content"]
    assert "<reference>\nREF\n</reference>" in content
    with pytest.raises(UserError, match="needs a reference"):
        template.render("bo_zh_mt", source="S", first="1", second="2", reference=None)
    path.write_text(custom.replace("$reference", "$referenc"), encoding="utf-8")
    with pytest.raises(UserError, match="unknown placeholder"):
        load_template(path)


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_pairing_by_id_reports_items_in_one_run_only(tmp_path):
    rows = [{"id": i, "source": f"s{i}", "output": f"o{i}", "reference": "r"} for i in range(5)]
    _write(tmp_path / "a" / "samples" / "bo_zh_mt.jsonl", rows[:4])
    _write(tmp_path / "b.jsonl", rows[1:] + [{"id": 9, "source": "s9", "output": None, "reference": "r"}])
    pairing = pair_runs(load_run(tmp_path / "a", "bo_zh_mt"), load_run(tmp_path / "b.jsonl", "bo_zh_mt"))
    assert [p.id for p in pairing.pairs] == ["1", "2", "3"]
    assert (pairing.only_in_a, pairing.only_in_b, pairing.n_common) == (["0"], ["4", "9"], 3)
    assert len(pair_runs(load_run(tmp_path / "a", "bo_zh_mt"), load_run(tmp_path / "b.jsonl", "x"), limit=2).pairs) == 2


@pytest.mark.parametrize(
    "rows_b, message",
    [
        ([{"id": 7, "source": "s", "output": "o"}], "no item id in common"),
        ([{"id": 0, "source": "other", "output": "o"}], "different sources"),
        ([{"id": 0, "source": "s0", "output": "o"}, {"id": 0, "source": "s0", "output": "o"}], "duplicate id '0'"),
        ([{"id": 0, "source": "s0"}], "missing output"),
    ],
)
def test_pairing_errors_name_the_problem(tmp_path, rows_b, message):
    _write(tmp_path / "a.jsonl", [{"id": 0, "source": "s0", "output": "o"}])
    _write(tmp_path / "b.jsonl", rows_b)
    with pytest.raises(UserError, match=message):
        pair_runs(load_run(tmp_path / "a.jsonl", "bo_zh_mt"), load_run(tmp_path / "b.jsonl", "bo_zh_mt"))


def test_a_run_folder_without_the_task_lists_what_it_has(tmp_path):
    _write(tmp_path / "run" / "samples" / "bo_headline.jsonl", [{"id": 0, "source": "s", "output": "o"}])
    with pytest.raises(UserError, match=r"has no samples/bo_zh_mt.jsonl \(it has samples for: bo_headline\)"):
        load_run(tmp_path / "run", "bo_zh_mt")
    with pytest.raises(UserError, match="run not found"):
        load_run(tmp_path / "missing", "bo_zh_mt")
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "source": "s", "output": "o"}\n{oops\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.jsonl line 2 column \d+: invalid JSON"):
        load_run(tmp_path / "bad.jsonl", "bo_zh_mt")


def _j(order, verdict):
    return Judgement(order, ["raw"], None if verdict is None else Verdict(verdict, ""))


@pytest.mark.parametrize(
    "judgements, expected",
    [
        ([_j("ab", "first"), _j("ba", "second")], ("a", True)),  # A both times
        ([_j("ab", "second"), _j("ba", "first")], ("b", True)),
        ([_j("ab", "first"), _j("ba", "first")], ("tie", False)),  # position bias: disagree → tie
        ([_j("ab", "tie"), _j("ba", "tie")], ("tie", True)),
        ([_j("ab", "first"), _j("ba", "tie")], ("tie", False)),
        ([_j("ab", "first"), _j("ba", None)], ("invalid", None)),
        ([_j("ab", "first"), None], ("pending", None)),
        ([_j("ba", "first")], ("b", None)),  # one order only
    ],
)
def test_outcome_rules(judgements, expected):
    assert outcome(judgements) == expected


def test_summary_statistics():
    records = (
        [{"outcome": "a", "consistent": True}] * 30
        + [{"outcome": "b", "consistent": True}] * 10
        + [{"outcome": "tie", "consistent": False}] * 8
        + [{"outcome": "tie", "consistent": True}] * 2
        + [{"outcome": "invalid", "consistent": None}] * 3
        + [{"outcome": "pending", "consistent": None}]
    )
    summary = summarize(records, seed=3)
    assert (summary["n_pairs"], summary["n_valid"], summary["n_invalid"], summary["n_pending"]) == (53, 50, 3, 1)
    assert (summary["wins"], summary["ties"], summary["losses"]) == (30, 10, 10)
    assert summary["win_rate"] == pytest.approx(0.7)
    low, high = summary["win_rate_ci"]
    # closed form: a pair scores 1, 0.5 or 0 with shares 0.6, 0.2, 0.2, so its variance is
    # 0.65 - 0.7² = 0.16, and the normal interval is 0.7 ± 1.96·√(0.16/50) = [0.589, 0.811]
    assert low == pytest.approx(0.589, abs=0.01) and high == pytest.approx(0.811, abs=0.01)
    assert summary["win_rate_ci"] == summarize(records, seed=3)["win_rate_ci"]  # seeded
    assert summary["p_value"] == pytest.approx(binomtest(30, 40, 0.5).pvalue)
    assert (summary["win_pct_a"], summary["win_pct_b"], summary["tie_pct"]) == (60.0, 20.0, 20.0)
    assert summary["position_consistency"] == pytest.approx(42 / 50)
    # by hand: only wins (or only ties) leave nothing to resample but one rate
    assert summarize([{"outcome": "a", "consistent": True}] * 5)["win_rate_ci"] == [1.0, 1.0]
    assert summarize([{"outcome": "tie", "consistent": True}] * 5)["win_rate_ci"] == [0.5, 0.5]
    empty = summarize([{"outcome": "invalid", "consistent": None}])
    assert (empty["win_rate"], empty["win_rate_ci"], empty["p_value"]) == (None, None, 1.0)


def test_orders_are_seeded_per_item():
    pairs = [Pair(str(i), "s", None, "a", "b") for i in range(40)]
    first = plan(pairs, seed=5, both_orders=True)
    assert first == plan(pairs, seed=5, both_orders=True) and first != plan(pairs, seed=6, both_orders=True)
    assert plan(pairs[10:20], seed=5, both_orders=True) == first[10:20]  # --limit or reordering changes nothing
    assert all(sorted(orders) == ["ab", "ba"] for orders in first)
    single = [orders[0] for orders in plan(pairs, seed=5, both_orders=False)]
    assert 10 < single.count("ab") < 30


def test_retry_after_headers_and_backoff():
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert [policy.backoff(n, jitter=1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert 0.75 <= policy.backoff(1) <= 1.0


def test_keys_come_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test-123")
    monkeypatch.delenv("UNSET_JUDGE_KEY", raising=False)
    assert resolve_api_key("https://api.example.com/v1", "MY_JUDGE_KEY") == "sk-test-123"
    assert resolve_api_key("http://10.0.0.5:8000/v1", "UNSET_JUDGE_KEY") == "EMPTY"
    with pytest.raises(UserError, match="environment variable UNSET_JUDGE_KEY is not set"):
        resolve_api_key("https://api.example.com/v1", "UNSET_JUDGE_KEY")
    assert public_url("https://user:pw@host.example:8443/v1") == "https://host.example:8443/v1"
    assert redact("Incorrect API key provided: sk-test-123.", "sk-test-123") == "Incorrect API key provided: ***."
