"""Atomic outputs: all-or-nothing, and with the permissions a plain write would give."""

from __future__ import annotations

import os
import stat

import pytest

from stages._common import atomic_dir, write_json, write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_dirs_get_umask_permissions_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        write_text(tmp_path / "r.md", "# report\n")
        with atomic_dir(tmp_path / "out") as out:
            (out / "x.txt").write_text("x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "m.json") == 0o644
    assert _mode(tmp_path / "r.md") == 0o644
    assert _mode(tmp_path / "out") == 0o755
    assert (tmp_path / "out" / "x.txt").read_text() == "x"


def test_failed_writes_leave_the_previous_output_and_no_temp_files(tmp_path):
    write_text(tmp_path / "r.md", "old\n")
    with atomic_dir(tmp_path / "out") as out:
        (out / "keep.txt").write_text("v1")

    def boom(_path):
        raise RuntimeError("writer failed")

    from stages._common import write_atomic

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "r.md", boom)
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as out:
        (out / "keep.txt").write_text("v2")
        raise RuntimeError("stage failed")
    assert (tmp_path / "r.md").read_text() == "old\n"
    assert (tmp_path / "out" / "keep.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.md"]
