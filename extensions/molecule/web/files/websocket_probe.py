#!/usr/bin/env python3
"""XMPP over websocket through nginx, with nothing but the standard library (test tool of the web scenario).

usage: websocket-probe DOMAIN [PATH] [--services]   connects to 127.0.0.1:443 with SNI DOMAIN and ALPN
http/1.1 (as a browser does), verifies the certificate against the system trust store, upgrades PATH
(default /xmpp-websocket?room=probe) with the xmpp subprotocol, sends an RFC 7395 <open/> and prints one
JSON line: the HTTP status line, the response headers, and the first frame the server sent back.

With --services it goes on as Jitsi Meet does: SASL ANONYMOUS, resource binding, then an XEP-0215 request
for the external services (STUN and TURN with credentials), printed as "services" (one dict of attributes
per <service/>, as the server sent them) with the client's clock as "now".
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import sys
import time
import xml.etree.ElementTree as ET


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


def read_until(sock: ssl.SSLSocket, tag: str) -> ET.Element:
    """Read frames until one whose root element's local name is tag; fail on a stream or SASL error."""
    while True:
        element = ET.fromstring(read_frame(sock))
        local = element.tag.rpartition("}")[2]
        if local in {"failure", "close", "error"} and local != tag:
            raise ConnectionError(f"server sent {ET.tostring(element).decode()}")
        if local == tag:
            return element


def external_services(sock: ssl.SSLSocket, domain: str) -> list[dict[str, str]]:
    """Log in anonymously and ask the server for its external services (XEP-0215)."""
    open_frame = f'<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="{domain}" version="1.0"/>'
    read_until(sock, "features")
    sock.sendall(text_frame('<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="ANONYMOUS"/>'))
    read_until(sock, "success")
    sock.sendall(text_frame(open_frame))
    read_until(sock, "open")
    read_until(sock, "features")
    bind = '<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/>'
    sock.sendall(text_frame(f'<iq type="set" id="bind" xmlns="jabber:client">{bind}</iq>'))
    read_until(sock, "iq")
    sock.sendall(
        text_frame(
            f'<iq type="get" id="services" to="{domain}" xmlns="jabber:client">'
            '<services xmlns="urn:xmpp:extdisco:2"/></iq>'
        )
    )
    reply = read_until(sock, "iq")
    if reply.get("type") != "result":
        raise ConnectionError(f"external services refused: {ET.tostring(reply).decode()}")
    return [dict(service.attrib) for service in reply.iter("{urn:xmpp:extdisco:2}service")]


def main(domain: str, path: str, services: bool = False) -> int:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
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
        if services:
            result["services"] = external_services(sock, domain)
            result["now"] = int(time.time())
    sock.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if argument != "--services"]
    sys.exit(
        main(
            arguments[0],
            arguments[1] if len(arguments) > 1 else "/xmpp-websocket?room=probe",
            services="--services" in sys.argv[1:],
        )
    )
