#!/usr/bin/env python3
"""Check that each role's meta/argument_specs.yml and defaults/main.yml describe the same variables.

Every public default needs a spec entry (type, description) and every spec option a default with the same
value, so the spec can be the role's reference documentation. usage: check_argument_specs.py ROLE_DIR...
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def check_role(role: Path) -> list[str]:
    defaults_file = role / "defaults" / "main.yml"
    specs_file = role / "meta" / "argument_specs.yml"
    if not specs_file.is_file():
        return [f"{role.name}: {specs_file} is missing"]
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.is_file() else {}
    defaults = defaults or {}
    entries = yaml.safe_load(specs_file.read_text())["argument_specs"]
    options = entries["main"].get("options", {})
    problems = []
    if "preflight" in entries and entries["preflight"].get("options", {}) != options:
        problems.append(
            f"{role.name}: the preflight entry point must take the main options (options: *main_options)"
        )
    if "preflight" in entries and not (role / "tasks" / "preflight.yml").is_file():
        problems.append(f"{role.name}: the preflight entry point has no tasks/preflight.yml")
    prefix = role.name + "_"  # a private role _x has options _x_*
    for name in sorted(set(defaults) - set(options)):
        problems.append(f"{role.name}: default {name} has no entry in meta/argument_specs.yml")
    for name, spec in sorted(options.items()):
        if not name.startswith(prefix):
            problems.append(f"{role.name}: option {name} does not start with {prefix}")
        if "description" not in spec or "type" not in spec:
            problems.append(f"{role.name}: option {name} needs a type and a description")
        if spec.get("required"):
            if name in defaults:
                problems.append(f"{role.name}: required option {name} must not have a default")
            continue
        if name not in defaults:
            problems.append(f"{role.name}: option {name} has no default in defaults/main.yml")
        elif "default" in spec and spec["default"] != defaults[name]:
            problems.append(
                f"{role.name}: {name} defaults to {defaults[name]!r} in defaults/main.yml "
                f"but {spec['default']!r} in meta/argument_specs.yml"
            )
    return problems


def main(roles: list[str]) -> int:
    problems = [p for role in roles for p in check_role(Path(role))]
    for problem in problems:
        print(problem)
    print(f"argument specs: {len(roles)} roles checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
