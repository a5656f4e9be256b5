# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Filter ``unknown_variables``: prefixed variables that no role reads, each with the name meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: unknown_variables
short_description: Find variables that look like the collection's but that no role reads
version_added: 0.2.0
author: meetops.jitsi maintainers (@meetops)
description:
  - Takes variable names (for example a host's C(hostvars[inventory_hostname].keys())) and returns those
    that start with a prefix of the collection (a role's name and C(_), such as C(prosody_), or
    C(meetops_jitsi_)) but are neither an option of a role (any entry point of its C(meta/argument_specs.yml))
    nor one of the collection-wide variables, each with the closest known name.
  - A misspelt variable (C(prosody_tcp_backlg)) is otherwise ignored in silence, and the role runs with
    the default instead of the value the user meant.
  - Names that start with C(_) (the roles' internal variables) are never reported.
options:
  _input:
    description: Variable names.
    type: list
    elements: str
    required: true
  role:
    description:
      - Report only the names of this role's prefix (C(prosody) reports C(prosody_*) but not C(prosody_jvb_*),
        which is C(prosody_jvb)'s), and those of C(meetops_jitsi_). Each role checks its own prefix this way.
    type: str
"""

EXAMPLES = r"""
- name: Find the misspelt variables of this host
  ansible.builtin.debug:
    msg: "{{ hostvars[inventory_hostname].keys() | meetops.jitsi.unknown_variables }}"

- name: Only those of the prosody role (and meetops_jitsi_*)
  ansible.builtin.debug:
    msg: "{{ hostvars[inventory_hostname].keys() | meetops.jitsi.unknown_variables(role='prosody') }}"
# [{"name": "prosody_tcp_backlg", "suggestion": "prosody_tcp_backlog",
#   "message": "prosody_tcp_backlg is not a variable of meetops.jitsi (did you mean prosody_tcp_backlog?)"}]
"""

RETURN = r"""
_value:
  description:
    - One entry per unknown variable, sorted by name, with C(name), C(suggestion) (the closest known name,
      or an empty string) and C(message), a sentence naming both.
  type: list
  elements: dict
"""

# Variables of the whole collection, read by several roles (not options of one role).
COLLECTION_VARIABLES = frozenset(
    {
        "meetops_jitsi_apt_repository",
        "meetops_jitsi_secrets_dir",
        "meetops_jitsi_secrets_namespace",
        "meetops_jitsi_unknown_variables",
    }
)
_ROLES = Path(__file__).resolve().parents[2] / "roles"


@cache
def known_variables(roles: Path = _ROLES) -> tuple[frozenset[str], tuple[str, ...]]:
    """The names the collection reads, and its variable prefixes (longest first)."""
    names = set(COLLECTION_VARIABLES)
    prefixes = ["meetops_jitsi_"]
    for spec_file in sorted(roles.glob("*/meta/argument_specs.yml")):
        role = spec_file.parents[1].name
        if not role.startswith("_"):
            prefixes.append(f"{role}_")
        specs = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
        for entry in (specs.get("argument_specs") or {}).values():
            names.update((entry or {}).get("options") or {})
    return frozenset(names), tuple(sorted(prefixes, key=len, reverse=True))


def unknown_variables(names: Iterable[Any], role: str | None = None) -> list[dict[str, str]]:
    """Return the prefixed names that no role of the collection reads, each with the closest known one."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise AnsibleFilterError(
            f"unknown_variables: expected a list of variable names, got {type(names).__name__}; "
            "use hostvars[inventory_hostname].keys()"
        )
    known, prefixes = known_variables()
    if role is not None and f"{role}_" not in prefixes:
        raise AnsibleFilterError(
            f"unknown_variables: role is {role!r}, which is not a role of meetops.jitsi "
            f"({', '.join(sorted(p[:-1] for p in prefixes if p != 'meetops_jitsi_'))})"
        )
    wanted = {f"{role}_", "meetops_jitsi_"} if role is not None else set(prefixes)
    unknown = []
    for name in sorted({str(name) for name in names}):
        if name in known or not name.startswith(prefixes):
            continue
        prefix = next(p for p in prefixes if name.startswith(p))
        if prefix not in wanted:
            continue
        candidates = sorted(k for k in known if k.startswith(prefix)) or sorted(known)
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        suggestion = close[0] if close else ""
        hint = f" (did you mean {suggestion}?)" if suggestion else ""
        unknown.append(
            {
                "name": name,
                "suggestion": suggestion,
                "message": f"{name} is not a variable of meetops.jitsi{hint}",
            }
        )
    return unknown


class FilterModule:
    """The unknown_variables filter."""

    def filters(self) -> dict[str, Any]:
        return {"unknown_variables": unknown_variables}
