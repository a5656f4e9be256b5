#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Ask a running Prosody, through its admin shell, which modules it has loaded on each host and from where.

The answer comes from the server process, not from its configuration file: `prosodyctl shell` talks to the
admin socket (mod_admin_shell) of the instance the config file names, and `module:list(host)` and
`module:info(name, host)` report what that process loaded.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: prosody_modules
short_description: The modules a running Prosody has loaded, asked from its admin shell
version_added: 0.1.0
description:
  - Runs C(prosodyctl --config CONFIG shell "module:list(HOST)") for each of O(hosts) against the running
    server (Prosody 0.12 and 13; the server must load C(admin_shell)) and returns the modules loaded there.
  - For each name in O(paths), also asks C(module:info(NAME, HOST)) and returns the file the module was loaded
    from, which shows whether a plugin directory shadowed one of Prosody's own modules.
  - Changes nothing; runs the same in check mode.
options:
  config:
    description: The config file of the Prosody instance to ask, e.g. C(/etc/prosody-jvb/prosody.cfg.lua).
    type: path
    default: /etc/prosody/prosody.cfg.lua
  hosts:
    description: The VirtualHosts and Components to ask about.
    type: list
    elements: str
    required: true
  paths:
    description: Modules whose file to report, as C(module@host) (e.g. C(smacks@meet.example.com)).
    type: list
    elements: str
    default: []
requirements:
  - A running Prosody 0.12 or 13 that loads C(admin_shell).
  - Root or the prosody user, whose admin socket it is.
author: meetops.jitsi maintainers (@meetops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Ask the running Prosody what it loaded
  meetops.jitsi.prosody_modules:
    hosts: [meet.example.com, conference.meet.example.com, focus.meet.example.com]
    paths: [smacks@meet.example.com, client_proxy@focus.meet.example.com]
  register: __loaded
# __loaded.modules['focus.meet.example.com'] == ['authz_internal', 'client_proxy', ...]
"""

RETURN = r"""
modules:
  description: Host -> the names of the modules loaded there, sorted.
  type: dict
  returned: always
  sample: {"focus.meet.example.com": ["client_proxy", "iq", "saslauth", "tls"]}
paths:
  description: C(module@host) -> the file the module was loaded from (empty when it is not loaded there).
  type: dict
  returned: always
  sample: {"smacks@meet.example.com": "/usr/lib/prosody/modules/mod_smacks.lua"}
"""

import re

from ansible.module_utils.basic import AnsibleModule

HOST_PATTERN = re.compile(r"^[A-Za-z0-9.-]+$")
MODULE_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
LISTED = re.compile(r"^ {4}(\S+)$")
PATH_LINE = re.compile(r"^\s*path:\s*(\S+)\s*$")


class ShellError(Exception):
    """The admin shell did not answer; the message says why and what to check."""


def parse_list(output: str, host: str) -> list[str]:
    """The module names from module:list(host): the indented lines after the '<host>:' header."""
    names: list[str] = []
    inside = False
    for line in output.splitlines():
        if line.rstrip() == f"{host}:":
            inside = True
            continue
        if inside:
            match = LISTED.match(line)
            if match:
                names.append(match.group(1))
            elif line.strip():
                break
    return sorted(names)


def parse_path(output: str) -> str:
    """The 'path:' line of module:info(...), or '' when the module is not loaded there."""
    for line in output.splitlines():
        match = PATH_LINE.match(line)
        if match:
            return match.group(1)
    return ""


def shell(module: AnsibleModule, prosodyctl: str, config: str, command: str) -> str:
    rc, out, err = module.run_command([prosodyctl, "--config", config, "shell", command])
    text = out + err
    if rc != 0 or "Unable to connect" in text or "not running" in text.lower():
        lines = [line for line in text.splitlines() if line.strip()][-5:]
        raise ShellError(
            f"prosodyctl --config {config} shell could not ask the running Prosody (rc={rc}): "
            f"{' | '.join(lines)}. Is the instance running, and does its configuration load admin_shell?"
        )
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "path", "default": "/etc/prosody/prosody.cfg.lua"},
            "hosts": {"type": "list", "elements": "str", "required": True},
            "paths": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    bad = [host for host in params["hosts"] if not HOST_PATTERN.match(host)]
    bad += [item for item in params["paths"] if not re.match(r"^[A-Za-z0-9_-]+@[A-Za-z0-9.-]+$", item)]
    if bad:
        module.fail_json(msg=f"hosts and paths must be host names and module@host; got {bad}")
    prosodyctl = module.get_bin_path("prosodyctl", required=True)
    try:
        modules = {
            host: parse_list(shell(module, prosodyctl, params["config"], f'module:list("{host}")'), host)
            for host in params["hosts"]
        }
        paths = {}
        for item in params["paths"]:
            name, _unused, host = item.partition("@")
            paths[item] = parse_path(
                shell(module, prosodyctl, params["config"], f'module:info("{name}", "{host}")')
            )
    except ShellError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, modules=modules, paths=paths)


if __name__ == "__main__":
    main()
