"""A local stand-in for the few Canvas REST endpoints canvasapi calls to grade an assignment,
served from a thread on 127.0.0.1: tests never reach the network."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "test-token"
COURSE = 7
ASSIGNMENT = 4455


@dataclass
class FakeCanvas:
    """Canvas's scores by user id (None: not graded yet), and the grade updates posted."""

    scores: dict[int, float | None]
    url: str = ""
    posted: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def fake_canvas(scores: dict[int, float | None]) -> Iterator[FakeCanvas]:
    canvas = FakeCanvas(dict(scores))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(canvas))
    canvas.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield canvas
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _handler(canvas: FakeCanvas) -> type[BaseHTTPRequestHandler]:
    base = f"/api/v1/courses/{COURSE}"
    assignment = f"{base}/assignments/{ASSIGNMENT}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == base:
                self._answer({"id": COURSE, "name": "Deep learning"})
            elif path == assignment:
                body = {"id": ASSIGNMENT, "course_id": COURSE, "name": "Homework 2"}
                self._answer(body)
            elif path == f"{assignment}/submissions":
                self._answer(
                    [
                        {"id": user, "user_id": user, "assignment_id": ASSIGNMENT, "score": s}
                        for user, s in canvas.scores.items()
                    ]
                )
            else:
                self._answer({"errors": [{"message": "not found"}]}, 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if urlsplit(self.path).path != f"{assignment}/submissions/update_grades":
                self._answer({"errors": [{"message": "not found"}]}, 404)
                return
            canvas.posted.append(form)
            progress = {
                "id": 1,
                "workflow_state": "queued",
                "url": f"{canvas.url}/api/v1/progress/1",
            }
            self._answer(progress)

        def _answer(self, body: Any, status: int = 200) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, body = 401, {"errors": [{"message": "Invalid access token."}]}
            data = json.dumps(body).encode()
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="canvas-lms"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # quiet: the tests read what was posted
            pass

    return Handler
