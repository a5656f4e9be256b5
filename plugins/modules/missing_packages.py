#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Say which Debian packages are not installed (at the wanted version), with one dpkg-query call.

The roles ask this before ansible.builtin.apt, which opens the whole apt cache even when there is nothing
to do; on a converged host the apt task is then skipped, which makes an unchanged re-run much faster.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: missing_packages
short_description: Which Debian packages are not installed, or not at the wanted version
version_added: 0.1.0
description:
  - Reads the dpkg database once (C(dpkg-query -W)) and returns the requested packages that are not fully
    installed, in the form they were asked for, ready to hand to M(ansible.builtin.apt).
  - A package asked for as C(name=version) counts as installed only at that version; the version may end
    in C(*) to match a prefix, as apt allows.
  - A package named in O(minimum) counts as missing while its installed version is older than that one
    (compared as dpkg does), so an upgrade can be asked for by name.
  - Changes nothing; runs the same in check mode.
options:
  names:
    description: Package names, each C(name) or C(name=version).
    type: list
    elements: str
    required: true
  minimum:
    description: Lowest acceptable installed version of some of the packages, by name.
    type: dict
    default: {}
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
- name: Find which of nginx's packages are missing
  meetops.jitsi.missing_packages:
    names: [nginx, ssl-cert]
  register: __web_missing

- name: Install them
  ansible.builtin.apt:
    name: "{{ __web_missing.missing }}"
    state: present
    update_cache: true
  when: __web_missing.missing | length > 0
"""

RETURN = r"""
missing:
  description: The requested packages (as given) that are not installed at the wanted version.
  type: list
  elements: str
  returned: always
  sample: ["nginx", "jicofo=1.0-1174-1"]
"""

import fnmatch

from ansible.module_utils.basic import AnsibleModule

QUERY_FORMAT = "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"


def parse_installed(output: str) -> dict[str, str]:
    """Package name -> version of the packages dpkg-query reports as installed (status 'ii')."""
    installed = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[1].strip() == "ii":
            installed[fields[0]] = fields[2]
    return installed


def missing(names: list[str], installed: dict[str, str]) -> list[str]:
    """The entries of `names` (name or name=version) not satisfied by `installed`."""
    result = []
    for entry in names:
        name, _unused, version = entry.partition("=")
        name = name.split(":")[0]  # an architecture qualifier (pkg:amd64) is not in ${Package}
        have = installed.get(name)
        if have is None or (version and not fnmatch.fnmatchcase(have, version)):
            result.append(entry)
    return result


def older_than_minimum(module: AnsibleModule, installed: dict[str, str], minimum: dict[str, str]) -> set[str]:
    """Names of installed packages whose version is below their minimum."""
    older = set()
    for name, lowest in minimum.items():
        have = installed.get(name)
        if have is not None and lowest:
            rc, _unused, _unused = module.run_command(["dpkg", "--compare-versions", have, "lt", str(lowest)])
            if rc == 0:
                older.add(name)
    return older


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "required": True},
            "minimum": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    names = module.params["names"]
    if not names:
        module.exit_json(changed=False, missing=[])
    query = [entry.partition("=")[0].split(":")[0] for entry in names]
    # rc 1 means some package is unknown to dpkg; the others are still listed.
    rc, out, err = module.run_command(["dpkg-query", "-W", "-f", QUERY_FORMAT, *query])
    if rc not in (0, 1):
        module.fail_json(msg=f"dpkg-query failed: {err.strip()}", rc=rc)
    installed = parse_installed(out)
    older = older_than_minimum(module, installed, module.params["minimum"])
    result = missing(names, installed)
    result += [entry for entry in names if entry.partition("=")[0] in older and entry not in result]
    module.exit_json(changed=False, missing=result)


if __name__ == "__main__":
    main()
