"""Wall time of `alignment-tax judge` against a 100 ms judge, over the ideal of a perfect scheduler.

A local OpenAI-compatible stub server (its own process, so it does not share our GIL) answers
every call after `--latency` seconds. Two synthetic runs of `--pairs` Tibetan→Chinese items
(sources from ../shared/data when present, else generated) are judged in both orders at
`--concurrency`, through the whole `run_judge` call: reading and pairing the runs, rendering,
the SQLite cache (empty), the openai client, parsing, aggregation and writing the outputs.
The ideal is calls × latency / concurrency (400 × 0.1 / 16 = 2.5 s by default).

Usage: python bench/judge.py [--pairs 200] [--latency 0.1] [--concurrency 16]
Prints the wall time, the ideal and their ratio (target: at most 1.3), the judge process's CPU
time per call and the load average: on a shared 2-core machine other processes' load shows up
in the ratio, since the client needs ~2 ms of CPU per call (the openai client and httpx).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alignment_tax.judge.pipeline import JudgeOptions, run_judge

# A test stand-in for the judge endpoint, run as a script: it needs only the standard library.
STUB_SERVER = Path(__file__).resolve().parents[1] / "tests" / "stub_server.py"
SHARED_MT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bo_zh_mt" / "cmilbench_bo_zh.jsonl"


def sources(n: int) -> list[tuple[str, str]]:
    """``(id, Tibetan sentence)`` pairs: real ones when the shared data is there."""
    if SHARED_MT.exists():
        rows = [json.loads(line) for line in SHARED_MT.read_text(encoding="utf-8").splitlines()[:n]]
        if len(rows) == n:
            return [(str(row["id"]), row["bo"]) for row in rows]
    return [(f"item-{i}", "བཀྲ་ཤིས་བདེ་ལེགས། " * (1 + i % 7) + str(i)) for i in range(n)]


def write_runs(folder: Path, n: int) -> tuple[Path, Path]:
    runs = []
    for name, suffix in (("a", "，译文更完整"), ("b", "")):
        samples = folder / name / "samples"
        samples.mkdir(parents=True)
        with (samples / "bo_zh_mt.jsonl").open("w", encoding="utf-8") as handle:
            for i, (item_id, source) in enumerate(sources(n)):
                output = f"第{i}句的译文" + (suffix if i % 3 else "")
                record = {"id": item_id, "source": source, "output": output, "reference": "参考译文"}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        runs.append(folder / name)
    return runs[0], runs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server takes per call")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    # The openai package takes ~1 s to import (and loads more modules lazily on its first client):
    # a one-off start-up cost of the process, like loading a model, so it is paid (and reported)
    # before the timer starts.
    start = time.perf_counter()
    import openai

    openai.AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    import_seconds = time.perf_counter() - start

    server = subprocess.Popen(
        [sys.executable, str(STUB_SERVER), "--policy", "longer", "--latency", str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            run_a, run_b = write_runs(Path(tmp), args.pairs)
            options = JudgeOptions(
                run_a=str(run_a),
                run_b=str(run_b),
                task="bo_zh_mt",
                output=str(Path(tmp) / "judge" / "a_vs_b.json"),
                judge_model="stub",
                base_url=url,
                concurrency=args.concurrency,
            )
            start, cpu_start = time.perf_counter(), time.process_time()
            summary = run_judge(options)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        server.stdin.close()
        counts = json.loads(server.stdout.readline() or "{}")
        server.wait(timeout=10)
    calls = summary["calls"]["made"]
    ideal = calls * args.latency / args.concurrency
    print(f"pairs {args.pairs}, both orders, concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms")
    print(
        f"calls made {calls} (server answered {counts.get('answered')}, at most {counts.get('max_in_flight')} "
        f"at once, server CPU {counts.get('cpu_s')} s), pairs judged {summary['n_pairs']}, "
        f"win_rate {summary['win_rate']:.3f}"
    )
    print(
        f"import openai {import_seconds:.3f} s (before the timer); judge process CPU {cpu:.3f} s "
        f"({1000 * cpu / max(calls, 1):.2f} ms per call); load average {os.getloadavg()[0]:.2f}"
    )
    print(f"wall {wall:.3f} s, ideal {ideal:.3f} s, ratio {wall / ideal:.3f} (target <= 1.3)")


if __name__ == "__main__":
    main()
