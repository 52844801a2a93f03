"""The generation as scored: what every task's metric (and output health) sees of a model's output.

It lives apart from :mod:`alignment_tax.tasks.scoring` so that the report can apply the same
cleaning without importing the scorers (NLTK takes seconds to import).
"""

from __future__ import annotations

import re
from typing import Any

_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


def clean_prediction(text: Any) -> str:
    """The generation as scored: a leading ``<think>…</think>`` block and outer whitespace removed.

    >>> clean_prediction("<think>\\n\\n</think>\\n\\n 北京 ")
    '北京'
    """
    return _THINK.sub("", str(text), count=1).strip()
