"""argparse types shared by the subcommands, the value checks behind them, and the one-line parser.

The ``check_*`` functions are the rules; the argparse types apply them to a flag, and spec and
config loaders apply them to YAML values (with the key as the name), so a value is judged the
same way wherever it comes from.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any

from alignment_tax.errors import UserError

# numpy, torch and transformers all take seeds in [0, 2**32 - 1].
MAX_SEED = 2**32 - 1
# The most items, steps or tokens any count may name (what itertools.islice accepts).
MAX_COUNT = sys.maxsize


def check_whole(value: Any, name: str, least: int, most: int = MAX_COUNT) -> int:
    """``value`` as a whole number in ``[least, most]``; ``name`` says whose value it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be a whole number, got {value!r}")
    if not least <= value <= most:
        bound = f"≥ {least}" if value < least and most == MAX_COUNT else f"between {least} and {most}"
        raise UserError(f"{name} must be {bound}, got {value}")
    return value


def check_number(value: Any, name: str, low: float, high: float = math.inf, *, low_open: bool = False) -> float:
    """``value`` as a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise UserError(f"{name} must be a number, got {value!r}")
    if value < low or (low_open and value == low) or value > high:
        if high == math.inf:
            bound = f"{'>' if low_open else '≥'} {low:g}"
        else:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        raise UserError(f"{name} must be {bound}, got {value}")
    return value


def check_seed(value: Any, name: str) -> int:
    return check_whole(value, name, 0, MAX_SEED)


def flag(parse: Callable[[str], Any], check: Callable[[Any, str], Any]) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text, then ``check`` it; a failure is argparse's one-line error."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            kind = "a whole number" if parse is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        try:
            return check(value, "the value")
        except UserError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def at_least(least: int, most: int = MAX_COUNT) -> Callable[[str], int]:
    """An argparse type: a whole number in ``[least, most]``."""
    return flag(int, lambda value, name: check_whole(value, name, least, most))


def seed() -> Callable[[str], int]:
    """An argparse type: a random seed, 0 to 2**32 - 1."""
    return flag(int, check_seed)


def number(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    return flag(float, lambda value, name: check_number(value, name, low, high, low_open=low_open))


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line on stderr and exit 2, pointing at ``--help`` instead of printing the usage.

    ``add_subparsers`` builds each subcommand's parser with this class too, so ``self.prog`` names
    the subcommand (``alignment-tax evaluate``).
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        # argparse reports a flag no subcommand knows from the top parser; blame the subcommand given.
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            _chosen_parser(self, parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def _chosen_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost (sub)command parser that ``parsed`` went through (``score mt`` → its parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
            if chosen is not None:
                return _chosen_parser(chosen, parsed)
    return parser
