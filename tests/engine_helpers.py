"""What the engine tests share: a run's generations as its per-item records hold them."""

from __future__ import annotations

import json
from pathlib import Path


def outputs(folder: Path, task: str = "cmrc2018") -> list[str]:
    """The ``output`` of each record in ``folder/samples/TASK.jsonl``, in order."""
    lines = (folder / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["output"] for line in lines]
