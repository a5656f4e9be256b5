#!/usr/bin/env python3
"""The room holder of the join-storm benchmark: one XMPP client that is in the room before the storm.

It plays the part Jicofo plays in Jitsi Meet: it creates the conference room (as an instant room, so that
Prosody's room locking does not keep the others out) and stays in it while the Tsung participants join
and leave. It also watches the room: from the presences it receives it records when each participant
arrived and left, the peak number of participants, and when the room first held all of them. Those
timestamps let the harness split Prosody's CPU time into the join storm and the rest of the run.

Standard library only (it runs in the client container with Debian's python3). Life cycle:
  connect, STARTTLS if the server requires it, SASL PLAIN (--user/--password) or ANONYMOUS, bind, join,
  write --ready-file, watch until --stop-file exists or --max-seconds pass, leave, write --out (JSON).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import socket
import ssl
import sys
import time
import uuid
import xml.etree.ElementTree as ET

NS_STREAM = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"


class XmppError(Exception):
    pass


class Stream:
    """A minimal client-to-server XMPP stream over a blocking socket, with a pull parser per stream."""

    def __init__(self, host: str, port: int, domain: str, timeout: float) -> None:
        self.domain = domain
        self.timeout = timeout
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection((host, port), timeout=timeout)
        self.pending: list[ET.Element] = []
        self.features = self.restart()

    def restart(self) -> ET.Element:
        """(Re)open the stream; return its features."""
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.pending = []
        self.send(
            f"<?xml version='1.0'?><stream:stream to='{self.domain}' version='1.0' "
            f"xmlns='jabber:client' xmlns:stream='{NS_STREAM}'>"
        )
        return self.expect(f"{{{NS_STREAM}}}features")

    def send(self, data: str) -> None:
        self.sock.sendall(data.encode())

    def feed(self, wait: float) -> bool:
        """Read what arrives within `wait` seconds into the parser; False when the peer closed."""
        ready, _unused, _unused = select.select([self.sock], [], [], wait)
        if not ready and not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return True
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            return True
        if not data:
            return False
        self.parser.feed(data)
        for event, elem in self.parser.read_events():
            if event == "start":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(elem)
        return True

    def next(self, wait: float) -> ET.Element | None:
        if not self.pending and not self.feed(wait):
            raise XmppError("the server closed the stream")
        return self.pending.pop(0) if self.pending else None

    def expect(self, tag: str, *also: str) -> ET.Element:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            elem = self.next(0.2)
            if elem is None:
                continue
            if elem.tag in (tag, *also):
                return elem
            if elem.tag == f"{{{NS_STREAM}}}error":
                raise XmppError("stream error: " + ",".join(child.tag for child in elem))
        raise XmppError(f"timed out waiting for {tag}")


def login(args: argparse.Namespace) -> tuple[Stream, str]:
    stream = Stream(args.server, args.port, args.domain, args.timeout)
    features = stream.features
    starttls = features.find(f"{{{NS_TLS}}}starttls")
    if starttls is not None and starttls.find(f"{{{NS_TLS}}}required") is not None:
        stream.send(f"<starttls xmlns='{NS_TLS}'/>")
        stream.expect(f"{{{NS_TLS}}}proceed")
        # Lab certificates from a private or no CA: encrypt, do not verify (never used off the lab).
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        stream.sock = context.wrap_socket(stream.sock, server_hostname=args.domain)
        features = stream.restart()
    mechanisms = [m.text for m in features.iter(f"{{{NS_SASL}}}mechanism")]
    if args.user:
        if "PLAIN" not in mechanisms:
            raise XmppError(f"PLAIN not offered (offered: {mechanisms})")
        token = base64.b64encode(f"\0{args.user}\0{args.password}".encode()).decode()
        stream.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
    else:
        if "ANONYMOUS" not in mechanisms:
            raise XmppError(f"ANONYMOUS not offered (offered: {mechanisms})")
        stream.send(f"<auth xmlns='{NS_SASL}' mechanism='ANONYMOUS'/>")
    result = stream.expect(f"{{{NS_SASL}}}success", f"{{{NS_SASL}}}failure")
    if result.tag.endswith("failure"):
        raise XmppError("SASL failure: " + ",".join(child.tag for child in result))
    stream.restart()
    stream.send(f"<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'><resource>holder</resource></bind></iq>")
    iq = stream.expect("{jabber:client}iq")
    jid = iq.findtext(f".//{{{NS_BIND}}}jid")
    if iq.get("type") != "result" or not jid:
        raise XmppError("resource binding failed")
    return stream, jid


def join(stream: Stream, room: str, nick: str, timeout: float) -> None:
    stream.send(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        elem = stream.next(0.2)
        if elem is None or elem.tag != "{jabber:client}presence" or elem.get("from") != f"{room}/{nick}":
            continue
        if elem.get("type") == "error":
            raise XmppError("join refused: " + ET.tostring(elem, encoding="unicode"))
        codes = {s.get("code") for s in elem.iter(f"{{{NS_MUC_USER}}}status")}
        if "201" in codes:
            # A new, locked room: accept the default configuration (XEP-0045 10.1.2, instant room).
            stream.send(
                f"<iq type='set' id='instant1' to='{room}'><query xmlns='{NS_MUC_OWNER}'>"
                "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
            )
            iq = stream.expect("{jabber:client}iq")
            if iq.get("type") != "result":
                raise XmppError("instant room configuration refused")
        return
    raise XmppError("timed out joining the room")


def watch(stream: Stream, args: argparse.Namespace, report: dict) -> None:
    prefix = f"{args.room}/"
    present: set[str] = set()
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        elem = stream.next(0.2)
        while elem is not None:
            frm = elem.get("from") or ""
            if elem.tag == "{jabber:client}presence" and frm.startswith(prefix) and frm != prefix + args.nick:
                now = time.time()
                if elem.get("type") == "unavailable":
                    if frm in present:
                        present.discard(frm)
                        report["leaves"] += 1
                        report["last_leave"] = now
                elif elem.get("type") is None and frm not in present:
                    present.add(frm)
                    report["joins"] += 1
                    report["first_join"] = report["first_join"] or now
                    report["last_join"] = now
                    if len(present) > report["peak"]:
                        report["peak"] = len(present)
                        report["peak_at"] = now
                    if len(present) >= args.expect and report["all_joined_at"] is None:
                        report["all_joined_at"] = now
            elem = stream.pending.pop(0) if stream.pending else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--domain", required=True, help="the XMPP host to log in to")
    parser.add_argument("--user", default="", help="log in with SASL PLAIN as this user (default: ANONYMOUS)")
    parser.add_argument("--password", default=os.environ.get("HOLDER_PASSWORD", ""))
    parser.add_argument("--room", required=True, help="bare JID of the room")
    parser.add_argument("--nick", default="holder-" + uuid.uuid4().hex[:6])
    parser.add_argument("--expect", type=int, required=True, help="participants the storm brings")
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()

    report: dict = {
        "expect": args.expect,
        "joins": 0,
        "leaves": 0,
        "peak": 0,
        "peak_at": None,
        "first_join": None,
        "last_join": None,
        "last_leave": None,
        "all_joined_at": None,
        "error": None,
    }
    try:
        stream, jid = login(args)
        join(stream, args.room, args.nick, args.timeout)
        report["jid"] = jid
        with open(args.ready_file, "w") as ready:
            ready.write(f"{time.time()}\n")
        watch(stream, args, report)
        stream.send(f"<presence to='{args.room}/{args.nick}' type='unavailable'/></stream:stream>")
    except (OSError, XmppError, ET.ParseError) as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    with open(args.out, "w") as out:
        json.dump(report, out, indent=1)
    if report["error"]:
        print(f"holder: {report['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
