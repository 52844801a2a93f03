"""Where a file stops being UTF-8: the byte offset, line and column of its first bad sequence.

Files are read in text mode, and Python's decoder works through them in chunks: the
``UnicodeDecodeError`` it raises has ``start`` relative to the chunk it was decoding. A file whose
last character is cut mid-sequence (a Chinese or Tibetan character's three bytes, two of them
written) fails on the leftover bytes alone, so ``start`` was 0 and the error said "byte 0". The
offset here comes from decoding the file's own bytes instead.

>>> locate(b'{"zh": "\\xe4\\xb8\\xad\\xe6\\x96')
Utf8Problem(offset=11, line=1, column=10, bad=b'\\xe6\\x96', reason='unexpected end of data')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alignment_tax.errors import UserError


@dataclass(frozen=True)
class Utf8Problem:
    offset: int  # 0-based byte offset of the first byte that does not decode
    line: int  # 1-based
    column: int  # 1-based, in characters
    bad: bytes  # the bytes the decoder rejected
    reason: str

    def describe(self) -> str:
        cut = ", a character cut short at the end of the file" if self.reason == "unexpected end of data" else ""
        return (
            f"not UTF-8 text at byte {self.offset} (line {self.line}, column {self.column}): "
            f"{self.reason} (bytes {self.bad.hex(' ')}{cut})"
        )


def locate(data: bytes) -> Utf8Problem | None:
    """The first undecodable sequence in ``data``, or None when it is all UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        # Everything before exc.start decoded, so this prefix of the line is valid UTF-8.
        column = len(data[line_start : exc.start].decode("utf-8")) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        return Utf8Problem(exc.start, line, column, data[exc.start : exc.end], exc.reason)
    return None


def not_utf8_error(path: Path, label: str | None = None, error: UnicodeDecodeError | None = None) -> UserError:
    """A one-line error for a file that failed to decode, located by re-reading its bytes."""
    label = label or str(path)
    try:
        problem = locate(Path(path).read_bytes())
    except OSError:
        problem = None
    if problem is None:  # the file changed under us, or could not be re-read: say what the decoder said
        return UserError(f"{label}: not UTF-8 text ({error.reason if error else 'undecodable'})")
    return UserError(f"{label}: {problem.describe()}")
