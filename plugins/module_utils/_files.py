# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Private to meetops.jitsi: reading and atomically writing small text files in modules."""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def read_text(path: str) -> str | None:
    """Return a file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_text(module: AnsibleModule, path: str, content: str, mode: int = 0o644) -> None:
    """Replace PATH with CONTENT atomically (a temporary file moved into place), creating its directory."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=module.tmpdir)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(tmp, mode)
    module.atomic_move(tmp, path)
