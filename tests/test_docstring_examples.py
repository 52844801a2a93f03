"""Every docstring example in the package runs and holds, not only those of the modules some test lists.

A module whose examples no test runs can drift from its code unseen; this collects them all. A
module with ``>>>`` in its source must also run at least one example (an example skipped as a
whole, ``# doctest: +SKIP`` on each, would otherwise pass as zero of zero).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "alignment_tax"


def modules_with_examples() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = modules_with_examples()


def test_the_package_has_examples_to_run():
    assert len(MODULES) >= 40 and "alignment_tax.metrics.stats" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0, name
