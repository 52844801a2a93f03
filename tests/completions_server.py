"""An OpenAI-compatible ``/v1/completions`` server on 127.0.0.1 that generates with transformers.

What ``vllm serve BASE --enable-lora --lora-modules NAME=ADAPTER`` offers, on the tiny models:
``GET /v1/models`` lists the served names, ``POST /v1/completions`` takes token-id prompts (as
lm-eval sends them), ``max_tokens``, ``stop`` and greedy decoding, and answers one choice per
prompt. A served name maps to a model and whether its LoRA adapter is on. ``fail_after`` makes
every completion after the first N answer HTTP 500, as a server that falls over midway.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Served:
    model: Any  # a transformers causal LM, or a PeftModel
    tokenizer: Any
    adapter_on: bool = True


class CompletionsServer:
    def __init__(self, served: dict[str, Served], fail_after: int | None = None):
        self.served = served
        self.fail_after = fail_after
        self.completions = 0  # prompts answered with 200
        self.refused = 0
        self._lock = threading.Lock()  # one generation at a time: the models are not thread-safe

    def __enter__(self) -> CompletionsServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.rstrip("/") != "/v1/models":
                    return self._send(404, {"error": {"message": "not found"}})
                self._send(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in server.served]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.rstrip("/") != "/v1/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                if body.get("model") not in server.served:
                    return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                status, payload = server.complete(body)
                self._send(status, payload)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()

    def complete(self, body: dict) -> tuple[int, dict]:
        prompts = body["prompt"]
        if prompts and isinstance(prompts[0], int):
            prompts = [prompts]
        with self._lock:
            if self.fail_after is not None and self.completions >= self.fail_after:
                self.refused += 1
                return 500, {"error": {"message": "the engine died"}}
            served = self.served[body["model"]]
            answers = [
                self._generate(served, ids, int(body.get("max_tokens", 16)), body.get("stop") or []) for ids in prompts
            ]
            self.completions += len(answers)
        choices = [{"index": i, "text": text, "finish_reason": reason} for i, (text, reason) in enumerate(answers)]
        return 200, {"object": "text_completion", "model": body["model"], "choices": choices}

    @staticmethod
    def _generate(served: Served, ids: list[int], max_tokens: int, stop: list[str]) -> tuple[str, str]:
        """The completion and its finish_reason as vLLM reports it: "length" when the cap stopped it."""
        import contextlib

        import torch

        off = served.model.disable_adapter() if not served.adapter_on else contextlib.nullcontext()
        with off, torch.no_grad():
            inputs = torch.tensor([ids])
            output = served.model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=served.tokenizer.pad_token_id or served.tokenizer.eos_token_id,
            )
        generated = output[0, len(ids) :].tolist()
        text = served.tokenizer.decode(generated, skip_special_tokens=True)
        ended = served.tokenizer.eos_token_id in generated or served.tokenizer.pad_token_id in generated
        stopped = False
        for sequence in stop:
            if sequence and sequence in text:
                text, stopped = text.split(sequence)[0], True
        return text, "length" if len(generated) >= max_tokens and not ended and not stopped else "stop"
