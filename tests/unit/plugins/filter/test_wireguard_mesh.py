"""Unit tests for the meetops.jitsi.wireguard_mesh filter."""

from __future__ import annotations

import base64
from typing import Any

import netaddr
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.meetops.jitsi.plugins.filter import wireguard_mesh as module
from ansible_collections.meetops.jitsi.plugins.filter.wireguard_mesh import FilterModule, wireguard_mesh

NET = "10.99.0.0/24"


def key(n: int) -> str:
    """A valid, canonical WireGuard public key derived from ``n``."""
    return base64.b64encode(n.to_bytes(32, "big")).decode()


def member(n: int, **extra: Any) -> dict[str, Any]:
    return {"public_key": key(n), "endpoint": f"198.51.100.{n % 250 + 1}", **extra}


def error_of(hosts: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(AnsibleFilterError) as excinfo:
        wireguard_mesh(hosts, *args, **kwargs)
    return str(excinfo.value)


# ---------------------------------------------------------------------------------------------
# Documented behaviour
# ---------------------------------------------------------------------------------------------


def test_documented_example() -> None:
    task = yaml.safe_load(module.EXAMPLES)[0]
    template = task["ansible.builtin.set_fact"]["jitsi_wireguard_mesh"]
    assert "wireguard_mesh('10.99.0.0/24')" in template
    members = task["vars"]["members"]

    result = wireguard_mesh(members, "10.99.0.0/24")

    key_a, key_b, key_c = (members[h]["public_key"] for h in ("jvb-a", "jvb-b", "jvb-c"))
    peer_a = {
        "name": "jvb-a",
        "public_key": key_a,
        "endpoint": "198.51.100.11:51821",
        "allowed_ips": ["10.99.0.2/32"],
        "persistent_keepalive": 25,
    }
    peer_b = {
        "name": "jvb-b",
        "public_key": key_b,
        "endpoint": "198.51.100.12:51820",
        "allowed_ips": ["10.99.0.1/32"],
        "persistent_keepalive": 25,
    }
    peer_c = {
        "name": "jvb-c",
        "public_key": key_c,
        "endpoint": "[2001:db8::13]:51820",
        "allowed_ips": ["10.99.0.10/32"],
        "persistent_keepalive": 25,
    }
    assert result == {
        "jvb-a": {
            "address": "10.99.0.2/24",
            "ip": "10.99.0.2",
            "listen_port": 51821,
            "peers": [peer_b, peer_c],
        },
        "jvb-b": {
            "address": "10.99.0.1/24",
            "ip": "10.99.0.1",
            "listen_port": 51820,
            "peers": [peer_a, peer_c],
        },
        "jvb-c": {
            "address": "10.99.0.10/24",
            "ip": "10.99.0.10",
            "listen_port": 51820,
            "peers": [peer_a, peer_b],
        },
    }


def test_docs_are_yaml() -> None:
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["name"] == "wireguard_mesh"
    assert doc["version_added"] == "0.1.0"
    assert set(doc["options"]) == {"_input", "network", "listen_port", "persistent_keepalive"}
    assert "_value" in yaml.safe_load(module.RETURN)


def test_filter_module_exports_filter() -> None:
    assert FilterModule().filters() == {"wireguard_mesh": wireguard_mesh}


def test_empty_input_gives_empty_mesh() -> None:
    assert wireguard_mesh({}, NET) == {}


def test_mesh_of_one_has_no_peers() -> None:
    assert wireguard_mesh({"solo": member(1)}, NET) == {
        "solo": {"address": "10.99.0.1/24", "ip": "10.99.0.1", "listen_port": 51820, "peers": []}
    }


def test_new_hosts_get_lowest_free_addresses_in_name_order() -> None:
    hosts = {"c": member(3), "a": member(1), "b": member(2, address="10.99.0.2")}
    result = wireguard_mesh(hosts, NET)
    assert {h: v["address"] for h, v in result.items()} == {
        "a": "10.99.0.1/24",
        "b": "10.99.0.2/24",
        "c": "10.99.0.3/24",
    }
    assert list(result) == ["a", "b", "c"]
    assert [p["name"] for p in result["b"]["peers"]] == ["a", "c"]


def test_adding_a_host_that_sorts_first_keeps_existing_addresses() -> None:
    first = wireguard_mesh({"m": member(1), "z": member(2)}, NET)
    assert first["m"]["ip"] == "10.99.0.1"
    assert first["z"]["ip"] == "10.99.0.2"
    again = {
        "m": member(1, current_address=first["m"]["address"]),
        "z": member(2, current_address=first["z"]["address"]),
        "a": member(3),
    }
    second = wireguard_mesh(again, NET)
    assert second["m"]["ip"] == "10.99.0.1"
    assert second["z"]["ip"] == "10.99.0.2"
    assert second["a"]["ip"] == "10.99.0.3"


def test_removed_host_frees_its_address_for_the_next_new_host() -> None:
    hosts = {"b": member(2, current_address="10.99.0.2/24"), "c": member(3, current_address="10.99.0.3/24")}
    hosts["new"] = member(4)
    assert wireguard_mesh(hosts, NET)["new"]["ip"] == "10.99.0.1"


@pytest.mark.parametrize(
    "current",
    [
        None,
        "",
        "  ",
        [],
        "10.98.0.7/24",  # outside the network, e.g. the network was changed
        "10.99.0.0/24",  # the network address
        "10.99.0.255",  # the broadcast address
        "fd00::7/64",  # other address family
    ],
)
def test_unusable_current_address_gets_a_new_one(current: Any) -> None:
    result = wireguard_mesh(
        {"h": member(1, current_address=current), "x": member(2, address="10.99.0.1")}, NET
    )
    assert result["h"]["ip"] == "10.99.0.2"


@pytest.mark.parametrize(
    "current",
    ["10.99.0.7", "10.99.0.7/24", "10.99.0.7/16", ["fd00::1/64", "10.99.0.7/24"], "fd00::1/64, 10.99.0.7/24"],
)
def test_current_address_forms(current: Any) -> None:
    assert wireguard_mesh({"h": member(1, current_address=current)}, NET)["h"]["address"] == "10.99.0.7/24"


def test_pin_wins_over_current_address_and_first_name_wins_a_shared_current_address() -> None:
    hosts = {
        "a": member(1, current_address="10.99.0.5/24"),
        "b": member(2, current_address="10.99.0.5/24"),
        "c": member(3, current_address="10.99.0.9/24"),
        "d": member(4, address="10.99.0.9/24"),
    }
    result = wireguard_mesh(hosts, NET)
    assert {h: v["ip"] for h, v in result.items()} == {
        "a": "10.99.0.5",
        "b": "10.99.0.1",
        "c": "10.99.0.2",
        "d": "10.99.0.9",
    }


def test_options_ports_and_keepalive() -> None:
    hosts = {"a": member(1, listen_port="51900"), "b": member(2)}
    result = wireguard_mesh(hosts, NET, listen_port=4000, persistent_keepalive=0)
    assert result["a"]["listen_port"] == 51900
    assert result["b"]["listen_port"] == 4000
    assert result["b"]["peers"][0]["endpoint"] == "198.51.100.2:51900"
    assert result["a"]["peers"][0]["endpoint"] == "198.51.100.3:4000"
    assert result["a"]["peers"][0]["persistent_keepalive"] == 0


def test_ipv6_overlay_and_endpoints() -> None:
    hosts = {
        "a": member(1, endpoint="2001:DB8:0::1"),
        "b": member(2, endpoint="[2001:db8::2]"),
        "c": member(3, endpoint="jvb-c.example.net", current_address="fd00:99::abc/64"),
    }
    result = wireguard_mesh(hosts, "fd00:99::/64")
    assert {h: v["address"] for h, v in result.items()} == {
        "a": "fd00:99::1/64",
        "b": "fd00:99::2/64",
        "c": "fd00:99::abc/64",
    }
    assert [p["endpoint"] for p in result["c"]["peers"]] == ["[2001:db8::1]:51820", "[2001:db8::2]:51820"]
    assert result["a"]["peers"][1] == {
        "name": "c",
        "public_key": key(3),
        "endpoint": "jvb-c.example.net:51820",
        "allowed_ips": ["fd00:99::abc/128"],
        "persistent_keepalive": 25,
    }


@pytest.mark.parametrize(
    ("network", "count", "addresses"),
    [
        ("10.99.0.0/30", 2, ["10.99.0.1/30", "10.99.0.2/30"]),
        ("10.99.0.0/31", 2, ["10.99.0.0/31", "10.99.0.1/31"]),
        ("10.99.0.7/32", 1, ["10.99.0.7/32"]),
        ("fd00::/126", 3, ["fd00::1/126", "fd00::2/126", "fd00::3/126"]),
    ],
)
def test_small_networks_are_used_to_the_last_address(network: str, count: int, addresses: list[str]) -> None:
    hosts = {f"h{i}": member(i) for i in range(count)}
    assert [v["address"] for v in wireguard_mesh(hosts, network).values()] == addresses
    hosts["one-too-many"] = member(99)
    message = error_of(hosts, network)
    assert network in message
    assert f"room for {count} hosts" in message
    assert f"has {count + 1}" in message


def test_extra_allowed_ips() -> None:
    hosts = {
        "a": member(1, allowed_ips=["192.0.2.0/24", "2001:db8:5::/48", "192.0.2.0/24", "198.18.0.1"]),
        "b": member(2),
    }
    result = wireguard_mesh(hosts, NET)
    assert result["b"]["peers"][0]["allowed_ips"] == [
        "10.99.0.1/32",
        "192.0.2.0/24",
        "198.18.0.1/32",
        "2001:db8:5::/48",
    ]
    assert result["a"]["peers"][0]["allowed_ips"] == ["10.99.0.2/32"]


@pytest.mark.parametrize(
    ("extra_b", "offenders"),
    [
        (["192.0.2.128/25"], ("192.0.2.0/24", "192.0.2.128/25")),
        (["10.99.0.0/24"], ("10.99.0.1/32", "10.99.0.0/24")),
    ],
)
def test_overlapping_allowed_ips_fail(extra_b: list[str], offenders: tuple[str, str]) -> None:
    hosts = {"a": member(1, allowed_ips=["192.0.2.0/24"]), "b": member(2, allowed_ips=extra_b)}
    message = error_of(hosts, NET)
    assert "'a'" in message
    assert "'b'" in message
    assert all(o in message for o in offenders)


def test_missing_netaddr_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "HAS_NETADDR", False)
    assert "pip install netaddr" in error_of({"a": member(1)}, NET)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "hint"),
    [
        ("10.99.0.0", "CIDR"),
        ("not-a-network/24", "CIDR"),
        ("10.99.0.0/33", "CIDR"),
        ("10.99/16", "CIDR"),
        ("", "CIDR"),
        (None, "CIDR"),
        ("10.99.0.1/24", "did you mean '10.99.0.0/24'"),
    ],
)
def test_bad_network(network: Any, hint: str) -> None:
    message = error_of({"a": member(1)}, network)
    assert repr(network) in message
    assert hint in message


@pytest.mark.parametrize("address", ["10.98.0.5", "10.99.1.5/24", "fd00::5", "10.99.0.0", "10.99.0.255"])
def test_pinned_address_outside_network(address: str) -> None:
    message = error_of({"ok": member(1), "pinned-host": member(2, address=address)}, NET)
    assert "'pinned-host'" in message
    assert address in message
    assert NET in message
    assert "'ok'" not in message


def test_pinned_address_with_other_prefix_length() -> None:
    message = error_of({"h": member(1, address="10.99.0.5/16")}, NET)
    assert "'h'" in message
    assert "10.99.0.5/16" in message
    assert "'10.99.0.5'" in message


def test_pinned_address_garbage() -> None:
    message = error_of({"h": member(1, address="ten.99.0.5")}, NET)
    assert "'h'" in message
    assert "ten.99.0.5" in message


def test_two_hosts_pinned_to_one_address() -> None:
    hosts = {
        "x": member(1),
        "jvb2": member(2, address="10.99.0.4"),
        "jvb1": member(3, address="10.99.0.4/24"),
    }
    message = error_of(hosts, NET)
    assert "'jvb1'" in message
    assert "'jvb2'" in message
    assert "10.99.0.4" in message
    assert "'x'" not in message


def test_network_exhausted() -> None:
    hosts = {f"h{i}": member(i) for i in range(7)}
    message = error_of(hosts, "10.99.0.0/29")
    assert "10.99.0.0/29" in message
    assert "room for 6 hosts" in message
    assert "has 7" in message


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_public_key(value: Any) -> None:
    hosts = {"good": member(1), "keyless": {"endpoint": "192.0.2.1", "public_key": value}}
    message = error_of(hosts, NET)
    assert "'keyless'" in message
    assert "public_key" in message
    assert "role" in message
    assert "'good'" not in message


def test_absent_public_key() -> None:
    message = error_of({"keyless": {"endpoint": "192.0.2.1"}}, NET)
    assert "'keyless'" in message
    assert "public_key" in message
    assert "role" in message


@pytest.mark.parametrize(
    "value",
    [
        "not-a-key",
        key(1)[:-1],  # 43 characters
        "b" * 43 + "=",  # non-canonical: stray bits in the last character, rejected by wg(8)
        base64.b64encode(b"x" * 31).decode(),
        42,
    ],
)
def test_malformed_public_key(value: Any) -> None:
    message = error_of({"h": {"endpoint": "192.0.2.1", "public_key": value}}, NET)
    assert "'h'" in message
    assert str(value) in message


def test_public_key_whitespace_is_stripped() -> None:
    hosts = {"a": member(1, public_key=key(1) + "\n"), "b": member(2)}
    assert wireguard_mesh(hosts, NET)["b"]["peers"][0]["public_key"] == key(1)


def test_duplicate_public_keys() -> None:
    hosts = {"first": member(1), "middle": member(2), "copy": member(3, public_key=key(1))}
    message = error_of(hosts, NET)
    assert "'first'" in message
    assert "'copy'" in message
    assert key(1) in message
    assert "'middle'" not in message


@pytest.mark.parametrize("port", [0, 65536, -1, "http", "", True, 1.5, "51820/udp", "5²"])
def test_bad_default_listen_port(port: Any) -> None:
    message = error_of({"a": member(1)}, NET, listen_port=port)
    assert "listen_port" in message
    assert repr(port) in message
    assert "65535" in message


@pytest.mark.parametrize("port", [0, 70000, "abc", False, [51820]])
def test_bad_host_listen_port(port: Any) -> None:
    message = error_of({"ok": member(1), "badport": member(2, listen_port=port)}, NET)
    assert "'badport'" in message
    assert repr(port) in message
    assert "65535" in message


@pytest.mark.parametrize("keepalive", [-1, 65536, "often", None, True])
def test_bad_keepalive(keepalive: Any) -> None:
    message = error_of({"a": member(1)}, NET, persistent_keepalive=keepalive)
    assert "persistent_keepalive" in message
    assert repr(keepalive) in message


@pytest.mark.parametrize("endpoint", [None, "", "198.51.100.1:51820", "jvb.example.net:51820", "a b"])
def test_bad_endpoint(endpoint: Any) -> None:
    message = error_of({"ok": member(1), "ep": member(2, endpoint=endpoint)}, NET)
    assert "'ep'" in message
    assert repr(endpoint) in message


@pytest.mark.parametrize(
    ("hosts", "fragment"),
    [
        (["a", "b"], "dictionary"),
        ({"a": "not-a-dict"}, "'a'"),
        ({"": member(1)}, "''"),
        ({"a": member(1, allowed_ips="192.0.2.0/24")}, "list"),
        ({"a": member(1, allowed_ips=["192.0.2.1/24"])}, "did you mean '192.0.2.0/24'"),
        ({"a": member(1, allowed_ips=["nonsense"])}, "'nonsense'"),
        ({"a": member(1, current_address="garbage")}, "'garbage'"),
    ],
)
def test_other_bad_input(hosts: Any, fragment: str) -> None:
    assert fragment in error_of(hosts, NET)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

NETWORKS = (
    "10.99.0.0/24",
    "10.99.0.0/28",
    "192.168.7.0/29",
    "172.16.0.0/31",
    "fd00:99::/120",
    "fd00:99::/64",
)
NAMES = st.text(min_size=1, max_size=8)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def width(net: netaddr.IPNetwork) -> int:
    return 32 if net.version == 4 else 128


def usable(ip: netaddr.IPAddress, net: netaddr.IPNetwork) -> bool:
    """Usable host addresses, written independently of the plugin."""
    if ip.version != net.version or ip not in net:
        return False
    if net.prefixlen >= width(net) - 1:  # /31, /32, /127, /128: every address
        return True
    reserved = {net.network} if net.version == 6 else {net.network, net.broadcast}
    return ip not in reserved


def usable_count(net: netaddr.IPNetwork) -> int:
    if net.prefixlen >= width(net) - 1:
        return net.size
    return net.size - (1 if net.version == 6 else 2)


def pool(net: netaddr.IPNetwork) -> st.SearchStrategy[netaddr.IPAddress]:
    """Addresses near the start of the network, where collisions with assigned addresses happen."""
    return st.integers(net.first, min(net.last, net.first + 40)).map(
        lambda i: netaddr.IPAddress(i, net.version)
    )


@st.composite
def meshes(
    draw: st.DrawFn, max_hosts: int = 10, networks: tuple[str, ...] = NETWORKS
) -> tuple[str, dict[str, Any]]:
    """A network and a valid mesh input: random names, pins, current addresses, ports, endpoints."""
    network = draw(st.sampled_from(networks))
    net = netaddr.IPNetwork(network)
    names = draw(st.lists(NAMES, unique=True, max_size=min(max_hosts, usable_count(net))))
    keys = draw(
        st.lists(st.binary(min_size=32, max_size=32), unique=True, min_size=len(names), max_size=len(names))
    )
    usable_pool = pool(net).filter(lambda ip: usable(ip, net))
    pinned_names = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    pins = draw(st.lists(usable_pool, unique=True, min_size=len(pinned_names), max_size=len(pinned_names)))
    hosts: dict[str, Any] = {}
    for i, name in enumerate(names):
        data: dict[str, Any] = {
            "public_key": base64.b64encode(keys[i]).decode(),
            "endpoint": draw(st.sampled_from([f"192.0.2.{i + 1}", f"2001:db8::{i + 1:x}", f"h{i}.example"])),
        }
        port = draw(st.one_of(st.none(), st.integers(1, 65535)))
        if port is not None:
            data["listen_port"] = port
        current = draw(
            st.one_of(
                st.none(),
                st.just(""),
                pool(net).map(str),
                pool(net).map(lambda ip: f"{ip}/{net.prefixlen}"),
                st.sampled_from(["203.0.113.9/24", "fe80::9/64"]),
            )
        )
        if current is not None:
            data["current_address"] = current
        hosts[name] = data
    for name, ip in zip(pinned_names, pins, strict=True):
        hosts[name]["address"] = str(ip)
    return network, hosts


def bare_ip(address: str) -> netaddr.IPAddress:
    return netaddr.IPAddress(address.partition("/")[0])


@PROPERTY_SETTINGS
@given(meshes())
def test_property_addresses_unique_usable_and_well_assigned(case: tuple[str, dict[str, Any]]) -> None:
    network, hosts = case
    net = netaddr.IPNetwork(network)
    result = wireguard_mesh(hosts, network)
    assert set(result) == set(hosts)
    ips = {name: bare_ip(entry["address"]) for name, entry in result.items()}
    assert len(set(ips.values())) == len(ips)
    for name, entry in result.items():
        assert entry["address"] == f"{ips[name]}/{net.prefixlen}"
        assert entry["ip"] == str(ips[name])
        assert usable(ips[name], net)
        if "address" in hosts[name]:
            assert ips[name] == netaddr.IPAddress(hosts[name]["address"])
    # A usable current address is kept unless a pin or a host sorting first holds it.
    claimed = {ip for name, ip in ips.items() if "address" in hosts[name]}
    for name in sorted(hosts):
        current = hosts[name].get("current_address")
        if "address" in hosts[name] or not current:
            continue
        ip = bare_ip(current)
        if usable(ip, net) and ip not in claimed:
            assert ips[name] == ip
            claimed.add(ip)
    # Hosts that got new addresses got the lowest free ones, in name order.
    fresh = sorted(name for name in hosts if ips[name] not in claimed)
    fresh_ips = [ips[name] for name in fresh]
    assert fresh_ips == sorted(fresh_ips)
    if fresh_ips:
        below = [ip for ip in netaddr.iter_iprange(net.first, fresh_ips[-1]) if usable(ip, net)]
        assert set(below) <= set(ips.values())


@PROPERTY_SETTINGS
@given(meshes())
def test_property_peers_are_all_other_hosts_symmetrically(case: tuple[str, dict[str, Any]]) -> None:
    network, hosts = case
    net = netaddr.IPNetwork(network)
    result = wireguard_mesh(hosts, network)
    for name, entry in result.items():
        assert entry["listen_port"] == hosts[name].get("listen_port", 51820)
        peers = entry["peers"]
        assert [p["name"] for p in peers] == sorted(set(hosts) - {name})
        for peer in peers:
            other = peer["name"]
            assert peer["public_key"] == hosts[other]["public_key"]
            assert peer["allowed_ips"] == [f"{result[other]['ip']}/{width(net)}"]
            assert peer["persistent_keepalive"] == 25
            host, _unused, port = peer["endpoint"].rpartition(":")
            assert int(port) == result[other]["listen_port"]
            assert host.strip("[]") == hosts[other]["endpoint"]
            assert any(p["name"] == name for p in result[other]["peers"])  # symmetry


@st.composite
def grown_meshes(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A mesh, and new hosts (any names, no pins, no current address) to add to it later."""
    network, hosts = draw(meshes(max_hosts=8, networks=["10.99.0.0/27", "10.99.0.0/24", "fd00:99::/64"]))
    names = draw(st.lists(NAMES.filter(lambda n: n not in hosts), unique=True, max_size=8))
    taken = {base64.b64decode(data["public_key"]) for data in hosts.values()}
    fresh_keys = st.binary(min_size=32, max_size=32).filter(lambda k: k not in taken)
    keys = draw(st.lists(fresh_keys, unique=True, min_size=len(names), max_size=len(names)))
    new = {
        name: {"public_key": base64.b64encode(keys[i]).decode(), "endpoint": f"n{i}.example"}
        for i, name in enumerate(names)
    }
    return network, hosts, new


@PROPERTY_SETTINGS
@given(grown_meshes())
def test_property_adding_hosts_keeps_existing_addresses(
    case: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    network, hosts, new = case
    before = wireguard_mesh(hosts, network)
    fed_back = {name: {**data, "current_address": before[name]["address"]} for name, data in hosts.items()}
    after = wireguard_mesh({**fed_back, **new}, network)
    for name in hosts:
        assert after[name]["address"] == before[name]["address"]
    # Feeding the addresses back without adding hosts changes nothing at all.
    assert wireguard_mesh(fed_back, network) == before
