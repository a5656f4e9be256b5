# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Unit tests for the haproxy_servers filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meetops.jitsi.plugins.filter.haproxy_servers import haproxy_servers


def facts(address: str, **extra: object) -> dict[str, object]:
    return {"ansible_default_ipv4": {"address": address}, **extra}


HOSTVARS = {
    "shard1": facts("10.0.0.11"),
    "shard2": facts("10.0.0.12", shard_id=12, shard_name="eu-shard2"),
    "lb1": facts("10.0.0.2", shard_address="192.0.2.2"),
}


def test_names_addresses_and_ids_come_from_host_variables_or_facts() -> None:
    assert haproxy_servers(["shard1", "shard2", "lb1"], HOSTVARS) == [
        {"name": "shard1", "address": "10.0.0.11"},
        {"name": "eu-shard2", "address": "10.0.0.12", "id": 12},
        {"name": "lb1", "address": "192.0.2.2"},
    ]


def test_variable_names_can_be_chosen() -> None:
    hostvars = {"a": {"peer_ip": "10.1.0.1", "peer_id": 3}}
    assert haproxy_servers(["a"], hostvars, address_var="peer_ip", id_var="peer_id") == [
        {"name": "a", "address": "10.1.0.1", "id": 3}
    ]


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [
        ({"a": {}}, "host 'a' has no address: set shard_address"),
        ({"a": {"shard_address": "shard-a.example"}}, "not an IP address"),
        ({"a": facts("10.0.0.1", shard_id=0)}, "shard_id=0; it must be an integer from 1"),
        ({"a": facts("10.0.0.1", shard_id="x")}, "shard_id='x'"),
        ({"a": facts("10.0.0.1", shard_name="bad name")}, "set shard_name to letters"),
    ],
)
def test_bad_values_are_named_with_their_fix(hostvars: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        haproxy_servers(list(hostvars), hostvars)


@pytest.mark.parametrize(
    ("hostvars", "key"),
    [
        ({"a": facts("10.0.0.1"), "b": facts("10.0.0.1")}, "address"),
        ({"a": facts("10.0.0.1", shard_id=5), "b": facts("10.0.0.2", shard_id=5)}, "id"),
        ({"a": facts("10.0.0.1", shard_name="x"), "b": facts("10.0.0.2", shard_name="x")}, "name"),
    ],
)
def test_duplicates_are_refused(hostvars: dict[str, dict[str, object]], key: str) -> None:
    with pytest.raises(AnsibleFilterError, match=f"hosts 'a' and 'b' have the same {key}"):
        haproxy_servers(["a", "b"], hostvars)


def test_unknown_hosts_and_non_lists_are_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="'nope' is not a host of the inventory"):
        haproxy_servers(["nope"], HOSTVARS)
    with pytest.raises(AnsibleFilterError, match="expected a list of host names"):
        haproxy_servers("shard1", HOSTVARS)  # type: ignore[arg-type]


def test_the_address_comes_from_ansible_facts_when_facts_are_not_injected():
    hostvars = {"shard1": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.5"}}}}
    assert haproxy_servers(["shard1"], hostvars)[0]["address"] == "10.0.0.5"
