#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Persist kernel parameters in a sysctl.d drop-in and apply the ones this kernel namespace allows."""

from __future__ import annotations

DOCUMENTATION = r"""
module: sysctl_settings
short_description: Persist sysctl values in a drop-in file and apply them where the kernel allows
version_added: 0.1.0
description:
  - Writes the given kernel parameters to one C(sysctl.d) drop-in file and sets each live value in
    C(/proc/sys) when it differs.
  - Some parameters cannot be set everywhere. In a container's network namespace, C(net.core.rmem_max) is
    read-only and C(net.core.netdev_max_backlog) does not exist; with a read-only C(/proc/sys) nothing can
    be set. Such keys are not failures. They are returned in RV(unsupported) with the reason, and written
    to the drop-in with a leading C(-) so that C(systemd-sysctl) and C(sysctl --system) skip them quietly
    on this host and apply them on a host that allows them.
  - A value the kernel accepts but stores differently (clamped or rejected) fails the task, naming the key.
options:
  settings:
    description:
      - Kernel parameters in dotted form and their values, for example C(net.core.somaxconn=4096).
      - Several numbers in one value (C(net.ipv4.ip_local_port_range)) are given as one string separated
        by spaces. Whitespace differences do not count as a change.
    type: dict
    required: true
  path:
    description: The drop-in file that holds the settings.
    type: path
    default: /etc/sysctl.d/60-meetops-jitsi.conf
  apply:
    description: Set live values that differ. With V(false) only the drop-in file is managed.
    type: bool
    default: true
  header:
    description: Comment lines written at the top of the drop-in file, without the leading C(#).
    type: list
    elements: str
    default: []
  required_keys:
    description:
      - Keys that must be kernel parameters of this host. When one has no file under C(/proc/sys) (a typing
        error, say), the module fails before anything changes, naming each such key and the closest key the
        host has; the other keys keep being reported in RV(unsupported) as before.
      - A key a container's network namespace hides from it is missing here too.
    type: list
    elements: str
    default: []
  required_keys_source:
    description: Where the required keys come from (a variable's name), named in the failure.
    type: str
    default: required_keys
extends_documentation_fragment:
  - ansible.builtin.files
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
- name: Tune the network stack for Prosody and the videobridges
  meetops.jitsi.sysctl_settings:
    settings:
      net.core.somaxconn: 4096
      net.core.rmem_max: 10485760
      net.ipv4.ip_local_port_range: "32768 60999"
  register: tuning

- name: Say what this host could not take
  ansible.builtin.debug:
    msg: "{{ tuning.unsupported }}"
  when: tuning.unsupported | length > 0
"""

RETURN = r"""
applied:
  description: Keys whose live value now equals the requested one, with that value.
  returned: always
  type: dict
  sample: {"net.core.somaxconn": "4096"}
unsupported:
  description: Keys this kernel namespace does not let us set, with the reason.
  returned: always
  type: dict
  sample: {"net.core.rmem_max": "read-only in this network namespace (a container shares the host's value)"}
updated:
  description: Keys whose live value was (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
  sample: ["net.core.somaxconn"]
path:
  description: The drop-in file.
  returned: always
  type: str
  sample: /etc/sysctl.d/60-meetops-jitsi.conf
"""

import difflib
import errno
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meetops.jitsi.plugins.module_utils._files import read_text, write_text

PROC_SYS = "/proc/sys"
NOT_PRESENT = "not present in this kernel or network namespace (only the host's initial namespace has it)"


@dataclass
class Plan:
    """What to do for a set of requested values, before anything is written."""

    applied: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)
    updates: dict[str, str] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)


def normalize(value: object) -> str:
    """Return a sysctl value as the kernel prints it, with single spaces between fields."""
    if isinstance(value, bool):
        value = int(value)
    return " ".join(str(value).split())


def proc_path(key: str, root: str = PROC_SYS) -> str:
    """Map a dotted sysctl key to its file under /proc/sys."""
    return os.path.join(root, *key.split("."))


def write_probe(path: str) -> str | None:
    """Return why the file cannot be written, or None if it can.

    Opening for writing without O_TRUNC and without writing anything changes nothing, but fails with the
    same error a real write would: EROFS on a read-only /proc/sys, EACCES on a key the namespace exposes
    read-only.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return NOT_PRESENT
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return "/proc/sys is mounted read-only here (a container without a writable /proc/sys)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "read-only in this namespace (a container shares the host's value)"
        return f"cannot be opened for writing: {exc.strerror}"
    os.close(fd)
    return None


def plan(
    settings: Mapping[str, object],
    root: str = PROC_SYS,
    probe: Callable[[str], str | None] = write_probe,
) -> Plan:
    """Work out, without changing anything, which keys are set, which need setting and which cannot be."""
    result = Plan()
    for key in sorted(settings):
        wanted = normalize(settings[key])
        path = proc_path(key, root)
        try:
            with open(path, encoding="ascii") as handle:
                current = normalize(handle.read())
        except FileNotFoundError:
            result.unsupported[key] = NOT_PRESENT
            continue
        result.before[key] = current
        reason = probe(path)
        if reason is not None:
            result.unsupported[key] = reason
        elif current == wanted:
            result.applied[key] = current
        else:
            result.updates[key] = wanted
    return result


def render(settings: Mapping[str, object], unsupported: Mapping[str, str], header: list[str]) -> str:
    """Render the drop-in file: one 'key = value' per line, '-key' for keys this host cannot take."""
    lines = [f"# {line}".rstrip() for line in header]
    for key in sorted(settings):
        value = normalize(settings[key])
        if key in unsupported:
            lines.append(f"# Not settable on this host: {unsupported[key]}.")
            lines.append(f"-{key} = {value}")
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def apply_updates(updates: Mapping[str, str], root: str = PROC_SYS) -> list[str]:
    """Write live values and read them back; return the keys the kernel stored differently."""
    refused = []
    for key, value in updates.items():
        path = proc_path(key, root)
        with open(path, "w", encoding="ascii") as handle:
            handle.write(value + "\n")
        with open(path, encoding="ascii") as handle:
            if normalize(handle.read()) != value:
                refused.append(key)
    return refused


def all_keys(root: str = PROC_SYS) -> list[str]:
    """Every kernel parameter under ROOT, in dotted form."""
    keys = []
    for directory, _subdirectories, files in os.walk(root):
        prefix = os.path.relpath(directory, root).replace(os.sep, ".")
        keys += [name if prefix == "." else f"{prefix}.{name}" for name in files]
    return keys


def missing_keys(keys: list[str], root: str = PROC_SYS) -> dict[str, str | None]:
    """The KEYS this host has no parameter for, each with the closest key it has (or None)."""
    missing = [key for key in keys if not os.path.isfile(proc_path(key, root))]
    if not missing:
        return {}
    known = all_keys(root)
    return {key: next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.8)), None) for key in missing}


def missing_message(missing: Mapping[str, str | None], source: str) -> str:
    """One failure message for the missing keys, with suggestions."""
    parts = [
        f"{key} is not a kernel parameter on this host (no {proc_path(key)})"
        + (f"; did you mean {closest}?" if closest else "")
        for key, closest in sorted(missing.items())
    ]
    listed = "; ".join(parts)
    stop = " " if listed.endswith("?") else ". "
    return (
        f"{source}: {listed}{stop}Correct the key, or remove it; nothing was "
        "changed. (A parameter that a container's network namespace hides is missing in the container too: "
        "set it on the host.)"
    )


def validate_settings(settings: Mapping[str, object]) -> list[str]:
    """Return one message per key or value that cannot be a sysctl setting."""
    problems = []
    for key, value in settings.items():
        if not key or key.startswith(("-", ".")) or "/" in key or any(c.isspace() for c in key):
            problems.append(f"'{key}' is not a sysctl key; write it dotted, like net.core.somaxconn")
        if isinstance(value, (dict, list)) or value is None or normalize(value) == "":
            problems.append(f"{key}: value {value!r} must be a number or a string such as '32768 60999'")
    return problems


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            "path": {"type": "path", "default": "/etc/sysctl.d/60-meetops-jitsi.conf"},
            "apply": {"type": "bool", "default": True},
            "header": {"type": "list", "elements": "str", "default": []},
            "required_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "required_keys_source": {"type": "str", "default": "required_keys", "no_log": False},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    settings: dict[str, object] = module.params["settings"]
    path: str = module.params["path"]

    problems = validate_settings(settings)
    if problems:
        module.fail_json(msg="Invalid settings: " + "; ".join(problems))
    missing = missing_keys(module.params["required_keys"])
    if missing:
        module.fail_json(msg=missing_message(missing, module.params["required_keys_source"]), missing=missing)

    todo = plan(settings)
    if not module.params["apply"]:
        todo.applied, todo.updates = {}, {}

    content = render(settings, todo.unsupported, module.params["header"])
    old_content = read_text(path)
    file_changed = old_content != content
    changed = file_changed or bool(todo.updates)

    diff = [
        {
            "before_header": path,
            "after_header": path,
            "before": old_content or "",
            "after": content,
        },
        {
            "before_header": "live values",
            "after_header": "live values",
            "before": "".join(f"{k} = {todo.before[k]}\n" for k in sorted(todo.updates)),
            "after": "".join(f"{k} = {v}\n" for k, v in sorted(todo.updates.items())),
        },
    ]

    if not module.check_mode:
        if file_changed:
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                module.fail_json(msg=f"Directory {directory} for path={path} does not exist; create it first")
            write_text(module, path, content)
        refused = apply_updates(todo.updates)
        if refused:
            module.fail_json(
                msg="The kernel stored a different value than requested for "
                + ", ".join(f"{k} (asked {todo.updates[k]!r})" for k in refused)
                + "; use a value within the kernel's limits for these keys",
                path=path,
            )
    file_args = module.load_file_common_arguments(module.params)
    if os.path.exists(path):
        changed = module.set_fs_attributes_if_different(file_args, changed)

    applied = dict(todo.applied)
    applied.update(todo.updates)
    module.exit_json(
        changed=changed,
        applied=applied,
        unsupported=todo.unsupported,
        updated=sorted(todo.updates),
        path=path,
        diff=diff,
    )


if __name__ == "__main__":
    main()
