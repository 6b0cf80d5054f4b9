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


# ------------------------------------------------------------------ owned folders, locks, leftovers


def test_atomic_dir_marks_its_folder_and_overwrite_replaces_only_such_folders(tmp_path):
    from eat.errors import UserError
    from eat.io import MANIFEST, atomic_dir

    out = tmp_path / "sft"
    with atomic_dir(out, command="eat wiki sft") as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / MANIFEST).is_file() and '"eat wiki sft"' in (out / MANIFEST).read_text()
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "b.txt"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with (
        pytest.raises(UserError, match=r"mine: not a folder eat-ner wrote"),
        atomic_dir(foreign, overwrite=True),
    ):
        pass
    assert (foreign / "thesis.tex").read_text() == "years of work"


def test_overwrite_never_deletes_an_input_of_the_run(tmp_path):
    from eat.errors import UserError
    from eat.io import atomic_dir

    out = tmp_path / "x"
    with atomic_dir(out) as tmp:
        (tmp / "pairs").mkdir()
    with (
        pytest.raises(UserError, match=r"would delete this run's input .*pairs"),
        atomic_dir(out, overwrite=True, inputs=[out / "pairs"]),
    ):
        pass
    assert (out / "pairs").is_dir()


def test_second_writer_is_refused_with_the_pid_and_a_killed_one_blocks_nothing(tmp_path):
    import subprocess
    import sys

    from eat.errors import UserError
    from eat.io import LOCK_NAME, output_lock

    lock = tmp_path / "out" / LOCK_NAME
    held = rf"out: another eat run \(pid {os.getpid()}\)"
    with output_lock(lock), pytest.raises(UserError, match=held), output_lock(lock):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from eat.io import output_lock\nwith output_lock({str(lock)!r}):\n  print('held', flush=True)\n  import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=rf"pid {holder.pid}"), output_lock(lock):
        pass
    holder.kill()
    holder.wait()
    with output_lock(lock):  # the kernel dropped the dead run's lock
        pass


def test_leftovers_of_a_killed_run_are_removed_by_the_next_one(tmp_path):
    from eat.io import atomic_dir

    (tmp_path / ".sft.abc123.tmp").mkdir()
    (tmp_path / ".sft.abc123.tmp" / "half.parquet").write_text("x")
    (tmp_path / ".sft.def456.old").mkdir()
    (tmp_path / ".other.zzz.tmp").write_text("not ours")
    with atomic_dir(tmp_path / "sft") as tmp:
        (tmp / "done").write_text("1")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".other.zzz.tmp", "sft"]


def test_unwritable_output_is_one_line_before_any_work(tmp_path, monkeypatch):
    from eat.errors import UserError
    from eat.io import check_writable

    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"file/out: cannot write here|file/out: is a file"):
        check_writable(tmp_path / "file" / "out")
    import errno
    import tempfile

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # as on a read-only mount (root writes anywhere else)
    with pytest.raises(UserError, match=r"ro/out: cannot write here: Read-only file system$"):
        check_writable(tmp_path / "ro" / "out")
