#!/usr/bin/env python3
"""Does Prosody still time out an idle connection after a rate-limit pause?

Opens a client connection and sends a stream header, waits for Prosody's answer, then sends BURST bytes of
whitespace in one write (Prosody reads up to 8192 bytes at a time, so a smaller burst is one read) and stays
silent. With mod_limits, Prosody's epoll backend pauses a connection after each read that costs more than its
min_wait (1 ms) at the configured rate: at 1mb/s the header (about 200 bytes) costs 0.2 ms and is not paused,
a 4000-byte burst costs 4 ms and is. A Prosody that restores the read timeout after the pause acts on the
silent connection once read_timeout has passed (a whitespace keepalive, or it closes the connection); one with
the defect fixed in Prosody 13.0.3 (changeset 334fb7adb0bc) never does after a pause.
Prints one JSON line: {"acted": bool, "after": seconds or null, "what": "data"|"closed"|null, "sent": bytes}.

usage: idle_after_pause_probe.py DOMAIN [--port 5222] [--burst BYTES] [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import time


def drain(sock: socket.socket, seconds: float) -> bool:
    """Read what Prosody says for `seconds`; False when it closed the connection."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        readable, _unused, _unused = select.select([sock], [], [], 0.1)
        if readable and not sock.recv(65536):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("domain")
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--burst", type=int, default=4000)
    parser.add_argument("--wait", type=float, default=20.0)
    args = parser.parse_args()

    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    header = (
        f"<?xml version='1.0'?><stream:stream to='{args.domain}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    sock.sendall(header.encode())
    result = {"acted": False, "after": None, "what": None, "sent": 0}
    # The header is read on its own; then the burst, in one write (whitespace is allowed between stanzas).
    if drain(sock, 1.0) and args.burst:
        sock.sendall(b" " * args.burst)
        result["sent"] = args.burst
    if not drain(sock, 1.0):
        result.update(acted=True, after=0.0, what="closed")
    start = time.monotonic()
    while not result["acted"] and time.monotonic() - start < args.wait:
        readable, _unused, _unused = select.select([sock], [], [], 0.5)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            result.update(
                acted=True, after=round(time.monotonic() - start, 1), what="data" if data else "closed"
            )
    sock.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
