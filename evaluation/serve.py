"""`eat eval --serve vllm`: start `vllm serve` for the run, evaluate through the openai backend, stop it.

The server runs as a subprocess on 127.0.0.1 at a free port, in a session of its own (vLLM starts engine
processes of its own: the whole group is stopped, SIGTERM then SIGKILL, also on errors and Ctrl-C, which
reaches only `eat` since the server is not in the terminal's process group). Its output goes to a log file
(RUN/vllm-serve.log); if it exits before it is ready, or is not ready in time, the error quotes its last lines.

What it is asked to do:
- `--served-model-name`: --served-model-name if given, else --model; the LoRA adapter, if any, is served with
  `--enable-lora --lora-modules NAME=ADAPTER` (NAME: --adapter-name, else `adapter`) and `--max-lora-rank` large
  enough for the adapter's rank, and the stages of --adapter-stages ask for it by that name;
- `--generation-config vllm`: vLLM's neutral sampling defaults rather than the model's generation_config.json
  (which for Qwen2.5 adds repetition_penalty 1.05 even to greedy requests): the eval's --decoding decides;
- `--seed`, and `--dtype` / `--trust-remote-code` when they are set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from eat.errors import UserError

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 1200.0  # a large model's download, load and CUDA graph capture can take many minutes
STOP_TIMEOUT_S = 30.0
TAIL_LINES = 20
ADAPTER_NAME = "adapter"
# vLLM accepts only these values of --max-lora-rank (its default is 16).
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it; another process could take it before vLLM binds, in
    which case vLLM exits and the error says so)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def adapter_rank(adapter: str) -> int | None:
    """The largest LoRA rank in ADAPTER/adapter_config.json (`r` and any `rank_pattern`), None if unreadable."""
    try:
        config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
        ranks = [int(config.get("r") or 0), *(int(v) for v in (config.get("rank_pattern") or {}).values())]
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return max(ranks) or None


def served_names(cfg) -> tuple[str, str | None]:
    """(name of the base model, name of the adapter or None) as the server serves them."""
    adapter_name = (cfg.adapter_name or ADAPTER_NAME) if cfg.adapter else None
    return cfg.served_model_name or cfg.model, adapter_name


def serve_command(cfg, port: int, executable: str = "vllm", host: str = "127.0.0.1") -> list[str]:
    """The `vllm serve` command line for an eval config (see the module docstring)."""
    model_name, adapter_name = served_names(cfg)
    cmd = [executable, "serve", cfg.model, "--host", host, "--port", str(port)]
    cmd += ["--served-model-name", model_name, "--seed", str(cfg.seed), "--generation-config", "vllm"]
    if cfg.dtype != "auto":  # float32, bfloat16, float16: vLLM's names too
        cmd += ["--dtype", cfg.dtype]
    if cfg.trust_remote_code:
        cmd.append("--trust-remote-code")
    if cfg.adapter:
        cmd += ["--enable-lora", "--lora-modules", f"{adapter_name}={cfg.adapter}"]
        rank = adapter_rank(cfg.adapter)
        if rank is not None and rank > 16:
            fits = [r for r in LORA_RANKS if r >= rank]
            if not fits:
                raise UserError(
                    f"adapter rank {rank} is above the largest rank vLLM serves ({LORA_RANKS[-1]})"
                )
            cmd += ["--max-lora-rank", str(fits[0])]
    return cmd


def _tail(path: Path, n: int = TAIL_LINES) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    lines = [line for line in lines if line.strip()][-n:]
    return "\n".join("  " + line for line in lines) if lines else "  (the log is empty)"


class Server:
    """One `vllm serve` subprocess: `start`, `wait_ready`, `stop` (idempotent)."""

    def __init__(self, cmd: list[str], base_url: str, model_name: str, log_path: Path) -> None:
        self.cmd = cmd
        self.base_url = base_url
        self.model_name = model_name
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as logfile:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: Ctrl-C reaches eat only; stop() ends the group
            )
        log.info(
            "started %s (pid %d); waiting for it to serve %s at %s (its log: %s)",
            " ".join(self.cmd[:3]), self.proc.pid, self.model_name, self.base_url, self.log_path,
        )  # fmt: skip
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S, poll_s: float = 0.5) -> None:
        """Return once GET /v1/models lists the model; UserError (with the log's last lines) if the server
        exits first or is not ready within `timeout_s`."""
        import httpx

        assert self.proc is not None
        t0 = last_note = time.monotonic()
        while True:
            code = self.proc.poll()
            if code is not None:
                raise UserError(
                    f"`{' '.join(self.cmd[:3])}` exited with code {code} before it was ready; the last lines of "
                    f"{self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                reply = httpx.get(f"{self.base_url}/models", timeout=5.0)
                if reply.status_code == 200 and any(
                    m.get("id") == self.model_name for m in reply.json().get("data", [])
                ):
                    log.info("%s ready after %.0f s", self.cmd[0], time.monotonic() - t0)
                    return
            except (httpx.HTTPError, ValueError, AttributeError):
                pass  # not listening yet, or not answering JSON yet
            now = time.monotonic()
            if now - t0 > timeout_s:
                raise UserError(
                    f"`{' '.join(self.cmd[:3])}` was not serving {self.model_name} at {self.base_url} after "
                    f"{timeout_s:.0f} s; the last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            if now - last_note >= 60:
                log.info("still waiting for %s to load (%.0f s so far)", self.cmd[0], now - t0)
                last_note = now
            time.sleep(poll_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM to the server's process group, SIGKILL after `timeout_s`."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)  # the group's id is the server's pid (start_new_session)
            try:
                proc.wait(timeout=timeout_s)
                break
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s of SIGTERM; killing it", self.cmd[0], timeout_s)
        # Children that outlived the server (engine processes) are in the same group: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def find_vllm(executable: str = "vllm") -> str:
    """The path of the `vllm` command, else a one-line UserError."""
    found = shutil.which(executable)
    if found is None:
        raise UserError(
            f"--serve vllm: no `{executable}` command on PATH; install vLLM on a CUDA machine (pip install "
            "'eat-ner[vllm]'), or start a server yourself and pass --backend openai --base-url URL"
        )
    return found


@contextlib.contextmanager
def vllm_backend(
    cfg, log_path: str | Path, ready_timeout_s: float = READY_TIMEOUT_S, executable: str = "vllm"
) -> Iterator:
    """Serve cfg.model (and cfg.adapter) with `vllm serve` for the block; yield the openai backend that talks
    to it. The backend is closed and the server stopped when the block ends, however it ends."""
    from evaluation.backends import make_backend

    found = find_vllm(executable)
    host, port = "127.0.0.1", free_port()
    model_name, adapter_name = served_names(cfg)
    base_url = f"http://{host}:{port}/v1"
    server = Server(serve_command(cfg, port, found, host), base_url, model_name, Path(log_path))
    try:
        server.start()
        server.wait_ready(ready_timeout_s)
        backend = make_backend(
            cfg.model_copy(
                update={
                    "backend": "openai",
                    "base_url": base_url,
                    "served_model_name": model_name,
                    "adapter_name": adapter_name,
                }
            )
        )
        try:
            yield backend
        finally:
            backend.close()
    finally:
        server.stop()
