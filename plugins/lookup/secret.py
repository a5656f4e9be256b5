# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Lookup ``secret``: a deployment's generated password, read from or made once in the controller's store."""

from __future__ import annotations

DOCUMENTATION = r"""
name: secret
short_description: Read a deployment's generated password, or make it once, in the controller's store
version_added: 0.2.0
author: meetops.jitsi maintainers (@meetops)
description:
  - Returns the password of each account named in the terms, from
    C(<directory>/<namespace>/passwords/<account>) on the controller. A missing file is created with a
    new password (32 letters and digits, which need no quoting in HOCON, Lua, shell or URLs) by
    P(ansible.builtin.password#lookup), which also serialises hosts that ask for the same new file at once.
  - This is the one place of the collection's convention. Every role that creates or uses an account
    (Prosody, the bridge Prosody, Jicofo, the videobridges, the verify role) asks this lookup with the
    same O(directory) and O(namespace), so they all hold the same password without it ever being in the
    inventory.
  - The value is a secret. Use it in tasks with C(no_log), or in templates whose diff is hidden.
options:
  _terms:
    description: Accounts, as C(user@domain), such as C(focus@auth.meet.example.com).
    type: list
    elements: str
    required: true
  directory:
    description:
      - The controller's secrets directory (an absolute path); the roles pass their C(<role>_secrets_dir),
        whose default is C(meetops_jitsi_secrets_dir), else C(~/.local/share/meetops-jitsi).
    type: path
    required: true
  namespace:
    description:
      - The deployment's subdirectory of O(directory); the roles pass their C(<role>_secrets_namespace),
        whose default is C(meetops_jitsi_secrets_namespace), else the deployment's domain.
    type: str
    required: true
  create:
    description:
      - Make a missing password. With C(false) a missing file gives an empty string, so a check (such as
        the verify role's logins) reports the account as failing instead of creating it.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Give the focus account its password
  meetops.jitsi.prosody_account:
    name: focus
    host: auth.meet.example.com
    password: "{{ lookup('meetops.jitsi.secret', 'focus@auth.meet.example.com',
                  directory=prosody_secrets_dir, namespace=prosody_secrets_namespace) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One password per term, in the order of the terms.
  type: list
  elements: str
"""


import os
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader
from ansible.plugins.lookup import LookupBase

from ansible_collections.meetops.jitsi.plugins.module_utils._secrets import (
    PASSWORD_CHARS,
    PASSWORD_LENGTH,
    SecretPathError,
    password_path,
)


class LookupModule(LookupBase):
    """Read or make each named account's password in the deployment's store."""

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        directory = self.get_option("directory")
        namespace = self.get_option("namespace")
        try:
            paths = [password_path(directory, namespace, term) for term in terms]
        except SecretPathError as error:
            raise AnsibleLookupError(f"meetops.jitsi.secret: {error}") from None
        password = lookup_loader.get("ansible.builtin.password", loader=self._loader, templar=self._templar)
        create = self.get_option("create")
        return [
            password.run([path], variables, length=PASSWORD_LENGTH, chars=list(PASSWORD_CHARS))[0]
            if create or os.path.exists(path)
            else ""
            for path in paths
        ]
