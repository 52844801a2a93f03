"""What every reward shares: TRL's calling convention, completion text, and "never NaN".

TRL 1.16 calls a reward function as::

    reward(prompts=..., completions=..., completion_ids=..., trainer_state=..., log_extra=..., log_metric=...,
           **dataset_columns)

where ``completions`` are strings (a standard dataset) or lists of message dicts (a
conversational one), every extra dataset column (``reference`` here) arrives as a list aligned
with the completions, and the return value is one float per completion. It names a reward in its
logs (``rewards/<name>/mean``) by the callable's ``__name__``, so every reward here carries one.

Rewards are plain picklable objects, never ``nn.Module`` (TRL would take a module for a sequence
classifier and call it on token ids).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alignment_tax.data.normalize import normalize_text
from alignment_tax.errors import UserError

REFERENCE_COLUMN = "reference"


def message_text(message: Any) -> str:
    """The text of one message: its ``content`` string, or the text parts of a content list."""
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return "" if message is None else str(message)
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, {"type": "image"}, ...]
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


def completion_text(completion: Any, stop: Sequence[str] = ()) -> str:
    """The text a reward scores for one completion, plain or conversational.

    A conversational completion is a list of message dicts; the assistant messages' text is
    joined (all messages when none has a role). The text is cut at the first ``stop`` string,
    as lm-eval cuts a generation at the task's ``until``, NFC-normalised, and stripped.

    >>> completion_text([{"role": "assistant", "content": " 你好\\n\\n解释"}], stop=["\\n\\n"])
    '你好'
    >>> completion_text(None), completion_text("ཀ་ཁ")
    ('', 'ཀ་ཁ')
    """
    if completion is None:
        text = ""
    elif isinstance(completion, str):
        text = completion
    elif isinstance(completion, dict):
        text = message_text(completion)
    elif isinstance(completion, (list, tuple)):
        messages = list(completion)
        assistant = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
        text = "".join(message_text(m) for m in (assistant or messages))
    else:
        text = str(completion)
    for marker in stop:
        if marker:
            cut = text.find(marker)
            if cut >= 0:
                text = text[:cut]
    return normalize_text(text).strip()


def finite(value: Any) -> float:
    """``value`` as a float, with NaN, ±inf and anything unconvertible mapped to 0.0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


@dataclass(frozen=True)
class RewardCall:
    """One call from TRL: the completions, the dataset columns, and what TRL passes beside them."""

    completions: list[Any]
    columns: dict[str, Any]
    prompts: Sequence[Any] | None = None
    completion_ids: Sequence[Any] | None = None
    trainer_state: Any = None
    log_extra: Callable[[str, list], None] | None = None
    log_metric: Callable[[str, float], None] | None = None

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments to call another reward with (the log hooks stay with the caller)."""
        return {
            "prompts": self.prompts,
            "completions": self.completions,
            "completion_ids": self.completion_ids,
            "trainer_state": self.trainer_state,
            **self.columns,
        }


class TrlReward:
    """TRL's reward signature, spelled once: subclasses compute :meth:`rewards` for a :class:`RewardCall`.

    Whatever they return is made finite (NaN, ±inf and unconvertible values become 0.0).
    """

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Any] | None = None,
        trainer_state: Any = None,
        log_extra: Callable[[str, list], None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        call = RewardCall(
            list(completions or []), columns, prompts, completion_ids, trainer_state, log_extra, log_metric
        )
        return [finite(value) for value in self.rewards(call)]

    def rewards(self, call: RewardCall) -> Sequence[float]:
        raise NotImplementedError


class RewardFunction(TrlReward):
    """Base class of one reward: a picklable callable with TRL's reward signature.

    Subclasses set ``name`` (the log name) and ``needs_reference`` and implement
    :meth:`score` over completion texts (and references). ``stop`` cuts every completion at the
    first of these strings before scoring (the trainers pass the task's ``until``, so a reward
    scores what ``evaluate`` would score).
    """

    name = "reward"
    needs_reference = False

    def __init__(self, stop: Iterable[str] = (), reference_column: str = REFERENCE_COLUMN, name: str | None = None):
        self.stop = tuple(stop)
        self.reference_column = reference_column
        if name is not None:
            self.name = name
        # TRL names a callable reward by ``__name__`` (``rewards/<name>/mean`` in the logs).
        self.__name__ = self.name

    def score(self, texts: list[str], references: list[str] | None) -> list[float]:
        raise NotImplementedError

    def texts(self, completions: Sequence[Any]) -> list[str]:
        return [completion_text(completion, self.stop) for completion in completions]

    def references(self, columns: dict[str, Any], count: int) -> list[str] | None:
        if not self.needs_reference:
            return None
        references = columns.get(self.reference_column)
        if references is None:
            given = ", ".join(sorted(k for k in columns if k not in _TRL_KWARGS)) or "none"
            raise UserError(
                f"reward {self.name!r} needs a {self.reference_column!r} column in the training data "
                f"(columns given: {given})"
            )
        if isinstance(references, str):
            references = [references] * count
        references = list(references)
        if len(references) != count:
            raise ValueError(f"{len(references)} references for {count} completions")
        return [completion_text(reference) for reference in references]

    def rewards(self, call: RewardCall) -> Sequence[float]:
        texts = self.texts(call.completions)
        references = self.references(call.columns, len(texts))
        if not texts:
            return []
        return self.score(texts, references)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# Keyword arguments TRL adds that are not dataset columns.
_TRL_KWARGS = {"trainer_state", "log_extra", "log_metric", "environments"}
