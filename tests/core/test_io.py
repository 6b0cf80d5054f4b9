"""Atomic writes: outputs appear whole, and with the permissions a plain open()/mkdir would give."""

from __future__ import annotations

import os
import stat

import pytest

from eat.io import atomic_open, atomic_path, current_umask, publish_mode, write_json, write_jsonl


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_get_the_umask_mode_not_0600(tmp_path, umask_022):
    write_json(tmp_path / "metrics.json", {"f1": 1.0})
    write_jsonl(tmp_path / "rows.jsonl", [{"a": 1}])
    with atomic_open(tmp_path / "README.md") as fh:
        fh.write("# run\n")
    with atomic_path(tmp_path / "data.bin") as tmp, open(tmp, "wb") as fh:
        fh.write(b"\0")
    for name in ("metrics.json", "rows.jsonl", "README.md", "data.bin"):
        assert mode(tmp_path / name) == 0o644, name


def test_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        write_json(tmp_path / "m.json", {})
    finally:
        os.umask(old)
    assert mode(tmp_path / "m.json") == 0o640
    assert current_umask() == old


def test_publish_mode_for_a_temp_folder(tmp_path, umask_022):
    import tempfile

    folder = tempfile.mkdtemp(dir=tmp_path)
    assert mode(folder) == 0o700
    publish_mode(folder)
    assert mode(folder) == 0o755


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
