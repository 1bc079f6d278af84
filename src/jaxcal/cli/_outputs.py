"""A run's output files appear together when the run succeeds, and not at all otherwise.

Inside :func:`all_or_nothing` (``main`` runs each command in one), :func:`write` hands the
library's writer a path in a hidden staging folder beside the target (``.jaxcal-XXXXXXXX/NAME``,
the target's own name, so its suffix still chooses the format). When the block ends without an
error every staged file is renamed onto its target (a replaced file keeps its mode), then the
staging folders are removed; on an error they are removed with what they hold. The folders are
registered with the interrupt watcher (:mod:`._interrupts`), which removes them at Ctrl-C or
SIGTERM; creating, committing and registering them happen under its lock.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .._checks import InputError, InvalidInput
from .._files import replace_keeping_mode
from . import _interrupts

__all__ = ["all_or_nothing", "write"]


class _Run:
    def __init__(self) -> None:
        self.folders: dict[Path, Path] = {}  # target's folder -> its staging folder
        self.staged: list[tuple[Path, Path]] = []  # (staged file, target)

    def stage(self, target: Path) -> Path:
        folder = target.parent if str(target.parent) else Path(".")
        key = folder.resolve()
        with _interrupts.lock:
            if key not in self.folders:
                try:
                    self.folders[key] = Path(tempfile.mkdtemp(prefix=".jaxcal-", dir=folder))
                except OSError as error:
                    raise InvalidInput(f"cannot write {target}: {error.strerror or error}") from None
                _interrupts.track_folder(str(self.folders[key]))
        staged = self.folders[key] / target.name
        if staged.exists():  # the same file named twice in one run: the later write wins, as it would unstaged
            staged.unlink()
            self.staged = [pair for pair in self.staged if pair[0] != staged]
        return staged

    def discard(self) -> None:
        with _interrupts.lock:
            for folder in self.folders.values():
                _interrupts.remove_folder(str(folder))
                _interrupts.untrack_folder(str(folder))

    def commit(self) -> None:
        with _interrupts.lock:
            blocked = [target for _, target in self.staged if target.is_dir()]  # a rename that would fail: none is done
            if blocked:
                self.discard()
                raise InvalidInput(f"cannot write {blocked[0]}: it is a directory")
            for staged, target in self.staged:
                try:
                    replace_keeping_mode(staged, target)
                except OSError as error:
                    self.discard()
                    raise InvalidInput(f"cannot write {target}: {error.strerror or error}") from None
            if self.staged:
                _interrupts.mark_written()
            self.discard()


_run: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("jaxcal_run", default=None)


def write(target: str | os.PathLike[str], writer: Callable[[str], None]) -> None:
    """Call ``writer(path)``, the library's writer of ``target``, with the path to write.

    Inside :func:`all_or_nothing` that path is staged and renamed onto ``target`` when the run
    ends; an error from the writer names ``target``, not the staged path. Outside, it is
    ``target`` itself.
    """
    run = _run.get()
    if run is None:
        writer(os.fspath(target))
        return
    target = Path(target)
    if target.is_symlink():  # written through the link, as open() would, not over it
        target = Path(os.path.realpath(target))
    staged = run.stage(target)
    try:
        writer(str(staged))
    except InputError as error:
        staged.unlink(missing_ok=True)
        message = str(error).replace(str(staged), str(target))
        raise type(error)(message) from None
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    run.staged.append((staged, target))


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Files written by :func:`write` inside the block appear together when it ends without an
    error, and not at all when it raises."""
    run = _Run()
    token = _run.set(run)
    try:
        yield
    except BrokenPipeError:
        run.commit()  # the reader of standard output left early (`| head`): the files are complete
        raise
    except BaseException:
        run.discard()
        raise
    else:
        run.commit()
    finally:
        _run.reset(token)
