"""A signalling node on one host: the rendered Jicofo and videobridge configurations work against the real
bridge Prosody. Each bridge's credentials and nickname are read from its own jvb.conf, Jicofo's from
jicofo.conf's service connection, and all of them must meet in the brewery room."""

from __future__ import annotations

import json
import os
import shlex
import time

import pytest
import testinfra.utils.ansible_runner
from meetops_test_helpers import SECRETS_DIR, crash_and_wait_back, hocon

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = sorted(RUNNER.get_hosts("all"))

DOMAIN = "meet.example.test"
NAMESPACE = "signal-node"  # meetops_jitsi_secrets_namespace in molecule.yml
BRIDGE_HOLD = 15  # seconds each bridge stays in the brewery
FOCUS_DELAY = 5  # Jicofo joins once the bridges are in


def bridge_connections(host) -> list[dict]:
    connections = []
    for path in sorted(host.check_output("ls /etc/jitsi/videobridge/*/jvb.conf").split()):
        configs = hocon(host, path, "videobridge")["apis"]["xmpp-client"]["configs"]
        connections += [dict(config, file=path) for config in configs.values()]
    return connections


@pytest.fixture(scope="module")
def brewery_meeting(host):
    """Log every bridge and Jicofo in to prosody-jvb as their configurations say, all at once."""
    bridges = bridge_connections(host)
    jicofo = hocon(host, "/etc/jitsi/jicofo/jicofo.conf", "jicofo")
    service = jicofo["xmpp"]["service"]
    brewery = jicofo["bridge"]["brewery-jid"]
    lines = ["set -u", "cd /tmp"]
    for index, bridge in enumerate(bridges):
        jid = f"{bridge['username']}@{bridge['domain']}"
        lines.append(
            f"XMPP_PASSWORD={shlex.quote(bridge['password'])} timeout 120 xmpp-probe muc {shlex.quote(jid)} "
            f"{shlex.quote(bridge['muc_jids'])} --host {shlex.quote(bridge['hostname'])} "
            f"--port {int(bridge['port'])} --nick {shlex.quote(bridge['muc_nickname'])} "
            f"--hold {BRIDGE_HOLD} >bridge-{index}.json 2>/dev/null &"
        )
    focus_jid = f"{service['username']}@{service['domain']}"
    lines += [
        f"sleep {FOCUS_DELAY}",
        f"XMPP_PASSWORD={shlex.quote(service['password'])} timeout 120 "
        f"xmpp-probe muc {shlex.quote(focus_jid)} {shlex.quote(brewery)} "
        f"--host {shlex.quote(service['hostname'])} --port {int(service['port'])} --hold 2 2>/dev/null",
        "wait",
    ]
    lines += [f"cat bridge-{index}.json" for index in range(len(bridges))]
    output = host.run("sh -c " + shlex.quote("\n".join(lines)))
    results = [json.loads(line) for line in output.stdout.splitlines() if line.startswith("{")]
    return {"bridges": bridges, "brewery": brewery, "focus": results[0], "bridge_results": results[1:]}


def test_three_bridge_instances_each_with_one_shard_connection(host):
    bridges = bridge_connections(host)
    assert len(bridges) == 3
    assert len({b["file"] for b in bridges}) == 3


def test_bridges_use_the_bridge_prosody_and_jicofos_brewery(host):
    jicofo = hocon(host, "/etc/jitsi/jicofo/jicofo.conf", "jicofo")
    assert jicofo["bridge"]["brewery-jid"] == f"jvbbrewery@muc.jvb.{DOMAIN}"
    assert jicofo["bridge"]["xmpp-connection-name"] == "Service"
    for bridge in bridge_connections(host):
        assert bridge["muc_jids"] == jicofo["bridge"]["brewery-jid"]  # a string, as the bridge reads it
        assert (int(bridge["port"]), bridge["domain"]) == (6222, f"auth.jvb.{DOMAIN}")


def test_every_bridge_logs_in_with_its_own_configuration(brewery_meeting):
    results = brewery_meeting["bridge_results"]
    assert len(results) == len(brewery_meeting["bridges"])
    for bridge, result in zip(brewery_meeting["bridges"], results, strict=True):
        assert "error" not in result, (bridge["file"], result)
        assert result["nick"] == bridge["muc_nickname"]
        assert bridge["muc_nickname"] in result["occupants_seen"]


def test_focus_sees_three_distinct_bridges_in_the_brewery(brewery_meeting):
    focus = brewery_meeting["focus"]
    assert "error" not in focus, focus
    assert focus["room"] == brewery_meeting["brewery"]
    nicknames = {bridge["muc_nickname"] for bridge in brewery_meeting["bridges"]}
    assert len(nicknames) == 3
    assert nicknames | {focus["nick"]} <= set(focus["occupants_seen"])


def test_main_prosody_does_not_accept_the_bridge_credentials(host):
    bridge = bridge_connections(host)[0]
    cmd = host.run(
        f"XMPP_PASSWORD={shlex.quote(bridge['password'])} timeout 60 "
        f"xmpp-probe login {bridge['username']}@{bridge['domain']} --port 5222"
    )
    assert cmd.rc == 1, cmd.stdout


def test_every_role_keeps_its_secrets_in_the_chosen_namespace():
    assert sorted(p.name for p in SECRETS_DIR.iterdir()) == [NAMESPACE]
    assert sorted(p.name for p in (SECRETS_DIR / NAMESPACE).iterdir()) == ["ca", "passwords"]


def test_jicofos_client_connection_logs_in_to_the_main_prosody(host):
    client = hocon(host, "/etc/jitsi/jicofo/jicofo.conf", "jicofo")["xmpp"]["client"]
    cmd = host.run(
        f"XMPP_PASSWORD={shlex.quote(client['password'])} timeout 60 "
        f"xmpp-probe login {client['username']}@{client['domain']} --port 5222"
    )
    assert cmd.rc == 0, cmd.stdout


def test_the_bridge_prosody_comes_back_by_itself_after_a_crash(host):
    """prosody-jvb's unit (the role's) restarts it after an abnormal end; a bridge logs in again."""
    assert host.check_output("systemctl show -p Restart --value prosody-jvb") == "on-abnormal"
    crash_and_wait_back(host, "prosody-jvb")
    bridge = bridge_connections(host)[0]
    login = (
        f"XMPP_PASSWORD={shlex.quote(bridge['password'])} timeout 20 "
        f"xmpp-probe login {bridge['username']}@{bridge['domain']} --host {shlex.quote(bridge['hostname'])} "
        f"--port {int(bridge['port'])}"
    )
    deadline = time.monotonic() + 30
    while (cmd := host.run(login)).rc != 0:
        assert time.monotonic() < deadline, cmd.stdout + cmd.stderr
        time.sleep(1)
