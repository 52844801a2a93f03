"""Sample data bundled with the package (see ATTRIBUTION.md beside this file)."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent

CMRC = SAMPLES_DIR / "cmrc2018_sample.json"
MT_TRAIN = SAMPLES_DIR / "bo_zh_train.jsonl"
MT_TEST = SAMPLES_DIR / "bo_zh_test.jsonl"
HEADLINES = SAMPLES_DIR / "bo_titles.jsonl"


def evaluation_data() -> dict[str, dict[str, str]]:
    """``--data`` overrides that point every package task at the bundled samples."""
    return {
        "cmrc2018": {"path": str(CMRC)},
        "bo_zh_mt": {"path": str(MT_TEST)},
        "zh_bo_mt": {"path": str(MT_TEST)},
        "bo_headline": {"path": str(HEADLINES), "article_column": "article", "headline_column": "title"},
    }
