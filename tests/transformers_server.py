"""A real ``transformers serve`` (transformers' own OpenAI-compatible server) on 127.0.0.1.

Started as its own process on a free port, pinned to one local model folder (which is then
its only served name, spelled as given), offline, in fp32 on the CPU; ready once ``/health``
answers, within a bounded wait; killed when the block ends. Its output goes to a log file
whose tail is shown if it never becomes ready.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

READY_WITHIN = 90.0  # seconds: importing torch, transformers and FastAPI on 2 loaded cores


def serving_missing() -> str | None:
    """Why ``transformers serve`` cannot run here, or None."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        return 'transformers serve needs its extra: pip install "transformers[serving]" (the test extra has it)'
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TransformersServer:
    def __init__(self, model: Path | str, log: Path):
        self.model = str(model)
        self.log = log

    def __enter__(self) -> TransformersServer:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        argv = [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"exited with code {self._process.returncode}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self._fail(f"not ready within {READY_WITHIN:g} s")
        raise AssertionError("unreachable")

    def completions(self) -> int:
        """``POST /v1/completions`` requests the server has logged (uvicorn's access lines)."""
        return self.log.read_text(encoding="utf-8", errors="replace").count('"POST /v1/completions ')

    def _fail(self, why: str) -> None:
        self.__exit__()
        tail = self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"transformers serve {why}; its log ends:\n{tail}")

    def __exit__(self, *exc) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
