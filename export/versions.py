"""Numbered model versions under a base path, written atomically.

TF Serving loads every child of the base path whose name is a number. A version is therefore
written to a temporary folder whose name starts with a dot (not a number, so TF Serving ignores
it) and renamed to `<N>` only when complete: a crash at any point leaves no half-written `<N>`.
"""

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".export-"
# A temp folder whose writer is gone, or older than this, is left over from a crash: removed.
STALE_SECONDS = 24 * 3600


class VersionError(Exception):
    """A version cannot be written (exists already, bad number); the message is one line."""


def list_versions(base_path: Path) -> list[int]:
    """The version numbers present under base_path, ascending (non-numeric names are ignored)."""
    if not base_path.is_dir():
        return []
    return sorted(
        int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name)
    )


def next_version(base_path: Path) -> int:
    return max(list_versions(base_path), default=0) + 1


def write_version(
    base_path: Path, write: Callable[[Path, int], None], version: int | None = None
) -> Path:
    """Fill a temporary folder with write(tmp_dir, version), then rename it to base/<version>.

    version defaults to the highest existing one + 1. Returns the final folder.
    """
    base_path.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(base_path)
    if version is None:
        # Numbers claimed by exports still running count as taken.
        claimed = [temp_dir_fields(p)[0] or 0 for p in base_path.glob(f"{TEMP_PREFIX}*")]
        version = max([next_version(base_path) - 1, *claimed]) + 1
    elif version < 1:
        raise VersionError(f"version must be a positive integer, got {version}")
    final = base_path / str(version)
    if final.exists():
        raise VersionError(f"{final} exists already; versions are never overwritten")
    tmp = base_path / f"{TEMP_PREFIX}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp, version)
        if final.exists():  # another export took the number meanwhile
            raise VersionError(f"{final} appeared while exporting; versions are never overwritten")
        # rename() is atomic within one file system: <N> appears complete or not at all.
        tmp.rename(final)
    except BaseException:  # also Ctrl-C: leave nothing behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def remove_stale_temp_dirs(base_path: Path) -> list[Path]:
    """Delete temp folders of exports whose process is gone (killed) or that are very old."""
    removed = []
    for p in base_path.glob(f"{TEMP_PREFIX}*"):
        pid = temp_dir_fields(p)[1]
        try:
            age = time.time() - p.stat().st_mtime
        except FileNotFoundError:
            continue
        if pid is None or not process_alive(pid) or age > STALE_SECONDS:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def temp_dir_fields(path: Path) -> tuple[int | None, int | None]:
    """The version and the writer's pid that a temp folder's name holds, if they are numbers:
    ".export-<version>-<pid>-<random>"."""
    parts = path.name[len(TEMP_PREFIX) :].split("-")
    if len(parts) != 3:
        return None, None
    return tuple(int(part) if part.isdigit() else None for part in parts[:2])


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
