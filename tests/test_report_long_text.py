"""Long and deceptive model text in the report: a run with 100,000-character unbroken outputs
opens in headless Chromium in seconds (long outputs are cut, the rest behind a "show all"
expander that is not laid out until opened, and unbroken strings wrap), and bidirectional
overrides and zero-width characters in model text are shown as visible markers, never applied.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from pathlib import Path

import pytest
from test_report_browser import CHROMIUM, browser, load  # noqa: F401 (browser is a fixture)
from test_report_helpers import make_study

from alignment_tax.data.readers import read_table
from alignment_tax.errors import UserError
from alignment_tax.reports.build import build_report
from alignment_tax.reports.textsafe import cut_point, markdown_text, visible

LONG = 100_000
N_LONG = 6  # long outputs per run and task
SPOOF = "\u202egnp.exe"  # shows as "exe.png" where the override is applied
ZERO_WIDTH = "pay\u200bpal\u2060\ufeff"
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)


# Tibetan stacks with no tsheg: no break opportunity, and shaping makes laying it out slow.
STACKS = ["ཀྐ", "ཁྑ", "གྒ", "ངྔ", "ཅྕ", "ཆྖ", "ཇྗ", "ཉྙ", "ཏྟ", "ཐྠ", "དྡ", "ནྣ", "པྤ", "ཕྥ", "བྦ", "མྨ"]


def unbroken(seed: int, length: int = LONG) -> str:
    """One ``length``-character Tibetan string with no break opportunity (a degenerate output)."""
    text = "".join(STACKS[(seed + i * 7) % len(STACKS)] for i in range(length // 2 + 1))
    return text[:length]


def _rewrite_outputs(samples: Path, outputs: dict[int, str]) -> None:
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    for index, text in outputs.items():
        rows[index]["output"] = text
    samples.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def make_long_study(root: Path) -> dict[str, Path]:
    """The report study with N_LONG unbroken 100k-character outputs per run on two tasks, and a spoofed name."""
    paths = make_study(root, n_items=24)
    for seed, name in enumerate(("base", "sft", "rl")):
        for task in ("cmrc2018", "bo_headline"):
            outputs = {i: unbroken(seed * 100 + i) for i in range(N_LONG)}
            outputs[N_LONG] = SPOOF
            outputs[N_LONG + 1] = ZERO_WIDTH
            _rewrite_outputs(paths[name] / "samples" / f"{task}.jsonl", outputs)
    return paths


@pytest.fixture(scope="module")
def long_study(tmp_path_factory) -> dict[str, Path]:
    return make_long_study(tmp_path_factory.mktemp("long"))


@pytest.fixture(scope="module")
def long_report(long_study) -> Path:
    out = long_study["sft"].parent.parent / "report.html"
    build_report([long_study["sft"], long_study["rl"]], out=out)
    return out


OPEN_BUDGET_S = 10.0  # the old page took over a minute here (69 s on 2 shared cores); this one about 1 s


@needs_chromium
def test_long_unbroken_outputs_open_in_seconds(browser, long_report):  # noqa: F811 (browser is the fixture)
    start = time.monotonic()
    browser.call("Page.navigate", url=long_report.resolve().as_uri())
    browser.wait_for("Page.loadEventFired", timeout=OPEN_BUDGET_S)
    assert (
        browser.evaluate("document.body.scrollHeight") > 0
    )  # forces layout of the shown task (cmrc2018, long outputs)
    browser.call("Page.captureScreenshot", format="png")  # and paint
    browser.evaluate(
        "var t = document.getElementById('item-task'); t.value = 'bo_headline'; t.dispatchEvent(new Event('change')); "
        "document.body.scrollHeight"
    )
    elapsed = time.monotonic() - start
    assert elapsed < OPEN_BUDGET_S, f"opening the report and showing both tasks took {elapsed:.1f} s"
    # Unbroken text wraps inside its column instead of widening the table past the page.
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@needs_chromium
def test_long_output_is_cut_with_a_show_all_expander_and_kept_whole(browser, long_report):  # noqa: F811
    html = long_report.read_text(encoding="utf-8")
    assert "show all (100,000 characters)" in html
    # The shown part and the rest, with the expander's summary between them, are the whole output.
    joined = re.sub(r'<details class="more"><summary>.*?</summary>', "", html)
    assert unbroken(100) in joined and unbroken(205) in joined
    load(browser, long_report)
    box = "document.querySelector('.items-task[data-task=cmrc2018] tbody tr .box details.more').parentElement"
    assert browser.evaluate(f"{box}.innerText.length") < 2_000  # closed: only the first part is rendered
    browser.evaluate(f"{box}.querySelector('details').open = true")
    assert browser.evaluate(f"{box}.innerText.length") > LONG
    assert browser.problems() == []


@needs_chromium
def test_bidi_override_and_zero_width_characters_are_shown_not_applied(browser, long_report):  # noqa: F811
    html = long_report.read_text(encoding="utf-8")
    for char in "\u202e\u200b\u2060\ufeff":
        assert char not in html
    assert '<span class="ctrl" title="U+202E RIGHT-TO-LEFT OVERRIDE">⟨U+202E⟩</span>gnp.exe' in html
    load(browser, long_report)
    text = browser.evaluate("document.querySelector('.items-task[data-task=cmrc2018]').innerText")
    assert "⟨U+202E⟩gnp.exe" in text and "exe.png" not in text
    assert "pay⟨U+200B⟩pal⟨U+2060⟩⟨U+FEFF⟩" in text


def test_markdown_cuts_long_text_with_its_length_and_marks_format_characters():
    cell = markdown_text(unbroken(3), limit=300)
    assert cell.endswith("… (100,000 characters in all)") and len(cell) < 340
    assert markdown_text(SPOOF) == "⟨U+202E⟩gnp.exe"
    assert markdown_text(ZERO_WIDTH) == "pay⟨U+200B⟩pal⟨U+2060⟩⟨U+FEFF⟩"


def test_cut_never_splits_a_tibetan_stack():
    text = "ཀྐ" * 10
    assert cut_point(text, 5) == 4 and cut_point(text, 4) == 4 and cut_point(text, 100) == 20
    assert "…" in markdown_text(text, limit=6) and "ྐ…" in markdown_text(text, limit=6)


def test_every_format_character_is_marked_except_the_script_ones():
    kept = {
        0x0890,
        0x0891,
        0x08E2,
        0x06DD,
        0x070F,
        0x110BD,
        0x110CD,
        *range(0x0600, 0x0606),
        *range(0x13430, 0x13460),
        *range(0x1BCA0, 0x1BCA4),
    }
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) == "Cf" and code not in kept:
            assert visible(char) == f"⟨U+{code:04X}⟩", hex(code)
    assert visible("\u0600\u13430") == "\u0600\u13430"


def test_truncated_multibyte_character_is_reported_at_its_real_offset(tmp_path):
    paths = make_study(tmp_path, n_items=8)
    samples = paths["rl"] / "samples" / "bo_zh_mt.jsonl"
    data = samples.read_bytes().rstrip(b"\n") + '\n{"output": "中文 བོད'.encode()[:-2]
    samples.write_bytes(data)
    offset = len(data) - 1  # the cut character's first byte: its three bytes lost the last two
    line = data.count(b"\n") + 1
    with pytest.raises(UserError) as info:
        build_report([paths["sft"], paths["rl"]], out=tmp_path / "r.html")
    message = str(info.value)
    assert f"not UTF-8 text at byte {offset} (line {line}, column 18)" in message, message
    assert "a character cut short" in message and "byte 0" not in message


def test_invalid_byte_deep_in_a_file_is_located_in_the_file_not_the_read_chunk(tmp_path):
    text = tmp_path / "lines.txt"
    text.write_bytes("བོད་ཡིག\n".encode() * 3000 + b"ok \xff\n")
    offset = len("བོད་ཡིག\n".encode()) * 3000 + 3
    with pytest.raises(UserError, match=rf"byte {offset} \(line 3001, column 4\): invalid start byte \(bytes ff\)"):
        read_table(text, txt_field="text")


def test_a_run_named_with_an_override_does_not_reverse_the_page(tmp_path):
    paths = make_study(tmp_path, n_items=8, names=("sft", "\u202etfs"))
    out = tmp_path / "r.html"
    build_report([paths["sft"], paths["\u202etfs"]], out=out)
    html = out.read_text(encoding="utf-8")
    assert "\u202e" not in html and "⟨U+202E⟩tfs" in html


def test_an_override_in_a_folder_or_model_name_set_as_code_is_marked_in_the_markdown(tmp_path):
    """The runs' common folder and the banner's model name are code spans in Markdown: shown, not applied."""
    from test_report_about import TINY, with_weights

    paths = make_study(tmp_path / "\u202elive", n_items=8)
    with_weights(paths, "/models/\u202etiny-lm", TINY, {"sft": 12, "rl": 24})
    out = tmp_path / "r.md"
    build_report([paths["sft"], paths["rl"]], out=out)
    text = out.read_text(encoding="utf-8")
    assert "\u202e" not in text
    assert f"Paths are relative to `{tmp_path.resolve()}/⟨U+202E⟩live/runs`, the deepest folder" in text
    assert "> **These models are tiny: base `⟨U+202E⟩tiny-lm` has 0.33M parameters" in text
