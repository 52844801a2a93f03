"""Where the data lives: the offline data folder's layout and the hub defaults for users online.

The offline folder (``../shared/data`` beside the project, CI has the same)::

    data = DataDir("../shared/data")
    data.require("cmrc_dev")      # Path to cmrc2018/cmrc2018_dev.json, or a UserError naming it
    data.mt_pairs                 # every bo_zh_mt/*.jsonl, sorted

Hub ids cannot be checked from an offline machine; their config, split and columns are
defaults that every loader lets the user override.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alignment_tax.errors import UserError


@dataclass(frozen=True)
class HubSource:
    """A hub dataset id with the config and split the project uses by default."""

    id: str
    split: str
    config: str | None = None
    note: str = ""


# The CMRC 2018 field whose passages are the default drift corpus (SQuAD layout: one context per
# paragraph, shared by its questions).
CMRC_PASSAGE_FIELD = "context"
CMRC_HUB = HubSource("hfl/cmrc2018", "validation", note="validation = the offline cmrc2018_dev.json")
CMHG_HUB = HubSource(
    "KEVVVV/CMHG",
    "test",
    note="the Tibetan config, split and column names are unverified: override config/split/columns",
)
FLORES_HUB = HubSource("openlanguagedata/flores_plus", "devtest", note="gated; one config per language")
FLORES_TEXT_COLUMN = "text"
# FLORES+ configs per language code; the two sides of a pair are aligned by row.
FLORES_CONFIGS = {
    "bo": "bod_Tibt",
    "zh": "cmn_Hans",
    "ug": "uig_Arab",
    "kk": "kaz_Cyrl",
    "mn": "khk_Cyrl",
    "en": "eng_Latn",
}

# name -> path under the root (a glob for mt_pairs)
LAYOUT = {
    "cmrc_dev": "cmrc2018/cmrc2018_dev.json",
    "mt_test": "bo_zh_mt/cmilbench_bo_zh.jsonl",
    "mt_pairs": "bo_zh_mt/*.jsonl",
    "headlines": "bo_text/tibetanqa_title_passage.jsonl",
}


def describe_layout() -> str:
    """The expected layout on one line, for error messages.

    >>> describe_layout().startswith("cmrc2018/cmrc2018_dev.json")
    True
    """
    return ", ".join(LAYOUT.values())


@dataclass(frozen=True)
class DataDir:
    """The offline data folder; paths are resolved, and :meth:`require` checks they exist."""

    root: Path

    def __post_init__(self) -> None:
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise UserError(f"data folder not found: {root} (expected it to hold {describe_layout()})")
        object.__setattr__(self, "root", root.resolve())

    @property
    def cmrc_dev(self) -> Path:
        return self.root / LAYOUT["cmrc_dev"]

    @property
    def mt_test(self) -> Path:
        return self.root / LAYOUT["mt_test"]

    @property
    def mt_pairs(self) -> list[Path]:
        return sorted(self.root.glob(LAYOUT["mt_pairs"]))

    @property
    def headlines(self) -> Path:
        return self.root / LAYOUT["headlines"]

    def require(self, name: str) -> Path | list[Path]:
        """The path(s) for ``name`` (a key of :data:`LAYOUT`), or a UserError naming what is missing."""
        if name not in LAYOUT:
            raise UserError(f"unknown data file {name!r}; known: {', '.join(LAYOUT)}")
        value = getattr(self, name)
        missing = not value if isinstance(value, list) else not value.is_file()
        if missing:
            raise UserError(
                f"{self.root / LAYOUT[name]}: not found in the data folder {self.root}; "
                f"expected layout: {describe_layout()}"
            )
        return value

    def check(self) -> None:
        """Require every file of the layout."""
        for name in LAYOUT:
            self.require(name)
