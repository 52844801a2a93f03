"""One process at a time on an output folder.

Two runs writing one folder at once would interleave their results and their resumable state.
The lock is the operating system's (``flock``), so it goes away with the process that held it,
however that process ended: a killed run never leaves the folder locked.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from alignment_tax.errors import UserError

LOCK_FILE = ".lock"
# What flock raises where the filesystem cannot lock: some NFS mounts (ENOLCK), FUSE and others.
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


class OutputLock:
    """``with OutputLock(folder, "evaluate"):`` holds ``folder`` or refuses in one line."""

    def __init__(self, folder: str | Path, command: str):
        self.path = Path(folder) / LOCK_FILE
        self.command = command
        self._handle = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def acquire(self, wait: bool = False, on_wait: Callable[[Path, str], None] | None = None) -> OutputLock:
        """Take the lock; if another process holds it, refuse in one line or, with ``wait``, wait for it.

        ``on_wait(folder, holder)`` is called once before waiting, so that a run that seems to
        hang says what it waits for.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                handle.close()
                raise UserError(
                    f"{self.path.parent} is being written by another {self.command} ({holder}); wait for it to "
                    "finish or choose another output folder"
                ) from None
            if on_wait is not None:
                on_wait(self.path.parent, holder)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
            except BaseException:  # interrupted while waiting
                handle.close()
                raise
        except OSError as error:
            handle.close()
            # No fallback: running unlocked could interleave two runs' results unnoticed, and a
            # lock file of our own would outlive a killed run (flock goes away with the process).
            if error.errno in _NO_LOCKING:
                raise UserError(
                    f"{self.path.parent}: its filesystem does not support file locking ({os.strerror(error.errno)}), "
                    f"which keeps two runs from writing one folder; choose an output folder on a local filesystem"
                ) from None
            raise UserError(f"{self.path}: cannot lock it: {error.strerror or error}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@contextmanager
def held_by_main(
    folder: str | Path, command: str, on_wait: Callable[[Path, str], None] | None = None
) -> Iterator[None]:
    """``folder`` created and locked by rank 0 for every process (one process: by it).

    Under torchrun the other ranks would be refused by rank 0's lock; they only learn whether
    rank 0 could take it, and a refusal is every rank's one line. With ``on_wait``, a lock held by
    another run is waited for instead of refused (:meth:`OutputLock.acquire`), every rank waiting
    with rank 0.
    """
    from alignment_tax.evaluation import data_parallel

    lock = OutputLock(folder, command)

    def take() -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        lock.acquire(wait=on_wait is not None, on_wait=on_wait)

    data_parallel.on_main(take)
    try:
        yield
    finally:
        lock.__exit__(None, None, None)  # a lock never taken (other ranks) is left alone


def remove_if_unused(folder: str | Path) -> bool:
    """Remove ``folder`` if nothing but its lock file and empty folders are in it; True if removed.

    For a run that created its output folder and failed before writing anything: it should not
    leave an empty folder that looks like a result. Any other file keeps the folder, whole.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    for parent, _subfolders, files in os.walk(folder):
        if any(name != LOCK_FILE or Path(parent) != folder for name in files):
            return False
    (folder / LOCK_FILE).unlink(missing_ok=True)
    for parent, _subfolders, _files in sorted(os.walk(folder), key=lambda entry: -len(Path(entry[0]).parts)):
        os.rmdir(parent)
    return True
