"""meetops.jitsi.os_tuning: check the values the kernel and systemd hold, not the files the role wrote."""

from __future__ import annotations

import json
import os

import pytest
import testinfra.utils.ansible_runner

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
WRITABLE = set(RUNNER.get_hosts("writable_proc_sys"))
READ_ONLY = set(RUNNER.get_hosts("read_only_proc_sys"))
testinfra_hosts = sorted(WRITABLE | READ_ONLY)

# The role's defaults, as the kernel prints them.
WANTED = {
    "net.core.somaxconn": "4096",
    "net.core.netdev_max_backlog": "100000",
    "net.core.rmem_max": "10485760",
    "net.core.wmem_max": "10485760",
    "net.ipv4.ip_local_port_range": "16384 48999",
}
# Per network namespace: a container's own namespace can hold them when /proc/sys is writable.
NAMESPACED = {"net.core.somaxconn", "net.ipv4.ip_local_port_range"}
DROPIN = "/etc/systemd/system/nginx.service.d/60-meetops-limits.conf"


def proc_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def live(host, key: str) -> str | None:
    cmd = host.run(f"cat {proc_path(key)}")
    return " ".join(cmd.stdout.split()) if cmd.rc == 0 else None


def fact(host) -> dict:
    return json.loads(host.file("/etc/ansible/facts.d/meetops_os_tuning.fact").content_string)


def name(host) -> str:
    return host.backend.get_hostname()


def limits_of(host, unit: str) -> dict[str, tuple[str, str]]:
    pid = host.check_output(f"systemctl show -p MainPID --value {unit}")
    assert pid not in ("", "0"), f"{unit} is not running"
    table = {}
    for line in host.file(f"/proc/{pid}/limits").content_string.splitlines()[1:]:
        label, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        table[label] = (soft, hard)
    return table


@pytest.mark.parametrize("key", sorted(NAMESPACED))
def test_namespaced_parameters_hold_the_wanted_value(host, key):
    if name(host) not in WRITABLE:
        pytest.skip("/proc/sys is read-only on this host")
    assert live(host, key) == WANTED[key]
    assert key in fact(host)["sysctl"]["applied"]


@pytest.mark.parametrize("key", sorted(WANTED))
def test_every_parameter_is_either_held_or_reported_with_a_true_reason(host, key):
    report = fact(host)["sysctl"]
    if key in report["applied"]:
        assert live(host, key) == WANTED[key]
        return
    reason = report["unsupported"][key]
    exists = host.file(proc_path(key)).exists
    # The reason must be the real one: the key is absent, or present but cannot be written here.
    if "not present" in reason:
        assert not exists
    else:
        assert exists
        probe = host.run(f"python3 -c 'import os; os.open(\"{proc_path(key)}\", os.O_WRONLY)'")
        assert probe.rc != 0, f"{key} is writable, yet the role reported: {reason}"


def test_read_only_proc_sys_is_reported_not_failed(host):
    if name(host) not in READ_ONLY:
        pytest.skip("only for the host with a read-only /proc/sys")
    report = fact(host)["sysctl"]
    assert report["applied"] == {}
    assert set(report["unsupported"]) == set(WANTED)
    assert "read-only" in report["unsupported"]["net.core.somaxconn"]


def test_dropin_file_keeps_unsupported_keys_optional(host):
    content = host.file("/etc/sysctl.d/60-meetops-jitsi.conf").content_string
    unsupported = fact(host)["sysctl"]["unsupported"]
    for key, value in WANTED.items():
        line = f"{key} = {value}"
        assert (f"-{line}" if key in unsupported else line) in content.splitlines()


def test_sysctl_file_owner_and_mode(host):
    dropin = host.file("/etc/sysctl.d/60-meetops-jitsi.conf")
    assert (dropin.user, dropin.group, dropin.mode) == ("root", "root", 0o644)


def test_systemd_sysctl_applies_the_dropin_without_failing(host):
    # At boot systemd-sysctl reads the drop-in; the '-' keys must not make it fail on this host.
    cmd = host.run("/usr/lib/systemd/systemd-sysctl /etc/sysctl.d/60-meetops-jitsi.conf")
    assert cmd.rc == 0, cmd.stderr


def test_systemd_holds_the_unit_limits(host):
    values = host.check_output("systemctl show -p LimitNOFILE -p LimitNPROC -p TasksMax nginx").splitlines()
    assert sorted(values) == ["LimitNOFILE=65000", "LimitNPROC=65000", "TasksMax=65000"]


def test_running_service_got_the_open_file_limit_systemd_can_grant(host):
    # systemd cannot raise a limit above its own hard limit (20000 in the lab's containers): the service
    # gets the lower of the two, and the role records both.
    nofile = fact(host)["limits"]["nofile"]
    ceiling = int(host.file("/proc/1/limits").content_string.split("Max open files")[1].split()[1])
    assert nofile["ceiling"] == str(ceiling)
    assert nofile["effective"] == min(65000, ceiling)
    soft, hard = limits_of(host, "nginx")["Max open files"]
    assert (int(soft), int(hard)) == (nofile["effective"], nofile["effective"])


def test_template_unit_dropin_covers_instances(host):
    dropin = host.file("/etc/systemd/system/jitsi-videobridge@.service.d/60-meetops-limits.conf")
    assert dropin.exists
    assert "LimitNOFILE=65000" in dropin.content_string.splitlines()
