"""Safe outputs: atomic writes, owned folders, one writer at a time.

- Atomic: a file or folder is written under a hidden temporary name next to its place (`.NAME.*.tmp`) and
  renamed when complete, so finished work is never half-written.
- Owned: every output folder the toolkit writes holds MANIFEST naming the command; `--overwrite` replaces only
  such a folder, and never one that holds an input of the same run.
- One writer: `output_lock` takes an advisory lock (`flock`) on a lock file, so a second run into the same
  output stops with one line naming the PID; the kernel drops the lock when a run dies, so a killed run never
  blocks the next one. Temporaries a killed run left behind are removed by the next run that holds the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from eat.errors import UserError


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (no window for other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: str | Path, umask: int | None = None) -> None:
    """Give a temp file/folder the mode a plain `open()`/`mkdir` would have (0o644/0o755 under umask 022).

    `mkstemp`/`mkdtemp` create 0600/0700 so that nobody else can read the half-written result; call this
    just before the final rename so finished outputs are readable like any other file.
    """
    path = Path(path)
    mask = current_umask() if umask is None else umask
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        os.chmod(path, 0o777 & ~mask)
    elif stat.S_ISREG(st.st_mode):
        os.chmod(path, 0o666 & ~mask)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            publish_mode(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temp file for writing; it becomes `path` only when the block exits cleanly."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
        yield fh


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2, sort_keys=False)
        fh.write("\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


MANIFEST = ".eat-output.json"


def write_manifest(folder: str | Path, command: str) -> None:
    """Mark `folder` as written by this toolkit (what `--overwrite` checks before deleting anything)."""
    from datetime import datetime, timezone

    from eat import __version__

    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(Path(folder) / MANIFEST, {"command": command, "eat_ner": __version__, "written": stamp})


def check_out(path: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
    """An existing output folder is replaced only when the user asked for it, when this toolkit wrote it, and
    when it holds none of this run's inputs (`--out X --pairs X/pairs --overwrite` must not delete the pairs)."""
    path = Path(path)
    if not path.exists():
        return
    if not overwrite:
        raise UserError("output folder exists; pass --overwrite or choose another --out", path=path)
    if not path.is_dir():
        raise UserError("--out is a file, not a folder this tool wrote; choose another --out", path=path)
    here = path.resolve()
    for item in inputs:
        src = Path(item).resolve()
        if src == here or here in src.parents:
            raise UserError(
                f"--overwrite would delete this run's input {item}; choose another --out", path=path
            )
    if not (path / MANIFEST).is_file() and any(path.iterdir()):
        raise UserError(
            f"not a folder eat-ner wrote (no {MANIFEST}), so --overwrite will not delete it; remove it yourself "
            "or choose another --out",
            path=path,
        )


def check_writable(folder: str | Path) -> None:
    """Fail in one line before long work if `folder` cannot be created or written (read-only, no space...)."""
    folder = Path(folder)
    created = [
        p for p in (folder, *folder.parents) if not p.exists()
    ]  # removed again: the check writes nothing
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".eat-probe.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
        for path in created:  # deepest first
            path.rmdir()
    except FileExistsError:
        raise UserError("is a file, expected a folder for the output", path=folder) from None
    except OSError as exc:
        raise UserError(f"cannot write here: {exc.strerror or exc}", path=folder) from None


@contextlib.contextmanager
def output_lock(lock_file: str | Path, remove: bool = False) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_file` for the block; a second holder gets one UserError.

    `remove` deletes the lock file when the block ends (a lock next to a folder's final name is litter
    afterwards); a run that opened it just before still fails its own lock attempt while this one holds it.
    """
    import fcntl

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_file, "a+", encoding="ascii")  # noqa: SIM115 (held open for the lock's lifetime)
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            raise UserError(
                f"another eat run (pid {pid}) is writing this output; wait for it to finish or choose another --out",
                path=lock_file.parent
                if lock_file.name == LOCK_NAME
                else lock_file.with_name(lock_file.name[1:-5]),
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            if remove:
                lock_file.unlink(missing_ok=True)
    finally:
        fh.close()  # closing releases the flock


LOCK_NAME = ".eat.lock"


def remove_leftovers(folder: str | Path, name: str = "") -> list[Path]:
    """Delete the hidden temporaries (`.NAME.*.tmp`, `.NAME.*.old`) a killed run left in `folder`; call it only
    while holding the output's lock, so that no live run's temporaries are touched."""
    folder = Path(folder)
    gone = []
    if not folder.is_dir():
        return gone
    for pattern in (f".{name}*.tmp", f".{name}*.old"):
        for item in folder.glob(pattern):
            if item.name.startswith(".eat-probe."):
                continue
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            gone.append(item)
    return gone


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path] = (), command: str = "eat"
) -> Iterator[Path]:
    """Yield a temporary folder next to `path` that becomes `path` only if the block succeeds.

    The finished folder holds MANIFEST (`command`); the write holds `.NAME.lock` in the parent folder (removed
    at the end), so a
    second run into the same `path` is refused, and removes temporaries of `path` a killed run left behind.
    """
    path = Path(path)
    check_out(path, overwrite, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path.parent / f".{path.name}.lock", remove=True):
        remove_leftovers(path.parent, f"{path.name}.")
        with _atomic_dir(path, command) as tmp:
            yield tmp


@contextlib.contextmanager
def _atomic_dir(path: Path, command: str) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        write_manifest(tmp, command)
        publish_mode(tmp)  # mkdtemp makes it 0700
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            old.rmdir()
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
