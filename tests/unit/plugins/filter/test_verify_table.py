"""Unit tests for the verify_table filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meetops.jitsi.plugins.filter.verify_table import verify_table

ROWS = [
    {"host": "shard2", "component": "web", "check": "service nginx", "status": "ok", "detail": "active"},
    {
        "host": "shard1",
        "component": "jicofo",
        "check": "service",
        "status": "not installed",
        "detail": "no package",
    },
    {
        "host": "shard1",
        "component": "prosody prosody",
        "check": "service prosody.service",
        "status": "FAIL",
        "detail": "inactive",
    },
]


def test_rows_are_sorted_aligned_and_counted():
    lines = verify_table(ROWS)
    assert lines[0].split() == ["HOST", "COMPONENT", "CHECK", "STATUS", "DETAIL"]
    assert [line.split()[0] for line in lines[1:4]] == ["shard1", "shard1", "shard2"]
    # Columns line up: every status starts where the header's does.
    column = lines[0].index("STATUS")
    assert [line[column:].split("  ")[0] for line in lines[1:4]] == ["not installed", "FAIL", "ok"]
    assert lines[-1] == "3 checks: 1 ok, 1 FAIL, 1 not installed"


def test_an_unknown_status_is_refused():
    with pytest.raises(AnsibleFilterError, match="unknown status"):
        verify_table([{"host": "h", "component": "c", "check": "x", "status": "passed", "detail": ""}])


def test_no_rows_is_an_empty_table():
    assert verify_table([])[-1] == "0 checks: 0 ok, 0 FAIL, 0 not installed"
