"""Text from a run as HTML: escaped, with invisible characters shown, and long text cut.

Every value goes through :func:`~alignment_tax.reports.textsafe.visible_parts`: control characters
become control pictures, and each invisible format character (a bidirectional override, a
zero-width space) becomes a marker such as ``⟨U+202E⟩`` in a ``span.ctrl`` whose tooltip names it,
so it is seen and never applied.

Text over :data:`SHOWN_CHARS` characters shows its first part; the rest sits in a closed
``<details>`` ("show all (100,000 characters)"). A browser does not lay out a closed details
element's content, and laying out unbroken 100,000-character Tibetan strings took Chromium over a
minute for a page of 18 (tests/test_report_long_text.py), so a report of degenerate outputs opens
in about a second. The file still holds every character: the shown part followed by the rest.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup, escape

from alignment_tax.reports.textsafe import cut_point, format_marker, format_name, visible_parts

SHOWN_CHARS = 1000  # a 14em box's worth; 2,000 unbroken Tibetan characters took 3 times as long to lay out


def marked(text: str) -> Markup:
    """``text`` escaped, with control pictures and each format character as a labelled marker."""
    return Markup("").join(
        Markup('<span class="ctrl" title="{}">{}</span>').format(format_name(part), format_marker(part))
        if is_format
        else escape(part)
        for part, is_format in visible_parts(text)
    )


def cut_text(text: str, limit: int = SHOWN_CHARS) -> Markup:
    """``text`` as HTML: whole when short, else its first part and the rest behind an expander."""
    cut = cut_point(text, limit)
    if cut >= len(text):
        return marked(text)
    return Markup(
        '{}<details class="more"><summary><span class="show">… show all ({} characters)</span>'
        '<span class="hide">hide the rest</span></summary>{}</details>'
    ).format(marked(text[:cut]), f"{len(text):,}", marked(text[cut:]))


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def show(value: Any) -> Markup:
    """Any value from a run as escaped, visible text; dicts as labelled fields, lists joined."""
    if value is None:
        return Markup('<span class="none">(none)</span>')
    if isinstance(value, dict):
        parts = [
            Markup('<div class="field"><span class="key">{}</span> {}</div>').format(marked(str(key)), show(item))
            for key, item in value.items()
        ]
        return Markup("").join(parts)
    if isinstance(value, (list, tuple)):
        unique = list(dict.fromkeys(_as_text(v) for v in value))
        return Markup('<span class="sep"> | </span>').join(cut_text(v) for v in unique)
    text = _as_text(value)
    if text == "":
        return Markup('<span class="none">(empty)</span>')
    return cut_text(text)
