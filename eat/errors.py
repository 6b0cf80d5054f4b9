"""The one exception type for mistakes the user can fix (bad file, bad key, missing model).

The CLI prints its message as one line and exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from pathlib import Path


class UserError(Exception):
    """An error caused by input the user controls; the message must say what to fix."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + " ".join(str(message).split("\n")))


# Faults of the environment rather than of the code: the user fixes them (space, permissions, a mount).
ENVIRONMENT_ERRNOS = {
    "ENOSPC": "no space left on device",
    "EDQUOT": "disk quota exceeded",
    "EROFS": "read-only file system",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "ENOTDIR": "a path component is a file, not a folder",
    "EISDIR": "is a folder, expected a file",
    "EMFILE": "too many open files (raise `ulimit -n`)",
}


def environment_error(exc: BaseException) -> UserError | None:
    """The one-line UserError for an OSError the environment caused (full disk, read-only mount...), or None
    for any other exception (a bug keeps its traceback)."""
    import errno

    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    name = errno.errorcode.get(exc.errno)
    if name not in ENVIRONMENT_ERRNOS:
        return None
    what = ENVIRONMENT_ERRNOS[name]
    if not exc.filename:
        return UserError(f"{what} ({name})")
    # Name the output the user asked for, not the hidden temporary it was being written as (eat.io).
    path = re.sub(r"(^|/)\.([^/]+)\.[A-Za-z0-9_]{8}\.(?:tmp|old)(?=/|$)", r"\1\2", str(exc.filename))
    return UserError(f"{what} ({name})", path=path)
