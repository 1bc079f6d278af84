"""Writing files so that a failed or interrupted run never leaves a half-written one behind.

Every output is written to a temporary file beside its target and renamed into place. Inside
:func:`all_or_nothing` (the command line runs each command in one) the renames wait for the end
of the block, so a run's outputs appear together or not at all. The temporary files are created
and renamed under :data:`jaxcal._interrupts.lock`, so Ctrl-C or SIGTERM at any moment removes
them (see :mod:`jaxcal._interrupts`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from . import _interrupts
from ._checks import InvalidInput

__all__ = ["all_or_nothing", "write_atomic"]

# (temporary file, target) pairs waiting for the end of the enclosing all_or_nothing block
_staged: contextvars.ContextVar[list[tuple[str, Path]] | None] = contextvars.ContextVar("staged", default=None)


def _discard(temp: str) -> None:
    with _interrupts.lock:
        Path(temp).unlink(missing_ok=True)
        _interrupts.untrack(temp)


def _write_all(handle: object, data: bytes) -> None:
    handle.write(data)  # type: ignore[attr-defined]


def write_atomic(path: str | os.PathLike[str], data: str | bytes, name: str = "path") -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    Inside :func:`all_or_nothing` the rename waits for the end of the block.
    """
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{name}: {target} is a directory")
    folder = target.parent if str(target.parent) else Path(".")
    with _interrupts.lock:
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        except OSError as error:
            raise InvalidInput(f"{name}: cannot write {target}: {error.strerror}") from None
        _interrupts.track(temp)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_all(handle, data.encode() if isinstance(data, str) else data)
        staged = _staged.get()
        if staged is not None:
            staged.append((temp, target))
            return
        with _interrupts.lock:
            os.replace(temp, target)
            _interrupts.untrack(temp)
    except OSError as error:
        _discard(temp)
        raise InvalidInput(f"{name}: cannot write {target}: {error.strerror}") from None
    except BaseException:
        _discard(temp)
        raise


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Files written by :func:`write_atomic` inside the block appear together when it ends
    without an error, and not at all when it raises."""
    staged: list[tuple[str, Path]] = []
    token = _staged.set(staged)
    try:
        yield
    except BrokenPipeError:
        _commit(staged)  # the reader of standard output left early (`| head`): the files are complete
        raise
    except BaseException:
        for temp, _ in staged:
            _discard(temp)
        raise
    else:
        _commit(staged)
    finally:
        _staged.reset(token)


def _commit(staged: list[tuple[str, Path]]) -> None:
    with _interrupts.lock:
        blocked = [target for _, target in staged if target.is_dir()]  # a rename that would fail: none is done
        if blocked:
            for temp, _ in staged:
                _discard(temp)
            raise InvalidInput(f"cannot write {blocked[0]}: it is a directory")
        for k, (temp, target) in enumerate(staged):
            try:
                os.replace(temp, target)
            except OSError as error:
                for rest, _ in staged[k:]:
                    _discard(rest)
                raise InvalidInput(f"cannot write {target}: {error.strerror}") from None
            _interrupts.untrack(temp)
        if staged:
            _interrupts.mark_written()
