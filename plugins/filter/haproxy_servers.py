# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Filter ``haproxy_servers``: HAProxy server entries (shards or peers) from a group of inventory hosts."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: haproxy_servers
short_description: HAProxy server entries (shards or peers) for a group of inventory hosts
version_added: 0.1.0
author: meetops.jitsi maintainers (@meetops)
description:
  - Turns a list of inventory host names (a group, usually) into the list of dicts that
    P(meetops.jitsi.haproxy#role) takes as C(haproxy_shards) or C(haproxy_peers), so that the role never
    reads group names and the playbook's inventory decides what a shard is.
  - Each entry has C(name) and C(address), and C(id) when the host sets O(id_var). The name is the
    host's O(name_var) variable, or the inventory host name. The address is the host's O(address_var)
    variable, or else the IPv4 address of its default route as gathered by facts
    (C(ansible_default_ipv4.address)); facts must have been gathered for those hosts earlier in the run.
  - The id is HAProxy's numeric server id, taken from the host's O(id_var) variable when it has one.
    Without it, P(meetops.jitsi.haproxy#role) derives the id from the name, so it is the same on every
    HAProxy and never changes when shards are added or removed. Two hosts with the same id are an error.
  - Names, addresses and ids must be unique; errors name the host and the variable to set.
positional: hostvars
options:
  _input:
    description: Inventory host names, e.g. C(groups['signal']).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  name_var:
    description: Host variable holding the server's name (defaults to the inventory host name).
    type: str
    default: shard_name
  address_var:
    description: Host variable holding the address HAProxy connects to.
    type: str
    default: shard_address
  id_var:
    description: Host variable holding a fixed server id (1 to 2147483647).
    type: str
    default: shard_id
"""

EXAMPLES = r"""
- name: Route rooms to the shards of the 'signal' group, sharing stick tables with the 'haproxy' group
  ansible.builtin.include_role:
    name: meetops.jitsi.haproxy
  vars:
    haproxy_shards: "{{ groups['signal'] | meetops.jitsi.haproxy_servers(hostvars) }}"
    haproxy_peers: "{{ groups['haproxy'] | meetops.jitsi.haproxy_servers(hostvars) }}"
# haproxy_shards: [{"name": "shard1", "address": "10.0.0.11"},
#                  {"name": "shard2", "address": "10.0.0.12", "id": 12}]
"""

RETURN = r"""
_value:
  description: One dict per host, in input order, with C(name), C(address) and (when set) C(id).
  type: list
  elements: dict
"""

MAX_SERVER_ID = 2**31 - 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _host_address(host: str, variables: Mapping[str, Any], address_var: str) -> str:
    address = variables.get(address_var)
    if address in (None, ""):
        # ansible_facts first: estates that set INJECT_FACTS_AS_VARS=false have no ansible_default_ipv4.
        facts = variables.get("ansible_facts") or {}
        default_ipv4 = (
            (facts.get("default_ipv4") if isinstance(facts, Mapping) else None)
            or variables.get("ansible_default_ipv4")
            or {}
        )
        address = default_ipv4.get("address") if isinstance(default_ipv4, Mapping) else None
    if address in (None, ""):
        raise AnsibleFilterError(
            f"haproxy_servers: host {host!r} has no address: set {address_var} for it, or gather its facts "
            "earlier in the run (ansible_facts.default_ipv4.address is used)"
        )
    try:
        return str(ipaddress.ip_address(str(address)))
    except ValueError as error:
        raise AnsibleFilterError(
            f"haproxy_servers: host {host!r} has address {address!r}, which is not an IP address: "
            f"set {address_var} to the IP address HAProxy should connect to"
        ) from error


def _host_id(host: str, variables: Mapping[str, Any], id_var: str) -> int | None:
    value = variables.get(id_var)
    if value in (None, ""):
        return None
    problem = (
        f"haproxy_servers: host {host!r} has {id_var}={value!r}; "
        f"it must be an integer from 1 to {MAX_SERVER_ID}"
    )
    if isinstance(value, bool):
        raise AnsibleFilterError(problem)
    try:
        server_id = int(value)
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError(problem) from error
    if not 1 <= server_id <= MAX_SERVER_ID:
        raise AnsibleFilterError(problem)
    return server_id


def haproxy_servers(
    hosts: Sequence[str],
    hostvars: Mapping[str, Any],
    name_var: str = "shard_name",
    address_var: str = "shard_address",
    id_var: str = "shard_id",
) -> list[dict[str, Any]]:
    """Return ``[{name, address, id}]`` for ``hosts``, read from ``hostvars``; see DOCUMENTATION."""
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise AnsibleFilterError(f"haproxy_servers: expected a list of host names, got {hosts!r}")
    servers: list[dict[str, Any]] = []
    seen: dict[str, dict[Any, str]] = {"name": {}, "address": {}, "id": {}}
    for host_name in hosts:
        host = str(host_name)
        if host not in hostvars:
            raise AnsibleFilterError(f"haproxy_servers: {host!r} is not a host of the inventory")
        variables = hostvars[host]
        name = str(variables.get(name_var) or host)
        if not NAME.match(name):
            raise AnsibleFilterError(
                f"haproxy_servers: host {host!r} has the name {name!r}; set {name_var} to letters, digits, "
                "'.', '_' or '-' (at most 63 characters, starting with a letter or digit)"
            )
        server = {"name": name, "address": _host_address(host, variables, address_var)}
        server_id = _host_id(host, variables, id_var)
        if server_id is not None:
            server["id"] = server_id
        for key, fix in (("name", name_var), ("address", address_var), ("id", id_var)):
            if key not in server:
                continue
            other = seen[key].get(server[key])
            if other is not None:
                raise AnsibleFilterError(
                    f"haproxy_servers: hosts {other!r} and {host!r} have the same {key} {server[key]!r}; "
                    f"set {fix} on one of them"
                )
            seen[key][server[key]] = host
        servers.append(server)
    return servers


class FilterModule:
    """HAProxy topology filters."""

    def filters(self) -> dict[str, Any]:
        return {"haproxy_servers": haproxy_servers}
