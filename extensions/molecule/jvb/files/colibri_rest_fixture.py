"""A test fixture, not the videobridge: it answers the four REST calls meetops-jvb-control makes, as
Jitsi's sources define them (jitsi-videobridge, rest/root/colibri/drain/Drain.java, shutdown/Shutdown.java,
stats/Stats.java and shutdown/ShutdownManager.kt), so the tests can run the role's unit stop and drain
commands against a process that really listens on an instance's REST port, and read its /metrics through
the collection's metrics gateway.

    colibri_rest_fixture.py --port PORT [--participants N] [--leave-every SECONDS] [--shutting-down-delay S]

- GET /colibri/drain -> {"drain": bool}; POST /colibri/drain/enable|disable -> 200.
- GET /colibri/stats -> participants, octo_endpoints (always 0), drain, graceful_shutdown, shutting_down.
- GET /metrics -> text/plain: meetops_test_fixture_participants N (a fixture's own series, not the bridge's).
- POST /colibri/shutdown {"graceful-shutdown": bool} (required, else 400). Graceful: the participants leave
  one per --leave-every seconds; at none the fixture waits --shutting-down-delay and exits 0. Not graceful:
  it exits after the delay at once.
Every request is printed (method, path, body) to stdout, which the tests read from the journal.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, participants: int, leave_every: float, delay: float) -> None:
        self.lock = threading.Lock()
        self.participants = participants
        self.leave_every = leave_every
        self.delay = delay
        self.drain = False
        self.graceful_shutdown = False
        self.shutting_down = False

    def stats(self) -> dict:
        with self.lock:
            return {
                "participants": self.participants,
                "octo_endpoints": 0,
                "conferences": 1 if self.participants else 0,
                "drain": self.drain,
                "graceful_shutdown": self.graceful_shutdown,
                "shutting_down": self.shutting_down,
            }

    def shut_down(self, graceful: bool) -> None:
        with self.lock:
            if self.graceful_shutdown or self.shutting_down:
                return
            self.graceful_shutdown = graceful
        threading.Thread(target=self._leave_then_exit, args=(graceful,), daemon=True).start()

    def _leave_then_exit(self, graceful: bool) -> None:
        while graceful:
            with self.lock:
                if self.participants <= 0:
                    break
            time.sleep(self.leave_every)
            with self.lock:
                self.participants -= 1
        with self.lock:
            self.shutting_down = True
        print("fixture: shutting down", flush=True)
        time.sleep(self.delay)
        print("fixture: exit", flush=True)
        os._exit(0)


def handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict | None = None) -> None:
            raw = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            print(f"fixture: GET {self.path}", flush=True)
            if self.path == "/colibri/drain":
                self._answer(200, {"drain": state.stats()["drain"]})
            elif self.path == "/colibri/stats":
                self._answer(200, state.stats())
            elif self.path == "/metrics":
                raw = f"meetops_test_fixture_participants {state.stats()['participants']}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            else:
                self._answer(404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            print(f"fixture: POST {self.path} {body}", flush=True)
            if self.path in ("/colibri/drain/enable", "/colibri/drain/disable"):
                with state.lock:
                    state.drain = self.path.endswith("enable")
                self._answer(200)
            elif self.path == "/colibri/shutdown":
                try:
                    graceful = json.loads(body)["graceful-shutdown"]
                except (ValueError, KeyError, TypeError):
                    self._answer(400)
                    return
                state.shut_down(bool(graceful))
                self._answer(200)
            else:
                self._answer(404)

        def log_message(self, *_args: object) -> None:
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--participants", type=int, default=0)
    parser.add_argument("--leave-every", type=float, default=1.0)
    parser.add_argument("--shutting-down-delay", type=float, default=1.0)
    args = parser.parse_args()
    state = State(args.participants, args.leave_every, args.shutting_down_delay)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(state))
    print(f"fixture: listening on 127.0.0.1:{args.port} with {args.participants} participant(s)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
