"""Maintainers: ship a freshly pretrained mini base as the package's ``--pretrained`` weights.

    alignment-tax make-tiny-model /tmp/mini --size mini --pretrain   # ~25-50 min on 2 CPU cores
    python tests/reference/ship_pretrained_base.py /tmp/mini

writes ``alignment_tax/models/pretrained/mini-zh.safetensors`` (fp16) and ``mini-zh.json`` (the
manifest's pretraining record: settings, corpus, NLLs, time). The same seed, steps and torch
build give the same weights; rerun ``tests/test_pretrained_base.py`` afterwards.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM

from alignment_tax.models.pretrain import save_shipped
from alignment_tax.models.tiny import MANIFEST_NAME


def main(folder: str) -> None:
    manifest = json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
    if manifest.get("size") != "mini" or "pretrained" not in manifest:
        sys.exit(f"{folder} is not a pretrained mini model (make-tiny-model --size mini --pretrain)")
    record = {key: value for key, value in manifest["pretrained"].items() if key != "source"}
    record["torch"] = __import__("torch").__version__
    print(save_shipped(AutoModelForCausalLM.from_pretrained(folder), record))


if __name__ == "__main__":
    main(sys.argv[1])
