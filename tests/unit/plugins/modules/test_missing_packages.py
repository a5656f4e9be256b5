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


class FakeModule:
    """Answers dpkg --compare-versions for a few version pairs, as dpkg does."""

    ORDER = ("13.0.1-1+deb131u", "13.0.3-1", "13.0.6-1~bpo13+1")

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        assert argv[:2] == ["dpkg", "--compare-versions"]
        have, operator, lowest = argv[2:]
        assert operator == "lt"
        return (0 if self.ORDER.index(have) < self.ORDER.index(lowest) else 1), "", ""


def test_a_version_below_the_minimum_counts_as_missing() -> None:
    installed = {"prosody": "13.0.1-1+deb131u", "lua-cjson": "2.1"}
    assert mod.older_than_minimum(FakeModule(), installed, {"prosody": "13.0.3-1"}) == {"prosody"}
    installed["prosody"] = "13.0.6-1~bpo13+1"
    assert mod.older_than_minimum(FakeModule(), installed, {"prosody": "13.0.3-1"}) == set()
    # Not installed: already missing, not compared.
    assert mod.older_than_minimum(FakeModule(), {}, {"prosody": "13.0.3-1"}) == set()
