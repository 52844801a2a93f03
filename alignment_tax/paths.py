"""Where results go and where inputs come from: early checks, whole-file writes, OS errors as one line.

Three pieces, so that a bad path costs one line and exit 2 rather than a traceback or a lost run:

* :func:`check_output_folder` / :func:`check_output_file` before any model or data loads: a path
  that is a file, lies under a file, or sits in a folder this user cannot write to fails at once;
* :func:`write_text_atomically`: a reader never sees half a file, and a failed write (a full disk)
  leaves neither a ``*.tmp`` file nor a damaged earlier version;
* :func:`environment_error_line`: what the CLI prints for the few OS-level failures that are the
  user's environment, not a bug (permission, read-only or full file system, a file where a folder
  should be). Anything else keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import tempfile
from pathlib import Path

from alignment_tax.errors import UserError

# The errno values that describe the user's paths or disk; any other OSError may be a bug.
_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "not a folder",
    errno.EEXIST: "exists and is not a folder",
    errno.ENAMETOOLONG: "file name too long",
}
USER_ERRNOS = frozenset(_REASONS)

# SQLite reports the same conditions as text (its caches: generations, judge replies).
_SQLITE_REASONS = {
    "database or disk is full": "no space left on device",
    "disk i/o error": "disk I/O error (a full or failing disk)",
    "attempt to write a readonly database": "read-only file or file system",
    "unable to open database file": "cannot create or open the file",
}
# Rust-backed writers (safetensors) put the OS error's number in their message.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _safetensors_error() -> tuple[type[Exception], ...]:
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - a dependency of transformers, always there in practice
        return ()
    return (SafetensorError,)


# The exception types that can carry an environment failure; environment_error_line picks the ones that do.
ENVIRONMENT_ERRORS: tuple[type[Exception], ...] = (OSError, sqlite3.OperationalError, *_safetensors_error())


def file_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (itself excluded) that is not a folder, if any."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _existing_folder(path: Path) -> Path:
    """``path`` or its nearest existing ancestor: where a new file or folder would be created."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _probe_writable(folder: Path, what: str) -> None:
    # os.access says yes to root even on a read-only or immutable folder: try for real.
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        reason = _REASONS.get(error.errno, error.strerror or type(error).__name__)
        raise UserError(f"{what}: cannot write in {folder} ({reason})") from None


def check_output_folder(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a folder results can be written to; creates nothing.

    ``flag`` names the option in the message (``--output``). Fails when the path is a file, lies
    under a file, or the folder that would hold it cannot be written.
    """
    folder = Path(path).expanduser()
    what = f"{flag} {path}"
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} exists and is not a folder")
    blocking = file_ancestor(folder)
    if blocking is not None:
        raise UserError(f"{what}: {blocking} is a file, not a folder")
    _probe_writable(_existing_folder(folder), what)
    return folder


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a file that can be written (its folder may not exist yet); creates nothing."""
    target = Path(path).expanduser()
    what = f"{flag} {path}"
    if target.is_dir():
        raise UserError(f"{what} is a folder; give a file name")
    blocking = file_ancestor(target)
    if blocking is not None:
        raise UserError(f"{what}: {blocking} is a file, not a folder")
    _probe_writable(_existing_folder(target.parent), what)
    return target


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux's
    /proc/self/status); else set and restored at once, which another thread could see for an instant."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` in one step: a reader sees the old file or the new one, never half.

    If the write fails (a full disk), the temporary file is removed and the old file is untouched.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # /dev/stdout, a pipe: write through, never replace it
        path.write_text(text, encoding="utf-8")
        return
    # A unique temporary name in the same folder: two writers never share one, and the rename is atomic.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600 whatever the umask; a report or a run written so is unreadable
        # to the group or the web server the umask would let read it. Give it open()'s mode.
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), 0o666 & ~current_umask())
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _os_error_line(error: OSError, fallback: str | None) -> str | None:
    if error.errno not in USER_ERRNOS:
        return None
    reason = _REASONS[error.errno]
    path = error.filename or fallback
    if path is None:
        return reason
    if error.errno == errno.ENOTDIR:
        blocking = file_ancestor(Path(path))
        if blocking is not None:
            return f"{path}: {blocking} is a file, not a folder"
    if error.errno == errno.ENOSPC:
        return f"{reason} while writing {path}"
    return f"{path}: {reason}"


def environment_error_line(error: BaseException, fallback: str | None = None) -> str | None:
    """One line for an error caused by the user's disk or paths, or None when it may be a bug.

    ``fallback`` names the path being written when the error itself names none (a write to a
    full disk reports no file name).
    """
    if isinstance(error, OSError):
        return _os_error_line(error, fallback)
    if isinstance(error, sqlite3.OperationalError):
        reason = _SQLITE_REASONS.get(str(error).strip().lower())
        return None if reason is None else (f"{reason} while writing {fallback}" if fallback else reason)
    if not isinstance(error, (OSError, sqlite3.OperationalError)) and isinstance(error, ENVIRONMENT_ERRORS):
        found = _RUST_OS_ERROR.search(str(error))
        if found and int(found.group(1)) in USER_ERRNOS:
            return _os_error_line(OSError(int(found.group(1)), os.strerror(int(found.group(1)))), fallback)
    return None
