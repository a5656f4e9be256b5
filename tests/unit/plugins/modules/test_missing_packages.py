"""Unit tests for the missing_packages module's parsing and matching."""

from __future__ import annotations

from ansible_collections.meetops.jitsi.plugins.modules import missing_packages as mod

OUTPUT = "nginx\tii \t1.22.1-9\njicofo\tii \t1.0-1174-1\nhaproxy\trc \t2.6.12-1\n"


def test_only_fully_installed_packages_count() -> None:
    assert mod.parse_installed(OUTPUT) == {"nginx": "1.22.1-9", "jicofo": "1.0-1174-1"}


def test_missing_keeps_the_requested_form() -> None:
    installed = mod.parse_installed(OUTPUT)
    assert mod.missing(["nginx", "haproxy", "socat"], installed) == ["haproxy", "socat"]


def test_pinned_versions_must_match_exactly_or_by_prefix() -> None:
    installed = mod.parse_installed(OUTPUT)
    assert mod.missing(["jicofo=1.0-1174-1", "nginx=1.22*"], installed) == []
    assert mod.missing(["jicofo=1.0-1175-1", "nginx=1.24*"], installed) == [
        "jicofo=1.0-1175-1",
        "nginx=1.24*",
    ]


def test_architecture_qualifiers_are_ignored_for_matching() -> None:
    assert mod.missing(["nginx:amd64"], {"nginx": "1"}) == []
