"""What every engine (:mod:`~alignment_tax.evaluation.engines`, :mod:`~alignment_tax.evaluation.served`)
answers for, and the check each makes before it answers.

A module of its own so that the engines can import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignment_tax.errors import UserError


@dataclass(frozen=True)
class Role:
    """The weights that answer: ``model`` with ``adapter`` on it, or ``model`` alone."""

    model: str
    adapter: str | None = None


def require_chat_template(tokenizer: Any, name: str) -> None:
    if getattr(tokenizer, "chat_template", None) is None:
        raise UserError(f"{name}: the tokenizer has no chat template; the tasks send instructions as chat turns")
