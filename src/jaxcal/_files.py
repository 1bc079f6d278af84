"""Writing a file atomically: a temporary file beside the target, then ``os.replace``.

A reader never sees a half-written file, and a write that fails part-way (a full disk, an
exception, Ctrl-C as ``KeyboardInterrupt``) leaves the target as it was and no temporary file.
A new file gets the mode a plain ``open()`` would give it (0666 less the umask); a replaced file
keeps its mode. Nothing is registered anywhere: the command line's all-or-nothing commit of a
run's files and its interrupt handling live in ``jaxcal.cli``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ._checks import InvalidInput

__all__ = ["create_temporary", "replace_keeping_mode", "write_atomic"]


def _write_all(handle: object, data: bytes) -> None:
    handle.write(data)  # type: ignore[attr-defined]


class _Stream:
    """The open temporary file as a writer that streams sees it (pyarrow's Parquet writer): each write
    goes through :func:`_write_all`, as a whole file's bytes do."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._position = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        _write_all(self._handle, data)
        self._position += size
        return size

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        self._handle.flush()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:  # the temporary file is closed by write_atomic, once the writer is done
        pass


def create_temporary(target: Path) -> tuple[int, Path]:
    """Open a new hidden file beside ``target`` (``.NAME.XXXXXXXX.part``) for writing.

    Created as ``open()`` creates a file, mode 0666 less the umask (``tempfile.mkstemp`` would
    make it 0600 whatever the umask), and exclusively, so two writers never share one.
    """
    folder = target.parent if str(target.parent) else Path(".")
    for _ in range(100):
        temp = folder / f".{target.name}.{secrets.token_hex(4)}.part"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def replace_keeping_mode(temp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename ``temp`` onto ``target``; a file already at ``target`` passes its mode on."""
    with contextlib.suppress(FileNotFoundError):
        existing = os.stat(target)
        if stat.S_ISREG(existing.st_mode):
            os.chmod(temp, stat.S_IMODE(existing.st_mode))
    os.replace(temp, target)


def write_atomic(path: str | os.PathLike[str], data: str | bytes | Callable[[Any], None], name: str = "path") -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file renamed into place.

    ``data`` may also be a function that writes the file's bytes into the file-like it is given, piece
    by piece (a large table's writer: its bytes are never all in memory at once).

    Raises:
      InvalidInput: ``path`` is a directory or cannot be written (one line naming ``name``).
    """
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{name}: {target} is a directory")
    if target.is_symlink():  # written through the link, as open() would, not over it
        target = Path(os.path.realpath(target))
    try:
        fd, temp = create_temporary(target)
    except OSError as error:
        raise InvalidInput(f"{name}: cannot write {target}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(_Stream(handle))
            else:
                _write_all(handle, data.encode() if isinstance(data, str) else data)
        replace_keeping_mode(temp, target)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise InvalidInput(f"{name}: cannot write {target}: {error.strerror or error}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
