"""A small OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1, for tests, the benchmark and demos.

It is a real HTTP server (standard library, one thread per connection, HTTP/1.1 keep-alive),
so the judge's client, retries and timeouts are exercised end to end. What it answers is a
*policy*: a function of the request body and the call's index that returns a :class:`Reply`.
The built-in policies read the two candidates out of this project's templates
(``<candidate_1>...</candidate_1>``).

>>> with StubJudgeServer(prefer_longer) as server:   # doctest: +SKIP
...     server.url                                   # 'http://127.0.0.1:PORT/v1'
...     server.answered                              # calls answered with 200

From a shell: ``python tests/stub_server.py --policy longer --latency 0.1``
prints the base URL and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_CANDIDATE = re.compile(r"<candidate_(\d)>\n(.*?)\n</candidate_\1>", re.DOTALL)


@dataclass
class Reply:
    status: int = 200
    content: str = ""  # the assistant's message (200) or the error message (otherwise)
    headers: dict[str, str] = field(default_factory=dict)


Policy = Callable[[dict, int], Reply]


def candidates(body: dict) -> tuple[str, str]:
    """The texts shown as candidate 1 and 2 in a request built from this project's templates."""
    for message in body.get("messages", []):
        found = dict(_CANDIDATE.findall(str(message.get("content", ""))))
        if "1" in found and "2" in found:
            return found["1"], found["2"]
    raise ValueError("no <candidate_1>/<candidate_2> in the request")


def verdict_json(verdict: str, reason: str = "stub") -> str:
    return json.dumps({"verdict": verdict, "reason": reason})


def prefer_first(body: dict, index: int) -> Reply:
    """A judge with pure position bias: always the candidate shown first."""
    return Reply(content=verdict_json("first", "shown first"))


def prefer_longer(body: dict, index: int) -> Reply:
    """The longer candidate wins (by characters); equal lengths tie. Position-free."""
    first, second = candidates(body)
    verdict = "first" if len(first) > len(second) else "second" if len(second) > len(first) else "tie"
    return Reply(content=verdict_json(verdict, "longer"))


POLICIES: dict[str, Policy] = {"first": prefer_first, "longer": prefer_longer}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # held keep-alive connections must not block stop()
    request_queue_size = 128  # the default backlog of 5 resets a burst of concurrent connects

    def handle_error(self, request, client_address):
        # A client that was killed or timed out mid-call is part of what the tests do.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StubJudgeServer:
    """Serve ``policy`` on 127.0.0.1 (a free port) after ``latency`` seconds per call.

    Counters (thread-safe): ``received`` requests, ``answered`` with 200, ``failed`` otherwise,
    ``max_in_flight`` (the most requests being handled at once).
    ``answer_limit``: requests after the first ``answer_limit`` are held, unanswered, until
    :meth:`release` or :meth:`stop`, and then dropped (``abandoned``), never answered: a client
    can be killed at a known point, and ``answered`` counts exactly the calls it got replies
    to. ``auth_headers``, ``bodies`` and ``times`` keep what clients sent, for checks.
    """

    def __init__(self, policy: Policy = prefer_longer, latency: float = 0.0, answer_limit: int | None = None):
        self.policy, self.latency, self.answer_limit = policy, latency, answer_limit
        self.received = self.answered = self.failed = self.abandoned = 0
        self.auth_headers: list[str] = []
        self.bodies: list[dict] = []
        self.times: list[float] = []  # time.monotonic() of each request's arrival
        self.in_flight = self.max_in_flight = self._held = 0
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def waiting(self) -> int:
        """Requests being held back by ``answer_limit`` now."""
        with self._lock:
            return self._held

    def start(self) -> StubJudgeServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints and the client expect
            # Without this, Nagle's algorithm meets the client's delayed ACK and adds ~40 ms to
            # every call: a stall real servers do not have, which would swamp the benchmark.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # tests and benchmarks read stdout/stderr
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(Reply(404, f"no route {self.path}"), {})
                body = json.loads(raw or b"{}")
                server._respond(self, body)

            def _send(self, reply: Reply, body: dict):
                if reply.status == 200:
                    payload = {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "stub"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply.content},
                            }
                        ],
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    }
                else:
                    payload = {"error": {"message": reply.content, "type": "stub_error", "code": reply.status}}
                data = json.dumps(payload).encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _respond(self, handler, body: dict) -> None:
        with self._lock:
            index = self.received
            self.received += 1
            self.auth_headers.append(handler.headers.get("Authorization", ""))
            self.bodies.append(body)
            self.times.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            held = self.answer_limit is not None and index >= self.answer_limit
            self._held += held
        try:
            if held:
                self._gate.wait()
                # Its client was stopped or killed meanwhile: drop it, unanswered and uncounted.
                with self._lock:
                    self._held -= 1
                    self.abandoned += 1
                handler.close_connection = True
                return
            if self.latency:
                time.sleep(self.latency)
            reply = self.policy(body, index)
            with self._lock:
                if reply.status == 200:
                    self.answered += 1
                else:
                    self.failed += 1
        finally:
            with self._lock:
                self.in_flight -= 1
        handler._send(reply, body)  # outside the try: a held request returned above

    def release(self) -> None:
        """Drop the held requests, and answer every later one."""
        self.answer_limit = None
        self._gate.set()

    def stop(self) -> None:
        self._gate.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> StubJudgeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=sorted(POLICIES), default="longer")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    with StubJudgeServer(POLICIES[args.policy], latency=args.latency) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
        counts = {"received": server.received, "answered": server.answered, "max_in_flight": server.max_in_flight}
        print(json.dumps(counts | {"cpu_s": round(time.process_time(), 3)}), flush=True)


if __name__ == "__main__":
    main()
