# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Tests ``host_address`` and ``ip_network``: an address a service can listen on, and a network (CIDR)."""

from __future__ import annotations

import ipaddress
from typing import Any

DOCUMENTATION = r"""
name: host_address
short_description: Whether a value is one IP address of a host that other hosts can reach
version_added: 0.3.0
author: meetops.jitsi maintainers (@meetops)
description:
  - True for one IPv4 or IPv6 address, such as C(10.0.0.5) or C(2001:db8::5), that is neither every address
    (C(0.0.0.0), C(::)), nor loopback, multicast or link-local; false for anything else, a host name or a
    network included.
  - The test C(ip_network) of this file is true for a network in CIDR form, such as C(10.0.0.0/24) or
    C(2001:db8::/64) (host bits may be set, as in C(10.0.0.5/24)), or one address, read as its own network.
options:
  _input:
    description: The value to test.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check where the bridges' metrics are served, and to whom
  ansible.builtin.assert:
    that:
      - jvb_metrics_address is meetops.jitsi.host_address
      - jvb_metrics_allow | reject('meetops.jitsi.ip_network') | list | length == 0
"""

RETURN = r"""
_value:
  description: Whether the value is such an address (host_address) or network (ip_network).
  type: bool
"""


def host_address(value: Any) -> bool:
    """One address other hosts can reach: not unspecified, loopback, multicast or link-local."""
    if not isinstance(value, str):
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (
        address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local
    )


def ip_network(value: Any) -> bool:
    """A network in CIDR form, or one address."""
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


class TestModule:
    """The address tests."""

    def tests(self) -> dict[str, Any]:
        return {"host_address": host_address, "ip_network": ip_network}
