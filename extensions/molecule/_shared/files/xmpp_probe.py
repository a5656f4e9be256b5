#!/usr/bin/env python3
"""A real XMPP client for the Molecule verifiers, run inside a lab container against the real Prosody.

  Every command takes --host HOST (default 127.0.0.1) and --port PORT (default 5222) of the c2s listener.

  xmpp_probe.py login JID
      Log in over c2s TCP with STARTTLS (certificate checked against the system trust store) and SASL.
  xmpp_probe.py join JID ROOM [--websocket URL] [--nick NICK]
      Log in as JID (an account that may create rooms, e.g. the focus), create ROOM and stay in it, then
      join ROOM as an anonymous participant over XMPP-over-WebSocket (RFC 7395) and wait until both
      see each other.
  xmpp_probe.py muc JID ROOM [--nick NICK] [--hold SECONDS]
      Log in as JID over c2s TCP, join ROOM and report the occupants seen after HOLD seconds.
  xmpp_probe.py flood JID --bytes N
      Log in as JID and time how long the server takes to read N bytes of stanzas from it (mod_limits).

Passwords come from the environment variable XMPP_PASSWORD, never from the command line. Each command
prints one JSON object and exits 0 on success, 1 on failure. Everything is bounded by timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import socket
import ssl
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import slixmpp

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
MUC = "http://jabber.org/protocol/muc"
MUC_USER = "http://jabber.org/protocol/muc#user"
TIMEOUT = 30


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records what happened instead of raising."""

    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password)
        self.ssl_context = ssl.create_default_context()  # system trust store, hostname checked
        self.session = asyncio.get_event_loop().create_future()
        self.tls_problem: str | None = None
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("failed_auth", self._failed)
        self.add_event_handler("ssl_invalid_cert", self._bad_cert)
        self.add_event_handler("stream_error", self._stream_error)
        self.presences: list[ET.Element] = []
        self.add_event_handler("presence", lambda p: self.presences.append(p.xml))

    def _started(self, _event) -> None:
        if not self.session.done():
            self.session.set_result(True)

    def _failed(self, _event) -> None:
        if not self.session.done():
            self.session.set_exception(RuntimeError("authentication failed"))

    def _stream_error(self, error) -> None:
        if not self.session.done():
            self.session.set_exception(RuntimeError(f"stream error: {error['condition']}"))

    def _bad_cert(self, cert) -> None:
        self.tls_problem = "server certificate not trusted"
        if not self.session.done():
            self.session.set_exception(RuntimeError(self.tls_problem))


async def login(jid: str, port: int, host: str = "127.0.0.1") -> Client:
    client = Client(jid, os.environ["XMPP_PASSWORD"])
    # Resolve the configured host name here: slixmpp 1.8 given a name looks up the JID's domain instead.
    host = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    # STARTTLS on the c2s port, as Jicofo and the bridges use it; slixmpp 1.9+ would first try direct TLS.
    if hasattr(client, "enable_direct_tls"):
        client.enable_direct_tls = False
    # slixmpp 1.8 (Debian 12) takes an address tuple, 1.9 and later (Debian 13) host and port.
    if "host" in inspect.signature(client.connect).parameters:
        client.connect(host=host, port=port)
    else:
        client.connect((host, port))
    await asyncio.wait_for(client.session, TIMEOUT)
    return client


def muc_presence(to: str) -> str:
    return f"<presence to='{to}'><x xmlns='{MUC}'/></presence>"


async def wait_for(predicate, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        await asyncio.sleep(0.05)


async def websocket_participant(url: str, domain: str, room: str, nick: str, expect: str) -> dict:
    """Join ROOM anonymously over XMPP-over-WebSocket and wait for our own and EXPECT's presence."""
    import websockets  # noqa: PLC0415  (only this command needs it)

    async with websockets.connect(url, subprotocols=["xmpp"], open_timeout=TIMEOUT) as ws:

        async def receive() -> ET.Element:
            return ET.fromstring(await asyncio.wait_for(ws.recv(), TIMEOUT))

        async def receive_until(tag: str) -> ET.Element:
            while True:
                element = await receive()
                if element.tag.endswith(tag):
                    return element

        async def open_stream() -> ET.Element:
            await ws.send(f"<open xmlns='{FRAMING}' to='{domain}' version='1.0'/>")
            await receive_until("}open")
            return await receive_until("features")

        features = await open_stream()
        mechanisms = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
        if "ANONYMOUS" not in mechanisms:
            raise RuntimeError(f"no SASL ANONYMOUS on {domain}: {mechanisms}")
        await ws.send(f"<auth xmlns='{SASL}' mechanism='ANONYMOUS'/>")
        outcome = await receive()
        if not outcome.tag.endswith("success"):
            raise RuntimeError(f"anonymous login refused: {ET.tostring(outcome, encoding='unicode')}")
        await open_stream()
        await ws.send(f"<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='{BIND}'/></iq>")
        bound = await receive_until("iq")
        jid = bound.findtext(f".//{{{BIND}}}jid")
        await ws.send(f"<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='{MUC}'/></presence>")
        seen: set[str] = set()
        self_confirmed = False
        while not (self_confirmed and expect in seen):
            element = await receive()
            if not element.tag.endswith("presence"):
                continue
            sender = element.get("from", "")
            if element.get("type") == "error":
                raise RuntimeError(f"join refused: {ET.tostring(element, encoding='unicode')}")
            seen.add(sender.rsplit("/", 1)[-1])
            codes = {s.get("code") for s in element.iter(f"{{{MUC_USER}}}status")}
            if sender == f"{room}/{nick}" and "110" in codes:
                self_confirmed = True
        await ws.send(f"<close xmlns='{FRAMING}'/>")
        return {"jid": jid, "occupants_seen": sorted(seen)}


async def cmd_login(args) -> dict:
    client = await login(args.jid, args.port, args.host)
    client.disconnect()
    return {"jid": str(client.boundjid)}


async def cmd_join(args) -> dict:
    owner = await login(args.jid, args.port, args.host)
    room = args.room
    owner.send_raw(muc_presence(f"{room}/{owner.boundjid.user}"))
    await wait_for(lambda: any(p.get("from") == f"{room}/{owner.boundjid.user}" for p in owner.presences))
    domain = room.split("@", 1)[1].split(".", 1)[1]
    participant = await websocket_participant(args.websocket, domain, room, args.nick, owner.boundjid.user)
    owner.disconnect()
    return {"owner": str(owner.boundjid), "participant": participant}


async def cmd_muc(args) -> dict:
    client = await login(args.jid, args.port, args.host)
    nick = args.nick or client.boundjid.resource
    client.send_raw(muc_presence(f"{args.room}/{nick}"))
    await wait_for(lambda: any(p.get("from") == f"{args.room}/{nick}" for p in client.presences))
    await asyncio.sleep(args.hold)
    seen = sorted(
        {
            p.get("from", "").split("/", 1)[1]
            for p in client.presences
            if p.get("from", "").startswith(args.room + "/") and p.get("type") != "unavailable"
        }
    )
    client.disconnect()
    return {"jid": str(client.boundjid), "room": args.room, "nick": nick, "occupants_seen": seen}


async def cmd_flood(args) -> dict:
    client = await login(args.jid, args.port, args.host)
    chunk = 50_000
    body = "x" * chunk
    start = time.monotonic()
    for _unused in range(max(1, args.bytes // chunk)):
        client.send_raw(f"<message to='{client.boundjid.full}' type='chat'><body>{body}</body></message>")
    ping = client.make_iq_get(ito=client.boundjid.domain)
    ping.append(ET.Element("{urn:xmpp:ping}ping"))
    await ping.send(timeout=120)
    elapsed = time.monotonic() - start
    client.disconnect()
    return {"jid": str(client.boundjid), "bytes": args.bytes, "seconds": round(elapsed, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("login", "join", "muc", "flood"):
        p = sub.add_parser(name)
        p.add_argument("jid")
        p.add_argument("--port", type=int, default=5222)
        p.add_argument("--host", default="127.0.0.1")
    sub.choices["join"].add_argument("room")
    sub.choices["join"].add_argument("--websocket", default="ws://127.0.0.1:5280/xmpp-websocket")
    sub.choices["join"].add_argument("--nick", default="participant-" + uuid.uuid4().hex[:6])
    sub.choices["muc"].add_argument("room")
    sub.choices["muc"].add_argument("--nick")
    sub.choices["muc"].add_argument("--hold", type=float, default=1.0)
    sub.choices["flood"].add_argument("--bytes", type=int, default=2_000_000)
    args = parser.parse_args()
    command = {"login": cmd_login, "join": cmd_join, "muc": cmd_muc, "flood": cmd_flood}[args.command]
    try:
        result = asyncio.run(asyncio.wait_for(command(args), 180))
    except Exception as exc:  # report any failure as data for the test to show
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
