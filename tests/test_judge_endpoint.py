"""`alignment-tax judge` against a real OpenAI-compatible HTTP server on 127.0.0.1 (no mocked client).

Every test starts its own :class:`StubJudgeServer` (standard-library HTTP server in a thread) and
counts what it sees: `received` requests, `answered` with 200, `failed`, and `abandoned` (held
and dropped when a client is killed). The `judge` subcommand is run through a parser built with
`register`, with the CLI's error contract (one line on stderr, exit 2), in-process or, to be
killed midway, in a subprocess.
"""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stub_server import Reply, StubJudgeServer, candidates, prefer_first, prefer_longer

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.judge.pipeline import JudgeOptions, run_judge
from alignment_tax.judge.retry import RetryPolicy

N = 12  # pairs; A's output is longer than B's on 8 of them and the same length on 4
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


def judge_cli(*argv) -> int:
    """`alignment-tax judge ...`, in process."""
    return main(["judge", *map(str, argv)])


def write_runs(root: Path, n: int = N, extra_a=(), extra_b=()) -> tuple[Path, Path]:
    """Two `evaluate` output folders with bo_zh_mt samples (named so a leak into a prompt shows)."""
    runs = []
    for name, suffix, extra in (("system_alpha", "，更完整", extra_a), ("system_beta", "", extra_b)):
        samples = root / name / "samples"
        samples.mkdir(parents=True)
        rows = [
            {"id": f"bo_{i}", "source": f"བཀྲ་ཤིས། {i}", "output": f"译文{i}" + (suffix if i % 3 else ""), "bleu": 1.0}
            for i in list(range(n)) + list(extra)
        ]
        (samples / "bo_zh_mt.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
        runs.append(root / name)
    return runs[0], runs[1]


def common_args(tmp_path, server, *more):
    """The judge's flags for the runs under ``tmp_path`` (written on first use) and ``server``."""
    a, b = tmp_path / "system_alpha", tmp_path / "system_beta"
    if not a.exists():
        write_runs(tmp_path)
    return [
        "--a",
        a,
        "--b",
        b,
        "--task",
        "bo_zh_mt",
        "--judge-model",
        "stub-judge",
        "--base-url",
        server.url,
        "--output",
        tmp_path / "out" / "judge.json",
        *more,
    ]


def judge_api(tmp_path, server, n=N, **options):
    """``run_judge`` on fresh runs of ``n`` pairs: for settings the CLI does not expose."""
    a, b = write_runs(tmp_path, n=n)
    settings = dict(task="bo_zh_mt", judge_model="stub", base_url=server.url, output=str(tmp_path / "j.json"))
    return run_judge(JudgeOptions(run_a=str(a), run_b=str(b), **(settings | options)))


def read_output(tmp_path):
    return json.loads((tmp_path / "out" / "judge.json").read_text(encoding="utf-8"))


def cached_replies(tmp_path) -> int:
    with sqlite3.connect(tmp_path / "out" / "judge_cache.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]


def test_a_judge_that_prefers_the_first_position_gives_all_ties(tmp_path, capsys):
    with StubJudgeServer(prefer_first, latency=0.05) as server:
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 4, "--json")) == 0
    printed = json.loads(capsys.readouterr().out)
    result = read_output(tmp_path)
    assert (result["n_pairs"], result["ties"], result["wins"], result["losses"], result["n_invalid"]) == (N, N, 0, 0, 0)
    assert result["position_consistency"] == 0.0 and result["first_position_share"] == 1.0
    assert (result["win_rate"], result["p_value"], result["win_pct_a"], result["win_pct_b"]) == (0.5, 1.0, 0.0, 0.0)
    assert printed["ties"] == N and printed["records"] == result["records"]
    assert server.answered == server.received == 2 * N and 2 <= server.max_in_flight <= 4
    records = [json.loads(line) for line in Path(result["records"]).read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [f"bo_{i}" for i in range(N)]
    for record in records:
        assert sorted(record["orders"]) == ["ab", "ba"] and record["outcome"] == "tie" and record["consistent"] is False
        assert [j["shown"] for j in record["judgements"]] == record["orders"]
        assert all(j["verdict"] == "first" and len(j["replies"]) == 1 for j in record["judgements"])
    # Blind: no system name, path or run label reaches the judge.
    sent = json.dumps(server.bodies, ensure_ascii=False)
    assert "system_alpha" not in sent and "system_beta" not in sent and "bleu" not in sent
    assert all(body["response_format"] == {"type": "json_object"} for body in server.bodies)


def test_a_content_judge_unpaired_items_and_a_cached_rerun(tmp_path):
    write_runs(tmp_path, extra_a=[100, 101], extra_b=[200])
    with StubJudgeServer(prefer_longer) as server:
        assert judge_cli(*common_args(tmp_path, server)) == 0
        first = read_output(tmp_path)
        assert (first["wins"], first["ties"], first["losses"], first["position_consistency"]) == (8, 4, 0, 1.0)
        assert (first["only_in_a"], first["only_in_b"]) == (2, 1)
        assert (first["only_in_a_ids"], first["only_in_b_ids"]) == (["bo_100", "bo_101"], ["bo_200"])
        assert first["win_rate"] == pytest.approx(10 / 12)
        assert first["win_rate_ci"][0] < first["win_rate"] <= first["win_rate_ci"][1]
        assert server.received == 2 * N
        assert judge_cli(*common_args(tmp_path, server)) == 0  # a rerun: all from the cache
        assert server.received == 2 * N
    again = read_output(tmp_path)
    assert again["calls"] == {"made": 0, "retries": 0, "cached": 2 * N, "rejected": 0, "max_calls": None}
    assert {k: again[k] for k in ("wins", "ties", "losses", "win_rate_ci", "p_value")} == {
        k: first[k] for k in ("wins", "ties", "losses", "win_rate_ci", "p_value")
    }


def flaky(body, index):
    """Every third call fails: 429 with Retry-After, or 500 without (then the client's backoff)."""
    if index % 3 == 0:
        return Reply(429, "slow down", {"Retry-After": "0.01"}) if index % 2 else Reply(500, "replica restarting")
    return prefer_longer(body, index)


def test_a_server_failing_a_third_of_its_calls_still_gets_every_pair_judged(tmp_path):
    with StubJudgeServer(flaky) as server:
        result = judge_api(tmp_path, server, concurrency=4, retry=FAST)
    assert result["complete"] and (result["n_valid"], result["n_invalid"]) == (N, 0)
    assert (result["wins"], result["ties"], result["losses"]) == (8, 4, 0)
    assert server.answered == 2 * N and server.failed == result["calls"]["retries"] >= (2 * N) // 3 - 1
    assert result["calls"]["made"] == server.received


def test_retry_after_is_honoured(tmp_path):
    def limited_once(body, index):
        return Reply(429, "rate limited", {"Retry-After": "0.4"}) if index == 0 else prefer_longer(body, index)

    with StubJudgeServer(limited_once) as server:
        judge_api(tmp_path, server, n=1, concurrency=1)  # the default backoff would wait 0.5 s: shorter is the header
    assert server.times[1] - server.times[0] >= 0.4 and server.answered == 2


def test_a_timed_out_call_is_retried(tmp_path):
    def slow_first(body, index):
        if index == 0:
            time.sleep(1.0)
        return prefer_longer(body, index)

    with StubJudgeServer(slow_first) as server:
        result = judge_api(tmp_path, server, n=2, concurrency=2, timeout=0.5, retry=FAST)
    assert result["complete"] and result["n_valid"] == 2 and result["calls"]["retries"] >= 1
    assert server.received == result["calls"]["made"] >= 3


def test_max_calls_stops_cleanly_and_a_rerun_makes_only_the_missing_calls(tmp_path, capsys):
    with StubJudgeServer(prefer_longer, latency=0.01) as server:
        assert judge_cli(*common_args(tmp_path, server, "--max-calls", 7, "--concurrency", 4)) == 0
        partial = read_output(tmp_path)
        assert "stopped early (--max-calls 7 reached)" in capsys.readouterr().err
        assert server.received == 7 and partial["calls"]["made"] == 7 and cached_replies(tmp_path) == 7
        assert partial["complete"] is False and partial["n_pending"] > 0 and partial["n_pairs"] < N
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 4)) == 0
        assert server.received == server.answered == 2 * N  # pairs × 2 in total, over both runs
    final = read_output(tmp_path)
    assert final["complete"] and final["n_pairs"] == N and final["calls"]["cached"] == 7


def test_a_killed_run_restarted_makes_exactly_pairs_x2_calls(tmp_path):
    killed_after = 9
    server = StubJudgeServer(prefer_longer, answer_limit=killed_after).start()
    try:
        argv = [str(x) for x in common_args(tmp_path, server, "--concurrency", 3)]
        process = subprocess.Popen(
            [sys.executable, "-m", "alignment_tax", "judge", *argv], stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (server.waiting and cached_count(tmp_path) == killed_after):
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert cached_count(tmp_path) == killed_after and not (tmp_path / "out" / "judge.json").exists()
        server.release()  # the killed client's held requests are dropped, never answered
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 3)) == 0
        assert server.answered == 2 * N
        assert server.received == 2 * N + server.abandoned  # the abandoned ones died with the client
    finally:
        server.stop()
    result = read_output(tmp_path)
    assert result["complete"] and result["calls"] == {
        "made": 2 * N - killed_after,
        "retries": 0,
        "cached": killed_after,
        "rejected": 0,
        "max_calls": None,
    }


def cached_count(tmp_path) -> int:
    try:
        return cached_replies(tmp_path)
    except sqlite3.Error:  # not created yet
        return 0


def test_an_unreadable_verdict_is_asked_again_once(tmp_path):
    def chatty(body, index):
        if len(body["messages"]) == 2:  # the first question: no JSON at all
            return Reply(content="Both are decent, but I lean towards the first one.")
        assert "could not be read" in body["messages"][-1]["content"] and body["messages"][2]["role"] == "assistant"
        return Reply(content="Sorry! ```json\n" + prefer_longer(body, index).content + "\n```")

    with StubJudgeServer(chatty) as server:
        assert judge_cli(*common_args(tmp_path, server)) == 0
        assert server.received == 4 * N
        assert judge_cli(*common_args(tmp_path, server)) == 0 and server.received == 4 * N  # re-asks cached too
    result = read_output(tmp_path)
    assert (result["n_valid"], result["n_invalid"], result["wins"]) == (N, 0, 8)
    record = json.loads(Path(result["records"]).read_text(encoding="utf-8").splitlines()[0])
    assert all(len(j["replies"]) == 2 and j["replies"][0].startswith("Both") for j in record["judgements"])


def test_a_verdict_unreadable_twice_is_invalid_and_excluded(tmp_path):
    with StubJudgeServer(lambda body, index: Reply(content="first, I think")) as server:
        assert judge_cli(*common_args(tmp_path, server)) == 0
        assert server.received == 4 * N  # each order: the question and one re-ask, no more
    result = read_output(tmp_path)
    assert (result["n_pairs"], result["n_invalid"], result["n_valid"], result["win_rate"]) == (N, N, 0, None)


@pytest.mark.parametrize(
    "rejected, kept",
    [("response_format", {"temperature": 0}), ("temperature", {"response_format": {"type": "json_object"}})],
)
def test_an_endpoint_without_json_mode_or_temperature_costs_one_call(tmp_path, rejected, kept):
    def picky(body, index):
        if rejected in body:
            return Reply(400, f"Unsupported parameter: '{rejected}' is not supported with this model.")
        return prefer_longer(body, index)

    with StubJudgeServer(picky) as server:
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 1)) == 0
        assert server.received == 2 * N + 1
    result = read_output(tmp_path)
    assert result["judge"]["request_options"] == kept and result["n_valid"] == N


def test_the_key_is_sent_but_never_written(tmp_path, monkeypatch, capsys):
    secret = "sk-live-SECRET-9f8e7d"
    monkeypatch.setenv("JUDGE_TEST_KEY", secret)

    def echo_key(body, index):
        return (
            prefer_longer(body, index)
            if index < 4
            else Reply(401, f"Incorrect API key provided: {secret}. You can find your API key at ...")
        )

    with StubJudgeServer(echo_key) as server:
        code = judge_cli(*common_args(tmp_path, server, "--api-key-env", "JUDGE_TEST_KEY", "--concurrency", 1))
    assert code == 2 and server.auth_headers[0] == f"Bearer {secret}"
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "HTTP 401" in captured.err and "***" in captured.err
    assert secret not in captured.err + captured.out
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "system_" not in str(p)]
    assert {p.name for p in written} >= {"judge.json", "judge.pairs.jsonl", "judge_cache.sqlite"}
    for path in written:
        assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing run", "run not found"),
        ("no common items", "no item id in common"),
        ("missing key", "environment variable NO_SUCH_JUDGE_KEY is not set"),
        ("unknown task", "no samples/cmrc2018.jsonl"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, message):
    a, b = write_runs(tmp_path)
    argv = [
        "--a",
        a,
        "--b",
        b,
        "--task",
        "bo_zh_mt",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--output",
        tmp_path / "j.json",
    ]
    if case == "missing run":
        argv[1] = tmp_path / "nowhere"
    elif case == "no common items":
        (b / "samples" / "bo_zh_mt.jsonl").write_text('{"id": "x", "source": "s", "output": "o"}\n', encoding="utf-8")
    elif case == "missing key":
        argv[7] = "https://judge.example.invalid/v1"
        argv += ["--api-key-env", "NO_SUCH_JUDGE_KEY"]
    else:
        argv[5] = "cmrc2018"
    assert judge_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("alignment-tax: error: ") and err.count("\n") == 1 and message in err


def test_a_server_refusing_calls_exits_2_and_keeps_the_verdicts_obtained(tmp_path, capsys):
    def refuse_after_5(body, index):
        return prefer_longer(body, index) if index < 5 else Reply(403, "project suspended")

    with StubJudgeServer(refuse_after_5) as server:
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 1)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HTTP 403: project suspended" in err and "kept in" in err
    assert cached_replies(tmp_path) == 5 and read_output(tmp_path)["complete"] is False
    with StubJudgeServer(prefer_longer) as healthy:  # another server, the same judge model
        assert judge_cli(*common_args(tmp_path, healthy)) == 0
        assert healthy.received == 2 * N - 5


def test_a_server_answering_nothing_is_given_up_on(tmp_path):
    a, b = write_runs(tmp_path, n=3)
    options = dict(
        run_a=str(a),
        run_b=str(b),
        task="bo_zh_mt",
        output=str(tmp_path / "j.json"),
        judge_model="stub",
        concurrency=2,
        retry=FAST,
    )
    with StubJudgeServer(lambda body, index: Reply(503, "overloaded")) as server:
        with pytest.raises(UserError, match="failed 6 times in a row; last: HTTP 503: overloaded"):
            run_judge(JudgeOptions(base_url=server.url, **options))
    with pytest.raises(UserError, match="cannot reach the judge"):  # nothing listening any more
        run_judge(JudgeOptions(base_url=server.url, **options))


def test_a_request_refused_on_its_own_account_leaves_one_pair_invalid_and_the_run_goes_on(tmp_path, capsys):
    too_long = "This model's maximum context length is 8192 tokens; your messages resulted in 9001 tokens."

    def limited(body, index):
        return Reply(400, too_long) if "译文3" in "".join(candidates(body)) else prefer_longer(body, index)

    with StubJudgeServer(limited) as server:
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 1)) == 0
        assert server.received == 2 * N
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused 2 request(s)" in err and "1 pair(s) count as invalid" in err
    result = read_output(tmp_path)
    assert (result["n_rejected"], result["n_invalid"], result["n_valid"], result["complete"]) == (1, 1, N - 1, True)
    assert result["calls"]["rejected"] == 2
    records = [json.loads(line) for line in Path(result["records"]).read_text(encoding="utf-8").splitlines()]
    refused = next(r for r in records if r["id"] == "bo_3")
    assert refused["outcome"] == "invalid" and all(
        "maximum context length" in j["rejected"] for j in refused["judgements"]
    )
    with StubJudgeServer(prefer_longer) as healthy:  # rejections are not cached: a rerun asks again
        assert judge_cli(*common_args(tmp_path, healthy)) == 0 and healthy.received == 2
    assert read_output(tmp_path)["n_valid"] == N


def test_a_first_request_refused_stops_the_run(tmp_path, capsys):
    # Before anything was accepted, a 400 cannot be told from a misconfigured endpoint.
    with StubJudgeServer(lambda body, index: Reply(400, "messages: invalid role")) as server:
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 1)) == 2
    assert "HTTP 400: messages: invalid role" in capsys.readouterr().err
