#!/usr/bin/env python3
"""Check that the Jitsi modules meetops.jitsi.prosody loads and docs/jitsi-keys/prosody.md list are the same.

The role's module lists are the `_prosody_jitsi_*_modules` variables and the modules of
`_prosody_jitsi_components` in roles/prosody/vars/main.yml; the documentation's are the first column of its
`jitsi-modules` block. usage: check_prosody_modules.py [REPO_DIR]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

BLOCK = re.compile(r"```jitsi-modules\n(.*?)```", re.DOTALL)


def documented(markdown: str) -> set[str]:
    match = BLOCK.search(markdown)
    if not match:
        raise SystemExit("docs/jitsi-keys/prosody.md has no jitsi-modules block")
    rows = [line for line in match.group(1).splitlines() if line.strip() and not line.startswith("#")]
    return {row.split("|")[0].strip() for row in rows}


def loaded(variables: dict[str, object]) -> set[str]:
    names: set[str] = set()
    for key, value in variables.items():
        if (
            key.startswith("_prosody_jitsi_")
            and key.endswith("_modules")
            and key != "_prosody_jitsi_required_modules"
        ):
            names.update(value if isinstance(value, list) else re.findall(r"'([a-z_]+)'", str(value)))
    names.update(re.findall(r"'module': '([a-z_]+)'", str(variables["_prosody_jitsi_components"])))
    return names


def main(repo: Path) -> int:
    docs = documented((repo / "docs/jitsi-keys/prosody.md").read_text())
    role = loaded(yaml.safe_load((repo / "roles/prosody/vars/main.yml").read_text()))
    problems = [f"loaded by the role but not documented: {name}" for name in sorted(role - docs)]
    problems += [f"documented but not loaded by the role: {name}" for name in sorted(docs - role)]
    for problem in problems:
        print(f"docs/jitsi-keys/prosody.md: {problem}")
    print(f"prosody modules: {len(role)} in the role, {len(docs)} documented, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]))
