# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meetops.jitsi.plugins.filter.turn_peer_ranges import turn_peer_ranges


def test_networks_addresses_and_ranges() -> None:
    assert turn_peer_ranges(["10.0.0.0/8", "192.0.2.7", "fd00::/8", "10.1.0.1 - 10.1.0.9"]) == [
        "10.0.0.0-10.255.255.255",
        "192.0.2.7",
        "fd00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "10.1.0.1-10.1.0.9",
    ]


def test_host_bits_and_duplicates() -> None:
    assert turn_peer_ranges(["10.1.2.3/16", "10.1.0.0/16", "::1/128"]) == ["10.1.0.0-10.1.255.255", "::1"]


@pytest.mark.parametrize(
    "value", ["10.0.0.300", "10.0.0.0/33", "10.0.0.9-10.0.0.1", "10.0.0.1-::1", "turn.example"]
)
def test_bad_value_names_variable_and_value(value: str) -> None:
    with pytest.raises(AnsibleFilterError, match=rf"coturn_allowed_peer_ips: '{value}'.*network"):
        turn_peer_ranges([value], variable="coturn_allowed_peer_ips")


def test_not_a_list() -> None:
    with pytest.raises(AnsibleFilterError, match="coturn_allowed_peer_ips must be a list"):
        turn_peer_ranges("10.0.0.0/8", variable="coturn_allowed_peer_ips")
