#!/usr/bin/env python3
"""Live XMPP-over-WebSocket sessions through the HAProxy peers, for the fault tests and their benchmark.

  session_load.py run --domain D --address A [--address B] --sessions N --rooms K --events FILE
      Open N sessions to wss://D/xmpp-websocket?room=<room> (room i % K of the rooms named
      <prefix>-0 ... <prefix>-(K-1)), at --rate per second, each on address A, B, ... in turn (the TCP
      destination; D stays the TLS name and Host, as with one A record per HAProxy peer). Each session
      logs in anonymously (SASL ANONYMOUS), binds, enables stream management (XEP-0198, resumable) and
      sends its presence, then pings the server every --ping-every seconds. A session that loses its
      connection, or gets no answer to a ping within --ping-timeout, reconnects: first to the same
      address, then to the next one after each failed attempt, with a backoff of at most 2 s; it tries to
      resume its stream (stream management) and logs in anew when the server refuses. Every event is one
      JSON line in FILE: {"t", "session", "event": up|down|fail, "room", "shard", "via", "how", "reason"};
      "shard" is the X-Jitsi-Shard header of the WebSocket handshake, "how" new or resumed. Runs until
      SIGTERM or --duration seconds, or with --once until every session has been up once.
  session_load.py wait --events FILE --up N [--steady S] [--timeout S]
      Wait until N sessions have been up at once for --steady seconds (longer than a ping's interval and
      timeout, so that a session cut by a fault has noticed by then). Exit 1 at the timeout.
  session_load.py report --events FILE [--fault-at T]
      Print the figures as JSON: sessions, and for the sessions that failed after T (the fault): how many
      were affected, recovered and resumed, their outages (median and longest) and the time from T until
      the last of them was back; the shards each room was served by before and after T.

Needs Python 3.11 and python3-websockets (Debian 12 and 13). The system trust store checks the certificate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import ssl
import statistics
import sys
import time
import uuid
import xml.etree.ElementTree as ET

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
SM = "urn:xmpp:sm:3"
PING = "urn:xmpp:ping"
STANZAS = ("message", "presence", "iq")
CONNECT_TIMEOUT = 10.0
STEP_TIMEOUT = 10.0
MAX_BACKOFF = 2.0


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


class RefusedError(Exception):
    """The server answered, but not as a working session needs."""


class Events:
    """The event log: one JSON object per line, flushed at once so that `wait` sees it live."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the whole run)
        self.up: set[int] = set()

    def emit(self, session: int, event: str, **fields: object) -> None:
        if event == "up":
            self.up.add(session)
        else:
            self.up.discard(session)
        self.file.write(json.dumps({"t": time.time(), "session": session, "event": event, **fields}) + "\n")
        self.file.flush()


class Stream:
    """One XMPP stream over one WebSocket (RFC 7395): each message is one whole element."""

    def __init__(self, websocket, domain: str) -> None:
        self.websocket = websocket
        self.domain = domain
        self.handled = 0  # stanzas received since stream management was enabled (XEP-0198's h)
        self.counting = False

    async def send(self, xml: str) -> None:
        await self.websocket.send(xml)

    async def receive(self, timeout: float = STEP_TIMEOUT) -> ET.Element:
        while True:
            element = ET.fromstring(await asyncio.wait_for(self.websocket.recv(), timeout))
            name = local(element.tag)
            if name == "r" and element.tag == f"{{{SM}}}r":
                await self.send(f"<a xmlns='{SM}' h='{self.handled}'/>")
                continue
            if name == "close":
                raise ConnectionError("the server closed the stream")
            if self.counting and name in STANZAS:
                self.handled += 1
            return element

    async def open(self) -> ET.Element:
        await self.send(f"<open xmlns='{FRAMING}' to='{self.domain}' version='1.0'/>")
        opened = await self.receive()
        if local(opened.tag) != "open":
            raise RefusedError(f"expected <open/>, got <{local(opened.tag)}/>")
        return await self.receive()  # <stream:features/>


def shard_of(websocket) -> str:
    """The X-Jitsi-Shard header of the handshake response (websockets 10 and 14+ keep it differently)."""
    response = getattr(websocket, "response", None)
    headers = response.headers if response is not None else websocket.response_headers
    return headers.get("X-Jitsi-Shard", "")


async def connect(args, address: str, room: str):
    import websockets  # noqa: PLC0415  (imported late so that `report` runs where it is not installed)

    url = f"wss://{args.domain}/xmpp-websocket?room={room}"
    return await websockets.connect(
        url,
        subprotocols=["xmpp"],
        host=address,
        port=443,
        ssl=ssl.create_default_context(),
        server_hostname=args.domain,
        open_timeout=CONNECT_TIMEOUT,
        ping_interval=None,
        close_timeout=1,
    )


async def log_in(stream: Stream, previous: tuple[str, int] | None) -> tuple[str, str]:
    """Authenticate, then resume PREVIOUS (stream id, h) or bind anew. Returns (how, stream id)."""
    await stream.open()
    await stream.send(f"<auth xmlns='{SASL}' mechanism='ANONYMOUS'/>")
    answer = await stream.receive()
    if local(answer.tag) != "success":
        raise RefusedError(f"SASL ANONYMOUS: <{local(answer.tag)}/>")
    await stream.open()
    if previous is not None:
        stream_id, handled = previous
        await stream.send(f"<resume xmlns='{SM}' previd='{stream_id}' h='{handled}'/>")
        answer = await stream.receive()
        if local(answer.tag) == "resumed":
            stream.counting = True
            return "resumed", stream_id
    await stream.send(f"<iq type='set' id='bind' xmlns='jabber:client'><bind xmlns='{BIND}'/></iq>")
    answer = await stream.receive()
    if answer.get("type") != "result":
        raise RefusedError("resource binding refused")
    await stream.send(f"<enable xmlns='{SM}' resume='true'/>")
    answer = await stream.receive()
    if local(answer.tag) != "enabled" or not answer.get("id"):
        raise RefusedError(f"stream management: <{local(answer.tag)}/>")
    stream.counting = True
    await stream.send("<presence xmlns='jabber:client'/>")
    return "new", answer.get("id")


async def stay(stream: Stream, args) -> str:
    """Ping until the connection breaks or a ping goes unanswered; returns why it ended."""
    number = 0
    while True:
        await asyncio.sleep(args.ping_every)
        number += 1
        ping_id = f"ping-{number}"
        await stream.send(
            f"<iq type='get' id='{ping_id}' to='{stream.domain}' xmlns='jabber:client'>"
            f"<ping xmlns='{PING}'/></iq>"
        )
        deadline = time.monotonic() + args.ping_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"no answer to a ping within {args.ping_timeout} s"
            try:
                answer = await stream.receive(timeout=left)
            except TimeoutError:
                return f"no answer to a ping within {args.ping_timeout} s"
            if local(answer.tag) == "iq" and answer.get("id") == ping_id:
                break


async def session(number: int, args, events: Events, stop: asyncio.Event) -> None:
    room = f"{args.prefix}-{number % args.rooms}"
    turn = number % len(args.address)
    previous: tuple[str, int] | None = None
    backoff = 0.0
    while not stop.is_set():
        address = args.address[turn]
        websocket = None
        try:
            websocket = await connect(args, address, room)
            stream = Stream(websocket, args.domain)
            how, stream_id = await log_in(stream, previous)
            events.emit(number, "up", room=room, shard=shard_of(websocket), via=address, how=how)
            backoff = 0.0
            if args.once:
                return
            ending = asyncio.ensure_future(stay(stream, args))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({ending, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                ending.cancel()
                return
            stopping.cancel()
            previous = (stream_id, stream.handled)
            reason = ending.exception() or ending.result()
            events.emit(number, "down", room=room, via=address, reason=str(reason))
        except Exception as error:  # any failure of an attempt is recorded, then retried
            if stop.is_set():
                return
            events.emit(number, "fail", room=room, via=address, reason=f"{type(error).__name__}: {error}")
            turn = (turn + 1) % len(args.address)
            backoff = min(MAX_BACKOFF, max(0.25, backoff * 2))
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
        finally:
            if websocket is not None:
                with contextlib.suppress(Exception):
                    await websocket.close()


async def run(args) -> int:
    events = Events(args.events)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.call_later(args.duration, stop.set)
    tasks = []
    for number in range(args.sessions):
        tasks.append(asyncio.ensure_future(session(number, args, events, stop)))
        await asyncio.sleep(random.expovariate(args.rate))  # Poisson arrivals, as a crowd joins
    await asyncio.gather(*tasks)
    if args.once and len(events.up) < args.sessions:
        print(f"only {len(events.up)} of {args.sessions} sessions came up", file=sys.stderr)
        return 1
    return 0


def read_events(path: str) -> list[dict]:
    """The events so far (none while the run has not started writing)."""
    try:
        with open(path, encoding="utf-8") as file:
            return [json.loads(line) for line in file if line.endswith("\n")]
    except FileNotFoundError:
        return []


def up_now(events: list[dict]) -> int:
    """How many sessions are up: their last event is "up"."""
    last = {event["session"]: event["event"] for event in events}
    return sum(1 for event in last.values() if event == "up")


def wait(args) -> int:
    deadline = time.monotonic() + args.timeout
    count = 0
    steady_since = None
    while time.monotonic() < deadline:
        count = up_now(read_events(args.events))
        if count < args.up:
            steady_since = None
        elif steady_since is None:
            steady_since = time.monotonic()
        elif time.monotonic() - steady_since >= args.steady:
            print(json.dumps({"up": count}))
            return 0
        time.sleep(0.25)
    print(f"{count} of {args.up} sessions up after {args.timeout} s ({args.events})", file=sys.stderr)
    return 1


def report(events: list[dict], fault_at: float | None) -> dict:
    sessions = sorted({event["session"] for event in events})
    figures: dict[str, object] = {"sessions": len(sessions)}
    before: dict[str, set[str]] = {}
    after: dict[str, set[str]] = {}
    for event in events:
        if event["event"] == "up":
            side = before if fault_at is None or event["t"] < fault_at else after
            side.setdefault(event["room"], set()).add(event["shard"])
    figures["rooms"] = {
        room: {"before": sorted(before.get(room, ())), "after": sorted(after.get(room, ()))}
        for room in sorted(before.keys() | after.keys())
    }
    # Rooms served by another shard after the fault than before it.
    figures["rooms_moved"] = sum(1 for room in before.keys() & after.keys() if before[room] != after[room])
    if fault_at is None:
        return figures
    outages = []
    affected = recovered = resumed = 0
    last_back = fault_at
    for number in sessions:
        mine = [event for event in events if event["session"] == number and event["t"] >= fault_at]
        first_failure = next((event for event in mine if event["event"] != "up"), None)
        if first_failure is None:
            continue
        affected += 1
        back = next(
            (event for event in mine if event["event"] == "up" and event["t"] > first_failure["t"]), None
        )
        if back is None:
            continue
        recovered += 1
        resumed += back["how"] == "resumed"
        outages.append(back["t"] - first_failure["t"])
        last_back = max(last_back, back["t"])
    figures.update(
        affected=affected,
        recovered=recovered,
        resumed=resumed,
        failed_attempts=sum(1 for event in events if event["event"] == "fail" and event["t"] >= fault_at),
        outage_median_s=round(statistics.median(outages), 2) if outages else None,
        outage_max_s=round(max(outages), 2) if outages else None,
        all_back_after_s=round(last_back - fault_at, 2) if affected and recovered == affected else None,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--domain", required=True)
    run_parser.add_argument("--address", action="append", required=True)
    run_parser.add_argument("--sessions", type=int, default=40)
    run_parser.add_argument("--rooms", type=int, default=10)
    run_parser.add_argument("--rate", type=float, default=20.0, help="new sessions per second")
    run_parser.add_argument("--prefix", default=f"load-{uuid.uuid4().hex[:8]}")
    run_parser.add_argument("--events", required=True)
    run_parser.add_argument("--ping-every", type=float, default=1.0)
    run_parser.add_argument("--ping-timeout", type=float, default=3.0)
    run_parser.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds")
    run_parser.add_argument("--once", action="store_true", help="stop each session once it is up")
    wait_parser = sub.add_parser("wait")
    wait_parser.add_argument("--events", required=True)
    wait_parser.add_argument("--up", type=int, required=True)
    wait_parser.add_argument("--steady", type=float, default=5.0)
    wait_parser.add_argument("--timeout", type=float, default=60.0)
    report_parser = sub.add_parser("report")
    report_parser.add_argument("--events", required=True)
    report_parser.add_argument("--fault-at", type=float)
    args = parser.parse_args()
    if args.command == "run":
        return asyncio.run(run(args))
    if args.command == "wait":
        return wait(args)
    print(json.dumps(report(read_events(args.events), args.fault_at), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
