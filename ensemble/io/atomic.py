"""Atomic writes (a temp file or folder beside the target, then os.replace) and the output
check. Temps are named after their writer and removed by a later writer when it is gone
(`ensemble.io.temps`)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ensemble.errors import InputError, full_disk, full_disk_error
from ensemble.io.file_kind import special_file_kind
from ensemble.io.temps import temp_file, temp_folder

REFUSE = "refusing to write the output here"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_error(target: Path, error: OSError) -> InputError:
    """The InputError naming `target` for an OSError met while writing it."""
    if full_disk(error):
        return full_disk_error(target, error)
    if isinstance(error, PermissionError):
        return InputError(target, f"folder {target.parent} is not writable")
    if isinstance(error, IsADirectoryError):
        return InputError(target, "is a directory")
    return InputError(target, f"cannot write the output: {error.strerror or error}")


def _temp_beside(target: Path) -> Path:
    """Create an empty temp file in the folder of `target` (InputError when that fails)."""
    try:
        return temp_file(target)
    except OSError as error:
        raise _write_error(target, error) from None


@contextlib.contextmanager
def _full_disk_named(target: Path) -> Iterator[None]:
    """Turn a full disk met inside the block into an InputError naming `target`."""
    try:
        yield
    except OSError as error:
        if not full_disk(error):
            raise
        raise full_disk_error(target, error) from None


@contextlib.contextmanager
def named_as_target(work: Path, target: Path) -> Iterator[None]:
    """Errors met while filling the temp folder `work` name the file in `target` (where it was
    to go), not the temp folder; a full disk names `target` itself."""
    try:
        with _full_disk_named(target):
            yield
    except InputError as error:
        if error.path is None or not Path(error.path).is_relative_to(work):
            raise
        where = target / Path(error.path).relative_to(work)
        raise InputError(where, error.problem, error.line) from None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds."""
    target = Path(path)
    tmp_path = _temp_beside(target)
    try:
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        with _full_disk_named(target):
            yield tmp_path
        try:
            os.replace(tmp_path, target)
        except OSError as error:
            raise _write_error(target, error) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces `path` only when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def _folder_beside(target: Path) -> Path:
    """Create an empty temp folder beside `target` (InputError when that fails)."""
    try:
        return temp_folder(target)
    except OSError as error:
        raise _write_error(target, error) from None


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; it becomes `path` only if the block succeeds.

    A folder already at `path` is replaced then (moved aside, then removed); on failure the temp
    folder is removed and `path` is left as it was.
    """
    target = Path(path)
    work = _folder_beside(target)
    try:
        os.chmod(work, 0o777 & ~_current_umask())  # as mkdir makes it, not mkdtemp's 0o700
        with named_as_target(work, target):
            yield work
        _swap_in(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; its files move into `path` only if the block
    succeeds, so a failure (a full disk) adds nothing to `path`.

    A new `path` appears whole (the temp folder renamed); into an existing folder the files
    move by rename, replacing those of the same name and keeping the others. A block that
    wrote nothing creates nothing.
    """
    target = Path(path)
    work = _folder_beside(target)
    try:
        os.chmod(work, 0o777 & ~_current_umask())
        with named_as_target(work, target):
            yield work
        if not target.exists():
            if any(work.iterdir()):
                _swap_in(work, target)
            return
        for item in sorted(work.iterdir()):
            try:
                os.replace(item, target / item.name)
            except OSError as error:
                raise _write_error(target / item.name, error) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap_in(work: Path, target: Path) -> None:
    """Rename `work` to `target`, replacing a folder there (put back if the rename fails)."""
    aside = _folder_beside(target) if target.exists() else None
    try:
        if aside is not None:
            os.replace(target, aside)  # a folder onto an empty folder
        os.replace(work, target)
    except OSError as error:
        if aside is not None:
            if target.exists():
                aside.rmdir()  # still empty: the old folder never moved
            else:
                os.replace(aside, target)
        raise _write_error(target, error) from None
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _same(first: Path, second: Path) -> bool:
    """Whether two paths name one file: samefile when both exist (hard links), else resolved."""
    if first.exists() and second.exists():
        return os.path.samefile(first, second)
    return first.resolve() == second.resolve()


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies below it, after resolving both."""
    return path.resolve().is_relative_to(folder.resolve())


def _refuse_inputs(output: Path, reads: Iterable[str | Path], folder: bool) -> None:
    for item in map(Path, reads):
        if _same(output, item):
            raise InputError(output, f"{REFUSE}: it is an input of this command ({item.name})")
        if folder and _inside(item, output):
            raise InputError(output, f"{REFUSE}: it holds {item}, an input of this command")


def _refuse_read_dirs(output: Path, read_dirs: Iterable[str | Path]) -> None:
    for item in map(Path, read_dirs):
        if _inside(output, item):
            raise InputError(
                output, f"{REFUSE}: it lies inside {item}, a folder this command reads"
            )


def _require_writable(output: Path, folder: bool) -> None:
    """InputError unless the nearest existing folder of `output` is a writable folder."""
    existing = output if folder else output.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(output, f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(output, f"folder {existing} is not writable")


def check_output(
    output: str | Path,
    reads: Iterable[str | Path] = (),
    read_dirs: Iterable[str | Path] = (),
    *,
    folder: bool = False,
) -> None:
    """Raise InputError unless a command may write `output` (a file, or with `folder` a folder).

    Refused: an empty name; a device, FIFO or socket; a file output that is an existing folder;
    an output that is one of `reads` (any spelling, symlinks, hard links), or with `folder` holds
    one of them; an output inside one of `read_dirs`; an output whose nearest existing folder is
    not writable.
    """
    text = os.fspath(output)
    if text == "" or (text == "." and not folder):  # click turns -o "" into Path(".")
        where = "" if text == "" else ' (or ".", the current folder)'
        raise InputError('""', f"output file name is empty{where}")
    path = Path(output)
    kind = special_file_kind(path)
    if kind is not None:
        raise InputError(path, f"{REFUSE}: it is {kind}, not a regular file")
    if path.is_dir() and not folder:
        raise InputError(path, "is a directory")
    _refuse_inputs(path, reads, folder)
    _refuse_read_dirs(path, read_dirs)
    _require_writable(path, folder)
