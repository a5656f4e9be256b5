"""Autoscaled bridges (playbooks/pool_member.yml): containers started as members of the pool lab-pool (two
slots, molecule.yml) each take a different slot from the registry on the signalling node, render that slot's
identity and ports, and log in to the shard's bridge Prosody with the credentials in their jvb.conf; a member
that leaves frees its slot, and the next member takes it.

What the lab cannot show: the videobridge itself joining the brewery (Jitsi's package is not installed here,
so the instances are configured, not started). The graceful stop a leaving member's units go through is
tested on a running instance by molecule:jvb.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
import yaml
from meetops_test_helpers import hocon, on, remove_container, run_playbook, start_container
from test_topologies import login_as_a_bridge_would

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
SIGNAL = RUNNER.get_hosts("signal")[0]
BRIDGE = RUNNER.get_hosts("videobridge")[0]
DOMAIN = "meet.topologies.test"
POOL = "lab-pool"
MEMBERS = ("topologies-pool-a", "topologies-pool-b", "topologies-pool-c")
NETWORK = "meetops-topologies"
IMAGE = "localhost/meetops-jitsi-lab:deb13"
PLAYBOOK = str(Path(__file__).resolve().parents[4] / "playbooks" / "pool_member.yml")

testinfra_hosts = [SIGNAL]


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """An inventory of the pool's members (the group's variables are the scenario's, molecule.yml), and
    the containers, removed at the end whatever happened."""
    inventory = tmp_path_factory.mktemp("pool") / "members.yml"
    hosts = {name: {"ansible_connection": "ansible.builtin.ssh"} for name in MEMBERS}
    inventory.write_text(yaml.safe_dump({"videobridge_pool": {"hosts": hosts}}))
    try:
        yield str(inventory)
    finally:
        for name in MEMBERS:
            remove_container(name)


def run_members(inventory: str, limit: str, *args: str):
    result = run_playbook(PLAYBOOK, "--limit", limit, *args, extra_inventories=(inventory,))
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result.stdout


def registry() -> dict:
    listing = on(SIGNAL).run(f"meetops-jvb-pool list {POOL}")
    assert listing.rc == 0, listing.stderr
    return {int(slot): claim["member"] for slot, claim in json.loads(listing.stdout)["slots"].items()}


def assert_member_runs_slot(inventory: str, member: str, slot: int) -> None:
    host = on(member)
    instances = host.check_output("ls /etc/jitsi/videobridge").split()
    assert instances == [f"jvb{slot}"], instances
    settings = hocon(host, f"/etc/jitsi/videobridge/jvb{slot}/jvb.conf", "videobridge")
    login = settings["apis"]["xmpp-client"]["configs"]["shard"]
    assert login["muc_nickname"] == f"{POOL}-jvb{slot}"
    assert settings["websockets"]["server-id"] == f"{POOL}-jvb{slot}"
    # The pool's ports (each member alone on its machine): the plan's defaults.
    assert settings["ice"]["udp"]["port"] == 10000
    assert settings["http-servers"]["private"]["port"] == 8080
    login_as_a_bridge_would(member, login, extra_inventories=(inventory,))


def test_pool_members_take_free_slots_and_a_leaving_member_frees_its_own(members):
    first, second, third = MEMBERS
    # Started one after another; they join in one run, so the two claims reach the registry at once.
    start_container(first, IMAGE, NETWORK)
    start_container(second, IMAGE, NETWORK)
    run_members(members, f"{first}:{second}")
    slots = registry()
    assert sorted(slots) == [1, 2], slots
    assert sorted(slots.values()) == [first, second], slots
    for slot, member in slots.items():
        assert_member_runs_slot(members, member, slot)

    # A run again changes nothing: each member keeps its slot.
    again = run_members(members, f"{first}:{second}")
    assert registry() == slots
    assert "changed=0" in again, again[-3000:]

    # Full: a third member would find no slot, and the registry says so, naming the holders.
    full = on(SIGNAL).run(f"meetops-jvb-pool claim {POOL} {third} --slots 2 --check")
    assert full.rc == 1
    assert f"pool '{POOL}' is full" in full.stderr
    assert first in full.stderr

    # Scale-in: the member holding slot 1 leaves (graceful stop of its bridge, slot given back) and goes.
    leaving = next(member for slot, member in slots.items() if slot == 1)
    left = run_members(members, leaving, "-e", "pool_member_leave=true")
    assert "slot 1 is free for the next member" in left
    assert registry() == {2: slots[2]}
    remove_container(leaving)

    # Scale-out: the next member takes the freed slot.
    start_container(third, IMAGE, NETWORK)
    run_members(members, third)
    assert registry() == {1: third, 2: slots[2]}
    assert_member_runs_slot(members, third, 1)
