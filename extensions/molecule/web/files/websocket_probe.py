#!/usr/bin/env python3
"""XMPP over websocket through nginx, with nothing but the standard library (test tool of the web scenario).

usage: websocket-probe DOMAIN [PATH]   connects to 127.0.0.1:443 with SNI DOMAIN, verifies the certificate
against the system trust store, upgrades PATH (default /xmpp-websocket?room=probe) with the xmpp
subprotocol, sends an RFC 7395 <open/> and prints one JSON line: the HTTP status line, the response
headers, and the first frame the server sent back.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import sys


def read_exact(sock: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def read_frame(sock: ssl.SSLSocket) -> str:
    head = read_exact(sock, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", read_exact(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", read_exact(sock, 8))[0]
    return read_exact(sock, length).decode()


def text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return header + mask + masked


def main(domain: str, path: str) -> int:
    context = ssl.create_default_context()
    raw = socket.create_connection(("127.0.0.1", 443), timeout=10)
    sock = context.wrap_socket(raw, server_hostname=domain)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += read_exact(sock, 1)
    lines = response.decode().split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _unused, v in (line.partition(":") for line in lines[1:] if line)
    }
    result = {"status": lines[0], "headers": headers, "frame": None}
    if " 101 " in lines[0]:
        sock.sendall(
            text_frame(f'<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="{domain}" version="1.0"/>')
        )
        result["frame"] = read_frame(sock)
    sock.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/xmpp-websocket?room=probe"))
