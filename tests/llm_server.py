"""A small OpenAI-compatible chat completions server on 127.0.0.1 for the drafting tests.

Real HTTP on a free loopback port: ``POST /v1/chat/completions`` answers from a script, one entry
per request (the last entry repeats): a :class:`Reply` with text (streamed as server-sent events
when the request asks for a stream), an HTTP status, a delay longer than the client waits, or a
malformed event stream. Every request body is kept for the test to inspect (what was sent).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Iterator

MODEL = "scripted-model-1"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``text`` to stream, or ``status`` (e.g. 500), ``delay_s`` before answering,
    or ``malformed`` (an event stream whose events are not JSON)."""

    text: str = ""
    status: int = 200
    delay_s: float = 0.0
    malformed: bool = False
    chunk_chars: int = 24


class ScriptedServer:
    def __init__(self, script: list[Reply]) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "body": body,
                                        "authorization": self.headers.get("Authorization")})
                reply = server.script[min(len(server.requests) - 1, len(server.script) - 1)]
                deadline = time.monotonic() + reply.delay_s
                while time.monotonic() < deadline and not server.stopping.is_set():
                    time.sleep(0.02)
                if server.stopping.is_set():
                    return
                if reply.status != 200:
                    payload = json.dumps({"error": {"message": "scripted failure", "type": "server_error"}}).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if not body.get("stream"):
                    payload = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": MODEL,
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant", "content": reply.text}}]}
                                         ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                if reply.malformed:
                    self.wfile.write(b"data: {\"id\": \"c1\", \"choices\": [{\"delta\": {\"content\": \"## Sum\n\n")
                    self.wfile.write(b"data: this is not json at all\n\n")
                    self.wfile.flush()
                    return
                pieces = [reply.text[i:i + reply.chunk_chars] for i in range(0, len(reply.text), reply.chunk_chars)]
                for piece in pieces:
                    event = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                done = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def sent_text(self) -> str:
        """Every message content of every request, joined (what left the app)."""
        return "\n".join(m.get("content", "") for r in self.requests for m in r["body"].get("messages", []))


@contextmanager
def scripted_server(*script: Reply) -> Iterator[ScriptedServer]:
    """Start the server with ``script``; stopped (and its threads released) on exit."""
    server = ScriptedServer(list(script))
    server.thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
