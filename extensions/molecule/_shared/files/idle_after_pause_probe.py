#!/usr/bin/env python3
"""Does Prosody still time out an idle connection after a rate-limit pause?

Opens a client connection, sends a stream header and then more bytes than mod_limits lets through at once (so
Prosody's epoll backend pauses reading the connection), then stays silent. A Prosody that restores the read
timeout after the pause acts on the silent connection once read_timeout has passed (a whitespace keepalive,
or it closes the connection); one with the defect fixed in Prosody 13.0.3 (changeset 334fb7adb0bc) never does.
Prints one JSON line: {"acted": bool, "after": seconds or null, "what": "data"|"closed"|null}.

usage: idle_after_pause_probe.py DOMAIN [--port 5222] [--burst BYTES] [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import socket
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("domain")
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--burst", type=int, default=64 * 1024)
    parser.add_argument("--wait", type=float, default=20.0)
    args = parser.parse_args()

    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    header = (
        f"<?xml version='1.0'?><stream:stream to='{args.domain}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    sock.sendall(header.encode())
    sock.setblocking(False)
    # Whitespace is allowed between stanzas; it all counts against the rate limit.
    chunk = b" " * 4096
    sent = 0
    deadline = time.monotonic() + 10
    while sent < args.burst and time.monotonic() < deadline:
        _, writable, _ = select.select([], [sock], [], 1)
        if writable:
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(chunk)
    # Drain what Prosody said so far (its stream header and features), then listen in silence.
    time.sleep(1)
    while True:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable or not sock.recv(65536):
            break
    start = time.monotonic()
    result = {"acted": False, "after": None, "what": None, "sent": sent}
    while time.monotonic() - start < args.wait:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            result.update(
                acted=True, after=round(time.monotonic() - start, 1), what="data" if data else "closed"
            )
            break
    sock.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
