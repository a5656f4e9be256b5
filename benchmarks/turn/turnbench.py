#!/usr/bin/env python3
"""TURN client and report of the coturn benchmark (benchmarks/turn/run).

The client commands run inside the coturn container and print one JSON object:

  probe   one allocation, as in alloc; exits 1 with the reason when it fails
  alloc   --allocations N allocations, --clients C of them in flight at any time. Each is a fresh UDP socket
          that goes through what a WebRTC client does: Allocate (answered 401 with a nonce), Allocate with
          credentials, CreatePermission for the peer, Refresh with lifetime 0 (the allocation ends)
  relay   --sessions S allocations with a channel to the echo peer (turnutils_peer); each keeps --window W
          ChannelData messages of --size L bytes in flight (a new one for each echo that comes back) for
          --seconds D. A window lost on the way is counted (stalls) and sent again

The credentials are TURN REST ones (use-auth-secret): user name = expiry time, password =
base64(HMAC-SHA1(secret, user name)). With --server-pid the CPU time coturn used during the measurement is
reported too (from /proc/PID/stat), and always the client's own.

  report  on the controller: medians per setup, ratios role/stock, results.json
"""

import argparse
import base64
import contextlib
import errno
import hashlib
import hmac
import json
import os
import select
import selectors
import socket
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

MAGIC = 0x2112A442
ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND = 0x003, 0x004, 0x008, 0x009
SUCCESS, ERROR = 0x100, 0x110
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, CHANNEL_NUMBER, LIFETIME = 0x06, 0x08, 0x09, 0x0C, 0x0D
XOR_PEER_ADDRESS, REALM, NONCE, REQUESTED_TRANSPORT, FINGERPRINT = 0x12, 0x14, 0x15, 0x19, 0x8028
UDP_TRANSPORT = b"\x11\x00\x00\x00"
CHANNEL = 0x4000
RTO = 0.5  # seconds before a request is sent again
TRIES = 4  # sends of one request before the session counts as failed
# Client ports, taken in turn from --first-port on: a port the kernel handed out again at once could meet the
# allocation coturn still keeps for it (437 Allocation Mismatch). Below coturn's relay ports (49152-65535
# in both setups).
LAST_PORT = 48999

Auth = tuple[bytes, bytes, bytes, bytes]  # user, realm, nonce, key


class TurnError(Exception):
    pass


class Credentials:
    def __init__(self, secret: str) -> None:
        self.user = str(int(time.time()) + 3600).encode()
        self.password = base64.b64encode(hmac.new(secret.encode(), self.user, hashlib.sha1).digest())
        self.keys: dict[bytes, bytes] = {}

    def key(self, realm: bytes) -> bytes:
        if realm not in self.keys:
            self.keys[realm] = hashlib.md5(self.user + b":" + realm + b":" + self.password).digest()
        return self.keys[realm]


def attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\x00" * (-len(value) % 4)


def xor_address(ip: str, port: int) -> bytes:
    cookie = struct.pack("!I", MAGIC)
    address = bytes(a ^ b for a, b in zip(socket.inet_aton(ip), cookie, strict=True))
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + address


def message(kind: int, tid: bytes, body: bytes, auth: Auth | None = None) -> bytes:
    """A STUN request: with auth, USERNAME, REALM, NONCE and MESSAGE-INTEGRITY; always a FINGERPRINT."""
    if auth is not None:
        user, realm, nonce, key = auth
        body += attribute(USERNAME, user) + attribute(REALM, realm) + attribute(NONCE, nonce)
        head = struct.pack("!HHI", kind, len(body) + 24, MAGIC) + tid
        body += attribute(MESSAGE_INTEGRITY, hmac.new(key, head + body, hashlib.sha1).digest())
    head = struct.pack("!HHI", kind, len(body) + 8, MAGIC) + tid
    body += attribute(FINGERPRINT, struct.pack("!I", zlib.crc32(head + body) ^ 0x5354554E))
    return head + body


def parse(data: bytes) -> tuple[int, bytes, dict[int, bytes]] | None:
    if len(data) < 20:
        return None
    kind, length, magic = struct.unpack_from("!HHI", data)
    if magic != MAGIC:
        return None
    attributes: dict[int, bytes] = {}
    pos, end = 20, min(len(data), 20 + length)
    while pos + 4 <= end:
        akind, alen = struct.unpack_from("!HH", data, pos)
        attributes.setdefault(akind, data[pos + 4 : pos + 4 + alen])
        pos += 4 + alen + (-alen % 4)
    return kind, data[8:20], attributes


def error_code(attributes: dict[int, bytes]) -> int:
    value = attributes.get(ERROR_CODE, b"")
    return (value[2] & 7) * 100 + value[3] if len(value) >= 4 else 0


def cpu_seconds(pid: int | None) -> float | None:
    """User and system time of a process (all its threads), or None without a pid."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Ports:
    def __init__(self, first: int) -> None:
        self.first = self.next = first

    def socket(self, args: argparse.Namespace) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        for _unused in range(LAST_PORT - self.first + 1):
            port = self.next
            self.next = self.first if port >= LAST_PORT else port + 1
            try:
                sock.bind((args.local or args.server, port))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        else:
            raise TurnError(f"no free client port in {self.first}-{LAST_PORT}")
        sock.connect((args.server, args.port))
        return sock


class Session:
    """One allocation's conversation, steps 0: Allocate (expect 401), 1: Allocate with credentials,
    2: CreatePermission (ChannelBind with channel=True), 3: Refresh with lifetime 0 (not with keep=True)."""

    def __init__(self, args: argparse.Namespace, creds: Credentials, ports: Ports, *, relay: bool = False):
        self.args, self.creds, self.relay = args, creds, relay
        self.sock = ports.socket(args)
        self.step = 0
        self.auth: Auth | None = None
        self.started = time.monotonic()
        self.tid = b""
        self.request = b""
        self.sent_at = 0.0
        self.tries = 0
        self.done = False

    def build(self) -> bytes:
        self.tid = os.urandom(12)
        transport = attribute(REQUESTED_TRANSPORT, UDP_TRANSPORT)
        peer = attribute(XOR_PEER_ADDRESS, xor_address(self.args.peer, self.args.peer_port))
        if self.step == 0:
            return message(ALLOCATE, self.tid, transport)
        if self.step == 1:
            return message(ALLOCATE, self.tid, transport, self.auth)
        if self.step == 2 and self.relay:
            number = attribute(CHANNEL_NUMBER, struct.pack("!HH", CHANNEL, 0))
            return message(CHANNEL_BIND, self.tid, number + peer, self.auth)
        if self.step == 2:
            return message(CREATE_PERMISSION, self.tid, peer, self.auth)
        return message(REFRESH, self.tid, attribute(LIFETIME, struct.pack("!I", 0)), self.auth)

    def method(self) -> int:
        return (ALLOCATE, ALLOCATE, CHANNEL_BIND if self.relay else CREATE_PERMISSION, REFRESH)[self.step]

    def send(self, now: float, *, again: bool = False) -> None:
        if not again:
            self.request = self.build()
            self.tries = 0
        self.tries += 1
        self.sent_at = now
        # A send that fails counts as a lost datagram: sent again after RTO.
        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
            self.sock.send(self.request)

    def answer(self, data: bytes, now: float) -> None:
        """Takes one datagram; raises TurnError when the server refuses."""
        parsed = parse(data)
        if parsed is None or parsed[1] != self.tid:
            return
        kind, _unused, attributes = parsed
        method = self.method()
        if kind == method | ERROR:
            code = error_code(attributes)
            if (self.step == 0 and code == 401) or code == 438:  # the challenge, or a stale nonce
                realm = attributes.get(REALM, self.auth[1] if self.auth else b"")
                nonce = attributes.get(NONCE, b"")
                if not nonce:
                    raise TurnError(f"error {code} without a nonce")
                self.auth = (self.creds.user, realm, nonce, self.creds.key(realm))
                self.step = max(self.step, 1)
                self.send(now)
                return
            reason = attributes.get(ERROR_CODE, b"")[4:].decode(errors="replace").rstrip("\x00")
            raise TurnError(f"step {self.step}: error {code} {reason}")
        if kind != method | SUCCESS:
            return
        if self.step == 0:
            raise TurnError("the server allocated without credentials")
        self.step += 1
        if (self.step == 3 and self.relay) or self.step == 4:
            self.done = True
            return
        self.send(now)

    def receive(self) -> None:
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                return
            self.answer(data, time.monotonic())

    def expired(self, now: float) -> bool:
        """Sends a request again that had no answer; True once it has been sent TRIES times."""
        if now - self.sent_at < RTO:
            return False
        if self.tries >= TRIES:
            return True
        self.send(now, again=True)
        return False

    def close(self) -> None:
        self.sock.close()


def sessions_in_turn(args: argparse.Namespace, count: int, *, relay: bool) -> list[Session]:
    """Runs `count` sessions to their end, one after the other; raises TurnError at the first failure."""
    creds, ports, done = Credentials(args.secret), Ports(args.first_port), []
    for _unused in range(count):
        session = Session(args, creds, ports, relay=relay)
        session.send(time.monotonic())
        while not session.done:
            if session.expired(time.monotonic()):
                session.close()
                raise TurnError(f"no answer from {args.server}:{args.port} (step {session.step})")
            select.select([session.sock], [], [], 0.05)
            try:
                session.receive()
            except TurnError:
                session.close()
                raise
        done.append(session)
    return done


def cmd_probe(args: argparse.Namespace) -> dict:
    for session in sessions_in_turn(args, 1, relay=False):
        session.close()
    return {"ok": True}


def cmd_alloc(args: argparse.Namespace) -> dict:
    creds, ports = Credentials(args.secret), Ports(args.first_port)
    sel = selectors.DefaultSelector()
    active: set[Session] = set()
    launched = completed = failed = 0
    errors: dict[str, int] = {}
    durations: list[float] = []
    cpu0, client0 = cpu_seconds(args.server_pid), time.process_time()
    start = now = last_scan = time.monotonic()
    while completed + failed < args.allocations and now < start + args.max_seconds:
        while len(active) < args.clients and launched < args.allocations:
            session = Session(args, creds, ports)
            sel.register(session.sock, selectors.EVENT_READ, session)
            active.add(session)
            session.send(time.monotonic())
            launched += 1
        finished: list[tuple[Session, str | None]] = []
        for key, _unused in sel.select(0.05):
            try:
                key.data.receive()
            except TurnError as exc:
                finished.append((key.data, str(exc)))
                continue
            if key.data.done:
                finished.append((key.data, None))
        now = time.monotonic()
        if now - last_scan >= 0.05:
            last_scan = now
            finished += [(s, "no answer") for s in active if not s.done and s.expired(now)]
        for session, error in finished:
            if session not in active:
                continue  # refused and out of time in the same round
            active.discard(session)
            sel.unregister(session.sock)
            session.close()
            if error is None:
                completed += 1
                durations.append(now - session.started)
            else:
                failed += 1
                errors[error] = errors.get(error, 0) + 1
    elapsed = time.monotonic() - start
    cpu1, client1 = cpu_seconds(args.server_pid), time.process_time()
    for session in active:
        session.close()
    durations.sort()
    return {
        "allocations": args.allocations,
        "clients": args.clients,
        "completed": completed,
        "failed": failed,
        "unfinished": args.allocations - completed - failed,
        "errors": errors,
        "seconds": elapsed,
        "allocations_per_second": completed / elapsed if elapsed > 0 else 0.0,
        "session_ms_median": 1000 * statistics.median(durations) if durations else None,
        "session_ms_p95": 1000 * durations[int(0.95 * (len(durations) - 1))] if durations else None,
        "server_cpu_seconds": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        "client_cpu_seconds": client1 - client0,
    }


class Relay:
    """The relay measurement: sessions with a channel each, echoes counted for a fixed time."""

    def __init__(self, args: argparse.Namespace, sessions: list[Session]) -> None:
        self.args, self.sessions = args, sessions
        self.packet = struct.pack("!HH", CHANNEL, args.size) + b"\x07" * (args.size + (-args.size % 4))
        self.sent = self.received = self.received_bytes = self.stalls = 0
        self.last_rx = {s.sock: 0.0 for s in sessions}
        self.sending = True

    def fill(self, sock: socket.socket, count: int) -> None:
        for _unused in range(count):
            try:
                sock.send(self.packet)
            except (BlockingIOError, ConnectionRefusedError):
                return
            self.sent += 1

    def drain(self, sock: socket.socket) -> None:
        echoes = 0
        while True:
            try:
                data = sock.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                break
            if len(data) >= 4 and data[0] & 0xC0 == 0x40:  # ChannelData, not a late STUN answer
                echoes += 1
                if self.sending:
                    self.received_bytes += len(data) - 4
        self.received += echoes
        if echoes:
            self.last_rx[sock] = time.monotonic()
            if self.sending:
                self.fill(sock, echoes)

    def run(self) -> dict:
        sel = selectors.DefaultSelector()
        cpu0, client0 = cpu_seconds(self.args.server_pid), time.process_time()
        start = last_scan = time.monotonic()
        for session in self.sessions:
            sel.register(session.sock, selectors.EVENT_READ)
            self.last_rx[session.sock] = start
            self.fill(session.sock, self.args.window)
        end = start + self.args.seconds
        measured, cpu1, client1 = self.args.seconds, cpu0, client0
        now = start
        while now < end + 0.5:  # half a second after the end for the echoes still on their way
            for key, _unused in sel.select(0.02):
                self.drain(key.fileobj)
            now = time.monotonic()
            if self.sending and now >= end:
                self.sending = False
                measured, cpu1, client1 = now - start, cpu_seconds(self.args.server_pid), time.process_time()
            elif self.sending and now - last_scan >= 0.05:
                last_scan = now
                for sock, when in self.last_rx.items():
                    if now - when > 0.25:  # the whole window was lost: count it, send a new one
                        self.stalls += 1
                        self.last_rx[sock] = now
                        self.fill(sock, self.args.window)
        lost = max(self.sent - self.received, 0)
        return {
            "sessions": len(self.sessions),
            "size": self.args.size,
            "window": self.args.window,
            "seconds": measured,
            "sent": self.sent,
            "received": self.received,
            "received_bytes": self.received_bytes,
            "stalls": self.stalls,
            "loss_percent": 100.0 * lost / self.sent if self.sent else 0.0,
            "relayed_bytes_per_second": self.received_bytes / measured,
            "server_cpu_seconds": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            "client_cpu_seconds": client1 - client0,
        }


def cmd_relay(args: argparse.Namespace) -> dict:
    sessions = sessions_in_turn(args, args.sessions, relay=True)
    try:
        return Relay(args, sessions).run()
    finally:
        for session in sessions:
            session.close()


# --- report ---------------------------------------------------------------------------------------------

METRICS = (
    # key, label, format, how to get it from one run's alloc and relay results
    ("allocations_per_second", "allocations/s", "{:10.0f}", lambda a, r: a["allocations_per_second"]),
    ("relayed_mb_per_second", "relayed MB/s", "{:10.1f}", lambda a, r: r["relayed_bytes_per_second"] / 1e6),
    ("loss_percent", "loss %", "{:10.3f}", lambda a, r: r["loss_percent"]),
    (
        "coturn_cpu_us_per_allocation",
        "coturn CPU us/allocation",
        "{:10.1f}",
        lambda a, r: 1e6 * a["server_cpu_seconds"] / max(a["completed"], 1),
    ),
    (
        "coturn_cpu_ms_per_relayed_mb",
        "coturn CPU ms/relayed MB",
        "{:10.2f}",
        lambda a, r: 1e3 * r["server_cpu_seconds"] / max(r["received_bytes"] / 1e6, 1e-9),
    ),
)


def cmd_report(args: argparse.Namespace) -> int:
    meta = dict(line.split("=", 1) for line in Path(args.meta).read_text().splitlines() if "=" in line)
    runs = []
    for directory in map(Path, args.dirs):
        alloc = json.loads((directory / "alloc.json").read_text())
        relay = json.loads((directory / "relay.json").read_text())
        run = json.loads((directory / "run.json").read_text())
        run["alloc"], run["relay"] = alloc, relay
        run["metrics"] = {key: get(alloc, relay) for key, _label, _fmt, get in METRICS}
        runs.append(run)
    medians: dict[str, dict[str, float]] = {}
    for setup in ("stock", "role"):
        values = [r["metrics"] for r in runs if r["setup"] == setup]
        medians[setup] = {key: statistics.median(v[key] for v in values) for key, *_rest in METRICS}
    ratios = {
        key: medians["role"][key] / medians["stock"][key] if medians["stock"][key] else None
        for key, *_rest in METRICS
    }
    # Also the ratio within each round (the two setups measured one right after the other).
    rounds = sorted({r["round"] for r in runs})
    per_round = []
    for n in rounds:
        pair = {r["setup"]: r["metrics"] for r in runs if r["round"] == n}
        per_round.append(
            {
                "round": n,
                **{
                    k: pair["role"][k] / pair["stock"][k]
                    for k in ("allocations_per_second", "relayed_mb_per_second")
                    if pair["stock"][k]
                },
            }
        )
    print(
        f"coturn {meta.get('coturn_version_stock', '?')} on {meta.get('image', '?')}, medians of "
        f"{meta.get('repeat', '?')} runs per setup, alternating ({meta.get('allocations')} allocations with "
        f"{meta.get('clients')} in flight; {meta.get('sessions')} sessions x {meta.get('window')} x "
        f"{meta.get('size')} B for {meta.get('seconds')} s)"
    )
    print(f"{'':26}{'stock':>10}  {'role':>10}  {'role/stock':>10}")
    for key, label, fmt, _get in METRICS:
        ratio = "-" if ratios[key] is None else f"{ratios[key]:10.3f}"
        print(
            f"{label:26}{fmt.format(medians['stock'][key])}  {fmt.format(medians['role'][key])}  {ratio:>10}"
        )
    print(
        "role/stock per round (allocations/s, relayed MB/s): "
        + ", ".join(
            f"{p.get('allocations_per_second', 0):.3f} {p.get('relayed_mb_per_second', 0):.3f}"
            for p in per_round
        )
    )
    Path(args.out).write_text(
        json.dumps(
            {
                "meta": meta,
                "medians": medians,
                "ratios_role_over_stock": ratios,
                "rounds": per_round,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--server", required=True, help="coturn's address")
    client.add_argument("--port", type=int, default=3478)
    client.add_argument("--local", help="the address the client's sockets bind to (default: --server)")
    client.add_argument("--first-port", type=int, default=20000, help="the first client port to take")
    client.add_argument("--peer", required=True, help="the echo peer's address")
    client.add_argument("--peer-port", type=int, default=3480)
    client.add_argument("--secret", required=True, help="coturn's static-auth-secret")
    client.add_argument("--server-pid", type=int, help="coturn's pid, to report its CPU time")
    sub.add_parser("probe", parents=[client])
    alloc = sub.add_parser("alloc", parents=[client])
    alloc.add_argument("--allocations", type=int, default=10000)
    alloc.add_argument("--clients", type=int, default=100)
    alloc.add_argument("--max-seconds", type=float, default=60, help="stop after this long")
    relay = sub.add_parser("relay", parents=[client])
    relay.add_argument("--sessions", type=int, default=10)
    relay.add_argument("--seconds", type=float, default=5)
    relay.add_argument("--size", type=int, default=1000, help="payload bytes per message")
    relay.add_argument("--window", type=int, default=8, help="messages in flight per session")
    report = sub.add_parser("report")
    report.add_argument("--meta", required=True)
    report.add_argument("--out", required=True)
    report.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    if args.command == "report":
        return cmd_report(args)
    commands = {"probe": cmd_probe, "alloc": cmd_alloc, "relay": cmd_relay}
    try:
        result = commands[args.command](args)
    except (TurnError, OSError) as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
