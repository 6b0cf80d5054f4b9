"""The one exception type for mistakes the user can fix (bad file, bad key, missing model).

The CLI prints its message as one line and exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """An error caused by input the user controls; the message must say what to fix."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + " ".join(str(message).split("\n")))
