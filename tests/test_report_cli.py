"""`alignment-tax report` from the command line: the files it writes, and one line + exit 2 on bad input."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil

import pytest
from test_report_helpers import INJECTION, make_study, write_judge

from alignment_tax.cli import main
from alignment_tax.reports.commands import register
from alignment_tax.reports.html_report import SCRIPT


def run_cli(argv: list[str]) -> int:
    """`alignment-tax report ...`, in process."""
    return main(argv)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"), n_items=16, inject=True)


@pytest.fixture(scope="module")
def html_report(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "report.html"
    assert (
        run_cli(["report", str(study["sft"]), str(study["rl"]), "--judge", str(study["judge"]), "--out", str(out)]) == 0
    )
    return out.read_text(encoding="utf-8")


def test_flags():
    parser = argparse.ArgumentParser(prog="alignment-tax")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["report", "a", "b", "--baseline", "a", "--judge", "j1.json", "j2.json", "--judge", "j3.json", "--out", "r.md"]
    )
    assert (args.runs, args.baseline, args.judge, args.out) == (
        ["a", "b"],
        "a",
        ["j1.json", "j2.json", "j3.json"],
        "r.md",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["report", "a"])  # --out is required


def test_html_is_one_self_contained_file(html_report, study, capsys):
    html = html_report
    assert html.startswith("<!DOCTYPE html>")
    # No network and no external files: no links, no src/href to anything but in-page anchors.
    assert not re.search(r"<(link|iframe|object|embed|img|video|audio)\b", html)
    assert not re.search(r"<[^<>]*\ssrc\s*=", html)  # no tag with a src attribute
    # A plot's markers are <use href="#id"> of an element drawn in the same SVG.
    drawn = {f"#{found}" for found in re.findall(r'<path id="([^"]+)"', html)}
    assert set(re.findall(r'href="([^"]*)"', html)) - drawn <= {
        f"#{s}"
        for s in (
            "glance",
            "health",
            "headline",
            "tradeoff",
            "differences",
            "drift",
            "judge",
            "training",
            "items",
            "runs",
            "flags",
        )
    }
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    # Exactly one script, ours, allowed by its hash in the page's Content-Security-Policy.
    assert html.count("<script") == 1 and f"<script>{SCRIPT}</script>" in html
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html and "default-src 'none'" in html
    assert html.count("<svg") >= 8
    for section in (
        "At a glance",
        "Headline table",
        "Tax against gain",
        "Every difference",
        "Drift from the base",
        "LLM judge",
        "Training curves",
        "Items",
    ):
        assert section in html


def test_model_text_is_escaped(html_report):
    assert "<script>window.__pwned" not in html_report and "<img src=x" not in html_report
    assert (
        "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img src=x onerror=&#34;window.__pwned = 2&#34;&gt;"
        in html_report
    )


def test_stdout_says_what_was_written(study, tmp_path, capsys):
    out = tmp_path / "r.html"
    argv = ["report", str(study["sft"]), str(study["rl"]), "--baseline", "rl", "--out", str(out)]
    assert run_cli(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {out} (html): 2 runs (sft, rl), baseline rl, tasks cmrc2018, bo_zh_mt, bo_headline"
    ]
    assert run_cli([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["report"] == str(out) and summary["format"] == "html" and summary["baseline"] == "rl"
    assert summary["runs"] == ["sft", "rl"] and summary["not_compared"] == []
    markdown = tmp_path / "r.md"
    assert run_cli([*argv[:-1], str(markdown), "--judge", str(study["judge"])]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].endswith("1 judge files") and printed[1].startswith("  plots: ")
    assert printed[1].endswith(f" SVG files in {tmp_path / 'r_files'}")


def test_markdown_with_plots_beside_it(study, tmp_path):
    out = tmp_path / "report.md"
    assert (
        run_cli(["report", str(study["sft"]), str(study["rl"]), "--judge", str(study["judge"]), "--out", str(out)]) == 0
    )
    text = out.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((out.parent / image).is_file() for image in images)
    assert all(image.startswith("report_files/") and image.endswith(".svg") for image in images)
    assert (out.parent / "report_files" / "tax_gain_bo_zh_mt.svg").read_text().startswith("<svg xmlns=")
    assert (
        "| **Gap (rl vs sft)** |" in text and "### Task: Tibetan → Chinese translation (`bo_zh_mt`), 16 items" in text
    )
    # Escaped model text: no raw tag, and every table row keeps its column count.
    assert "<script" not in text.replace(r"\<script", "") and "<img" not in text.replace(r"\<img", "")
    assert r'\<script>window.\_\_pwned = 1\</script>\<img src=x onerror="window.\_\_pwned = 2">' in text
    assert "&#" not in text  # plain text, not entities
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("|---") or line.startswith("|:---"):
            width = line.count("|")
            for row in lines[index + 1 :]:
                if not row.startswith("|"):
                    break
                assert len(re.findall(r"(?<!\\)\|", row)) == width, row  # an escaped \| is text in a cell


def test_markdown_and_html_agree_on_the_numbers(study, tmp_path):
    for name in ("r.md", "r.html"):
        assert run_cli(["report", str(study["sft"]), str(study["rl"]), "--out", str(tmp_path / name)]) == 0
    results = json.loads((study["rl"] / "results.json").read_text())
    value = f"{results['tasks']['bo_zh_mt']['bleu']:.2f}"
    assert value in (tmp_path / "r.md").read_text() and value in (tmp_path / "r.html").read_text()


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignment-tax: error: "), captured.err
    return lines[0]


def test_baseline_that_matches_no_run(study, tmp_path, capsys):
    assert (
        run_cli(["report", str(study["sft"]), str(study["rl"]), "--baseline", "ppo", "--out", str(tmp_path / "r.html")])
        == 2
    )
    assert one_error_line(capsys).endswith("--baseline 'ppo' matches no run; the runs are: sft, rl")
    assert not (tmp_path / "r.html").exists()


def test_a_control_that_matches_no_run_names_the_control(study, tmp_path, capsys):
    out = tmp_path / "r.md"
    argv = ["report", str(study["sft"]), str(study["rl"]), "--control", "negative=nosuchrun", "--out", str(out)]
    assert run_cli(argv) == 2
    line = one_error_line(capsys)
    assert line.endswith("--control negative=RUN: 'nosuchrun' matches no run; the runs are: sft, rl")
    assert "--baseline" not in line and not out.exists()


def test_a_repeated_control_role_checks_every_run_it_names(study, tmp_path):
    out = tmp_path / "r.md"
    controls = ["--control", "negative=sft", "--control", "negative=rl", "--control", "negative=rl"]
    assert run_cli(["report", str(study["sft"]), str(study["rl"]), *controls, "--out", str(out)]) == 0
    rows = [line for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| negative control")]
    assert [row.split("|")[2].strip() for row in rows] == ["sft", "rl"]  # both checked, rl once


def test_missing_results_file(study, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["report", str(study["sft"]), str(empty), "--out", str(tmp_path / "r.html")]) == 2
    assert f"results file missing: {empty / 'results.json'}" in one_error_line(capsys)
    assert run_cli(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html")]) == 2
    assert "run folder not found" in one_error_line(capsys)


def test_corrupt_results_file(study, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(study["rl"], broken)
    (broken / "results.json").write_text('{"tasks": {', encoding="utf-8")
    assert run_cli(["report", str(study["sft"]), str(broken), "--out", str(tmp_path / "r.html")]) == 2
    line = one_error_line(capsys)
    assert f"results file {broken / 'results.json'} is corrupt: invalid JSON at line 1" in line
    (broken / "results.json").write_text('{"model": "x"}', encoding="utf-8")
    assert run_cli(["report", str(broken), "--out", str(tmp_path / "r.html")]) == 2
    assert "has no `tasks`" in one_error_line(capsys)


def test_corrupt_or_missing_per_item_and_drift_files(study, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(study["rl"], broken)
    samples = broken / "samples" / "bo_zh_mt.jsonl"
    samples.write_text(samples.read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    assert run_cli(["report", str(study["sft"]), str(broken), "--out", str(tmp_path / "r.html")]) == 2
    assert f"per-item file {samples} line 17 column 2: invalid JSON" in one_error_line(capsys)
    samples.unlink()
    assert run_cli(["report", str(study["sft"]), str(broken), "--out", str(tmp_path / "r.html")]) == 2
    assert f"per-item file {samples} (listed in {broken / 'results.json'}) is missing" in one_error_line(capsys)
    shutil.rmtree(broken)
    shutil.copytree(study["rl"], broken)
    (broken / "drift_tokens.npz").write_bytes(b"not a zip")
    assert run_cli(["report", str(study["sft"]), str(broken), "--out", str(tmp_path / "r.html")]) == 2
    assert f"drift file {broken / 'drift_tokens.npz'} is corrupt" in one_error_line(capsys)


def test_missing_base_results(study, tmp_path, capsys):
    moved = tmp_path / "alone" / "rl"
    shutil.copytree(study["rl"], moved)
    results = json.loads((moved / "results.json").read_text())
    results["base"]["results"] = str(tmp_path / "gone" / "results.json")
    (moved / "results.json").write_text(json.dumps(results), encoding="utf-8")
    assert run_cli(["report", str(moved), "--out", str(tmp_path / "r.html")]) == 2
    line = one_error_line(capsys)
    assert (
        f"the base's results file {tmp_path / 'gone' / 'results.json'} (named in {moved / 'results.json'}) is missing"
        in line
    )
    # A moved tree is still found: <run>/../_base/<key>/.
    shutil.copytree(study["base"], tmp_path / "alone" / "_base" / results["base"]["key"])
    assert run_cli(["report", str(moved), "--out", str(tmp_path / "r.html")]) == 0


def test_runs_with_nothing_in_common(study, tmp_path, capsys):
    only_cmrc, only_headline = tmp_path / "a", tmp_path / "b"
    for folder, task in ((only_cmrc, "cmrc2018"), (only_headline, "bo_headline")):
        shutil.copytree(study["rl"], folder)
        results = json.loads((folder / "results.json").read_text())
        results["tasks"] = {task: results["tasks"][task]}
        results["samples"] = {task: results["samples"][task]}
        results["drift"] = None
        results["base"] = None
        (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    assert run_cli(["report", str(only_cmrc), str(only_headline), "--out", str(tmp_path / "r.html")]) == 2
    assert one_error_line(capsys).endswith(
        "run a has nothing in common with the other runs: no task with an item in common, and no drift on the same texts (tasks: a: cmrc2018; b: bo_headline)"
    )


def test_runs_on_disjoint_items_have_nothing_in_common(study, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(study["rl"], other)
    for samples in (other / "samples").glob("*.jsonl"):
        rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
        samples.write_text("".join(json.dumps({**row, "id": "x" + row["id"]}) + "\n" for row in rows), encoding="utf-8")
    results = json.loads((other / "results.json").read_text())
    results["drift"]["corpus"]["sha256"] = "cd" * 32
    (other / "results.json").write_text(json.dumps(results), encoding="utf-8")
    assert run_cli(["report", str(study["sft"]), str(other), "--out", str(tmp_path / "r.html")]) == 2
    assert "run sft has nothing in common with the other runs" in one_error_line(capsys)


def test_bad_judge_files(study, tmp_path, capsys):
    runs = [str(study["sft"]), str(study["rl"])]
    corrupt = tmp_path / "judge.json"
    corrupt.write_text("{", encoding="utf-8")
    assert run_cli(["report", *runs, "--judge", str(corrupt), "--out", str(tmp_path / "r.html")]) == 2
    assert f"judge file {corrupt} is corrupt" in one_error_line(capsys)
    stranger = write_judge(tmp_path, tmp_path / "ppo", study["rl"], "bo_headline", ["a", "b"], "ppo_vs_rl")
    assert run_cli(["report", *runs, "--judge", str(stranger), "--out", str(tmp_path / "r.html")]) == 2
    assert f"its run_a {tmp_path / 'ppo'} is none of the runs given (base, sft, rl)" in one_error_line(capsys)
    assert run_cli(["report", *runs, "--judge", str(tmp_path / "none.json"), "--out", str(tmp_path / "r.html")]) == 2
    assert f"judge file not found: {tmp_path / 'none.json'}" in one_error_line(capsys)
    assert run_cli(["report", runs[1], "--judge", runs[0], "--out", str(tmp_path / "r.html")]) == 2
    assert f"--judge {runs[0]} is a folder, not a judge file" in one_error_line(capsys)


def test_run_folders_after_judge_are_runs(study, tmp_path, capsys):
    """``--judge FILE RUN ...`` used to swallow the runs; folders after a judge file are runs, in order."""
    runs = [str(study["sft"]), str(study["rl"])]
    out = tmp_path / "r.md"
    assert run_cli(["report", "--judge", str(study["judge"]), *runs, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["runs"][:2] == ["sft", "rl"], summary
    assert run_cli(["report", runs[0], "--judge", str(study["judge"]), runs[1], "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][:2] == ["sft", "rl"]
    assert run_cli(["report", "--judge", str(study["judge"]), "--out", str(out)]) == 2
    assert "report needs at least one RUN_DIR" in one_error_line(capsys)


def test_judge_against_the_base_given_as_samples_files(study, tmp_path):
    judge = write_judge(
        tmp_path,
        study["rl"] / "samples" / "bo_headline.jsonl",
        study["base"] / "samples" / "bo_headline.jsonl",
        "bo_headline",
        ["a", "a", "tie", "b"],
        "rl_vs_base",
    )
    assert run_cli(["report", str(study["rl"]), "--judge", str(judge), "--out", str(tmp_path / "r.md")]) == 0
    assert "| bo_headline | rl | base | 4 | 2 | 1 | 1 | 50.0 | 25.0 |" in (tmp_path / "r.md").read_text()


def test_wrong_output_suffix_and_repeated_run(study, tmp_path, capsys):
    assert run_cli(["report", str(study["rl"]), "--out", str(tmp_path / "r.pdf")]) == 2
    assert "--out must end in .html or .md" in one_error_line(capsys)
    assert run_cli(["report", str(study["rl"]), str(study["rl"]), "--out", str(tmp_path / "r.md")]) == 2
    assert "is given twice" in one_error_line(capsys)


def test_injected_run_name_stays_text(study, tmp_path):
    evil = tmp_path / '<img src=x onerror="window.__pwned=3">'
    shutil.copytree(study["rl"], evil)
    assert run_cli(["report", str(study["sft"]), str(evil), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<img" not in html and "&lt;img src=x onerror=&#34;window.__pwned=3&#34;&gt;" in html
    assert INJECTION not in html
    assert run_cli(["report", str(study["sft"]), str(evil), "--out", str(tmp_path / "r.md")]) == 0
    markdown = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "<img" not in markdown.replace(r"\<img", "") and r"\<img src=x onerror=" in markdown


def test_a_real_judge_file(study, tmp_path):
    """A summary written by `alignment-tax judge` itself (against the stub OpenAI-compatible server)."""
    from stub_server import StubJudgeServer, prefer_longer

    from alignment_tax.judge.pipeline import JudgeOptions, run_judge
    from alignment_tax.judge.retry import RetryPolicy
    from alignment_tax.reports.content import assemble

    output = tmp_path / "judge" / "rl_vs_sft.json"
    with StubJudgeServer(prefer_longer) as server:
        summary = run_judge(
            JudgeOptions(
                run_a=str(study["rl"]),
                run_b=str(study["sft"]),
                task="bo_zh_mt",
                output=str(output),
                base_url=server.url,
                judge_model="stub",
                retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
            )
        )
    report = assemble([study["sft"], study["rl"]], judge_files=[output])
    judgement = report.judgements[0]
    assert (judgement.a.name, judgement.b.name, judgement.task) == ("rl", "sft", "bo_zh_mt")
    assert (judgement.wins, judgement.ties, judgement.losses) == (summary["wins"], summary["ties"], summary["losses"])
    assert judgement.pct("a") == pytest.approx(summary["win_pct_a"]) and judgement.p_value == summary["p_value"]
    assert judgement.win_rate_interval() == tuple(summary["win_rate_ci"])
    assert len(judgement.outcomes) == 16  # per-pair records, for the item browser
    mt = report.sections[0]
    assert mt.columns[-1].label == "LLM-Judge Win (%)" and mt.rows[2].cells[-1].judge[0].pct == pytest.approx(
        summary["win_pct_a"]
    )


def test_judge_pairs_refused_by_the_endpoint_are_shown_with_the_invalid_ones(study, tmp_path):
    summary = json.loads(study["judge"].read_text(encoding="utf-8"))
    judge = tmp_path / "judge.json"
    judge.write_text(json.dumps({**summary, "n_invalid": 2, "n_rejected": 1}), encoding="utf-8")
    for name in ("r.md", "r.html"):
        assert (
            run_cli(
                ["report", str(study["sft"]), str(study["rl"]), "--judge", str(judge), "--out", str(tmp_path / name)]
            )
            == 0
        )
        assert "2 (1 refused by the endpoint)" in (tmp_path / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    # mkstemp makes 0600 files: the report and its SVGs were private whatever the umask said.
    import os
    import stat

    from alignment_tax.paths import current_umask, write_text_atomically
    from alignment_tax.reports.build import build_report

    paths = make_study(tmp_path / "study", n_items=12)
    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        write_text_atomically(tmp_path / "one.txt", "x")
        out = tmp_path / "out" / "report.html"
        out.parent.mkdir()
        build_report([paths["sft"], paths["rl"]], out=out)
        build_report([paths["sft"], paths["rl"]], out=out.with_suffix(".md"))
    finally:
        os.umask(previous)
    written = [tmp_path / "one.txt"] + [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert len(written) > 3
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in written} == {path.name: mode for path in written}
