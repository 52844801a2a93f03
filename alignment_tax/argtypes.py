"""argparse types shared by the subcommands."""

from __future__ import annotations

import argparse


def at_least(least: int):
    """An argparse type: a whole number no smaller than ``least``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < least:
            raise argparse.ArgumentTypeError(f"expected a number ≥ {least}, got {value!r}")
        return number

    return parse
