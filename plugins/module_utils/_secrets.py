# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Private to meetops.jitsi: where the controller keeps a deployment's generated secrets, and their form.

The one convention of the collection, used by the ``meetops.jitsi.secret`` lookup (every role), the tests
and the benchmarks: a deployment's passwords live on the controller in
``<directory>/<namespace>/passwords/<account>``, one file per account, made once and never in the
inventory. (The internal CA lives beside them in ``<directory>/<namespace>/ca``; the roles still spell
that path themselves.)
"""

from __future__ import annotations

import os
import re

# Generated passwords: long, and only characters that need no quoting anywhere (HOCON, Lua, shell, URLs).
PASSWORD_LENGTH = 32
PASSWORD_CHARS = ("ascii_letters", "digits")

# One path component: no separator, not "." or "..", nothing hidden, no whitespace.
_COMPONENT = re.compile(r"^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$")


class SecretPathError(ValueError):
    """A directory, namespace or account that cannot name a place in the secrets store."""


def _component(value: object, what: str, example: str) -> str:
    if not isinstance(value, str) or not _COMPONENT.match(value) or value in (".", ".."):
        raise SecretPathError(
            f"the secrets {what} is {value!r}, which is not one path component (letters, digits and "
            f"'._@+-', not starting with a dot), such as {example!r}"
        )
    return value


def namespace_dir(directory: str, namespace: str) -> str:
    """Return the directory of one deployment's secrets: ``<directory>/<namespace>``."""
    if not isinstance(directory, str) or not os.path.isabs(directory):
        raise SecretPathError(
            f"the secrets directory is {directory!r}; it must be an absolute path on the controller, "
            "such as '/home/me/.local/share/meetops-jitsi' (meetops_jitsi_secrets_dir)"
        )
    return os.path.join(directory, _component(namespace, "namespace", "meet.example.com"))


def password_path(directory: str, namespace: str, account: str) -> str:
    """Return the file of ACCOUNT's password: ``<directory>/<namespace>/passwords/<account>``."""
    base = namespace_dir(directory, namespace)
    return os.path.join(base, "passwords", _component(account, "account", "focus@auth.meet.example.com"))
