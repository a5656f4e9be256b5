"""Bad input to playbooks/single.yml on the converged one-host deployment: each case fails in the playbook's
first play (the validation pass), with a message naming the variable, before any host changes: no file
under /etc or /usr/local changes and no service restarts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import testinfra
import testinfra.utils.ansible_runner
from meetops_test_helpers import run_playbook

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
SINGLE = RUNNER.get_hosts("jitsi")[0]
PLAYBOOK = str(Path(__file__).resolve().parents[4] / "playbooks" / "single.yml")
MARKER = "/run/meetops-bad-input-marker"
SERVICES = ("prosody", "prosody-jvb", "nginx")

# The runs reach the host themselves.
testinfra_hosts = [SINGLE]

# (case, extra variables, what the message must name)
CASES = [
    ("domain not a DNS name", {"prosody_domain": "Meet_Example"}, ["prosody_domain"]),
    ("listen backlog 0", {"prosody_tcp_backlog": 0}, ["prosody_tcp_backlog"]),
    ("rate without a unit", {"prosody_limits_c2s_rate": "fast"}, ["prosody_limits_c2s_rate"]),
    (
        "stanza limit below Prosody's minimum",
        {"prosody_c2s_stanza_size_limit": 100},
        ["prosody_c2s_stanza_size_limit"],
    ),
    (
        "account on the anonymous main host",
        {"prosody_accounts": [{"name": "alice", "host": "single.topologies.test", "password": "Secret0ne2"}]},
        ["prosody_accounts", "anonymous"],
    ),
    ("plugins from nowhere", {"prosody_jitsi_plugins": "somewhere"}, ["prosody_jitsi_plugins"]),
    ("ports not a list of ports (argument spec)", {"prosody_c2s_ports": "many"}, ["prosody_c2s_ports"]),
    ("bridge Prosody domain", {"prosody_jvb_domain": "not a domain"}, ["prosody_jvb_domain"]),
    ("bridge Prosody port", {"prosody_jvb_c2s_port": 70000}, ["prosody_jvb_c2s_port"]),
    ("Jicofo heap", {"jicofo_max_memory": "lots"}, ["jicofo_max_memory"]),
    ("Jicofo brewery", {"jicofo_brewery_jid": "brewery"}, ["jicofo_brewery_jid"]),
    ("Jicofo of another domain", {"jicofo_domain": "other.test"}, ["jicofo_domain", "prosody_domain"]),
    (
        "spreading conferences without relay",
        {"jicofo_bridge_selection_strategy": "SplitBridgeSelectionStrategy"},
        ["jicofo_bridge_selection_strategy", "jicofo_relay_enabled"],
    ),
    ("bridge heap", {"jvb_max_memory": "lots"}, ["jvb_max_memory"]),
    (
        "bridge shard without a domain",
        {"jvb_shards": [{"name": "shard", "host": "localhost"}]},
        ["jvb_shards"],
    ),
    (
        "renewal window longer than the validity",
        {"web_certificate_renew_days": 400},
        ["web_certificate_renew_days"],
    ),
    ("web domain", {"web_domain": "bad_domain"}, ["web_domain"]),
    ("ephemeral ports", {"os_tuning_ip_local_port_range": "80 90"}, ["os_tuning_ip_local_port_range"]),
    ("open files", {"os_tuning_nofile": 10}, ["os_tuning_nofile"]),
    (
        "a kernel parameter the host does not have",
        {"os_tuning_sysctl_extra": {"net.ipv4.tcp_keepalive_tme": 60}},
        ["os_tuning_sysctl_extra", "did you mean net.ipv4.tcp_keepalive_time?"],
    ),
    (
        "a misspelt variable, with unknown variables made errors",
        {"meetops_jitsi_unknown_variables": "fail", "prosody_tcp_backlg": 4096},
        ["prosody_tcp_backlg", "did you mean prosody_tcp_backlog"],
    ),
    # Two services of the host given one port (the validation pass compares every role's ports).
    ("Prosody's HTTP port on nginx's 443", {"prosody_http_ports": [443]}, ["prosody_http_ports", "port 443"]),
    (
        "bridge Prosody on the clients' port",
        {"prosody_jvb_c2s_port": 5222},
        ["prosody_jvb_c2s_port", "prosody_c2s_ports"],
    ),
    ("Jicofo's REST on a bridge's", {"jicofo_rest_port": 8080}, ["jicofo_rest_port", "rest_port_base"]),
    (
        "Prosody's two ports the same",
        {"prosody_c2s_ports": [5280]},
        ["prosody_c2s_ports", "prosody_http_ports"],
    ),
    (
        "drain of a bridge this host does not run",
        {"jvb_drained_instances": ["jvb9"]},
        ["jvb_drained_instances", "jvb9"],
    ),
    (
        "graceful stop time not a number (argument spec)",
        {"jvb_graceful_shutdown_minutes": "soon"},
        ["jvb_graceful_shutdown_minutes"],
    ),
    # The internal CA issues DNS names only.
    ("an address as a certificate name", {"web_tls_extra_names": ["10.0.0.1"]}, ["web_tls_extra_names"]),
    (
        "a site certificate without its key",
        {"web_tls_certificate": "/etc/ssl/certs/meet.pem"},
        ["web_tls_certificate", "web_tls_key"],
    ),
    (
        "unknown-variables mode",
        {"meetops_jitsi_unknown_variables": "loud"},
        ["meetops_jitsi_unknown_variables"],
    ),
]


def main_pids(host) -> dict[str, str]:
    return {unit: host.check_output(f"systemctl show -p MainPID --value {unit}") for unit in SERVICES}


@pytest.mark.parametrize(("case", "extra_vars", "named"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_fails_in_the_validation_pass_naming_the_variable(host, case, extra_vars, named):
    pids = main_pids(host)
    assert all(pid != "0" for pid in pids.values()), pids
    host.check_output(f"touch {MARKER}")
    result = run_playbook(PLAYBOOK, "--limit", SINGLE, extra_vars=extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: the run succeeded\n{output[-3000:]}"
    # Each failed result, with the lines it continues on (a debug task's result is printed over several).
    failures = "\n".join(re.findall(r"^(?:fatal|failed): .*?(?=\n\S|\Z)", output, re.MULTILINE | re.DOTALL))
    for name in named:
        assert name in failures, f"{case}: {name!r} is not named in\n{failures or output[-3000:]}"
    # The deployment play never started: the failure is in the validation pass.
    assert "PLAY [Deploy Jitsi Meet on a single host]" not in output, f"{case}: got past the validation pass"
    changed = host.check_output(f"find /etc /usr/local -newer {MARKER} -not -type d")
    assert changed == "", f"{case}: files changed: {changed}"
    assert main_pids(host) == pids, f"{case}: a service restarted"
