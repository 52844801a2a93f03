"""The report says what it is: the tiny-model banner, Δ's sign, paths, and judge ties.

Also what ``evaluate`` records for the banner (``results.json``'s ``weights``), read from hand-made
model folders: a tiny manifest, a safetensors header, a training record.
"""

from __future__ import annotations

import html
import json
import re
import struct
from pathlib import Path

import pytest
from test_report_helpers import make_study, write_judge

from alignment_tax.provenance import adapter_facts, model_facts, weights
from alignment_tax.reports import formatting as fmt
from alignment_tax.reports import html_report, markdown_report
from alignment_tax.reports.about import TAX_DEFINITION, count, output_root, shown_path
from alignment_tax.reports.comparisons import Comparator
from alignment_tax.reports.content import assemble
from alignment_tax.reports.textsafe import markdown_text

N = 12
TINY = {
    "tiny": {"kind": "lm", "size": "tiny", "seed": 0, "parameters": 330112, "vocab_size": 4000},
    "parameters": 330112,
}
CLOSING = "Their numbers show the pipeline working, not the methods' merit."


def rewrite(folder: Path, **changes) -> None:
    path = folder / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    results.update(changes)
    path.write_text(json.dumps(results), encoding="utf-8")


def with_weights(study: dict, model: str, model_facts_: dict | None, steps: dict[str, int | None]) -> None:
    """Every run's model named ``model`` with ``model_facts_``; each adapter trained ``steps[name]`` steps."""
    rewrite(study["base"], model=model, weights={"model": model_facts_, "adapter": None})
    for name, step in steps.items():
        adapter = (
            {"method": "sft", "status": "finished", "steps": step, "trainable_parameters": 4096}
            if step is not None
            else None
        )
        rewrite(study[name], model=model, weights={"model": model_facts_, "adapter": adapter})


def build(study: dict, judge: Path | None = None):
    report = assemble(
        [study["sft"], study["rl"]], judge_files=[judge] if judge else [], comparator=Comparator(n_resamples=50)
    )
    return report, html_report.render(report), markdown_report.render(report, "r_files")[0]


def banner_text(page: str) -> str | None:
    found = re.search(r'<p class="banner" id="banner" role="note">(.*?)</p>', page)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))) if found else None


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path, n_items=N)


def test_banner_names_a_tiny_random_base_and_the_adapters_steps(study):
    with_weights(study, "/models/tiny-lm", TINY, {"sft": 12, "rl": 24})
    report, page, markdown = build(study)
    expected = f"These models are tiny: base tiny-lm has 0.33M parameters and random weights; adapters trained 12–24 steps. {CLOSING}"
    assert banner_text(page) == expected
    assert "<code>tiny-lm</code>" in page
    assert (
        f"> **These models are tiny: base `tiny-lm` has 0.33M parameters and random weights; adapters trained 12–24 steps. "
        f"{CLOSING}**"
    ) in markdown.splitlines()


def test_banner_from_the_folders_when_results_predate_weights(study, tmp_path):
    """A results.json without ``weights``: the facts are read from the model and adapter folders."""
    model = tmp_path / "models" / "tiny-lm"
    model.mkdir(parents=True)
    manifest = {**TINY["tiny"], "pretrained": {"steps": 2000, "tokens": 1_200_000}, "files": ["config.json"]}
    (model / "alignment_tax_tiny.json").write_text(json.dumps(manifest), encoding="utf-8")
    for name, step in (("sft", 150), ("rl", 300)):
        record = {
            "method": name,
            "status": "finished",
            "global_step": step,
            "parameters": {"trainable": 4096, "total": 334208},
        }
        (tmp_path / "train" / name / "train_config.json").write_text(json.dumps(record), encoding="utf-8")
    for folder in (study["base"], study["sft"], study["rl"]):
        rewrite(folder, model=str(model))
    report, page, _ = build(study)
    # Tiny, so the banner shows although 150 and 300 steps are not few.
    assert banner_text(page) == (
        "These models are tiny: base tiny-lm has 0.33M parameters and weights pretrained for 2,000 steps "
        f"on 1.20M tokens; adapters trained 150–300 steps. {CLOSING}"
    )


def test_few_steps_alone_bring_the_banner_and_a_real_model_trained_long_none(study):
    four_b = {"parameters": 4_022_468_096}
    with_weights(study, "Qwen/Qwen3-4B", four_b, {"sft": 30, "rl": 30})
    _, page, markdown = build(study)
    assert banner_text(page) == (
        "These models were trained for a handful of steps: base Qwen/Qwen3-4B has 4.02B parameters; "
        f"adapters trained 30 steps each. {CLOSING}"
    )
    with_weights(study, "Qwen/Qwen3-4B", four_b, {"sft": 100, "rl": 2400})
    report, page, markdown = build(study)
    assert report.banner == [] and 'id="banner"' not in page and "These models" not in markdown
    # No training record: the training log beside the adapter counts (make_study's logs end at step 30).
    with_weights(study, "Qwen/Qwen3-4B", None, {"sft": None, "rl": None})
    assert (
        banner_text(build(study)[1])
        == f"These models were trained for a handful of steps: adapters trained 30 steps each. {CLOSING}"
    )
    for name in ("sft", "rl"):
        (study[name].parent.parent / "train" / name / "train_log.jsonl").unlink()
    assert build(study)[0].banner == []  # nothing known: nothing claimed


def test_counts():
    assert [count(330112), count(1_200_000), count(4_022_468_096), count(12_000)] == [
        "0.33M",
        "1.20M",
        "4.02B",
        "0.01M",
    ]


def test_weights_recorded_from_the_folders(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
            "b": {"dtype": "F32", "shape": [5], "data_offsets": [48, 68]},
        }
    ).encode()
    (plain / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(68))
    assert model_facts(str(plain)) == {"parameters": 3 * 4 + 5}
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    manifest = {
        **TINY["tiny"],
        "pretrained": {"steps": 50, "tokens": 9000},
        "alignment_tax_version": "0.1.0",
        "files": ["x"],
    }
    (tiny / "alignment_tax_tiny.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert model_facts(str(tiny)) == {
        "tiny": {**TINY["tiny"], "pretrained": {"steps": 50, "tokens": 9000}},
        "parameters": 330112,
    }
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    record = {
        "method": "grpo",
        "status": "finished",
        "global_step": 24,
        "parameters": {"trainable": 4096, "total": 334208},
    }
    (tmp_path / "run" / "train_config.json").write_text(json.dumps(record), encoding="utf-8")
    assert adapter_facts(str(tmp_path / "run" / "adapter")) == {
        "method": "grpo",
        "status": "finished",
        "steps": 24,
        "trainable_parameters": 4096,
        "record": str((tmp_path / "run" / "train_config.json").resolve()),
    }
    assert weights("Qwen/Qwen3-4B", str(tmp_path / "nowhere")) == {"model": None, "adapter": None}


def test_tax_is_defined_once_with_its_sign(study):
    _, page, markdown = build(study)
    assert (
        "Δ = candidate − base" in TAX_DEFINITION
        and "a negative Δ on a general benchmark such as CMRC is a tax" in TAX_DEFINITION
    )
    assert "lower-is-better: a positive Δ there means the run moved away from the base" in TAX_DEFINITION
    assert page.count(TAX_DEFINITION) == 1 and page.count("Δ = candidate − base") == 1
    assert markdown.count(markdown_text(TAX_DEFINITION)) == 1 and markdown.count("Δ = candidate − base") == 1


def test_paths_are_relative_to_the_runs_common_folder(study, tmp_path):
    report, page, markdown = build(study)
    runs = tmp_path / "runs"
    assert report.root == runs.resolve() and output_root(report.runs[:1]) == runs.resolve()
    assert [report.path(run.path) for run in report.shown] == ["_base/0123456789abcdef", "sft", "rl"]
    adapter = str((tmp_path / "train" / "sft" / "adapter").resolve())  # outside the root: absolute
    assert shown_path(str(tmp_path / "train" / "sft" / "adapter"), runs.resolve()) == adapter
    assert shown_path("Qwen/Qwen3-4B", runs.resolve()) == "Qwen/Qwen3-4B" and shown_path(runs, runs.resolve()) == "."
    runs_section = page[page.index('<h2 id="runs">') :]
    assert f"Paths are relative to <code>{html.escape(str(runs.resolve()))}</code>" in runs_section
    assert "<code>sft</code>" in runs_section and "<code>_base/0123456789abcdef</code>" in runs_section
    assert "&#34;" not in runs_section and '"/' not in runs_section  # no JSON-quoted paths
    lines = markdown[markdown.index("## Runs") :].splitlines()
    assert f"| sft | sft | Qwen/Qwen3-4B | {markdown_text(adapter)} | base (0123456789abcdef) | " in "\n".join(lines)
    assert any(line.startswith("| base | \\_base/0123456789abcdef | Qwen/Qwen3-4B | — |") for line in lines)


def test_judge_column_tells_all_ties_from_a_loss(study, tmp_path):
    judge = write_judge(tmp_path / "judge", study["rl"], study["sft"], "bo_headline", ["tie"] * N, "ties")
    report, page, markdown = build(study, judge)
    headline = report.sections[1]
    rl_row, sft_row = headline.rows[2], headline.rows[1]
    entry = rl_row.cells[-1].judge[0]
    assert entry.pct == 0.0 and entry.all_tied and entry.record == (0, N, 0)
    assert (fmt.judge_share(entry), fmt.judge_record(entry)) == ("all tied", f"all {N} tied vs sft")
    assert fmt.judge_record(sft_row.cells[-1].judge[0]) == f"all {N} tied vs rl"
    assert f'<span class="v">all tied</span><span class="d unclear judge-record">all {N} tied vs sft</span>' in page
    assert f"all tied (all {N} tied vs sft)" in markdown and "| 0.0 (vs sft)" not in markdown


def test_judge_column_shows_wins_ties_and_losses(study):
    report, page, markdown = build(study, study["judge"])  # rl against sft: 6 won, 1 tied, 5 lost
    rl_entry, sft_entry = report.sections[1].rows[2].cells[-1].judge[0], report.sections[1].rows[1].cells[-1].judge[0]
    assert fmt.judge_record(rl_entry) == "6 won, 1 tied, 5 lost vs sft" and fmt.judge_share(rl_entry) == "50.0"
    assert fmt.judge_record(sft_entry) == "5 won, 1 tied, 6 lost vs rl" and fmt.judge_share(sft_entry) == "41.7"
    assert "50.0 (6 won, 1 tied, 5 lost vs sft)" in markdown
