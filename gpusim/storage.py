"""A store's place on disk: one writer at a time, replaced only whole, never anyone else's.

- **One writer**: a run holds an exclusive lock (`filelock`, an OS `flock` on Linux) on
  `STORE.lock`, a small file beside the store, from before it touches the store until it
  ends. A second writer is refused at once, naming the holder recorded in that file. The
  OS drops the lock when its process dies, however it dies, so a dead run never blocks
  `--resume`. The file itself stays (deleting a lock file races with its next taker).
- **Ours only**: a path counts as a gpusim store only if it is a real folder (not a
  symbolic link) whose root `zarr.json` carries gpusim's identity attributes; a generic
  zarr folder is not one, and `--overwrite` refuses it.
- **Replaced whole**: a new store is laid out in a hidden folder beside the target and
  renamed into place; an old store is first renamed aside, then deleted. A run killed at
  any moment leaves either the old store, the new one, or no store at the target, plus
  hidden leftovers that the next run of that store removes while it holds the lock.
"""

from __future__ import annotations

import errno
import getpass
import glob
import json
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from os import rename
from pathlib import Path
from shutil import rmtree

from filelock import FileLock, Timeout

from gpusim.errors import InputError

MARKER_KEYS = ("title", "gpusim_version", "seed", "paths", "mode", "config")
"""Root attributes that every store gpusim lays out carries (its identity and provenance);
a folder whose zarr.json lacks any of them is not ours."""
ROOT_METADATA_LIMIT = 64 << 20
"""Largest root zarr.json read when telling a store apart [bytes]: the config twice and
the consolidated metadata of every array take well under a megabyte."""
HOLDER_LIMIT = 4096
"""Largest holder record read from a lock file [bytes]."""
_NEW, _OLD = "gpusim-new", "gpusim-old"


class OutOfSpace(RuntimeError):
    """The disk (or quota) filled up during a run; the store is resumable once freed."""


def lock_path(out: Path) -> Path:
    """The lock file of the store at `out`: `out` with `.lock` appended, beside it."""
    return out.with_name(out.name + ".lock")


def _holder_record() -> bytes:
    """Who holds the lock: process id, host, user, start time and command (JSON)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    record = {"pid": os.getpid(), "host": socket.gethostname(), "user": user,
              "since": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)[:500]}
    return json.dumps(record).encode()


def _write_holder(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, _holder_record(), 0)


def describe_holder(path: Path) -> str:
    """The holder a lock file records, in words (or why it cannot say)."""
    try:
        with open(path, "rb") as handle:
            record = json.loads(handle.read(HOLDER_LIMIT))
        return (f"pid {int(record['pid'])} on host {str(record['host'])[:100]} (user "
                f"{str(record['user'])[:50]}, since {str(record['since'])[:40]}): "
                f"{str(record['command'])[:200]}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet recorded itself"


@contextmanager
def store_lock(out: Path) -> Iterator[None]:
    """Hold the exclusive writer's lock of the store at `out` for the enclosed block.

    Raises InputError naming the holder if another process holds it, or the path if
    the filesystem cannot lock (see README, 'Stores': NFS and shared filesystems).
    """
    path = lock_path(out)
    lock = FileLock(path, timeout=0, on_acquired=_write_holder)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(
            f"--out {str(out)!r} is being written by another run, {describe_holder(path)}; "
            "wait for it to end (or stop it), then start again, with --resume to continue "
            "its store") from None
    except OSError as err:
        raise InputError(f"--out {str(out)!r}: cannot lock {str(path)!r} ({err.strerror}); "
                         "the store needs a filesystem with working file locks (on NFS: "
                         "NFSv4, or NFSv3 with lockd)") from None
    try:
        yield
    finally:
        lock.release()


# --- what a path holds ----------------------------------------------------------------

def root_attributes(path: Path) -> dict | None:
    """The root attributes of a zarr v3 folder at `path`, or None if it is not a real
    folder with a readable zarr.json of at most ROOT_METADATA_LIMIT bytes."""
    meta = path / "zarr.json"
    if path.is_symlink() or not path.is_dir() or meta.is_symlink() or not meta.is_file():
        return None
    try:
        if meta.stat().st_size > ROOT_METADATA_LIMIT:
            return None
        attrs = json.loads(meta.read_bytes()).get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return None
    return attrs if isinstance(attrs, dict) else None


def is_ours(path: Path) -> bool:
    """Whether `path` is a store gpusim laid out (complete or still being filled)."""
    attrs = root_attributes(path)
    return (attrs is not None and all(key in attrs for key in MARKER_KEYS)
            and str(attrs["title"]).startswith("gpusim scenario"))


# --- checking a path before anything is written ---------------------------------------

def _nearest_existing(path: Path) -> Path:
    """`path` or its nearest ancestor that exists (as a link or otherwise)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def check_writable_folder(target: Path, flag: str) -> None:
    """InputError unless `target` can be created (or written) as a folder: the nearest
    existing ancestor is a folder we can create entries in (tried with a probe folder,
    which works for root and read-only mounts alike). Missing parents are created later."""
    parent = _nearest_existing(target.parent)
    if not parent.is_dir():
        raise InputError(f"{flag} {str(target)!r} is under {str(parent)!r}, which is a file, "
                         "not a folder; choose a path in a folder")
    existing = target.is_dir() and not target.is_symlink()
    for folder in (parent, target) if existing else (parent,):
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".gpusim-probe-", dir=folder))
        except OSError as err:
            raise InputError(f"{flag} {str(target)!r}: cannot write in {str(folder)!r} "
                             f"({err.strerror}); choose a writable location") from None


# --- laying out beside the target and replacing it ------------------------------------

def staging_path(out: Path) -> Path:
    """A fresh hidden folder name beside `out` for laying out its replacement."""
    return out.with_name(f".{out.name}.{_NEW}-{uuid.uuid4().hex[:12]}")


def clear_leftovers(out: Path) -> None:
    """Remove what killed runs of this store left beside it (half-laid-out or half-deleted
    folders under our hidden names). Call only while holding the store's lock."""
    for prefix in (_NEW, _OLD):
        for leftover in out.parent.glob(f".{glob.escape(out.name)}.{prefix}-*"):
            if leftover.is_dir() and not leftover.is_symlink():
                rmtree(leftover, ignore_errors=True)


def replace_store(new: Path, out: Path) -> None:
    """Put the laid-out store `new` at `out`, deleting the gpusim store there (if any)
    only after it has been renamed aside, so no kill leaves a half-deleted store at `out`."""
    aside = None
    if os.path.lexists(out):
        if not is_ours(out):
            raise InputError(f"--out {str(out)!r} is not a gpusim store; refusing to replace "
                             "it")
        aside = out.with_name(f".{out.name}.{_OLD}-{uuid.uuid4().hex[:12]}")
        rename(out, aside)
    rename(new, out)
    if aside is not None:
        rmtree(aside)


# --- a full disk ---------------------------------------------------------------------

def out_of_space(err: BaseException) -> bool:
    """Whether `err`, or an error it was raised from, is a full disk or quota."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False
