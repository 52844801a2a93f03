"""Reading a judge's reply: the ``{"verdict": ..., "reason": ...}`` object, wherever it sits.

Judges wrap the object in prose, Markdown code fences or a reasoning block; JSON mode is not
offered everywhere. The parser scans for every JSON object in the reply (after dropping
``<think>...</think>`` blocks, whose drafts may quote the format) and accepts the verdict when
every object that carries one agrees; replies with none, or with conflicting ones, are
unreadable (``None``), and the caller asks once more.

>>> parse_verdict('{"verdict": "first", "reason": "more faithful"}')
Verdict(verdict='first', reason='more faithful')
>>> parse_verdict('Sure.\\n```json\\n{"verdict": "Tie", "reason": ""}\\n```')
Verdict(verdict='tie', reason='')
>>> parse_verdict("Candidate 1 is better.") is None
True
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

VERDICTS = ("first", "second", "tie")
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Verdict:
    verdict: str  # one of VERDICTS
    reason: str


def _objects(text: str):
    """Every JSON object that starts at a ``{`` in ``text`` (nested ones included)."""
    for match in re.finditer(r"\{", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def parse_verdict(text: str | None) -> Verdict | None:
    """The verdict in a judge's reply, or ``None`` when there is no single readable one."""
    if not text:
        return None
    text = _THINK.sub("", text)
    found = []
    for value in _objects(text):
        verdict = value.get("verdict")
        if isinstance(verdict, str) and verdict.strip().lower() in VERDICTS:
            reason = value.get("reason", "")
            found.append(Verdict(verdict.strip().lower(), reason if isinstance(reason, str) else json.dumps(reason)))
    if not found or len({v.verdict for v in found}) > 1:
        return None
    return found[0]
