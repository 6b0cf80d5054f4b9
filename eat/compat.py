"""Every use of another library's private internals, in one place, with the versions it was checked against.

A patch here fails loudly (a UserError or an AssertionError naming the symbol) when its target moves, and
`tests/core/test_compat.py` checks each symbol against the installed versions, so an upgrade that breaks one
shows up as a failing test rather than as a silent change of behaviour.
"""

from __future__ import annotations

# concurrent.futures.ProcessPoolExecutor._processes: CPython 3.10-3.13 (checked on 3.11).


def terminate_workers(executor) -> None:
    """Kill a ProcessPoolExecutor's workers at once (Ctrl-C, errors): `shutdown(cancel_futures=True)` only
    stops queued tasks, so a long running task would otherwise keep the interpreter waiting."""
    processes = getattr(executor, "_processes", None)
    if processes is None:
        return  # nothing started, or a Python that renamed it: shutdown() below still stops the pool
    for proc in list(processes.values()):
        proc.terminate()
