"""playbooks/upgrade.yml on the sharded lab while a real client holds a room on the first shard.

The client is the focus account logged in to shard1's Prosody over c2s, sitting in a conference room whose
requests HAProxy sends to shard1. While the playbook has shard1 drained on both peers, new rooms go to
shard2 only, the held room's requests still reach shard1, and the playbook waits on the room count; when
the client leaves, the playbook goes on, upgrades the shard (the same pins: nothing to change), checks it
and puts it back. The figures it reports are printed for the README.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time

import pytest
from meetops_test_helpers import INVENTORY, on, stored_password
from test_sharding import DOMAIN, LBS, SHARDS, served_by, shard_states, unique_rooms

AUTH = f"auth.{DOMAIN}"
CONFERENCE = f"conference.{DOMAIN}"
# The playbook waits at most this long for the held room; the test makes the client leave well before.
ROOMS_WAIT = 240
PLAYBOOK_TIMEOUT = 900

testinfra_hosts = LBS[:1]


def room_count(shard: str) -> int:
    output = on(shard).check_output(f"prosodyctl shell {shlex.quote(f'muc:list({CONFERENCE!r})')}")
    counts = re.findall(r"([0-9]+) rooms?\s*$", output, re.M)
    assert counts, output
    return int(counts[-1])


def a_room_placed_on(shard: str, address: str) -> str:
    """A new room name that HAProxy places on SHARD (and now remembers there)."""
    for room in unique_rooms(20, "held"):
        if served_by(LBS[0], address, [f"/http-bind?room={room}"]) == [(200, shard)]:
            return room
    pytest.fail(f"none of 20 new rooms went to {shard}")


def wait_until(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"{what} did not happen within {timeout} s"
        time.sleep(0.5)
    return time.monotonic() - start


def states(shard: str) -> set[str]:
    return {shard_states(lb).get(shard, "missing").split()[0] for lb in LBS}


def test_upgrade_drains_each_shard_waits_for_its_rooms_and_puts_it_back(addresses: dict[str, str]) -> None:
    drained, other = SHARDS
    held = a_room_placed_on(drained, addresses[LBS[0]])
    client = on(drained)
    password = stored_password(DOMAIN, f"focus@{AUTH}")
    client.check_output(
        f"XMPP_PASSWORD={shlex.quote(password)} setsid -f timeout {ROOMS_WAIT + 60} "
        f"xmpp-probe muc focus@{AUTH} {held}@{CONFERENCE} --hold {ROOMS_WAIT + 30} >/dev/null 2>&1"
    )
    wait_until(lambda: room_count(drained) == 1, 30, f"the client's room on {drained}")
    assert room_count(other) == 0

    upgrade = subprocess.Popen(
        [
            "ansible-playbook", "-i", INVENTORY, "-e",
            f'{{"upgrade_rooms_wait_seconds": {ROOMS_WAIT}, "upgrade_rooms_poll_seconds": 2}}',
            "meetops.jitsi.upgrade",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        wait_until(lambda: states(drained) == {"DRAIN"}, 300, f"{drained} drained on both peers")
        assert states(other) == {"UP"}
        # The held room stays where it is through either peer; new rooms go to the other shard only.
        for lb in LBS:
            assert served_by(lb, addresses[lb], [f"/http-bind?room={held}"] * 3) == [(200, drained)] * 3
        new = unique_rooms(20, "during-drain")
        results = served_by(LBS[0], addresses[LBS[0]], [f"/http-bind?room={room}" for room in new[:10]])
        results += served_by(LBS[1], addresses[LBS[1]], [f"/http-bind?room={room}" for room in new[10:]])
        assert results == [(200, other)] * 20, results
        # The playbook waits on the room: a few seconds later the shard is still drained, the room alive.
        time.sleep(6)
        assert upgrade.poll() is None
        assert states(drained) == {"DRAIN"}
        assert room_count(drained) == 1
        # The client leaves; the room ends and the playbook goes on.
        client.run("pkill -TERM -f 'xmpp-probe muc'")
        left = wait_until(lambda: room_count(drained) == 0, 30, "the held room to end")
        output, _unused = upgrade.communicate(timeout=PLAYBOOK_TIMEOUT)
    finally:
        if upgrade.poll() is None:
            upgrade.kill()
        client.run("pkill -KILL -f 'xmpp-probe muc'")
    assert upgrade.returncode == 0, output[-5000:]
    reports = dict(re.findall(r"UPGRADED (\S+): ([^\"\n]+)", output))
    print(f"\nupgrade.yml figures (the room ended {left:.1f} s after its client left): {reports}")
    assert re.match(
        r"drained [0-9.]+ s; 1 conference room\(s\) when drained, 0 left after waiting [0-9.]+ s",
        reports[drained],
    ), reports
    assert reports[other].split("; ", 1)[1].startswith("0 conference room(s) when drained, 0 left"), reports
    # Back in rotation on both peers, and new rooms spread over both shards again.
    assert states(drained) == {"UP"}
    assert states(other) == {"UP"}
    results = served_by(
        LBS[0], addresses[LBS[0]], [f"/http-bind?room={r}" for r in unique_rooms(30, "after")]
    )
    assert {shard for _unused, shard in results} == set(SHARDS), results
    # The held room's shard did not change at any point.
    assert served_by(LBS[1], addresses[LBS[1]], [f"/http-bind?room={held}"]) == [(200, drained)]
    assert password not in output
