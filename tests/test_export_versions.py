"""Version numbering, refusal to overwrite, atomic write (including a process killed midway)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from export.versions import (
    TEMP_PREFIX,
    VersionError,
    list_versions,
    next_version,
    remove_stale_temp_dirs,
    write_version,
)


def write_files(tmp: Path, version: int) -> None:
    (tmp / "saved_model.pb").write_text(f"model {version}")


def test_numbering_ignores_non_versions(tmp_path):
    assert list_versions(tmp_path / "missing") == []
    assert next_version(tmp_path) == 1
    for name in ("1", "3", "0", "abc", ".export-9-1-x", "10"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert list_versions(tmp_path) == [1, 3, 10]
    assert next_version(tmp_path) == 11


def test_versions_count_up(tmp_path):
    base = tmp_path / "models" / "mnist"  # created on demand
    assert write_version(base, write_files) == base / "1"
    assert write_version(base, write_files) == base / "2"
    assert write_version(base, write_files, version=7) == base / "7"
    assert write_version(base, write_files) == base / "8"
    assert (base / "2" / "saved_model.pb").read_text() == "model 2"
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7", "8"]


def test_refuses_to_overwrite(tmp_path):
    write_version(tmp_path, write_files, version=2)
    with pytest.raises(VersionError, match="exists already"):
        write_version(tmp_path, lambda tmp, v: (tmp / "other").write_text("x"), version=2)
    assert sorted(p.name for p in (tmp_path / "2").iterdir()) == ["saved_model.pb"]
    assert [p.name for p in tmp_path.iterdir()] == ["2"]


def test_refuses_non_positive_version(tmp_path):
    with pytest.raises(VersionError, match="positive"):
        write_version(tmp_path, write_files, version=0)


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_write_leaves_nothing(tmp_path, error):
    def failing(tmp: Path, version: int) -> None:
        write_files(tmp, version)
        raise error

    with pytest.raises(type(error)):
        write_version(tmp_path, failing)
    assert list(tmp_path.iterdir()) == []
    assert write_version(tmp_path, write_files) == tmp_path / "1"


def test_killed_export_leaves_no_version_and_does_not_block(tmp_path):
    write_version(tmp_path, write_files)  # version 1 exists
    ready = tmp_path.parent / f"{tmp_path.name}-ready"
    child = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from export.versions import write_version

        def write_forever(tmp, version):
            (tmp / "saved_model.pb").write_text("half")
            Path({str(ready)!r}).write_text(str(version))
            time.sleep(600)

        write_version(Path({str(tmp_path)!r}), write_forever)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, "exporting child died early"
            assert time.monotonic() < deadline, "exporting child never started writing"
            time.sleep(0.05)
        temp_dirs = list(tmp_path.glob(f"{TEMP_PREFIX}*"))
        assert len(temp_dirs) == 1 and ready.read_text() == "2"
        # While the child lives its temp folder is kept and its number counts as taken.
        assert remove_stale_temp_dirs(tmp_path) == []
        assert write_version(tmp_path, write_files) == tmp_path / "3"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert list_versions(tmp_path) == [1, 3]  # the killed export's number never appeared
    # The next export removes the dead process's leftovers and numbers on.
    assert write_version(tmp_path, write_files) == tmp_path / "4"
    assert not list(tmp_path.glob(f"{TEMP_PREFIX}*"))
    assert (tmp_path / "4" / "saved_model.pb").read_text() == "model 4"


def test_old_temp_dirs_are_removed(tmp_path):
    dead = tmp_path / f"{TEMP_PREFIX}5-999999999-abcd1234"  # no such pid
    unnamed = tmp_path / f"{TEMP_PREFIX}junk"
    mine = tmp_path / f"{TEMP_PREFIX}6-{os.getpid()}-abcd1234"
    old_mine = tmp_path / f"{TEMP_PREFIX}7-{os.getpid()}-ffff0000"
    for p in (dead, unnamed, mine, old_mine):
        p.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old_mine, (two_days_ago, two_days_ago))
    assert sorted(remove_stale_temp_dirs(tmp_path)) == sorted([dead, unnamed, old_mine])
    assert [p.name for p in tmp_path.iterdir()] == [mine.name]
