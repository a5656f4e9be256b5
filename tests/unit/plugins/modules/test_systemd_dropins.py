"""Unit tests for the systemd_dropins module's argument checks and planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.meetops.jitsi.plugins.modules import systemd_dropins as mod

CONTENT = "[Service]\nLimitNOFILE=65000\n"


def test_plan_lists_missing_and_different_dropins_only(tmp_path: Path):
    same = tmp_path / "nginx.service.d" / "60.conf"
    same.parent.mkdir()
    same.write_text(CONTENT)
    other = tmp_path / "haproxy.service.d" / "60.conf"
    other.parent.mkdir()
    other.write_text("[Service]\nLimitNOFILE=1024\n")

    units = ["nginx.service", "haproxy.service", "jvb@.service"]
    changes = mod.plan(units, "60.conf", CONTENT, str(tmp_path))

    assert changes == {
        "haproxy.service": ("[Service]\nLimitNOFILE=1024\n", CONTENT),
        "jvb@.service": (None, CONTENT),
    }


def test_plan_for_absent_removes_existing_files_only(tmp_path: Path):
    present = tmp_path / "nginx.service.d" / "60.conf"
    present.parent.mkdir()
    present.write_text(CONTENT)
    assert mod.plan(["nginx.service", "haproxy.service"], "60.conf", None, str(tmp_path)) == {
        "nginx.service": (CONTENT, None)
    }


def test_plan_counts_a_unit_listed_twice_once(tmp_path: Path):
    assert list(mod.plan(["a.service", "a.service"], "60.conf", CONTENT, str(tmp_path))) == ["a.service"]


@pytest.mark.parametrize(
    "unit", ["prosody.service", "jitsi-videobridge@.service", "jvb@1.service", "wg-quick@wg0.service"]
)
def test_valid_unit_names_pass(unit):
    assert mod.invalid_arguments([unit], "60-limits.conf") == []


@pytest.mark.parametrize("unit", ["prosody", "../etc/passwd.service", "pro sody.service", "a/b.service"])
def test_invalid_unit_names_are_named(unit):
    (problem,) = mod.invalid_arguments([unit], "60-limits.conf")
    assert f"'{unit}'" in problem


@pytest.mark.parametrize("name", ["limits", "../x.conf", "a/b.conf", "x.conf.bak"])
def test_invalid_file_names_are_named(name):
    (problem,) = mod.invalid_arguments(["prosody.service"], name)
    assert f"'{name}'" in problem
