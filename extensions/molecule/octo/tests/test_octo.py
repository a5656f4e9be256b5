"""Octo over WireGuard: three bridge hosts in a WireGuard mesh, relays held to it by nftables, a fourth added.

The tunnels run on wireguard-go (the containers have no WireGuard kernel module). The videobridge cannot run
here (no Jitsi package), so a real UDP listener (an echo server, started with systemd-run) takes a bridge's
media port where the relay test needs one. The tests run in file order: first the three-host mesh, then a
re-run of the play, then the fourth host joins, then restarts.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import time
from functools import cache
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
import yaml
from meetops_test_helpers import on, run_playbook

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
MESH = sorted(RUNNER.get_hosts("mesh"))
SPARE = sorted(RUNNER.get_hosts("spare"))
testinfra_hosts = MESH

SCENARIO = Path(__file__).resolve().parents[1]
CONVERGE = SCENARIO / "converge.yml"
GROUP_VARS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]
IFACE = GROUP_VARS["all"]["wireguard_interface"]
NETWORK = GROUP_VARS["all"]["wireguard_network"]
KEY = f"/etc/wireguard/{IFACE}.key"
CONF = f"/etc/wireguard/{IFACE}.conf"
UNIT = f"wg-quick@{IFACE}.service"
TABLE = "meetops_jvb_relay"
ECHO_UNIT = "octo-echo"

# Render a HOCON file as JSON with ruby-hocon, a port of the library the videobridge reads jvb.conf with.
HOCON_TO_JSON = (
    "require 'hocon'; require 'hocon/config_factory'; require 'hocon/config_render_options'; "
    "print Hocon::ConfigFactory.parse_file(ARGV[0]).resolve.root.render(Hocon::ConfigRenderOptions.concise)"
)

# A UDP client run on a host: sends one datagram from a connected socket and reports what came back, or the
# error. An ICMP port unreachable answer surfaces as ECONNREFUSED on a connected UDP socket.
UDP_CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
try:
    s.send(b"relay-probe")
    print(json.dumps({"reply": s.recv(100).decode(), "source": s.getsockname()[0]}))
except OSError as error:
    print(json.dumps({"error": type(error).__name__, "errno": error.errno, "source": s.getsockname()[0]}))
"""

# The listener standing in for a videobridge's media port: a UDP echo on every address.
UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""


def name(host) -> str:
    return host.backend.get_hostname()


def overlay_ip(hostname: str) -> str:
    address = on(hostname).check_output(f"awk -F' *= *' '$1 == \"Address\" {{print $2}}' {CONF}")
    return address.split("/")[0]


def public_ip(hostname: str) -> str:
    out = on(hostname).check_output("ip -4 -o addr show dev eth0")
    return re.search(r"inet (\S+)/", out).group(1)


def public_key(hostname: str) -> str:
    return on(hostname).check_output(f"wg show {IFACE} public-key").strip()


def udp_probe(source: str, target_ip: str, port: int) -> dict:
    out = on(source).check_output(f"python3 -c {shlex.quote(UDP_CLIENT)} {target_ip} {port}")
    return json.loads(out)


def ping(source: str, target_ip: str):
    return on(source).run(f"ping -c 2 -W 3 {target_ip}")


def wait_for_handshakes(hostname: str, peers: int, timeout: int = 60) -> dict[str, int]:
    """Peer public key -> latest handshake (epoch seconds), once every peer has had one."""
    deadline = time.time() + timeout
    while True:
        out = on(hostname).check_output(f"wg show {IFACE} latest-handshakes")
        stamps = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}
        if (len(stamps) == peers and all(stamps.values())) or time.time() > deadline:
            return stamps
        time.sleep(2)


@cache
def jvb_confs(hostname: str) -> dict[str, dict]:
    """Instance name -> parsed jvb.conf."""
    host = on(hostname)
    names = host.check_output("ls /etc/jitsi/videobridge").split()
    confs = {}
    for instance in names:
        path = f"/etc/jitsi/videobridge/{instance}/jvb.conf"
        if host.file(path).exists:
            confs[instance] = json.loads(host.check_output(f"ruby -e {shlex.quote(HOCON_TO_JSON)} {path}"))
    return confs


def media_ports(hostname: str) -> list[int]:
    return sorted(conf["videobridge"]["ice"]["udp"]["port"] for conf in jvb_confs(hostname).values())


def region_of(hostname: str) -> str:
    group = "eu" if hostname in RUNNER.get_hosts("eu") else "us"
    return GROUP_VARS[group]["region"]


def reject_counter(hostname: str) -> int:
    """Packets the rule refusing the peers' public addresses has counted."""
    out = on(hostname).check_output(f"nft list chain inet {TABLE} input")
    match = re.search(r"ip saddr @peers_ipv4 udp dport @relay_ports counter packets (\d+)", out)
    assert match, out
    return int(match.group(1))


class Echo:
    """A UDP echo on a host's port for the duration of a with block, as a transient systemd unit."""

    def __init__(self, hostname: str, port: int):
        self.host = on(hostname)
        self.port = port

    def __enter__(self):
        self.host.run(f"systemctl stop {ECHO_UNIT}")
        self.host.check_output(
            f"systemd-run --unit={ECHO_UNIT} --collect python3 -c {shlex.quote(UDP_ECHO)} {self.port}"
        )
        for _unused in range(30):
            if f":{self.port} " in self.host.check_output("ss -H -uln"):
                return self
            time.sleep(0.5)
        raise AssertionError(f"the echo listener did not bind udp/{self.port}")

    def __exit__(self, *exc):
        self.host.run(f"systemctl stop {ECHO_UNIT}")


def run_converge(*args: str, **extra_vars) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, "--diff", *args, "-e", json.dumps(extra_vars), str(CONVERGE)],
        capture_output=True,
        text=True,
        check=False,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """Host -> counters of the PLAY RECAP."""
    found = {}
    for line in output.split("PLAY RECAP", 1)[1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(ok=\d+.*)$", line.strip())
        if match:
            found[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return found


def private_keys(hosts: list[str]) -> dict[str, str]:
    """Each host's private key, read only to search for it elsewhere. Read with podman directly, not through
    testinfra (which logs command output), and never put in an assertion message."""
    read = [
        subprocess.run(["podman", "exec", h, "cat", KEY], capture_output=True, text=True, check=True)
        for h in hosts
    ]
    return {h: result.stdout.strip() for h, result in zip(hosts, read, strict=True)}


def set_elements(hostname: str, name: str) -> list[str]:
    out = on(hostname).check_output(f"nft list set inet {TABLE} {name}")
    match = re.search(r"elements = \{([^}]*)\}", out)
    return sorted(e.strip() for e in match.group(1).split(",")) if match else []


# --- Keys and files -----------------------------------------------------------------------------------------


def test_private_key_is_roots_alone_and_not_in_the_configuration(host):
    key = host.file(KEY)
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert (host.file("/etc/wireguard").mode, host.file(CONF).mode) == (0o700, 0o600)
    # The public key the interface runs with is the one derived from this file.
    assert host.check_output(f"wg pubkey < {KEY}").strip() == public_key(name(host))
    key_in_configuration = private_keys([name(host)])[name(host)] in host.file(CONF).content_string
    assert not key_in_configuration
    assert "PrivateKey" not in host.file(CONF).content_string


def test_tunnel_runs_on_wireguard_go_under_the_enabled_unit(host):
    unit = host.service(UNIT)
    assert unit.is_enabled
    assert unit.is_running
    # No kernel module here: the interface is a tun device served by wireguard-go.
    assert not host.file("/sys/module/wireguard").exists
    assert "tun" in host.check_output(f"ip -d link show dev {IFACE}")
    assert host.file(f"/var/run/wireguard/{IFACE}.sock").is_socket
    # One wireguard-go process: this interface's.
    assert len(host.check_output("pgrep -x wireguard-go").split()) == 1
    environment = host.check_output(f"systemctl show -p Environment {UNIT}")
    assert "WG_QUICK_USERSPACE_IMPLEMENTATION=/usr/bin/wireguard-go" in environment


def test_configuration_lists_every_other_member_once(host):
    me = name(host)
    content = host.file(CONF).content_string
    keys = re.findall(r"^PublicKey = (\S+)$", content, re.MULTILINE)
    assert sorted(keys) == sorted(public_key(h) for h in MESH if h != me)
    for peer in MESH:
        if peer != me:
            assert f"Endpoint = {public_ip(peer)}:51820" in content
            assert f"AllowedIPs = {overlay_ip(peer)}/32" in content
    assert content.count("PersistentKeepalive = 25") == len(MESH) - 1


def test_overlay_addresses_are_distinct_and_in_the_network():
    addresses = [overlay_ip(h) for h in MESH]
    assert len(set(addresses)) == len(MESH)
    prefix = NETWORK.rsplit(".", 1)[0] + "."
    assert all(a.startswith(prefix) for a in addresses), addresses


# --- Every pair over the overlay ----------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(MESH, 2)))
def test_every_pair_reaches_each_other_over_the_overlay(source, target):
    target_ip = overlay_ip(target)
    assert f"dev {IFACE}" in on(source).check_output(f"ip route get {target_ip}")
    result = ping(source, target_ip)
    assert result.rc == 0, result.stdout + result.stderr
    assert " 0% packet loss" in result.stdout


def test_recent_handshake_with_every_peer(host):
    stamps = wait_for_handshakes(name(host), len(MESH) - 1)
    assert sorted(stamps) == sorted(public_key(h) for h in MESH if h != name(host))
    now = int(host.check_output("date +%s"))
    assert all(0 < now - stamp < 300 for stamp in stamps.values()), stamps


# --- Relays: configuration and the overlay-only rule set ----------------------------------------------------


def test_relay_configuration_per_bridge(host):
    confs = jvb_confs(name(host))
    assert len(confs) == 2
    for conf in confs.values():
        bridge = conf["videobridge"]
        assert bridge["relay"]["enabled"] is True
        assert bridge["relay"]["region"] == region_of(name(host))
        # The overlay address is not offered to browsers; relays get private addresses regardless.
        assert bridge["ice"]["advertise-private-candidates"] is False
    after = host.check_output("systemctl show -p After -p Wants jitsi-videobridge@jvb1.service")
    assert after.count(UNIT) == 2, after


def test_relay_ids_are_unique_across_the_bridges():
    ids = [conf["videobridge"]["relay"]["relay-id"] for h in MESH for conf in jvb_confs(h).values()]
    assert len(ids) == 2 * len(MESH)
    assert len(set(ids)) == len(ids), ids


def test_rule_set_is_loaded_and_included_at_boot(host):
    table = host.check_output(f"nft list table inet {TABLE}")
    assert set_elements(name(host), "relay_ports") == sorted(str(p) for p in media_ports(name(host)))
    assert set_elements(name(host), "overlay_ipv4") == [NETWORK]
    assert set_elements(name(host), "peers_ipv4") == sorted(public_ip(h) for h in MESH if h != name(host))
    assert f'iifname "{IFACE}" ip saddr @overlay_ipv4 udp dport @relay_ports counter' in table
    assert 'include "/etc/nftables.d/*.nft"' in host.file("/etc/nftables.conf").content_string
    assert host.service("nftables").is_enabled
    # Debian's whole rule set, with this table included, passes nft's check.
    assert host.run("nft -c -f /etc/nftables.conf").rc == 0


@pytest.mark.parametrize("target", MESH)
def test_relay_port_answers_on_the_overlay_and_is_refused_on_the_public_address(target):
    source = next(h for h in MESH if h != target)
    port = media_ports(target)[0]
    refused_before = reject_counter(target)
    with Echo(target, port):
        over = udp_probe(source, overlay_ip(target), port)
        public = udp_probe(source, public_ip(target), port)
        outsider = udp_probe(SPARE[0], public_ip(target), port)
    # Over the overlay, from the other bridge's overlay address: the listener answers.
    assert over == {"reply": "relay-probe", "source": overlay_ip(source)}, over
    # From the other bridge's public address to the public address: ICMP port unreachable (ECONNREFUSED),
    # counted by the rule that refuses the peers' public addresses.
    assert public == {"error": "ConnectionRefusedError", "errno": 111, "source": public_ip(source)}, public
    assert reject_counter(target) > refused_before
    # Anyone else (a browser; here the host not yet in the mesh) still reaches the media port.
    assert outsider == {"reply": "relay-probe", "source": public_ip(SPARE[0])}, outsider


# --- The play again: nothing changes, no private key in its output ------------------------------------------


def test_rerun_changes_nothing_and_never_shows_a_private_key():
    keys = private_keys(MESH)
    result = run_converge("-v")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    counters = recap(output)
    assert sorted(counters) == MESH
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counters.values()), counters
    leaked = [h for h, key in keys.items() if key in output]
    assert not leaked, f"private key of {leaked} in the play output"


def test_private_keys_are_nowhere_on_the_controller():
    keys = private_keys(MESH)
    places = [Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]), Path(INVENTORY).parent]
    leaked = []
    for place in places:
        for path in place.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                data = path.read_bytes()
                leaked += [f"{h} in {path}" for h, key in keys.items() if key.encode() in data]
    assert not leaked


# --- A fourth host joins ------------------------------------------------------------------------------------


def test_adding_a_fourth_host_changes_no_existing_address_or_key():
    before = {h: (overlay_ip(h), public_key(h), on(h).check_output(f"sha256sum {KEY}")) for h in MESH}
    tunnels = {h: on(h).check_output("pgrep -x wireguard-go").strip() for h in MESH}
    keys = private_keys(MESH)

    result = run_converge("-v", octo_add_spare=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert sorted(recap(output)) == sorted(MESH + SPARE)
    assert not [h for h, key in {**keys, **private_keys(SPARE)}.items() if key in output]

    after = {h: (overlay_ip(h), public_key(h), on(h).check_output(f"sha256sum {KEY}")) for h in MESH}
    assert after == before
    # The new peer was added to the running tunnels (wg syncconf), which were not restarted.
    assert {h: on(h).check_output("pgrep -x wireguard-go").strip() for h in MESH} == tunnels
    spare = SPARE[0]
    assert overlay_ip(spare) not in {address for address, _unused, _unused in before.values()}

    everyone = MESH + SPARE
    for source, target in itertools.permutations(everyone, 2):
        if spare in (source, target):
            result = ping(source, overlay_ip(target))
            assert result.rc == 0, f"{source} -> {target}: {result.stdout}{result.stderr}"
    for member in everyone:
        assert len(wait_for_handshakes(member, len(everyone) - 1)) == len(everyone) - 1

    # The existing bridges now refuse the new one's public address on their media ports, and it theirs.
    target = MESH[0]
    port = media_ports(target)[0]
    with Echo(target, port):
        assert udp_probe(spare, public_ip(target), port)["error"] == "ConnectionRefusedError"
        assert udp_probe(spare, overlay_ip(target), port)["reply"] == "relay-probe"
    assert public_ip(spare) in set_elements(target, "peers_ipv4")


# --- Restarts -----------------------------------------------------------------------------------------------


def test_tunnel_comes_back_after_a_unit_restart():
    member = MESH[0]
    on(member).check_output(f"systemctl restart {UNIT}")
    for peer in MESH[1:] + SPARE:
        result = ping(member, overlay_ip(peer))
        assert result.rc == 0, f"{member} -> {peer}: {result.stdout}{result.stderr}"


def test_tunnel_and_rule_set_come_back_after_a_container_restart():
    # Last: the container may come back with another public address (podman's network hands one out anew),
    # which the other members' rule sets learn only at the next run of the play.
    member = MESH[-1]
    subprocess.run(["podman", "restart", member], check=True, capture_output=True)
    host = on(member)
    deadline = time.time() + 90
    while host.run("systemctl is-system-running").stdout.strip() not in ("running", "degraded"):
        assert time.time() < deadline, "systemd did not finish booting"
        time.sleep(2)
    assert host.service(UNIT).is_running
    assert host.run(f"nft list table inet {TABLE}").rc == 0
    for peer in [h for h in MESH + SPARE if h != member]:
        result = ping(member, overlay_ip(peer))
        assert result.rc == 0, f"{member} -> {peer}: {result.stdout}{result.stderr}"


def test_verify_sees_the_mesh_up_and_names_what_this_scenario_lacks():
    """playbooks/verify.yml on the bridges: every WireGuard mesh member has fresh handshakes with every peer.
    The scenario has no signalling node (its shard's host does not exist), so the bridges' logins to it fail
    and verify.yml says so; nothing else may fail."""
    result = run_playbook(str(SCENARIO.parents[2] / "playbooks" / "verify.yml"), "--limit", ",".join(MESH))
    output = result.stdout + result.stderr
    for bridge in MESH:
        assert re.search(rf"{bridge}\s+wireguard {IFACE}\s+handshakes with every peer\s+ok", output), output[
            -4000:
        ]
        assert re.search(rf"{bridge}\s+jvb jvb1\s+health on port \d+\s+not installed", output), output[-4000:]
    failed = [line for line in output.splitlines() if line.strip().startswith('"') and "  FAIL  " in line]
    assert failed, output[-4000:]
    assert all("jvb credentials" in line for line in failed), failed
    assert result.returncode != 0
