"""The README's relative links point to files that exist (the docs site itself is checked by
`mkdocs build --strict` in CI; this keeps the front page's links honest without mkdocs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(markdown: str) -> list[str]:
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)  # code blocks hold no links
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_readme_relative_links_point_to_existing_files():
    links = relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert links, "the README links into docs/"
    missing = [t for t in links if not (ROOT / t.split("#", 1)[0]).exists()]
    assert missing == []


def test_the_link_check_sees_a_missing_file():
    assert relative_links("[a](docs/nope.md) [b](https://x.org) [c](#top) `[d](e.md)`") == ["docs/nope.md"]
