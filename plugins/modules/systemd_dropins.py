#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Write the same systemd drop-in file for many units in one module call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: systemd_dropins
short_description: Manage one systemd drop-in file across many units at once
version_added: 0.1.0
description:
  - Writes (or removes) C(<root>/<unit>.d/<name>) with the same content for every unit in O(units),
    creating the C(.d) directories as needed, in one call instead of one task per unit.
  - Does not reload systemd or restart anything; RV(changed_units) says which units need it.
  - A drop-in for a unit that is not installed yet is allowed; systemd reads it when the unit appears.
    A template unit (C(name@.service)) drop-in applies to all its instances.
options:
  units:
    description: Full unit names, such as C(prosody.service) or C(jitsi-videobridge@.service).
    type: list
    elements: str
    required: true
  name:
    description: File name of the drop-in inside each unit's C(.d) directory. Must end in C(.conf).
    type: str
    required: true
  content:
    description: Content of the drop-in. Required with O(state=present).
    type: str
  state:
    description: Whether the drop-in exists.
    type: str
    choices: [present, absent]
    default: present
  root:
    description: Directory holding the units' C(.d) directories.
    type: path
    default: /etc/systemd/system
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: debian
author:
  - meetops.jitsi maintainers (@meetops)
"""

EXAMPLES = r"""
- name: Raise open-file limits of the Jitsi services
  meetops.jitsi.systemd_dropins:
    units: [prosody.service, jicofo.service, jitsi-videobridge@.service]
    name: 60-limits.conf
    content: |
      [Service]
      LimitNOFILE=65000
  register: limits

- name: Reload systemd when a drop-in changed
  ansible.builtin.systemd_service:
    daemon_reload: true
  when: limits is changed
"""

RETURN = r"""
changed_units:
  description: Units whose drop-in was (or in check mode would be) written or removed.
  returned: always
  type: list
  elements: str
  sample: ["prosody.service"]
paths:
  description: The drop-in path of every unit in O(units).
  returned: always
  type: list
  elements: str
  sample: ["/etc/systemd/system/prosody.service.d/60-limits.conf"]
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meetops.jitsi.plugins.module_utils._files import read_text, write_text

# Unit names: letters, digits and ":_.-\\" (systemd escapes other bytes as \\xNN), an optional
# "@instance" part (empty for a template), and a unit type suffix.
UNIT_NAME = re.compile(
    r"^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|timer|mount|target|slice|scope)$"
)
FILE_NAME = re.compile(r"^[A-Za-z0-9_.@-]+\.conf$")


def invalid_arguments(units: list[str], name: str) -> list[str]:
    """Return one message per unit or file name systemd would not accept."""
    problems = [
        f"units: '{unit}' is not a full unit name; write it like 'prosody.service' or 'jvb@.service'"
        for unit in units
        if not UNIT_NAME.match(unit)
    ]
    if not FILE_NAME.match(name):
        problems.append(f"name: '{name}' must be a plain file name ending in .conf, like '60-limits.conf'")
    return problems


def dropin_path(root: str, unit: str, name: str) -> str:
    return os.path.join(root, f"{unit}.d", name)


def plan(
    units: list[str], name: str, content: str | None, root: str
) -> dict[str, tuple[str | None, str | None]]:
    """Map each unit that needs a change to (current content, wanted content); None means no file."""
    changes = {}
    for unit in dict.fromkeys(units):
        current = read_text(dropin_path(root, unit, name))
        if current != content:
            changes[unit] = (current, content)
    return changes


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "str", "required": True},
            "name": {"type": "str", "required": True},
            "content": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "root": {"type": "path", "default": "/etc/systemd/system"},
        },
        required_if=[("state", "present", ["content"])],
        supports_check_mode=True,
    )
    units: list[str] = module.params["units"]
    name: str = module.params["name"]
    root: str = module.params["root"]
    content = module.params["content"] if module.params["state"] == "present" else None

    problems = invalid_arguments(units, name)
    if problems:
        module.fail_json(msg="; ".join(problems))

    changes = plan(units, name, content, root)
    if not module.check_mode:
        for unit, (_unused, wanted) in changes.items():
            path = dropin_path(root, unit, name)
            if wanted is None:
                os.remove(path)
            else:
                write_text(module, path, wanted)

    module.exit_json(
        changed=bool(changes),
        changed_units=list(changes),
        paths=[dropin_path(root, unit, name) for unit in dict.fromkeys(units)],
        diff=[
            {
                "before_header": dropin_path(root, unit, name),
                "after_header": dropin_path(root, unit, name),
                "before": before or "",
                "after": after or "",
            }
            for unit, (before, after) in changes.items()
        ],
    )


if __name__ == "__main__":
    main()
