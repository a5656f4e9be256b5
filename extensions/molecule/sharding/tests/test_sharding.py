"""The sharded topology, seen from outside with real HTTPS requests through both HAProxy peers.

Each shard's nginx names itself in the X-Jitsi-Shard header, so a request shows which shard served it.
Requests are sent with curl from inside the HAProxy containers to both HAProxies' network addresses,
with the public domain resolved to that address and the internal CA trusted from the system store.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import time
import uuid
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
from meetops_test_helpers import on, run_playbook

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
LBS = sorted(RUNNER.get_hosts("haproxy"))
SHARDS = sorted(RUNNER.get_hosts("signal"))
DOMAIN = "meet.sharding.test"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
VERIFY = str(Path(__file__).resolve().parents[4] / "playbooks" / "verify.yml")
# Checks run every second, two failures take a shard out and two successes bring it back.
STATE_TIMEOUT = 30

# Runs once, on the first HAProxy host; the tests reach the other hosts themselves.
testinfra_hosts = LBS[:1]


def unique_rooms(count: int, prefix: str) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{prefix}-{tag}-{index}" for index in range(count)]


def served_by(via: str, address: str, paths: list[str]) -> list[tuple[int, str]]:
    """GET each path through the HAProxy at `address` (curl run on host `via`): (status, shard) each."""
    script = " ; ".join(
        f"curl -sS -o /dev/null --max-time 10 --resolve {DOMAIN}:443:{address} "
        f"-w '%{{http_code}} %header{{x-jitsi-shard}}\\n' {shlex.quote(f'https://{DOMAIN}{path}')}"
        for path in paths
    )
    output = on(via).check_output(f"sh -c {shlex.quote(script)}")
    results = []
    for line in output.splitlines():
        status, _unused, shard = line.partition(" ")
        results.append((int(status), shard.strip()))
    assert len(results) == len(paths), output
    return results


def shard_states(lb: str) -> dict[str, str]:
    """Backend server name -> status (UP, DOWN, ...) from the admin socket's 'show stat'."""
    csv = on(lb).check_output(f"echo 'show stat' | socat stdio {ADMIN_SOCKET}")
    lines = csv.splitlines()
    header = lines[0].lstrip("# ").split(",")
    states = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("svname") not in (None, "", "FRONTEND", "BACKEND") and row.get("pxname") != "stats":
            states[row["svname"]] = row["status"]
    return states


def wait_for_state(shard: str, wanted: str, timeout: float = STATE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < deadline:
        seen = {lb: shard_states(lb).get(shard, "missing") for lb in LBS}
        if all(state.startswith(wanted) for state in seen.values()):
            return
        time.sleep(1)
    pytest.fail(f"{shard} did not become {wanted} on both HAProxies within {timeout}s: {seen}")


def stick_entries(lb: str) -> dict[str, str]:
    """Room key -> server of every HAProxy stick table, read on the admin socket."""
    host = on(lb)
    tables = [
        line.split()[2].rstrip(",")
        for line in host.check_output(f"echo 'show table' | socat stdio {ADMIN_SOCKET}").splitlines()
        if line.startswith("# table:")
    ]
    assert tables, f"{lb} has no stick table"
    entries = {}
    for table in tables:
        for line in host.check_output(f"echo 'show table {table}' | socat stdio {ADMIN_SOCKET}").splitlines():
            if line.startswith("#") or "key=" not in line:
                continue
            fields = dict(field.split("=", 1) for field in line.split()[1:] if "=" in field)
            entries[fields["key"]] = fields.get("server_key") or fields.get("server_id")
    return entries


def test_both_haproxies_see_every_shard_up() -> None:
    for lb in LBS:
        states = shard_states(lb)
        for shard in SHARDS:
            assert states.get(shard) == "UP", f"{lb}: {states}"


def test_a_room_lands_on_the_same_shard_through_either_haproxy(addresses: dict[str, str]) -> None:
    for room in unique_rooms(12, "same"):
        first = served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}"])
        again = served_by(LBS[1], addresses[LBS[1]], [f"/xmpp-websocket?room={room}", f"/{room}"])
        shards = {shard for _unused, shard in first + again}
        assert len(shards) == 1, f"room {room}: {first + again}"
        assert shards <= set(SHARDS), f"room {room}: {first + again}"
        assert first[0][0] == 200, f"room {room}: /http-bind answered {first[0][0]}"


def test_the_room_in_the_path_and_in_the_query_are_the_same_room(addresses: dict[str, str]) -> None:
    for room in unique_rooms(12, "path"):
        results = served_by(LBS[1], addresses[LBS[1]], [f"/{room}"])
        results += served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}", f"/{room}?x=1"])
        assert len({shard for _unused, shard in results}) == 1, f"room {room}: {results}"


def test_a_tenants_room_and_its_conference_request_go_to_the_rooms_shard(addresses: dict[str, str]) -> None:
    """Jitsi Meet adds ?room= to its conference request over HTTP (no Jicofo answers it here: nginx says 502,
    and names its shard), and a tenant's room is routed as the tenant's."""
    for room in unique_rooms(8, "request"):
        results = served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}"])
        results += served_by(LBS[1], addresses[LBS[1]], [f"/conference-request/v1?room={room}"])
        assert len({shard for _unused, shard in results}) == 1, f"room {room}: {results}"
    for room in unique_rooms(8, "tenant"):
        results = served_by(LBS[0], addresses[LBS[0]], [f"/school/{room}"])
        results += served_by(LBS[1], addresses[LBS[1]], [f"/school/http-bind?room={room}"])
        assert len({shard for _unused, shard in results}) == 1, f"room {room}: {results}"
        assert results[-1][0] == 200, f"room {room}: /school/http-bind answered {results[-1][0]}"


def test_new_rooms_spread_over_both_shards(addresses: dict[str, str]) -> None:
    rooms = unique_rooms(60, "spread")
    results = served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}" for room in rooms[::2]])
    results += served_by(LBS[1], addresses[LBS[1]], [f"/http-bind?room={room}" for room in rooms[1::2]])
    counts = collections.Counter(shard for _unused, shard in results)
    assert set(counts) == set(SHARDS), counts
    assert min(counts.values()) >= 15, f"60 rooms spread unevenly: {counts}"


def test_both_peers_stick_tables_agree(addresses: dict[str, str]) -> None:
    rooms = unique_rooms(10, "peers")
    served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}" for room in rooms[:5]])
    served_by(LBS[1], addresses[LBS[1]], [f"/http-bind?room={room}" for room in rooms[5:]])
    time.sleep(2)  # peers push updates asynchronously
    tables = {lb: stick_entries(lb) for lb in LBS}
    for room in rooms:
        assert all(room in tables[lb] for lb in LBS), f"room {room} missing from a table: {tables}"
    assert tables[LBS[0]] == tables[LBS[1]]


def test_verify_passes_on_the_sharded_lab_and_both_peers_agree() -> None:
    result = run_playbook(VERIFY)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(
        r"\(all peers\)\s+haproxy\s+one room, one shard\s+ok\s+every peer sends the room to", output
    )
    for shard in SHARDS:
        assert re.search(rf"{shard}\s+jicofo\s+service\s+not installed", output), output[-4000:]


def test_verify_fails_naming_the_shard_whose_prosody_stopped() -> None:
    shard = on(SHARDS[1])
    shard.check_output("systemctl stop prosody")
    try:
        result = run_playbook(VERIFY)
    finally:
        shard.check_output("systemctl start prosody")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{SHARDS[1]} / prosody prosody / service prosody.service" in output, output[-4000:]


@pytest.mark.parametrize(("shard_index", "service"), [(0, "prosody"), (1, "nginx")])
def test_a_failed_shard_gets_no_new_rooms_until_it_recovers(
    addresses: dict[str, str], shard_index: int, service: str
) -> None:
    failed, healthy = SHARDS[shard_index], SHARDS[1 - shard_index]
    on(failed).check_output(f"systemctl stop {service}")
    try:
        wait_for_state(failed, "DOWN")
        rooms = unique_rooms(20, f"failover-{service}")
        results = served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}" for room in rooms[:10]])
        results += served_by(LBS[1], addresses[LBS[1]], [f"/http-bind?room={room}" for room in rooms[10:]])
        assert {shard for _unused, shard in results} == {healthy}, results
        assert {status for status, _unused in results} == {200}, results
    finally:
        on(failed).check_output(f"systemctl start {service}")
    wait_for_state(failed, "UP")
    rooms = unique_rooms(30, f"recovered-{service}")
    results = served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}" for room in rooms])
    assert {shard for _unused, shard in results} == set(SHARDS), f"{failed} got no new rooms after recovering"
