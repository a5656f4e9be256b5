# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Filter ``xmpp_certificates``: which certificates an XMPP server's hosts need, and the names each covers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.meetops.jitsi.plugins.module_utils._names import is_dns_name

DOCUMENTATION = r"""
name: xmpp_certificates
short_description: Work out the certificates an XMPP server's hosts and components need
version_added: 0.1.0
author: meetops.jitsi maintainers (@meetops)
description:
  - Takes the server's VirtualHosts, each with the components (MUC and other services) that live under
    it, and returns one certificate per VirtualHost. Its common name is the VirtualHost; its subject
    alternative names are the VirtualHost and all its components, so a client or a server that reaches
    a component by name is shown a certificate for that name.
  - A name may appear only once in the whole server. Names are checked to be DNS names.
options:
  _input:
    description:
      - List of VirtualHosts, each a dictionary with C(host) (the VirtualHost's name) and C(components)
        (list of names, may be empty or missing).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Certificates for a Jitsi Prosody
  ansible.builtin.debug:
    msg: "{{ hosts | meetops.jitsi.xmpp_certificates }}"
  vars:
    hosts:
      - host: meet.example.com
        components: [conference.meet.example.com]
      - host: auth.meet.example.com
        components: [internal.auth.meet.example.com]
# [{"name": "meet.example.com", "sans": ["meet.example.com", "conference.meet.example.com"]},
#  {"name": "auth.meet.example.com", "sans": ["auth.meet.example.com", "internal.auth.meet.example.com"]}]
"""

RETURN = r"""
_value:
  description: One certificate per VirtualHost, in input order, with C(name) and C(sans).
  type: list
  elements: dict
"""


def _name(value: Any, where: str) -> str:
    if not is_dns_name(value):
        raise AnsibleFilterError(
            f"xmpp_certificates: {where} is {value!r}, which is not a lower-case DNS name such as "
            "'conference.meet.example.com'"
        )
    return value


def xmpp_certificates(hosts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return one certificate spec per VirtualHost: its name and every DNS name it must cover."""
    if not isinstance(hosts, Sequence) or isinstance(hosts, (str, bytes)):
        raise AnsibleFilterError(
            f"xmpp_certificates: expected a list of VirtualHosts, got {type(hosts).__name__}"
        )
    owner: dict[str, str] = {}
    certificates = []
    for index, entry in enumerate(hosts):
        if not isinstance(entry, Mapping) or "host" not in entry:
            raise AnsibleFilterError(
                f"xmpp_certificates: entry {index} is {entry!r}; "
                "each entry needs 'host' and may have 'components'"
            )
        host = _name(entry["host"], f"entry {index} host")
        components = entry.get("components") or []
        if isinstance(components, (str, bytes)) or not isinstance(components, Sequence):
            raise AnsibleFilterError(
                f"xmpp_certificates: components of {host} must be a list, got {components!r}"
            )
        sans = [host] + [_name(c, f"a component of {host}") for c in components]
        for name in sans:
            if name in owner:
                raise AnsibleFilterError(
                    f"xmpp_certificates: {name} is listed under both {owner[name]} and {host}; "
                    "give every host and component its own name"
                )
            owner[name] = host
        certificates.append({"name": host, "sans": sans})
    return certificates


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"xmpp_certificates": xmpp_certificates}
