# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Filter verify_table: the rows of playbooks/verify.yml as an aligned text table."""

from __future__ import annotations

DOCUMENTATION = r"""
name: verify_table
short_description: The checks of playbooks/verify.yml as an aligned text table
version_added: 0.1.0
description:
  - Takes the rows the role meetops.jitsi.verify collects (C(host), C(component), C(check), C(status),
    C(detail)) and returns the lines of a table, sorted by host and component, with a last line counting
    the rows by status.
options:
  _input:
    description: The rows.
    type: list
    elements: dict
    required: true
author: meetops.jitsi maintainers (@meetops)
"""

EXAMPLES = r"""
- name: Print the table
  ansible.builtin.debug:
    msg: "{{ rows | meetops.jitsi.verify_table }}"
"""

RETURN = r"""
_value:
  description: The table's lines, header first, then one line per row, then the count.
  type: list
  elements: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

COLUMNS = ("host", "component", "check", "status", "detail")
STATUSES = ("ok", "FAIL", "not installed")


def verify_table(rows: list[dict[str, Any]]) -> list[str]:
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError(f"verify_table takes a list of rows (dicts), got {type(rows).__name__}")
    unknown = sorted({str(row.get("status")) for row in rows} - set(STATUSES))
    if unknown:
        raise AnsibleFilterError(
            f"verify_table: unknown status {unknown}; a row's status is one of {STATUSES}"
        )
    cells = [[str(row.get(column, "")) for column in COLUMNS] for row in rows]
    cells.sort(key=lambda line: (line[0], line[1], line[2]))
    header = [column.upper() for column in COLUMNS]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(COLUMNS) - 1)]

    def render(line: list[str]) -> str:
        return (
            "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
            + "  "
            + line[-1]
        )

    counts = ", ".join(f"{sum(row.get('status') == status for row in rows)} {status}" for status in STATUSES)
    return [render(header)] + [render(line).rstrip() for line in cells] + [f"{len(rows)} checks: {counts}"]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"verify_table": verify_table}
