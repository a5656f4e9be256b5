# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Filter ``turn_peer_ranges``: addresses and networks as coturn's ``first-last`` peer ranges."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: turn_peer_ranges
short_description: Write addresses, networks and ranges as coturn's peer ranges
version_added: 0.3.0
author: meetops.jitsi maintainers (@meetops)
description:
  - Takes IPv4 and IPv6 addresses (C(10.0.0.5)), networks (C(10.0.0.0/8)) and ranges
    (C(10.0.0.1-10.0.0.9)) and returns each as the C(first-last) range (or the single address) that
    coturn's C(allowed-peer-ip) and C(denied-peer-ip) take; coturn itself reads no network notation.
  - A value that is none of these fails naming it, the variable it came from and the forms accepted, so a
    typing error never reaches coturn (which would leave the range out and relay to it).
options:
  _input:
    description: Addresses, networks or ranges.
    type: list
    elements: str
    required: true
  variable:
    description: The variable the list came from, named in the error.
    type: str
    default: the list
"""

EXAMPLES = r"""
- name: The bridges' network as a peer range
  ansible.builtin.debug:
    msg: "{{ ['10.20.0.0/16', '192.0.2.7'] | meetops.jitsi.turn_peer_ranges(variable='allowed') }}"
# ["10.20.0.0-10.20.255.255", "192.0.2.7"]
"""

RETURN = r"""
_value:
  description: One range per value, in the order given, duplicates removed.
  type: list
  elements: str
"""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _range(value: str) -> tuple[Address, Address]:
    if "-" in value:
        first_text, last_text = (part.strip() for part in value.split("-", 1))
        first, last = ipaddress.ip_address(first_text), ipaddress.ip_address(last_text)
        if first.version != last.version or first > last:
            raise ValueError("the first address must be of the same family and not after the last")
        return first, last
    network = ipaddress.ip_network(value.strip(), strict=False)
    return network.network_address, network.broadcast_address


def turn_peer_ranges(values: Any, variable: str = "the list") -> list[str]:
    """Return coturn's ``first-last`` form of each address, network or range."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise AnsibleFilterError(
            f"{variable} must be a list of addresses, networks or ranges, got {values!r}"
        )
    ranges: list[str] = []
    for value in values:
        try:
            first, last = _range(str(value))
        except ValueError as error:
            raise AnsibleFilterError(
                f"{variable}: {value!r} is not an IP address, a network (10.0.0.0/8, fd00::/8) or a range "
                f"(10.0.0.1-10.0.0.9): {error}"
            ) from None
        text = str(first) if first == last else f"{first}-{last}"
        if text not in ranges:
            ranges.append(text)
    return ranges


class FilterModule:
    """The collection's coturn filter."""

    def filters(self) -> dict[str, Any]:
        return {"turn_peer_ranges": turn_peer_ranges}
