"""Faults a user meets while mining: a killed parent, two runs into one folder, an index from another dump,
temporaries of a killed run. Each ends in one line or a clean state, never an orphan or a mixed output."""

from __future__ import annotations

import bz2
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eat.errors import UserError
from eat.io import LOCK_NAME
from wiki_data.mine import MineConfig, mine
from wiki_data.schema import read_pairs


def children_of(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_mining(folder: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "eat", "wiki", "mine", "--lang", "ja", "--dump-dir", str(folder), "--out", str(out),
           "--workers", "2", "--streams-per-shard", "1", "--mentions", "--mention-sections", "20"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_killing_the_parent_leaves_no_worker_behind(ja_multi, tmp_path):
    parent = start_mining(ja_multi, tmp_path / "out")
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
        workers = children_of(parent.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the workers never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [w for w in workers if alive(w)]
    for w in survivors:  # do not leak them into the rest of the test session
        os.kill(w, signal.SIGKILL)
    assert not survivors


def test_second_run_into_the_same_folder_is_refused_with_the_pid(ja_multi, tmp_path):
    out = tmp_path / "out"
    first = start_mining(ja_multi, out)
    try:
        lock = out / LOCK_NAME
        deadline = time.monotonic() + 60
        while not (lock.is_file() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(
            UserError, match=rf"out: another eat run \(pid {first.pid}\) is writing this output"
        ):
            mine(MineConfig(lang="ja", dump_dir=ja_multi, out=out, workers=1))
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0, first.stderr.read()
    assert read_pairs(out).num_rows > 0  # the first run finished untouched


def test_index_from_another_dump_is_refused(ja_multi, tmp_path):
    folder = tmp_path / "dump"
    shutil.copytree(ja_multi, folder)
    index = next(folder.glob("*-index.txt.bz2"))
    index.write_bytes(bz2.compress(b"600:999999:Some page of another wiki\n"))
    with pytest.raises(
        UserError, match=r"index\.txt\.bz2: the multistream index lists none of the wanted pages"
    ):
        mine(MineConfig(lang="ja", dump_dir=folder, out=tmp_path / "out", workers=1))
    assert not (tmp_path / "out" / "pairs-00000.parquet").exists()


def test_temporaries_of_a_killed_run_are_removed_by_the_next(ja_multi, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".pairs-00000.parquet.k1ll3d00.tmp").write_bytes(b"half a shard")
    mine(MineConfig(lang="ja", dump_dir=ja_multi, out=out, workers=1, streams_per_shard=5))
    assert not list(out.glob(".*.tmp"))
    assert (out / ".eat-output.json").is_file()


def test_shards_with_nulls_or_wrong_types_are_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wiki_data.schema import PAIRS_COLUMNS, pairs_table
    from wiki_data.shards import merge

    good = {"lang": "ja", "page_id": 1, "title": "東京", "surface": "東京", "en_title": "Tokyo", "qid": None,
            "type": "LOC", "type_source": None, "sentence": "東京は首都。", "aliases": [], "dump_date": None}  # fmt: skip
    folder = tmp_path / "pairs"
    folder.mkdir()
    table = pairs_table([good]).set_column(4, "en_title", pa.array([None], pa.string()))
    pq.write_table(table, folder / "pairs-00000.parquet")
    with pytest.raises(UserError, match=r"pairs-00000\.parquet: column 'en_title' is null in row 0"):
        read_pairs(folder)
    columns = {c: [good[c]] for c in PAIRS_COLUMNS} | {"page_id": ["one"]}
    pq.write_table(pa.table(columns), folder / "pairs-00000.parquet")
    with pytest.raises(UserError, match=r"column 'page_id' holds string, expected int64"):
        read_pairs(folder)
    (folder / "pairs-00000.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match=r"pairs-00000\.parquet: unreadable Parquet shard"):
        merge([folder], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_ctrl_c_stops_mining_at_once_and_says_how_to_resume(ja_multi, tmp_path):
    out = tmp_path / "out"
    proc = start_mining(ja_multi, out)
    deadline = time.monotonic() + 60
    while len(children_of(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 130 and time.monotonic() - t0 < 5
    assert "re-run the same command with --resume" in err
    assert not list(out.glob(".*.tmp"))  # no half-written shard left
