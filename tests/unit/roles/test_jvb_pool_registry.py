# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""The pool registry of meetops.jitsi.jvb (roles/jvb/files/meetops-jvb-pool):
run as a program and imported."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from role_program import load_program

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "jvb" / "files" / "meetops-jvb-pool"


POOL = load_program("jvb", "meetops-jvb-pool")


def run(state: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--state-dir", str(state), *argv],
        capture_output=True,
        text=True,
        check=False,
    )


def test_members_take_the_lowest_free_slots_and_keep_them(tmp_path):
    first = POOL.claim("eu", "bridge-a", 3, False, tmp_path)
    second = POOL.claim("eu", "bridge-b", 3, False, tmp_path)
    again = POOL.claim("eu", "bridge-a", 3, False, tmp_path)
    assert (first["slot"], first["changed"]) == (1, True)
    assert (second["slot"], second["changed"]) == (2, True)
    assert (again["slot"], again["changed"]) == (1, False)


def test_a_released_slot_goes_to_the_next_member(tmp_path):
    POOL.claim("eu", "bridge-a", 3, False, tmp_path)
    POOL.claim("eu", "bridge-b", 3, False, tmp_path)
    assert POOL.release("eu", "bridge-a", False, tmp_path) == {
        "pool": "eu",
        "member": "bridge-a",
        "slot": 1,
        "changed": True,
    }
    assert POOL.release("eu", "bridge-a", False, tmp_path)["changed"] is False
    assert POOL.claim("eu", "bridge-c", 3, False, tmp_path)["slot"] == 1
    assert POOL.listing("eu", tmp_path)["slots"]["2"]["member"] == "bridge-b"


def test_check_mode_says_what_would_happen_and_changes_nothing(tmp_path):
    assert POOL.claim("eu", "bridge-a", 2, True, tmp_path) == {
        "pool": "eu",
        "member": "bridge-a",
        "slot": 1,
        "changed": True,
    }
    assert POOL.listing("eu", tmp_path)["slots"] == {}
    POOL.claim("eu", "bridge-a", 2, False, tmp_path)
    assert POOL.release("eu", "bridge-a", True, tmp_path)["changed"] is True
    assert POOL.listing("eu", tmp_path)["slots"]["1"]["member"] == "bridge-a"


def test_a_full_pool_names_the_holders_and_the_fix(tmp_path):
    POOL.claim("eu", "bridge-a", 1, False, tmp_path)
    result = run(tmp_path, "claim", "eu", "bridge-b", "--slots", "1")
    assert result.returncode == 1
    assert "pool 'eu' is full: all 1 slot(s) are held (1: bridge-a)" in result.stderr
    assert "raise the pool's max_bridges" in result.stderr


def test_pools_are_kept_apart(tmp_path):
    POOL.claim("eu", "bridge-a", 2, False, tmp_path)
    assert POOL.claim("us", "bridge-b", 2, False, tmp_path)["slot"] == 1


@pytest.mark.parametrize("argv", [["claim", "../etc", "m", "--slots", "2"], ["release", "eu", "a b"]])
def test_names_that_are_not_plain_are_refused(tmp_path, argv):
    result = run(tmp_path, *argv)
    assert result.returncode == 1
    assert "is not a plain name" in result.stderr
    assert not list(tmp_path.glob("*.json"))


def test_a_damaged_state_file_is_reported_not_overwritten(tmp_path):
    (tmp_path / "eu.json").write_text("{not json", encoding="utf-8")
    result = run(tmp_path, "claim", "eu", "bridge-a", "--slots", "2")
    assert result.returncode == 1
    assert "eu.json cannot be read" in result.stderr
    assert (tmp_path / "eu.json").read_text(encoding="utf-8") == "{not json"


def test_the_program_prints_one_json_object(tmp_path):
    result = run(tmp_path, "claim", "eu", "bridge-a", "--slots", "2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"pool": "eu", "member": "bridge-a", "slot": 1, "changed": True}


def claim_in_a_process(state: str, member: str) -> int:
    return int(load_program("jvb", "meetops-jvb-pool").claim("eu", member, 8, False, Path(state))["slot"])


def test_members_claiming_at_once_never_share_a_slot(tmp_path):
    members = [f"bridge-{n}" for n in range(8)]
    with ProcessPoolExecutor(max_workers=4) as pool:
        slots = list(pool.map(claim_in_a_process, [str(tmp_path)] * len(members), members))
    assert sorted(slots) == list(range(1, 9))
