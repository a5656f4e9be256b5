# Copyright: meetops.jitsi maintainers
# MIT License (see LICENSE)
"""Filter ``wireguard_mesh``: compute a WireGuard full mesh (addresses and peers) for a set of hosts.

The videobridges of a deployment carry relay (formerly Octo) traffic to each other over a WireGuard
full mesh. Keys are generated on each host and only public keys are gathered; this filter turns those
facts into, per host, the overlay address, the listen port and the peer list that a wg-quick config
needs.

Address assignment is stable: a host keeps its pinned ``address``; else it keeps its
``current_address`` when that is still a usable address of the network and no other host holds it;
only the remaining hosts get new addresses, the lowest free host addresses of the network, handed out
in sorted host-name order. Adding a host therefore never moves an existing one, whatever its name.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

from ansible.errors import AnsibleFilterError

try:
    import netaddr
except ImportError:
    HAS_NETADDR = False
else:
    HAS_NETADDR = True

DOCUMENTATION = r"""
name: wireguard_mesh
short_description: Compute overlay addresses and peer lists of a WireGuard full mesh
version_added: 0.1.0
author: meetops.jitsi maintainers (@meetops)
description:
  - Takes a dictionary of mesh members (host name to per-host data) and returns, for every member,
    its overlay address, its listen port and its peers, i.e. every other member, with public key,
    endpoint and allowed IPs. A wg-quick configuration can be rendered from one host's entry.
  - "Overlay addresses are stable. Each host gets, in this order of precedence:
    its pinned O(_input.address);
    else its O(_input.current_address), if that is a usable host address of O(network) and no pinned
    host or host sorting before it already holds it;
    else a new address. New addresses are the lowest free host addresses of O(network) (the network
    and, for IPv4, broadcast addresses are skipped), handed out in sorted host-name order."
  - Feed each host's address back as O(_input.current_address) (for example read from its existing
    configuration) and adding hosts never changes an existing host's address, even when a new host's
    name sorts first. Removing a host frees its address for later hosts.
  - Peers are sorted by host name. A mesh of one host has an empty peer list.
  - Errors name the offending host or value. The filter fails on an invalid O(network), a pinned
    address outside O(network) or pinned by two hosts, more hosts than O(network) has addresses,
    a missing, malformed or duplicated public key, a missing or malformed endpoint, an invalid port,
    and allowed IPs that overlap between two hosts.
  - Needs the Python library C(netaddr) on the controller.
positional: network
options:
  _input:
    description:
      - Mesh members, host name to a dictionary with the keys below. Other keys are ignored.
    type: dict
    required: true
    suboptions:
      public_key:
        description:
          - The host's WireGuard public key (44 characters of base64), as printed by C(wg pubkey).
        type: str
        required: true
      endpoint:
        description:
          - Host name or IP address the other hosts send to, without port. IPv6 addresses may be
            given with or without brackets.
        type: str
        required: true
      listen_port:
        description:
          - UDP port the host listens on. Defaults to O(listen_port).
        type: int
      address:
        description:
          - Pinned overlay address, with or without a prefix length. With one, it must be the prefix
            length of O(network).
        type: str
      current_address:
        description:
          - The overlay address the host already has, for example read from its existing
            configuration. Empty or absent for a new host. A prefix length is ignored; a list, or a
            comma-separated string as in a wg-quick C(Address) line, may be given, and the first
            entry inside O(network) is used.
        type: raw
      allowed_ips:
        description:
          - Extra networks routed to this host through the mesh, besides its overlay address.
            A bare address means a single host. These must not overlap another host's allowed IPs.
        type: list
        elements: str
  network:
    description:
      - The overlay network in CIDR notation, with no host bits set. IPv4 or IPv6.
    type: str
    required: true
  listen_port:
    description:
      - Listen port of hosts that set no O(_input.listen_port).
    type: int
    default: 51820
  persistent_keepalive:
    description:
      - Persistent keepalive interval in seconds put on every peer. V(0) turns it off.
    type: int
    default: 25
requirements:
  - netaddr
"""

EXAMPLES = r"""
- name: Compute the relay mesh of the videobridges
  ansible.builtin.set_fact:
    jitsi_wireguard_mesh: "{{ members | meetops.jitsi.wireguard_mesh('10.99.0.0/24') }}"
  vars:
    members:
      jvb-b:
        public_key: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbY=
        endpoint: 198.51.100.12
        current_address: 10.99.0.1/24   # read from the existing /etc/wireguard config
      jvb-a:
        public_key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaY=
        endpoint: 198.51.100.11
        listen_port: 51821
      jvb-c:
        public_key: ccccccccccccccccccccccccccccccccccccccccccc=
        endpoint: "2001:db8::13"
        address: 10.99.0.10               # pinned
  # jitsi_wireguard_mesh:
  #   jvb-a:
  #     address: 10.99.0.2/24    # new host: lowest free address, although its name sorts first
  #     ip: 10.99.0.2
  #     listen_port: 51821
  #     peers:
  #       - name: jvb-b
  #         public_key: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbY=
  #         endpoint: 198.51.100.12:51820
  #         allowed_ips: [10.99.0.1/32]
  #         persistent_keepalive: 25
  #       - name: jvb-c
  #         public_key: ccccccccccccccccccccccccccccccccccccccccccc=
  #         endpoint: "[2001:db8::13]:51820"
  #         allowed_ips: [10.99.0.10/32]
  #         persistent_keepalive: 25
  #   jvb-b:
  #     address: 10.99.0.1/24    # kept its current address
  #     ip: 10.99.0.1
  #     listen_port: 51820
  #     peers: [jvb-a (endpoint 198.51.100.11:51821), jvb-c]
  #   jvb-c:
  #     address: 10.99.0.10/24   # pinned
  #     ip: 10.99.0.10
  #     listen_port: 51820
  #     peers: [jvb-a, jvb-b]

- name: Build the input from facts gathered on every videobridge, IPv6 overlay, keepalive off
  ansible.builtin.set_fact:
    jitsi_wireguard_mesh: >-
      {{ dict(groups['jvb'] | zip(groups['jvb'] | map('extract', hostvars, 'jitsi_wireguard_facts')))
         | meetops.jitsi.wireguard_mesh(network='fd00:99::/64', persistent_keepalive=0) }}
  run_once: true
"""

RETURN = r"""
_value:
  description:
    - Host name to the host's mesh settings, for every host of the input.
  type: dict
  contains:
    address:
      description: Overlay address with the prefix length of the network, for wg-quick's C(Address).
      type: str
      sample: 10.99.0.2/24
    ip:
      description: Overlay address without prefix length, for services bound to the mesh.
      type: str
      sample: 10.99.0.2
    listen_port:
      description: UDP port the host listens on.
      type: int
      sample: 51820
    peers:
      description: Every other host, sorted by name. Empty for a mesh of one.
      type: list
      elements: dict
      contains:
        name:
          description: Host name of the peer.
          type: str
        public_key:
          description: Public key of the peer.
          type: str
        endpoint:
          description: C(host:port) of the peer; IPv6 addresses are bracketed.
          type: str
          sample: 198.51.100.12:51820
        allowed_ips:
          description: The peer's overlay address as a single-host network, then its extra allowed IPs.
          type: list
          elements: str
          sample: [10.99.0.1/32]
        persistent_keepalive:
          description: Keepalive interval in seconds, V(0) for off.
          type: int
          sample: 25
"""

DEFAULT_LISTEN_PORT = 51820
DEFAULT_PERSISTENT_KEEPALIVE = 25
_KEY_HINT = (
    "the role gathers public keys from every member host; make sure key generation ran there "
    "and the public key fact reached the filter input"
)


def _fail(msg: str) -> NoReturn:
    raise AnsibleFilterError(msg)


# ---------------------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_number(text: str) -> bool:
    """Whether a string is a non-negative decimal integer (ASCII digits, surrounding blanks allowed)."""
    return text.strip().isascii() and text.strip().isdigit()


def parse_network(value: Any) -> netaddr.IPNetwork:
    """Parse the overlay network: CIDR notation, prefix length required, no host bits set."""
    example = "use CIDR notation such as '10.99.0.0/24' or 'fd00:99::/64'"
    if not isinstance(value, str) or "/" not in value:
        _fail(f"wireguard_mesh: network {value!r} is not a network in CIDR notation; {example}")
    try:
        net = netaddr.IPNetwork(value.strip())
    except (netaddr.AddrFormatError, ValueError, TypeError):
        _fail(f"wireguard_mesh: network {value!r} is not a valid CIDR; {example}")
    if net.ip != net.network:
        _fail(f"wireguard_mesh: network {value!r} has host bits set; did you mean '{net.cidr}'?")
    return net


def parse_port(value: Any, what: str) -> int:
    """Parse a UDP port (1-65535), given as an integer or a string of digits."""
    port: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and _is_number(value):
        port = int(value.strip())
    if port is None or not 1 <= port <= 65535:
        _fail(f"wireguard_mesh: {what} {value!r} is not a valid UDP port; use an integer from 1 to 65535")
    return port


def parse_keepalive(value: Any) -> int:
    """Parse the persistent keepalive interval (0-65535 seconds, 0 is off)."""
    if isinstance(value, str) and _is_number(value):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        _fail(
            f"wireguard_mesh: persistent_keepalive {value!r} is not valid; "
            "use seconds from 1 to 65535, or 0 to turn keepalives off"
        )
    return value


def parse_public_key(host: str, value: Any) -> str:
    """Check a WireGuard public key: 44 characters of base64 encoding 32 bytes."""
    if _is_blank(value):
        _fail(f"wireguard_mesh: host '{host}' has no public_key; {_KEY_HINT}")
    if not isinstance(value, str):
        _fail(f"wireguard_mesh: public_key of host '{host}' is {value!r}, not a string; {_KEY_HINT}")
    key = value.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    # wg(8) also rejects non-canonical encodings (stray bits in the last character).
    if len(key) != 44 or len(raw) != 32 or base64.b64encode(raw).decode() != key:
        _fail(
            f"wireguard_mesh: public_key {key!r} of host '{host}' is not a WireGuard public key "
            f"(44 base64 characters, as printed by 'wg pubkey'); {_KEY_HINT}"
        )
    return key


def format_endpoint(host: str, value: Any, port: int) -> str:
    """Return ``host:port`` for a peer's endpoint, bracketing IPv6 addresses."""
    if _is_blank(value) or not isinstance(value, str):
        _fail(
            f"wireguard_mesh: host '{host}' has no endpoint ({value!r}); set it to the host name or IP "
            "address other hosts reach it at, for example its ansible_host"
        )
    endpoint = value.strip()
    bare = endpoint[1:-1] if endpoint.startswith("[") and endpoint.endswith("]") else endpoint
    if netaddr.valid_ipv6(bare):
        return f"[{netaddr.IPAddress(bare)}]:{port}"
    if ":" in endpoint or "[" in endpoint or any(c.isspace() for c in endpoint):
        _fail(
            f"wireguard_mesh: endpoint {value!r} of host '{host}' is not a host name or IP address; "
            "give it without port (set listen_port for the port)"
        )
    return f"{endpoint}:{port}"


def _max_prefix(version: int) -> int:
    return 32 if version == 4 else 128


def _parse_ip(text: str) -> tuple[netaddr.IPAddress, int | None]:
    """Parse ``ip`` or ``ip/prefixlen``; raises netaddr.AddrFormatError or ValueError."""
    addr, sep, prefix = text.strip().partition("/")
    ip = netaddr.IPAddress(addr)
    if not sep:
        return ip, None
    if not (prefix.isascii() and prefix.isdigit()) or int(prefix) > _max_prefix(ip.version):
        raise ValueError(f"bad prefix length {prefix!r}")
    return ip, int(prefix)


def parse_pinned_address(host: str, value: Any, net: netaddr.IPNetwork) -> netaddr.IPAddress:
    """Parse a pinned address; it must be a usable host address of the network."""
    try:
        ip, prefix = _parse_ip(str(value))
    except (netaddr.AddrFormatError, ValueError):
        _fail(
            f"wireguard_mesh: pinned address {value!r} of host '{host}' is not an IP address; "
            f"give an address of {net} such as '{first_host(net)}', or remove it to have one assigned"
        )
    if prefix is not None and prefix != net.prefixlen:
        _fail(
            f"wireguard_mesh: pinned address {value!r} of host '{host}' has prefix length /{prefix} but "
            f"network {net} is a /{net.prefixlen}; give the bare address '{ip}'"
        )
    if not is_usable(ip, net):
        where = "is not a usable host address of" if ip in net else "is outside"
        _fail(
            f"wireguard_mesh: pinned address {value!r} of host '{host}' {where} network {net}; "
            f"pin an address from {first_host(net)} to {last_host(net)} or remove the pin"
        )
    return ip


def parse_current_address(host: str, value: Any, net: netaddr.IPNetwork) -> netaddr.IPAddress | None:
    """The first usable address of the network in a host's current address(es), or None."""
    if _is_blank(value):
        return None
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        items = [value]
    for item in items:
        if _is_blank(item):
            continue
        try:
            ip, _prefix = _parse_ip(str(item))
        except (netaddr.AddrFormatError, ValueError):
            _fail(
                f"wireguard_mesh: current_address {value!r} of host '{host}' is not an IP address; "
                "pass the address from the host's existing configuration, or leave it empty"
            )
        if is_usable(ip, net):
            return ip
    return None


def parse_allowed_ips(host: str, value: Any) -> list[netaddr.IPNetwork]:
    """Parse a host's extra allowed IPs: networks without host bits, or bare addresses."""
    if _is_blank(value):
        return []
    if isinstance(value, str) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        _fail(f"wireguard_mesh: allowed_ips of host '{host}' must be a list of networks, got {value!r}")
    nets: list[netaddr.IPNetwork] = []
    for item in value:
        try:
            ip, prefix = _parse_ip(str(item))
        except (netaddr.AddrFormatError, ValueError):
            _fail(
                f"wireguard_mesh: allowed_ips entry {item!r} of host '{host}' is not a network; "
                "use CIDR notation such as '192.0.2.0/24'"
            )
        net = netaddr.IPNetwork(f"{ip}/{_max_prefix(ip.version) if prefix is None else prefix}")
        if net.ip != net.network:
            _fail(
                f"wireguard_mesh: allowed_ips entry {item!r} of host '{host}' has host bits set; "
                f"did you mean '{net.cidr}'?"
            )
        if net not in nets:
            nets.append(net)
    return sorted(nets, key=lambda n: (n.version, n.first, n.prefixlen))


# ---------------------------------------------------------------------------------------------
# Address math
# ---------------------------------------------------------------------------------------------


def _host_range(net: netaddr.IPNetwork) -> tuple[int, int]:
    """First and last usable host address of a network, as integers.

    The network address is skipped (for IPv6 it is the subnet-router anycast address), and for IPv4
    the broadcast address, except on point-to-point /31 and /127 and single-address networks.
    """
    if net.size <= 2:
        return net.first, net.last
    return net.first + 1, net.last - (1 if net.version == 4 else 0)


def capacity(net: netaddr.IPNetwork) -> int:
    """Number of usable host addresses of a network."""
    first, last = _host_range(net)
    return last - first + 1


def first_host(net: netaddr.IPNetwork) -> netaddr.IPAddress:
    return netaddr.IPAddress(_host_range(net)[0], net.version)


def last_host(net: netaddr.IPNetwork) -> netaddr.IPAddress:
    return netaddr.IPAddress(_host_range(net)[1], net.version)


def is_usable(ip: netaddr.IPAddress, net: netaddr.IPNetwork) -> bool:
    """Whether an address is a usable host address of the network."""
    first, last = _host_range(net)
    return ip.version == net.version and first <= int(ip) <= last


def free_addresses(net: netaddr.IPNetwork, taken: set[int]) -> Iterator[netaddr.IPAddress]:
    """Usable host addresses of the network not in ``taken``, lowest first."""
    first, last = _host_range(net)
    value = first
    while value <= last:
        if value not in taken:
            yield netaddr.IPAddress(value, net.version)
        value += 1


def assign_addresses(
    net: netaddr.IPNetwork,
    pinned: Mapping[str, netaddr.IPAddress],
    current: Mapping[str, netaddr.IPAddress | None],
    names: Iterable[str],
) -> dict[str, netaddr.IPAddress]:
    """Assign overlay addresses: pinned, else current if still free, else lowest free, in name order.

    ``pinned`` addresses must already be checked: unique and usable in ``net``.
    """
    order = sorted(names)
    if len(order) > capacity(net):
        _fail(
            f"wireguard_mesh: network {net} has room for {capacity(net)} hosts but the mesh has "
            f"{len(order)}; use a larger network (a shorter prefix length than /{net.prefixlen})"
        )
    assigned: dict[str, netaddr.IPAddress] = dict(pinned)
    taken = {int(ip) for ip in pinned.values()}
    for name in order:
        ip = current.get(name)
        if name not in assigned and ip is not None and int(ip) not in taken:
            assigned[name] = ip
            taken.add(int(ip))
    fresh = free_addresses(net, taken)
    for name in order:
        if name not in assigned:
            assigned[name] = next(fresh)
    return assigned


def check_overlaps(routes: Mapping[str, list[netaddr.IPNetwork]]) -> None:
    """Fail if the allowed IPs of two hosts overlap (WireGuard routes each to one peer only)."""
    flat = [(host, net) for host in sorted(routes) for net in routes[host]]
    for i, (host_a, net_a) in enumerate(flat):
        for host_b, net_b in flat[i + 1 :]:
            if host_a != host_b and net_a.version == net_b.version and (net_a in net_b or net_b in net_a):
                _fail(
                    f"wireguard_mesh: allowed IPs overlap: {net_a} of host '{host_a}' and {net_b} of host "
                    f"'{host_b}'; WireGuard routes each address to one peer only, so remove one of them"
                )


# ---------------------------------------------------------------------------------------------
# The filter
# ---------------------------------------------------------------------------------------------


def wireguard_mesh(
    hosts: Mapping[str, Mapping[str, Any]],
    network: str,
    listen_port: int = DEFAULT_LISTEN_PORT,
    persistent_keepalive: int = DEFAULT_PERSISTENT_KEEPALIVE,
) -> dict[str, dict[str, Any]]:
    """Compute every host's overlay address, listen port and peers. See DOCUMENTATION."""
    if not HAS_NETADDR:
        _fail(
            "wireguard_mesh: the Python library netaddr is missing; install it on the Ansible "
            "controller with 'pip install netaddr'"
        )
    if not isinstance(hosts, Mapping):
        kind = type(hosts).__name__
        _fail(f"wireguard_mesh: input must be a dictionary of host name to host data, got a {kind}")
    net = parse_network(network)
    default_port = parse_port(listen_port, "listen_port")
    keepalive = parse_keepalive(persistent_keepalive)

    ports: dict[str, int] = {}
    keys: dict[str, str] = {}
    endpoints: dict[str, str] = {}
    extras: dict[str, list[netaddr.IPNetwork]] = {}
    pinned: dict[str, netaddr.IPAddress] = {}
    current: dict[str, netaddr.IPAddress | None] = {}
    key_owner: dict[str, str] = {}
    pin_owner: dict[int, str] = {}

    for name in sorted(hosts, key=str):
        data = hosts[name]
        if not isinstance(name, str) or not name:
            _fail(f"wireguard_mesh: host name {name!r} is not a non-empty string")
        if not isinstance(data, Mapping):
            _fail(f"wireguard_mesh: data of host '{name}' must be a dictionary, got {data!r}")
        port_value = data.get("listen_port")
        ports[name] = (
            default_port if _is_blank(port_value) else parse_port(port_value, f"listen_port of host '{name}'")
        )
        keys[name] = parse_public_key(name, data.get("public_key"))
        if keys[name] in key_owner:
            _fail(
                f"wireguard_mesh: hosts '{key_owner[keys[name]]}' and '{name}' have the same public_key "
                f"{keys[name]!r}; each host needs its own key pair (was a key file copied between hosts?)"
            )
        key_owner[keys[name]] = name
        endpoints[name] = format_endpoint(name, data.get("endpoint"), ports[name])
        extras[name] = parse_allowed_ips(name, data.get("allowed_ips"))
        if not _is_blank(data.get("address")):
            ip = parse_pinned_address(name, data.get("address"), net)
            if int(ip) in pin_owner:
                _fail(
                    f"wireguard_mesh: hosts '{pin_owner[int(ip)]}' and '{name}' are both pinned to address "
                    f"{ip}; pin one of them to another address of {net} or remove its pin"
                )
            pin_owner[int(ip)] = name
            pinned[name] = ip
        current[name] = parse_current_address(name, data.get("current_address"), net)

    addresses = assign_addresses(net, pinned, current, hosts)
    host_bits = _max_prefix(net.version)
    routes = {name: [netaddr.IPNetwork(f"{ip}/{host_bits}"), *extras[name]] for name, ip in addresses.items()}
    check_overlaps(routes)

    names = sorted(addresses)
    return {
        name: {
            "address": f"{addresses[name]}/{net.prefixlen}",
            "ip": str(addresses[name]),
            "listen_port": ports[name],
            "peers": [
                {
                    "name": peer,
                    "public_key": keys[peer],
                    "endpoint": endpoints[peer],
                    "allowed_ips": [str(route) for route in routes[peer]],
                    "persistent_keepalive": keepalive,
                }
                for peer in names
                if peer != name
            ],
        }
        for name in names
    }


class FilterModule:
    """meetops.jitsi WireGuard filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"wireguard_mesh": wireguard_mesh}
