"""The ``!function hooks.<name>`` targets of this folder's task YAMLs.

lm-eval imports this file by path (as a module named after the file, not as
``alignment_tax.tasks.hooks``), so it only re-exports functions from the package: the objects
the harness calls are the package's own. See :mod:`.loading` for the data (metadata keys
``data_dir`` and ``data``) and :mod:`.scoring` for the metrics.
"""

from alignment_tax.tasks.loading import load_docs
from alignment_tax.tasks.scoring import (
    bleu_bo,
    bleu_zh,
    chrf_bo,
    chrf_zh,
    process_cmrc2018,
    process_headline,
    process_translation,
)

__all__ = [
    "bleu_bo",
    "bleu_zh",
    "chrf_bo",
    "chrf_zh",
    "load_docs",
    "process_cmrc2018",
    "process_headline",
    "process_translation",
]
