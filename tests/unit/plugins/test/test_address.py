"""Unit tests for the tests host_address and ip_network."""

from __future__ import annotations

import pytest

from ansible_collections.meetops.jitsi.plugins.test.address import TestModule as AddressTests

TESTS = AddressTests().tests()


@pytest.mark.parametrize("value", ["10.0.0.5", "192.0.2.1", "2001:db8::5", "172.16.0.1"])
def test_host_addresses_are_accepted(value):
    assert TESTS["host_address"](value)


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0",
        "::",
        "127.0.0.1",
        "::1",
        "224.0.0.1",
        "fe80::1",
        "169.254.1.1",
        "10.0.0.0/24",
        "jvb1",
        "",
        "10.0.0.256",
        None,
        10,
    ],
)
def test_anything_else_is_not_a_host_address(value):
    assert not TESTS["host_address"](value)


@pytest.mark.parametrize("value", ["10.0.0.0/24", "10.0.0.5/24", "10.0.0.5", "2001:db8::/64", "0.0.0.0/0"])
def test_networks_are_accepted(value):
    assert TESTS["ip_network"](value)


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0/24", "example.com/24", "", None, ["10.0.0.0/8"]])
def test_anything_else_is_not_a_network(value):
    assert not TESTS["ip_network"](value)
