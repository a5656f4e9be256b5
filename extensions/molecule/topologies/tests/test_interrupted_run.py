"""A playbook run killed half-way, then run again: playbooks/single.yml is killed (SIGKILL to the whole
ansible-playbook process group) while it applies a change to every component, as soon as it reaches the
bridge role; what is live at that moment is whole and valid, and the next run converges."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import testinfra.utils.ansible_runner
from meetops_test_helpers import INVENTORY, run_playbook

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
SINGLE = RUNNER.get_hosts("jitsi")[0]
SITE = "/etc/nginx/sites-available/single.topologies.test.conf"
PLAYBOOK = str(Path(__file__).resolve().parents[4] / "playbooks" / "single.yml")

# A change for each component: Prosody's configuration (and so a restart), Jicofo's, the bridge's
# environment and the nginx site.
CHANGE = {
    "prosody_tcp_backlog": 1024,
    "jicofo_max_bridge_participants": 60,
    "jvb_max_memory": "2048m",
    "web_websocket_timeout": 600,
}
# Killed when the deployment play (after the validation pass, which reads every role too) starts on the
# bridge: Prosody's and Jicofo's changes are done, the bridge's and the site's are not.
DEPLOY_PLAY = "PLAY [Deploy Jitsi Meet on a single host]"
KILL_AT = "TASK [meetops.jitsi.jvb : "

testinfra_hosts = [SINGLE]


def kill_run_when_it_reaches(play: str, marker: str, extra_vars: dict, timeout: float = 300) -> list[str]:
    """Start the playbook on SINGLE and kill it with SIGKILL once its output shows MARKER in PLAY; its
    output."""
    argv = ["ansible-playbook", "-i", INVENTORY, "--limit", SINGLE, "-e", json.dumps(extra_vars), PLAYBOOK]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    lines: list[str] = []
    in_play = False
    deadline = time.monotonic() + timeout
    try:
        assert run.stdout is not None
        for line in run.stdout:
            lines.append(line)
            in_play = in_play or line.startswith(play)
            if in_play and line.startswith(marker):
                break
            assert time.monotonic() < deadline, "".join(lines[-40:])
        else:
            raise AssertionError("the run ended before it reached " + marker + ":\n" + "".join(lines[-40:]))
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    return lines


def changed_count(output: str) -> int:
    match = re.search(rf"^{re.escape(SINGLE)}\s*:.* changed=(\d+)", output, re.M)
    assert match, output[-3000:]
    return int(match.group(1))


def assert_live_configuration_is_whole(host) -> None:
    """Every configuration the services read is complete and accepted by its own checker, no temporary
    file of a write is left beside one, and the services run."""
    for config_dir in ("/etc/prosody", "/etc/prosody-jvb"):
        check = host.run(f"meetops-prosody-check-config {config_dir}/prosody.cfg.lua {config_dir}")
        assert check.rc == 0, f"{config_dir}/prosody.cfg.lua: {check.stdout}{check.stderr}"
    nginx = host.run("nginx -t")
    assert nginx.rc == 0, nginx.stderr
    checks = [("meetops-jicofo-check-config", "/etc/jitsi/jicofo/jicofo.conf")] + [
        ("meetops-jvb-check-config", path)
        for path in host.check_output("ls /etc/jitsi/videobridge/*/jvb.conf").split()
    ]
    for checker, path in checks:
        checked = host.run(f"{checker} {path}")
        assert checked.rc == 0, f"{path}: {checked.stdout}{checked.stderr}"
    leftovers = host.check_output("find /etc -name '.ansible_tmp*' -o -name '.candidate-*'")
    assert leftovers == "", leftovers
    for unit in ("prosody", "prosody-jvb", "nginx"):
        assert host.service(unit).is_running, unit


def test_a_run_killed_half_way_leaves_a_whole_configuration_and_the_next_run_converges(host):
    jicofo_before = host.file("/etc/jitsi/jicofo/jicofo.conf").content_string
    assert "max-bridge-participants = 80" in jicofo_before
    assert "proxy_read_timeout 900s;" in host.file(SITE).content_string
    try:
        output = "".join(kill_run_when_it_reaches(DEPLOY_PLAY, KILL_AT, CHANGE))
        time.sleep(3)  # a module the controller no longer waited for finishes on the host
        # The kill came half-way: Prosody's and Jicofo's changes are live, the site's is not.
        prosody_config = host.file("/etc/prosody/prosody.cfg.lua").content_string
        assert "tcp_backlog = 1024;" in prosody_config, output[-3000:]
        assert "max-bridge-participants = 60" in host.file("/etc/jitsi/jicofo/jicofo.conf").content_string
        assert "proxy_read_timeout 900s;" in host.file(SITE).content_string
        assert_live_configuration_is_whole(host)

        again = run_playbook(PLAYBOOK, "--limit", SINGLE, extra_vars=CHANGE)
        assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
        assert changed_count(again.stdout) > 0, "the second run found nothing left to do"
        assert "proxy_read_timeout 600s;" in host.file(SITE).content_string
        assert_live_configuration_is_whole(host)
        converged = run_playbook(PLAYBOOK, "--limit", SINGLE, extra_vars=CHANGE)
        assert converged.returncode == 0, (converged.stdout + converged.stderr)[-4000:]
        assert changed_count(converged.stdout) == 0, converged.stdout[-4000:]
    finally:
        restored = run_playbook(PLAYBOOK, "--limit", SINGLE)
        assert restored.returncode == 0, (restored.stdout + restored.stderr)[-4000:]
    assert host.file("/etc/jitsi/jicofo/jicofo.conf").content_string == jicofo_before
