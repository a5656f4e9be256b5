"""Faults under load: live XMPP-over-WebSocket sessions through both HAProxy peers while a fault hits.

The load is session_load.py (extensions/molecule/_shared/files), run on the first HAProxy host: anonymous
sessions with stream management, spread over rooms (?room=, which the HAProxy peers keep on one shard) and
over both peers' addresses, each pinging the server every second and reconnecting when its connection
breaks. Three faults, one at a time:

- Prosody of one shard killed with SIGKILL in the middle of a join storm: systemd brings it back by itself,
  every session returns (to the same shard: the room's), and no account or configuration file changed.
- One shard lost (its container frozen, as a host that stops answering): its sessions come back on the
  other shard, new rooms go to the other shard only; when it returns, each room stays where it now is.
- One HAProxy peer stopped and started again: its sessions come back through the other peer, and no room
  changes shard, neither then nor through the restarted peer, which relearns the rooms from the other.

The sizes come from the environment (MEETOPS_FAULTS_SESSIONS, _ROOMS, _RATE); benchmarks/faults/run runs
this module against the lab with larger ones and prints the figures each test writes to
MEETOPS_FAULTS_REPORT (JSON lines).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
from meetops_test_helpers import address_of, crash_and_wait_back, on
from test_sharding import DOMAIN, LBS, SHARDS, stick_entries, wait_for_state

CLIENT = "/usr/local/bin/session-load"
SESSIONS = int(os.environ.get("MEETOPS_FAULTS_SESSIONS", "40"))
ROOMS = int(os.environ.get("MEETOPS_FAULTS_ROOMS", "10"))
RATE = float(os.environ.get("MEETOPS_FAULTS_RATE", "20"))
FAULTS_DOMAIN = os.environ.get("MEETOPS_FAULTS_DOMAIN", DOMAIN)
REPORT = os.environ.get("MEETOPS_FAULTS_REPORT", "")
# Long enough for every session to notice the fault (a ping unanswered for 3 s) and come back, and for the
# HAProxy peers' health checks to take a frozen shard out (the lab's checks are slower than the scenario's).
RECOVERY_TIMEOUT = 90

testinfra_hosts = LBS[:1]


class Load:
    """One run of the session client on the first HAProxy host, as a transient systemd unit."""

    def __init__(self, sessions: int, rooms: int, prefix: str, via: list[str]) -> None:
        self.client = on(LBS[0])
        self.tag = uuid.uuid4().hex[:8]
        self.events = f"/run/meetops-load-{self.tag}.jsonl"
        self.sessions, self.rooms, self.prefix, self.via = sessions, rooms, prefix, via

    def arguments(self) -> str:
        addresses = " ".join(f"--address {address}" for address in self.via)
        return (
            f"--domain {FAULTS_DOMAIN} {addresses} --sessions {self.sessions} --rooms {self.rooms}"
            f" --rate {RATE} --prefix {self.prefix} --events {self.events}"
        )

    def start(self) -> Load:
        self.client.check_output(
            f"systemd-run --quiet --collect --unit=meetops-load-{self.tag} {CLIENT} run {self.arguments()}"
        )
        return self

    def once(self) -> dict:
        """Each session up once (then gone): the rooms' shards."""
        result = self.client.run(f"timeout 120 {CLIENT} run {self.arguments()} --once")
        assert result.rc == 0, result.stderr
        return self.report()["rooms"]

    def wait_up(self, count: int, steady: float = 5.0, timeout: float = RECOVERY_TIMEOUT) -> None:
        """COUNT sessions up, for STEADY seconds: longer than a ping's interval and timeout (1 s and 3 s),
        so every session a fault cut has noticed by then."""
        result = self.client.run(
            f"{CLIENT} wait --events {self.events} --up {count} --steady {steady} --timeout {timeout}"
        )
        assert result.rc == 0, result.stderr + self.tail()

    def report(self, fault_at: float | None = None) -> dict:
        fault = f" --fault-at {fault_at}" if fault_at is not None else ""
        return json.loads(self.client.check_output(f"{CLIENT} report --events {self.events}{fault}"))

    def tail(self) -> str:
        return self.client.run(f"tail -5 {self.events}").stdout

    def stop(self) -> None:
        self.client.run(f"systemctl stop meetops-load-{self.tag}.service")


def now() -> float:
    """The clock of the containers (the host's kernel's, which the client's events use)."""
    return float(on(LBS[0]).check_output("date +%s.%N"))


def record(fault: str, figures: dict) -> None:
    if REPORT:
        summary = {key: value for key, value in figures.items() if key != "rooms"}
        with open(REPORT, "a", encoding="utf-8") as file:
            file.write(json.dumps({"fault": fault, **summary}) + "\n")


def shard_of_each_room(rooms: dict, when: str) -> dict[str, str]:
    placed = {}
    for room, shards in rooms.items():
        assert len(shards[when]) <= 1, f"room {room} was on several shards {when} the fault: {shards}"
        if shards[when]:
            placed[room] = shards[when][0]
    return placed


@pytest.fixture(scope="module")
def peers() -> list[str]:
    return [address_of(lb) for lb in LBS]


@pytest.fixture(scope="module", autouse=True)
def client_installed() -> None:
    assert on(LBS[0]).file(CLIENT).is_file, f"{CLIENT} is missing on {LBS[0]} (the prepare step puts it)"


def fingerprints(shard: str) -> str:
    """Checksums of Prosody's configuration and of every account it stores."""
    return on(shard).check_output(
        "find /etc/prosody /var/lib/prosody -type f \\( -name '*.lua' -o -path '*/accounts/*' \\)"
        " -print0 | sort -z | xargs -0 sha256sum"
    )


def test_prosody_killed_in_a_join_storm_comes_back_and_every_session_returns(peers: list[str]) -> None:
    shard = on(SHARDS[0])
    before = fingerprints(SHARDS[0])
    load = Load(SESSIONS, ROOMS, f"storm-{uuid.uuid4().hex[:6]}", peers).start()
    try:
        load.wait_up(SESSIONS // 3, steady=0)  # the storm is under way
        fault_at = now()
        crash_and_wait_back(shard, "prosody.service")
        load.wait_up(SESSIONS)
        figures = load.report(fault_at)
    finally:
        load.stop()
    record("Prosody killed (SIGKILL) during a join storm", figures)
    assert shard.service("prosody").is_running
    assert figures["affected"] > 0, figures  # some sessions were on the killed Prosody
    assert figures["recovered"] == figures["affected"], figures
    assert fingerprints(SHARDS[0]) == before


def test_a_lost_shard_s_sessions_and_new_rooms_go_to_the_other_and_rooms_stay_when_it_returns(
    peers: list[str],
) -> None:
    prefix = f"lost-{uuid.uuid4().hex[:6]}"
    load = Load(SESSIONS, ROOMS, prefix, peers).start()
    try:
        load.wait_up(SESSIONS)
        placed = shard_of_each_room(load.report()["rooms"], "before")
        lost = max(SHARDS, key=lambda shard: list(placed.values()).count(shard))
        (live,) = set(SHARDS) - {lost}
        fault_at = now()
        subprocess.run(["podman", "pause", lost], check=True, capture_output=True)
        try:
            wait_for_state(lost, "DOWN", timeout=RECOVERY_TIMEOUT)
            load.wait_up(SESSIONS)
            figures = load.report(fault_at)
            new_rooms = Load(ROOMS, ROOMS, f"new-{uuid.uuid4().hex[:6]}", peers).once()
        finally:
            subprocess.run(["podman", "unpause", lost], check=True, capture_output=True)
        wait_for_state(lost, "UP", timeout=RECOVERY_TIMEOUT)
        # The rooms' next participants, through either peer, join each room where it now is.
        returning = Load(ROOMS * 2, ROOMS, prefix, peers).once()
    finally:
        load.stop()
    record("one shard lost (frozen) under live sessions", figures)
    on_lost = sum(1 for index in range(SESSIONS) if placed[f"{prefix}-{index % ROOMS}"] == lost)
    assert figures["affected"] >= on_lost > 0, figures
    assert figures["recovered"] == figures["affected"], figures
    moved = shard_of_each_room(figures["rooms"], "after")
    assert {moved[room] for room, shard in placed.items() if shard == lost} == {live}, figures["rooms"]
    assert set(shard_of_each_room(new_rooms, "before").values()) == {live}, new_rooms
    now_placed = {room: moved.get(room, shard) for room, shard in placed.items()}
    assert shard_of_each_room(returning, "before") == now_placed, returning


def test_one_haproxy_peer_restarted_under_traffic_moves_no_room(peers: list[str]) -> None:
    prefix = f"peer-{uuid.uuid4().hex[:6]}"
    restarted = on(LBS[1])
    load = Load(SESSIONS, ROOMS, prefix, peers).start()
    try:
        load.wait_up(SESSIONS)
        placed = shard_of_each_room(load.report()["rooms"], "before")
        fault_at = now()
        restarted.check_output("systemctl stop haproxy.service")
        try:
            load.wait_up(SESSIONS)
        finally:
            restarted.check_output("systemctl start haproxy.service")
        figures = load.report(fault_at)
        # The restarted peer learns the rooms from the other before it sends a room anywhere.
        deadline = time.monotonic() + 30
        while not set(placed) <= set(stick_entries(LBS[1])):
            assert time.monotonic() < deadline, "the restarted peer did not relearn the rooms within 30 s"
            time.sleep(0.5)
        through_restarted = Load(ROOMS, ROOMS, prefix, peers[1:]).once()
    finally:
        load.stop()
    record("one HAProxy peer stopped and started again under traffic", figures)
    # Every other session (the odd ones) started on the stopped peer.
    assert figures["affected"] >= SESSIONS // len(peers), figures
    assert figures["recovered"] == figures["affected"], figures
    assert figures["rooms_moved"] == 0, figures["rooms"]
    assert shard_of_each_room(through_restarted, "before") == placed, through_restarted
