"""The judge against real local servers when things go wrong across runs and processes: a rerun after
a per-item refusal, a server that hangs, and two processes sharing one cache.

Helpers (the runs, the flags, the outputs) are those of ``test_judge_endpoint``.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from stub_server import Reply, StubJudgeServer, candidates, prefer_longer
from test_judge_endpoint import N, cached_replies, common_args, judge_cli, read_output, write_runs

REPO = Path(__file__).resolve().parents[1]
TOO_LONG = "This model's maximum context length is 8192 tokens; your messages resulted in 9001 tokens."
# The numbers a rerun must not change.
STABLE = (
    "n_pairs",
    "n_valid",
    "wins",
    "ties",
    "losses",
    "n_invalid",
    "n_rejected",
    "n_pending",
    "win_rate",
    "win_rate_ci",
    "p_value",
    "complete",
    "stopped",
)


def refuses_pair_3(body, index):
    """Every request about pair bo_3 is too long for this judge; the others are answered."""
    return Reply(400, TOO_LONG) if "译文3" in "".join(candidates(body)) else prefer_longer(body, index)


def test_a_rerun_after_a_per_item_refusal_completes_and_a_failed_one_never_makes_the_summary_worse(tmp_path, capsys):
    with StubJudgeServer(refuses_pair_3) as server:
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 1)) == 0
        first = read_output(tmp_path)
        assert first["complete"] and first["n_rejected"] == 1 and server.received == 2 * N
        # Everything else is cached, so the refused pair's two requests are all this rerun asks:
        # their 400 is still that pair's own fault, not a misconfigured endpoint.
        assert judge_cli(*common_args(tmp_path, server, "--concurrency", 1)) == 0
        assert server.received == 2 * N + 2  # each order of the refused pair asked again, once
    again = read_output(tmp_path)
    assert {k: again[k] for k in STABLE} == {k: first[k] for k in STABLE}
    assert again["judge"]["request_options"] == first["judge"]["request_options"]
    assert again["calls"] == {"made": 2, "retries": 0, "cached": 2 * N - 2, "rejected": 2, "max_calls": None}
    records = Path(again["records"]).read_text(encoding="utf-8")
    capsys.readouterr()

    with StubJudgeServer(lambda body, index: Reply(403, "project suspended")) as refusing:
        assert judge_cli(*common_args(tmp_path, refusing, "--concurrency", 4)) == 2
        assert refusing.received >= 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HTTP 403: project suspended" in err and "more complete summary" in err
    assert read_output(tmp_path) == again  # the complete summary and its records stay as they were
    assert Path(again["records"]).read_text(encoding="utf-8") == records


def test_a_hung_server_is_given_up_on_within_a_few_timeouts_and_the_verdicts_before_are_kept(tmp_path, capsys):
    answered = 5  # then the server accepts every request and never answers it
    with StubJudgeServer(prefer_longer, answer_limit=answered) as server:
        began = time.monotonic()
        code = judge_cli(*common_args(tmp_path, server, "--timeout", 0.5, "--concurrency", 4))
        elapsed = time.monotonic() - began
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("alignment-tax: error: ")
    assert "looks dead" in err and "within 0.5 s" in err and "kept in" in err
    assert elapsed < 8, elapsed  # six unanswered calls: two waves of 0.5 s and a backoff, not 6 × 300 s each
    assert cached_replies(tmp_path) == answered
    partial = read_output(tmp_path)
    assert partial["complete"] is False and partial["calls"]["made"] >= answered + 6


def test_timeout_must_be_positive(tmp_path, capsys):
    write_runs(tmp_path)
    with StubJudgeServer(prefer_longer) as server:
        for bad in ("0", "-1", "soon"):
            capsys.readouterr()
            assert judge_cli(*common_args(tmp_path, server, "--timeout", bad)) == 2, f"--timeout {bad} accepted"
            err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
            assert len(err) == 1 and "--timeout" in err[0], err  # a usage error: one line
        assert server.received == 0


def test_two_processes_sharing_a_cache_make_each_call_once(tmp_path):
    write_runs(tmp_path)

    def after_both_asked(body, index):
        # Answers wait until both processes have sent a request: their runs overlap for sure.
        deadline = time.monotonic() + 20
        while len(set(server.auth_headers)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return prefer_longer(body, index)

    server = StubJudgeServer(after_both_asked, latency=0.02).start()
    try:
        processes = []
        for name in ("one", "two"):
            argv = [str(x) for x in common_args(tmp_path, server, "--concurrency", 3)]
            argv[argv.index("--output") + 1] = str(tmp_path / "out" / f"{name}.json")  # one cache beside both
            env = os.environ | {"OPENAI_API_KEY": f"process-{name}"}  # tells their requests apart
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "alignment_tax", "judge", *argv],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        errors = [process.communicate(timeout=90)[1] for process in processes]
        assert [process.returncode for process in processes] == [0, 0], errors
    finally:
        server.stop()
    assert set(server.auth_headers) == {"Bearer process-one", "Bearer process-two"}
    assert server.received == server.answered == 2 * N  # each distinct prompt asked once, by one of them
    results = [json.loads((tmp_path / "out" / f"{name}.json").read_text(encoding="utf-8")) for name in ("one", "two")]
    assert sum(result["calls"]["made"] for result in results) == 2 * N
    assert all(
        result["complete"] and (result["wins"], result["ties"], result["losses"]) == (8, 4, 0) for result in results
    )
