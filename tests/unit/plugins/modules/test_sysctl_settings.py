"""Unit tests for the sysctl_settings module's planning, rendering and applying."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.meetops.jitsi.plugins.modules import sysctl_settings as mod


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A fake /proc/sys with a namespaced key, a read-only key and a multi-field key."""
    for key, value in {
        "net.core.somaxconn": "4096\n",
        "net.core.rmem_max": "212992\n",
        "net.ipv4.ip_local_port_range": "32768\t60999\n",
    }.items():
        path = Path(mod.proc_path(key, str(tmp_path)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
    return tmp_path


def probe_read_only(*read_only: str):
    """A write probe that reports the given keys as read-only, like a container's network namespace."""

    def probe(path: str) -> str | None:
        if not Path(path).exists():
            return mod.NOT_PRESENT
        if any(path.endswith("/" + key.replace(".", "/")) for key in read_only):
            return "read-only in this namespace"
        return None

    return probe


def test_normalize_collapses_whitespace_and_numbers():
    assert mod.normalize("32768\t60999\n") == "32768 60999"
    assert mod.normalize(4096) == "4096"
    assert mod.normalize(True) == "1"


def test_plan_sorts_keys_into_applied_updates_and_unsupported(proc: Path):
    settings = {
        "net.core.somaxconn": 4096,
        "net.ipv4.ip_local_port_range": "10240 65000",
        "net.core.rmem_max": 10485760,
        "net.core.netdev_max_backlog": 100000,
    }
    result = mod.plan(settings, str(proc), probe_read_only("net.core.rmem_max"))
    assert result.applied == {"net.core.somaxconn": "4096"}
    assert result.updates == {"net.ipv4.ip_local_port_range": "10240 65000"}
    assert result.unsupported == {
        "net.core.netdev_max_backlog": mod.NOT_PRESENT,
        "net.core.rmem_max": "read-only in this namespace",
    }
    assert result.before["net.ipv4.ip_local_port_range"] == "32768 60999"


def test_plan_treats_whitespace_only_difference_as_applied(proc: Path):
    result = mod.plan({"net.ipv4.ip_local_port_range": "32768   60999"}, str(proc), probe_read_only())
    assert result.updates == {}
    assert result.applied == {"net.ipv4.ip_local_port_range": "32768 60999"}


def test_render_marks_unsupported_keys_optional_with_reason():
    text = mod.render(
        {"net.core.somaxconn": 4096, "net.core.rmem_max": 10485760},
        {"net.core.rmem_max": "read-only in this namespace"},
        ["Managed by Ansible"],
    )
    assert text.splitlines() == [
        "# Managed by Ansible",
        "# Not settable on this host: read-only in this namespace.",
        "-net.core.rmem_max = 10485760",
        "net.core.somaxconn = 4096",
    ]


def test_apply_updates_writes_and_reports_values_the_kernel_changed(proc: Path, monkeypatch):
    assert mod.apply_updates({"net.core.somaxconn": "8192"}, str(proc)) == []
    assert (proc / "net/core/somaxconn").read_text().strip() == "8192"

    real_open = open

    def clamping_open(path, mode="r", **kwargs):
        handle = real_open(path, mode, **kwargs)
        if "w" in mode and str(path).endswith("somaxconn"):
            real_write = handle.write
            handle.write = lambda _value: real_write("65535\n")  # the kernel caps it
        return handle

    monkeypatch.setattr("builtins.open", clamping_open)
    assert mod.apply_updates({"net.core.somaxconn": "100000"}, str(proc)) == ["net.core.somaxconn"]


def test_write_probe_on_real_files(tmp_path: Path):
    existing = tmp_path / "key"
    existing.write_text("1\n")
    assert mod.write_probe(str(existing)) is None
    assert existing.read_text() == "1\n", "the probe must not truncate or write"
    assert mod.write_probe(str(tmp_path / "missing")) == mod.NOT_PRESENT


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"net/core/somaxconn": 1}, "net/core/somaxconn"),
        ({"-net.core.somaxconn": 1}, "-net.core.somaxconn"),
        ({"net.core.somaxconn": None}, "net.core.somaxconn"),
        ({"net.core.somaxconn": ""}, "net.core.somaxconn"),
        ({"net.core.somaxconn": [1, 2]}, "net.core.somaxconn"),
    ],
)
def test_validate_settings_names_the_bad_entry(settings, needle):
    problems = mod.validate_settings(settings)
    assert len(problems) == 1
    assert needle in problems[0]


def test_validate_settings_accepts_numbers_and_strings():
    assert mod.validate_settings({"net.core.somaxconn": 4096, "net.ipv4.ip_local_port_range": "1 2"}) == []


def test_missing_keys_suggest_the_closest_key_of_the_host(proc: Path):
    missing = mod.missing_keys(["net.core.somaxconn", "net.core.somaxcon", "vm.nothing_like_it"], str(proc))
    assert missing == {"net.core.somaxcon": "net.core.somaxconn", "vm.nothing_like_it": None}


def test_all_keys_are_dotted(proc: Path):
    assert sorted(mod.all_keys(str(proc))) == [
        "net.core.rmem_max",
        "net.core.somaxconn",
        "net.ipv4.ip_local_port_range",
    ]


def test_missing_message_names_the_source_each_key_and_the_suggestion():
    message = mod.missing_message(
        {"net.core.somaxcon": "net.core.somaxconn", "vm.x": None}, "os_tuning_sysctl_extra"
    )
    assert message.startswith(
        "os_tuning_sysctl_extra: net.core.somaxcon is not a kernel parameter on this host"
    )
    assert "did you mean net.core.somaxconn?" in message
    assert "vm.x is not a kernel parameter on this host (no /proc/sys/vm/x)." in message
    assert "nothing was changed" in message
