# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Filter ``port_conflicts``: the ports a service would bind that another service on the host also binds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: port_conflicts
short_description: Find the ports two services of one host would both bind
version_added: 0.3.0
author: meetops.jitsi maintainers (@meetops)
description:
  - Takes the listening ports one service of a host will bind (its claims) and the claims already
    recorded for the host's other services, and returns one message per clash, naming both variables, so
    that a deployment whose services would fight for a port stops before any host changes.
  - A clash is the same protocol, overlapping ports and overlapping addresses; C(*), C(0.0.0.0) and C(::)
    overlap every address. Two claims of the same service clash too, when they come from different
    variables (Prosody's client and HTTP ports, say).
  - Claims of the same owner recorded earlier are replaced, not compared, so a service checked twice in
    one run (validation first, then its role) does not clash with itself.
options:
  _input:
    description:
      - The service's claims, each a dict with C(var) (the variable or fixed setting, named in messages),
        C(protocol) (C(tcp) or C(udp)), C(port), C(ports) (a list) or C(first) and C(last) (a range), and
        optionally
        C(addresses) (default C(['*'])) and C(what) (what listens there, for the message).
    type: list
    elements: dict
    required: true
  recorded:
    description: The claims recorded for the host so far, by owner.
    type: dict
    required: true
  owner:
    description: The service the claims belong to, for example C(prosody) or C(prosody-jvb).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Stop when Prosody's HTTP port is nginx's
  ansible.builtin.assert:
    that: __conflicts | length == 0
    fail_msg: "{{ __conflicts | join(' ') }}"
  vars:
    __conflicts: >-
      {{ [{'var': 'prosody_http_ports', 'protocol': 'tcp', 'port': 443}]
         | meetops.jitsi.port_conflicts(
             {'web': [{'var': 'nginx site (fixed)', 'protocol': 'tcp', 'port': 443}]}, 'prosody') }}
"""

RETURN = r"""
_value:
  description: One message per clash; empty when the service's ports are its own.
  type: list
  elements: str
"""

WILDCARDS = frozenset({"*", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class Claim:
    """A port range one service binds on some addresses."""

    owner: str
    var: str
    what: str
    protocol: str
    first: int
    last: int
    addresses: frozenset[str]

    def ports(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    def describe(self) -> str:
        what = f", {self.what}" if self.what else ""
        return f"{self.var} ({self.owner}{what}: {self.protocol} {self.ports()})"

    def clashes(self, other: Claim) -> bool:
        if self.protocol != other.protocol or self.last < other.first or other.last < self.first:
            return False
        if self.addresses & WILDCARDS or other.addresses & WILDCARDS:
            return True
        return bool(self.addresses & other.addresses)


def _port(value: Any, where: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"{where}: {value!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise AnsibleFilterError(f"{where}: {port} is not a port number (1-65535)")
    return port


def _claim(owner: str, value: Any) -> list[Claim]:
    if not isinstance(value, Mapping) or "var" not in value or "protocol" not in value:
        raise AnsibleFilterError(
            f"port claim of {owner} must be a dict with var, protocol and port (or first and last), "
            f"got {value!r}"
        )
    where = f"{owner} {value['var']}"
    protocol = str(value["protocol"])
    if protocol not in ("tcp", "udp"):
        raise AnsibleFilterError(f"{where}: protocol {protocol!r} must be tcp or udp")
    if "ports" in value:
        ports = value["ports"]
        if isinstance(ports, (str, bytes)) or not isinstance(ports, (list, tuple)):
            raise AnsibleFilterError(f"{where}: ports must be a list of port numbers, got {ports!r}")
        ranges = [(_port(port, where), _port(port, where)) for port in ports]
    elif "port" in value:
        ranges = [(_port(value["port"], where), _port(value["port"], where))]
    else:
        ranges = [(_port(value.get("first"), where), _port(value.get("last"), where))]
    for first, last in ranges:
        if first > last:
            raise AnsibleFilterError(f"{where}: the range {first}-{last} ends before it starts")
    addresses = value.get("addresses", ["*"])
    if isinstance(addresses, str) or not isinstance(addresses, (list, tuple)) or not addresses:
        raise AnsibleFilterError(f"{where}: addresses must be a non-empty list, got {addresses!r}")
    return [
        Claim(
            owner=owner,
            var=str(value["var"]),
            what=str(value.get("what", "")),
            protocol=protocol,
            first=first,
            last=last,
            addresses=frozenset(str(address).strip("[]") or "*" for address in addresses),
        )
        for first, last in ranges
    ]


def _claims(owner: str, values: Any) -> list[Claim]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise AnsibleFilterError(f"the port claims of {owner} must be a list, got {values!r}")
    return [claim for value in values for claim in _claim(owner, value)]


def port_conflicts(claims: Any, recorded: Any, owner: str) -> list[str]:
    """Return one message per clash of OWNER's CLAIMS with each other and with the RECORDED ones."""
    if not isinstance(recorded, Mapping):
        raise AnsibleFilterError(f"the recorded port claims must be a dict by owner, got {recorded!r}")
    own = _claims(owner, claims)
    others = [claim for name, values in recorded.items() if name != owner for claim in _claims(name, values)]
    messages = []
    for index, claim in enumerate(own):
        rivals = [other for other in own[index + 1 :] if other.var != claim.var] + others
        for rival in rivals:
            if claim.clashes(rival):
                messages.append(
                    f"{claim.describe()} and {rival.describe()} would both listen on this host; "
                    f"give one of them another port (or other addresses)."
                )
    return messages


class FilterModule:
    """The port_conflicts filter."""

    def filters(self) -> dict[str, Any]:
        return {"port_conflicts": port_conflicts}
