"""meetops.jitsi.jvb without Jitsi's package: what systemd, the HOCON parser and the file system hold.

Every jvb.conf is parsed inside the container with ruby-hocon (Debian's port of the Typesafe Config
library the videobridge reads it with) and compared with the plan the filter meetops.jitsi.jvb_slots makes
for the scenario's topology, computed here independently of the play.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
import yaml
from meetops_test_helpers import SECRETS_DIR, address_of, http_ask, on, stored_password

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = sorted(RUNNER.get_hosts("all"))

SCENARIO = Path(__file__).resolve().parents[1]
REPO = Path(__file__).resolve().parents[4]
CONVERGE = SCENARIO / "converge.yml"
KEY_LIST = REPO / "docs" / "jitsi-keys" / "jvb.md"
SECRETS = SECRETS_DIR
MOLECULE_YML = yaml.safe_load((SCENARIO / "molecule.yml").read_text())
GROUP_VARS = MOLECULE_YML["provisioner"]["inventory"]["group_vars"]["all"]
SHARDS = {shard["name"]: shard for shard in GROUP_VARS["jvb_shards"]}
CONFIG_ROOT = "/etc/jitsi/videobridge"
CONFIGS = ("videobridge", "apis", "xmpp-client", "configs")
CONTROL = "/usr/local/sbin/meetops-jvb-control"
FIXTURE = "/usr/local/lib/meetops-test-colibri-rest-fixture.py"
DRAINED = set(GROUP_VARS["jvb_drained_instances"])

# Render a HOCON file as JSON with the parser the videobridge's library was ported to.
HOCON_TO_JSON = (
    "require 'hocon'; require 'hocon/config_factory'; require 'hocon/config_render_options'; "
    "print Hocon::ConfigFactory.parse_file(ARGV[0]).resolve.root.render(Hocon::ConfigRenderOptions.concise)"
)


def _import_filter():
    """The collection's jvb_slots filter, imported like tests/unit does (this checkout as the collection)."""
    tree = Path(tempfile.mkdtemp(prefix="meetops-jitsi-tree-"))
    (tree / "ansible_collections" / "meetops").mkdir(parents=True)
    (tree / "ansible_collections" / "meetops" / "jitsi").symlink_to(REPO)
    sys.path.insert(0, str(tree))
    from ansible_collections.meetops.jitsi.plugins.filter.jvb_slots import (  # noqa: PLC0415
        jvb_slots,
        jvb_slots_for_host,
    )

    return jvb_slots, jvb_slots_for_host


JVB_SLOTS, JVB_SLOTS_FOR_HOST = _import_filter()


def plan(instances: int = GROUP_VARS["jvb_instances"]) -> list[dict]:
    """The plan of the scenario's topology: every host with the same number of instances."""
    topology = {name: {"instances": instances} for name in testinfra_hosts}
    return JVB_SLOTS(topology, **GROUP_VARS["jvb_slots_options"])


def name(host) -> str:
    return host.backend.get_hostname()


def slots(host, instances: int = GROUP_VARS["jvb_instances"]) -> list[dict]:
    return JVB_SLOTS_FOR_HOST(plan(instances), name(host))


def keys_in_list() -> set[str]:
    block = re.search(r"^```jitsi-keys\n(.*?)^```", KEY_LIST.read_text(), re.MULTILINE | re.DOTALL)
    assert block, f"no jitsi-keys block in {KEY_LIST}"
    # One key per line, columns separated by "|", the key first; "#" starts a comment line.
    lines = [line.strip() for line in block.group(1).splitlines()]
    return {line.split("|")[0].strip() for line in lines if line and not line.startswith("#")}


def parse(host, path: str) -> dict:
    return json.loads(host.check_output(f"ruby -e {shlex.quote(HOCON_TO_JSON)} {shlex.quote(path)}"))


@cache
def conf(hostname: str, instance: str) -> dict:
    return parse(on(hostname), f"{CONFIG_ROOT}/{instance}/jvb.conf")


def leaf_paths(tree: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths = set()
    for key, value in tree.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            paths |= leaf_paths(value, path)
        else:
            paths.add(path)
    return paths


def password(shard: dict) -> str:
    xmpp_domain = shard.get("xmpp_domain", f"auth.jvb.{shard['domain']}")
    return stored_password(shard["domain"], f"jvb@{xmpp_domain}")


def run_converge(*args: str, **extra_vars) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, "--diff", *args, "-e", json.dumps(extra_vars), str(CONVERGE)],
        capture_output=True,
        text=True,
        check=False,
    )


# --- Parsing and the key list -------------------------------------------------------------------------


def test_every_jvb_conf_parses_and_holds_only_listed_keys(host):
    allowed = keys_in_list()
    for slot in slots(host):
        rendered = set()
        for path in leaf_paths(conf(name(host), slot["name"])):
            # The id of an xmpp-client connection is variable: the list writes it as <id>.
            generic = (
                (*CONFIGS, "<id>", *path[len(CONFIGS) + 1 :]) if path[: len(CONFIGS)] == CONFIGS else path
            )
            rendered.add(".".join(generic))
        assert rendered - allowed == set(), f"{slot['name']}: keys missing from {KEY_LIST.name}"
        assert len(rendered) > 15


# --- Per-instance values against the plan --------------------------------------------------------------


def test_instance_values_match_the_plan(host):
    for slot in slots(host):
        bridge = conf(name(host), slot["name"])["videobridge"]
        assert bridge["ice"]["udp"]["port"] == slot["media_port"]
        assert bridge["http-servers"]["private"] == {"host": "127.0.0.1", "port": slot["rest_port"]}
        assert bridge["websockets"]["server-id"] == slot["websocket_server_id"]
        assert bridge["relay"] == {"enabled": True, "region": "lab-region", "relay-id": slot["relay_id"]}
        assert bridge["apis"]["rest"]["enabled"] is True
        assert bridge["rest"]["shutdown"]["enabled"] is True
        configs = bridge["apis"]["xmpp-client"]["configs"]
        assert sorted(configs) == slot["shards"] == ["shard1", "shard2"]
        for shard_name, connection in configs.items():
            shard = SHARDS[shard_name]
            muc_jids = shard.get("muc_jids", [f"jvbbrewery@muc.jvb.{shard['domain']}"])
            assert connection["hostname"] == shard["host"]
            assert connection["port"] == shard.get("port", 6222)
            assert connection["domain"] == f"auth.jvb.{shard['domain']}"
            assert connection["username"] == "jvb"
            # A string, comma-separated: a HOCON list would reach the bridge as "[a, b]".
            assert isinstance(connection["muc_jids"], str)
            assert connection["muc_jids"].split(",") == muc_jids
            assert connection["muc_nickname"] == slot["muc_nickname"]
            # TLS verification stays on.
            assert "disable_certificate_verification" not in connection


def test_identities_are_unique_in_the_whole_topology():
    everything = plan()
    assert len(everything) == 3 * len(testinfra_hosts)
    found = {"relay-id": [], "server-id": [], "nickname": {name: [] for name in SHARDS}}
    for slot in everything:
        bridge = conf(slot["host"], slot["name"])["videobridge"]
        found["relay-id"].append(bridge["relay"]["relay-id"])
        found["server-id"].append(bridge["websockets"]["server-id"])
        for shard_name, connection in bridge["apis"]["xmpp-client"]["configs"].items():
            found["nickname"][shard_name].append(connection["muc_nickname"])
    # Nicknames must be unique in each brewery; relay and websocket ids everywhere.
    for values in [found["relay-id"], found["server-id"], *found["nickname"].values()]:
        assert len(values) == len(everything)
        assert [value for value, count in Counter(values).items() if count > 1] == []


def test_ports_are_unique_on_each_host(host):
    ports = []
    for slot in slots(host):
        bridge = conf(name(host), slot["name"])["videobridge"]
        ports += [bridge["ice"]["udp"]["port"], bridge["http-servers"]["private"]["port"]]
    assert len(ports) == len(set(ports)) == 6
    assert 8888 not in ports  # reserved for Jicofo in the scenario


# --- Secrets ----------------------------------------------------------------------------------------


def test_passwords_come_from_the_controller_and_stay_out_of_the_inventory(host):
    inventory = Path(INVENTORY).read_text()
    for shard_name, shard in SHARDS.items():
        secret = password(shard)
        assert re.fullmatch(r"[A-Za-z0-9]{32}", secret)
        assert secret not in inventory
        for slot in slots(host):
            configs = conf(name(host), slot["name"])["videobridge"]["apis"]["xmpp-client"]["configs"]
            assert configs[shard_name]["password"] == secret
    assert password(SHARDS["shard1"]) != password(SHARDS["shard2"])


def test_controller_password_files_are_private():
    files = sorted(SECRETS.glob("*/passwords/*"))
    assert [f"{f.parent.parent.name}/{f.name}" for f in files] == [
        "meet.example.test/jvb@auth.jvb.meet.example.test",
        "meet2.example.test/jvb@auth.jvb.meet2.example.test",
    ]
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o600"}


def test_owners_and_modes(host):
    passwd = host.user("jvb")
    assert passwd.exists
    assert passwd.group == "jitsi"
    assert passwd.shell == "/usr/sbin/nologin"
    root = host.file(CONFIG_ROOT)
    assert (root.user, root.group, root.mode) == ("jvb", "jitsi", 0o750)
    for slot in slots(host):
        directory = host.file(f"{CONFIG_ROOT}/{slot['name']}")
        assert (directory.user, directory.group, directory.mode) == ("root", "jitsi", 0o750)
        for file in ("jvb.conf", "config", "sip-communicator.properties"):
            f = host.file(f"{CONFIG_ROOT}/{slot['name']}/{file}")
            assert (f.user, f.group, f.mode) == ("root", "jitsi", 0o640), file
        log = host.file(f"/var/log/jitsi/videobridge/{slot['name']}.log")
        assert (log.user, log.group, log.mode) == ("jvb", "jitsi", 0o640)


def test_only_root_and_the_bridge_user_can_read_the_secrets(host):
    path = f"{CONFIG_ROOT}/{slots(host)[0]['name']}/jvb.conf"
    assert host.run(f"runuser -u jvb -- cat {path}").rc == 0
    denied = host.run(f"runuser -u nobody -- cat {path}")
    assert denied.rc != 0
    assert "Permission denied" in denied.stderr


# --- systemd ------------------------------------------------------------------------------------------


def test_units_pass_systemd_analyze_verify(host):
    """systemd-analyze verify loads each instance as systemd would start it: unit syntax, known directives
    and values, the user, and that every Exec path is an executable (the ExecStop is the role's own
    command, so this holds without the package too); jvb.sh is run through /bin/bash and is not checked, nor
    is anything the JVM does."""
    for slot in slots(host):
        unit = f"jitsi-videobridge@{slot['name']}.service"
        result = host.run(f"systemd-analyze verify --man=no {unit}")
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert result.rc == 0, lines
        assert lines == []


def test_systemd_reads_each_instance_as_intended(host):
    for slot in slots(host):
        unit = f"jitsi-videobridge@{slot['name']}.service"
        shown = dict(
            line.split("=", 1)
            for line in host.check_output(
                f"systemctl show {unit} --property=User,Group,EnvironmentFiles,PIDFile,RuntimeDirectory,"
                "LimitNOFILE,TasksMax,RestartPreventExitStatus,SuccessExitStatus,TimeoutStopUSec,"
                "NoNewPrivileges,ExecStop"
            ).splitlines()
        )
        assert shown["User"] == "jvb"
        assert shown["Group"] == "jitsi"
        assert shown["EnvironmentFiles"].startswith(f"{CONFIG_ROOT}/{slot['name']}/config ")
        assert shown["PIDFile"] == f"/run/jitsi-videobridge-{slot['name']}/jitsi-videobridge.pid"
        assert shown["RuntimeDirectory"] == f"jitsi-videobridge-{slot['name']}"
        assert shown["LimitNOFILE"] == "65000"
        assert shown["TasksMax"] == "65000"
        assert shown["RestartPreventExitStatus"] == "78"
        assert shown["SuccessExitStatus"] == "143"
        assert shown["NoNewPrivileges"] == "yes"
        assert shown["TimeoutStopUSec"] == "2h 5min"
        # The instance's own name and main process; the bridge's 120 min, its 1 min delay and 2 min more.
        assert f"path={CONTROL} ;" in shown["ExecStop"]
        assert (
            f"argv[]={CONTROL} stop {slot['name']} --pid=${{MAINPID}} --max-wait=7380 ;" in shown["ExecStop"]
        )


def test_environment_as_systemd_passes_it(host):
    """The instance's environment file, parsed by systemd itself (a transient unit that prints it)."""
    for slot in slots(host):
        env_file = f"{CONFIG_ROOT}/{slot['name']}/config"
        output = host.check_output(
            f"systemd-run --quiet --wait --pipe --property=EnvironmentFile={env_file} /usr/bin/env"
        )
        env = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
        assert env["VIDEOBRIDGE_MAX_MEMORY"] == "1024m"
        assert env["JVB_REST_PORT"] == str(slot["rest_port"])
        props = env["JAVA_SYS_PROPS"].split()
        assert f"-Dconfig.file={CONFIG_ROOT}/{slot['name']}/jvb.conf" in props
        assert "-Dnet.java.sip.communicator.SC_HOME_DIR_LOCATION=/etc/jitsi" in props
        assert f"-Dnet.java.sip.communicator.SC_HOME_DIR_NAME=videobridge/{slot['name']}" in props


def test_bridges_are_not_started_without_the_package(host):
    assert not host.package("jitsi-videobridge2").is_installed
    for slot in slots(host):
        unit = f"jitsi-videobridge@{slot['name']}.service"
        assert host.run(f"systemctl is-enabled {unit}").stdout.strip() == "disabled"
        assert host.run(f"systemctl is-active {unit}").stdout.strip() == "inactive"
    # The package's single-bridge unit is masked, so a later install cannot start it on instance 1's ports.
    assert host.file("/etc/systemd/system/jitsi-videobridge2.service").linked_to == "/dev/null"


def test_logs_are_rotated(host):
    result = host.run("logrotate --debug /etc/logrotate.d/meetops-jitsi-videobridge")
    assert result.rc == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
    assert "/var/log/jitsi/videobridge/*.log" in result.stderr


# --- The checker and changes of the topology ------------------------------------------------------------


def test_checker_refuses_what_the_bridge_would_drop_silently(host):
    path = f"{CONFIG_ROOT}/{slots(host)[0]['name']}/jvb.conf"
    assert host.run(f"/usr/local/sbin/meetops-jvb-check-config {path}").rc == 0
    bad = host.run(
        "printf '%s' 'videobridge.apis.xmpp-client.configs.s { hostname = h, username = jvb, "
        'password = "secret-value", muc_jids = ["a@b"] }\' > /tmp/bad.conf && '
        "/usr/local/sbin/meetops-jvb-check-config /tmp/bad.conf"
    )
    assert bad.rc == 1
    assert 'configs."s".muc_nickname is missing' in bad.stderr
    assert 'configs."s".muc_jids must be a comma-separated string, not a LIST' in bad.stderr
    assert "secret-value" not in bad.stderr


def test_a_refused_candidate_leaves_the_configuration_alone():
    """One host is enough: the checker itself runs on both releases in the test above."""
    hostname = testinfra_hosts[0]
    host = on(hostname)
    path = f"{CONFIG_ROOT}/jvb1/jvb.conf"
    before = host.file(path).content_string
    result = run_converge(
        "--limit",
        hostname,
        "--tags",
        "jvb_configure",
        jvb_custom_config='videobridge.apis.xmpp-client.configs.shard1.muc_jids = ["a@b"]',
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "muc_jids must be a comma-separated string, not a LIST" in output, output[-3000:]
    assert host.file(path).content_string == before
    assert all(password(shard) not in output for shard in SHARDS.values())


def test_fewer_instances_remove_the_last_ones_and_more_bring_them_back():
    hosts = {hostname: on(hostname) for hostname in testinfra_hosts}
    before = {
        hostname: h.file(f"{CONFIG_ROOT}/jvb1/jvb.conf").content_string for hostname, h in hosts.items()
    }
    fewer = run_converge(jvb_instances=2)
    assert fewer.returncode == 0, fewer.stdout[-3000:]
    assert "NOT STARTED" in fewer.stdout
    assert all(password(shard) not in fewer.stdout + fewer.stderr for shard in SHARDS.values())
    for hostname, h in hosts.items():
        assert not h.file(f"{CONFIG_ROOT}/jvb3").exists
        assert h.file(f"{CONFIG_ROOT}/jvb2/jvb.conf").exists
        # Instances that stay are untouched (their slots do not depend on the number of instances).
        assert h.file(f"{CONFIG_ROOT}/jvb1/jvb.conf").content_string == before[hostname]
        assert h.run("systemctl is-enabled jitsi-videobridge@jvb3.service").stdout.strip() == "disabled"
        # The plan for two instances is what the hosts hold now.
        assert [s["name"] for s in JVB_SLOTS_FOR_HOST(plan(2), hostname)] == ["jvb1", "jvb2"]
    again = run_converge("--tags", "jvb_configure,jvb_run")
    assert again.returncode == 0, again.stdout[-3000:]
    for h in hosts.values():
        assert h.file(f"{CONFIG_ROOT}/jvb3/jvb.conf").exists


@pytest.mark.parametrize("file", ["jvb.conf", "config"])
def test_files_carry_the_ansible_managed_header(host, file):
    assert "Ansible managed" in host.file(f"{CONFIG_ROOT}/jvb1/{file}").content_string


# --- Drain and the graceful stop ----------------------------------------------------------------------


def test_drain_mode_is_kept_for_the_next_start(host):
    """jvb_drained_instances reaches each jvb.conf through the drain.conf it includes (parsed whole)."""
    for slot in slots(host):
        drain_conf = host.file(f"{CONFIG_ROOT}/{slot['name']}/drain.conf")
        assert (drain_conf.user, drain_conf.group, drain_conf.mode) == ("root", "jitsi", 0o640)
        assert conf(name(host), slot["name"])["videobridge"]["initial-drain-mode"] is (
            slot["name"] in DRAINED
        )


def journal(host, unit: str, since: str) -> str:
    return host.check_output(f"journalctl --quiet --no-pager --output=cat --unit={unit} --since=@{since}")


def run_fixture_as(host, instance: str, participants: int, leave_every: float) -> str:
    """Start jitsi-videobridge@INSTANCE with the REST fixture in place of jvb.sh (a runtime drop-in, gone at
    the next boot), through the role's own unit: its user, environment, PID file and ExecStop. Returns
    the time it started (epoch seconds) for journal reads."""
    unit = f"jitsi-videobridge@{instance}.service"
    drop_in = f"/run/systemd/system/{unit}.d"
    exec_start = (
        f"/usr/bin/python3 {FIXTURE} --port ${{JVB_REST_PORT}} --participants {participants} "
        f"--leave-every {leave_every} --shutting-down-delay 1"
    )
    since = host.check_output("date +%s")
    host.check_output(
        f"mkdir -p {drop_in} && printf '%s\\n' '[Service]' 'ExecStart='"
        f" {shlex.quote('ExecStart=' + exec_start)} > {drop_in}/test-fixture.conf"
        f" && systemctl daemon-reload && systemctl start {unit}"
    )
    port = next(slot["rest_port"] for slot in slots(host) if slot["name"] == instance)
    host.check_output(
        f"for i in $(seq 50); do python3 -c 'import urllib.request; "
        f'urllib.request.urlopen("http://127.0.0.1:{port}/colibri/drain", timeout=1)\' 2>/dev/null && exit 0;'
        " sleep 0.2; done; exit 1"
    )
    return since


def remove_fixture(host, instance: str) -> None:
    unit = f"jitsi-videobridge@{instance}.service"
    host.run(f"systemctl kill --signal=KILL {unit}; systemctl stop {unit}")
    host.check_output(
        f"rm -rf /run/systemd/system/{unit}.d && systemctl daemon-reload && systemctl reset-failed"
    )


def control_status(host, instance: str) -> dict:
    return json.loads(host.check_output(f"{CONTROL} status {instance}"))


def test_drain_switches_a_running_instance_and_the_role_puts_it_back(host):
    """Drain by command and by the role, on an instance that runs (the fixture on its REST port)."""
    try:
        run_fixture_as(host, "jvb3", participants=2, leave_every=30)
        assert control_status(host, "jvb3") == {
            "instance": "jvb3",
            "running": True,
            "rest_port": slots(host)[2]["rest_port"],
            "drain": False,
            "local_participants": 2,
            "conferences": 1,
            "graceful_shutdown": False,
            "shutting_down": False,
        }
        checked = host.check_output(f"{CONTROL} drain jvb3 on --check")
        assert checked.endswith(
            f"drain would be on, running on REST port {slots(host)[2]['rest_port']} (changed)"
        )
        assert control_status(host, "jvb3")["drain"] is False
        assert host.check_output(f"{CONTROL} drain jvb3 on").endswith("(changed)")
        assert control_status(host, "jvb3")["drain"] is True
        assert "initial-drain-mode = true" in host.file(f"{CONFIG_ROOT}/jvb3/drain.conf").content_string
        assert host.check_output(f"{CONTROL} drain jvb3 on").endswith("(unchanged)")
        # jvb3 is not in jvb_drained_instances: the role takes it out of drain, live and on file.
        result = run_converge("--limit", name(host), "--tags", "jvb_configure")
        assert result.returncode == 0, result.stdout[-3000:]
        assert re.search(r"changed: .*jvb3: drain off", result.stdout), result.stdout[-3000:]
        assert control_status(host, "jvb3")["drain"] is False
        assert "initial-drain-mode = false" in host.file(f"{CONFIG_ROOT}/jvb3/drain.conf").content_string
        assert host.check_output(f"{CONTROL} drain jvb3 off").endswith("(unchanged)")
    finally:
        remove_fixture(host, "jvb3")
    # Not running: the file alone, for its next start.
    stopped = host.check_output(f"{CONTROL} drain jvb3 off")
    assert stopped == "jvb3: drain off, not running: applies when it starts (unchanged)"
    bad = host.run(f"{CONTROL} drain jvb9 on")
    assert bad.rc == 1
    assert "no videobridge instance 'jvb9' here: cannot read /etc/jitsi/videobridge/jvb9/config" in bad.stderr


def test_stopping_an_instance_waits_for_its_participants_and_leaves_the_others_alone(host):
    """systemctl stop runs the unit's ExecStop: a graceful shutdown by the instance's own REST port, then
    a wait on its own main process, while another instance of the host runs on untouched."""
    try:
        since = run_fixture_as(host, "jvb1", participants=1, leave_every=3600)
        run_fixture_as(host, "jvb3", participants=3, leave_every=1)
        other = host.check_output("systemctl show -p MainPID --value jitsi-videobridge@jvb1.service")
        host.check_output("systemctl stop jitsi-videobridge@jvb3.service")
        stopped = journal(host, "jitsi-videobridge@jvb3.service", since)
        assert 'fixture: POST /colibri/shutdown {"graceful-shutdown": true}' in stopped, stopped
        assert "jvb3: graceful shutdown started; waiting up to 7380 s for process" in stopped, stopped
        assert (
            "jvb3: 3 local participant(s) left" in stopped or "jvb3: 2 local participant(s) left" in stopped
        )
        assert "fixture: exit" in stopped, stopped
        assert "jvb3: shut down gracefully" in stopped, stopped
        result = host.check_output("systemctl show -p Result --value jitsi-videobridge@jvb3.service")
        assert result == "success"
        # The other instance saw no shutdown request and runs on with its own process.
        assert host.check_output("systemctl show -p MainPID --value jitsi-videobridge@jvb1.service") == other
        assert "/colibri/shutdown" not in journal(host, "jitsi-videobridge@jvb1.service", since)
        # The wait is bounded: a participant who never leaves keeps the command no longer than --max-wait.
        bounded = host.run(f"timeout 30 {CONTROL} stop jvb1 --pid={other} --max-wait=2 --poll=0.5")
        assert bounded.rc == 0, bounded.stderr
        assert bounded.stdout.strip().endswith("jvb1: still running after 2 s; stopping with SIGTERM now")
        assert control_status(host, "jvb1")["graceful_shutdown"] is True
        # No main process (the bridge already gone): nothing to do.
        assert host.check_output(f"{CONTROL} stop jvb3 --pid= --max-wait=5") == (
            "jvb3: no main process, nothing to shut down"
        )
    finally:
        remove_fixture(host, "jvb1")
        remove_fixture(host, "jvb3")


# --- /metrics to other hosts (jvb_metrics_address) ----------------------------------------------------

GATEWAY_UNIT = "meetops-metrics-gateway@jvb.service"


def listening_on(host, address: str) -> set[int]:
    """The TCP ports listening on ADDRESS itself (not on every address)."""
    found = set()
    for line in host.check_output("ss -Htln").splitlines():
        # State, Recv-Q, Send-Q, local address:port, peer address:port.
        local_address, port = line.split()[3].rsplit(":", 1)
        if local_address == address:
            found.add(int(port))
    return found


def other_host(host):
    return on(next(hostname for hostname in testinfra_hosts if hostname != name(host)))


def test_the_gateway_serves_each_instance_s_metrics_and_nothing_else(host):
    """From the other host of the network: GET /metrics of a running instance (the REST fixture) comes back
    through the gateway on the host's address, at the instance's REST port; its drain, shutdown and stats
    calls are refused there and never reach the instance, which keeps answering them on loopback."""
    address = address_of(name(host))
    rest_port = slots(host)[0]["rest_port"]
    try:
        since = run_fixture_as(host, "jvb1", participants=2, leave_every=3600)
        client = other_host(host)
        status, content_type, body = http_ask(client, address, rest_port)
        assert (status, content_type) == (200, "text/plain; version=0.0.4"), body
        assert body == "meetops_test_fixture_participants 2\n"
        assert http_ask(client, address, rest_port, "POST", "/colibri/shutdown")[0] == 405
        assert http_ask(client, address, rest_port, "POST", "/colibri/drain/enable")[0] == 405
        assert http_ask(client, address, rest_port, "GET", "/colibri/stats")[0] == 404
        # The journal from the fixture's own start on (an earlier test's fixture may share its second).
        seen = journal(host, "jitsi-videobridge@jvb1.service", since).rpartition("fixture: listening on")[2]
        assert "fixture: GET /metrics" in seen, seen
        assert "POST" not in seen, seen
        assert "/colibri/stats" not in seen, seen
        assert control_status(host, "jvb1")["drain"] is False
        assert control_status(host, "jvb1")["local_participants"] == 2
        refused = journal(host, GATEWAY_UNIT, since)
        assert (
            f"jvb1: refused POST '/colibri/shutdown' from {address_of(client.backend.get_hostname())}: 405"
            in (refused)
        ), refused
    finally:
        remove_fixture(host, "jvb1")


def test_the_gateway_refuses_hosts_outside_the_allowed_networks_and_says_when_an_instance_is_down(host):
    """jvb_metrics_allow is the scenario's network: a request from loopback (to the host's own address) is
    refused before anything is asked of the instance; an instance that does not run is a bad gateway, which
    Prometheus shows as the target down."""
    address = address_of(name(host))
    ports = {slot["name"]: slot["rest_port"] for slot in slots(host)}
    status, _content_type, body = http_ask(host, address, ports["jvb1"], source="127.0.0.1")
    assert (status, body) == (403, "this address may not read the metrics\n")
    status, _content_type, body = http_ask(other_host(host), address, ports["jvb2"])
    assert status == 502
    assert body.startswith(f"jvb2: the upstream http://127.0.0.1:{ports['jvb2']}/metrics did not answer"), (
        body
    )
    # The REST API itself stays on loopback: nothing but the gateway listens on the host's address.
    assert listening_on(host, address) == set(ports.values())
    assert host.check_output(f"systemctl is-active {GATEWAY_UNIT}") == "active"


def test_the_gateway_unit_passes_systemd_analyze_verify_and_runs_unprivileged(host):
    result = host.run(f"systemd-analyze verify --man=no {GATEWAY_UNIT}")
    assert result.rc == 0, result.stdout + result.stderr
    assert host.check_output(f"systemctl show -p DynamicUser --value {GATEWAY_UNIT}") == "yes"
    pid = host.check_output(f"systemctl show -p MainPID --value {GATEWAY_UNIT}")
    assert host.check_output(f"ps -o user= -p {pid}") != "root"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"jvb_metrics_address": "0.0.0.0"}, "jvb_metrics_address='0.0.0.0' serves"),
        ({"jvb_metrics_address": "jvb1.example.test"}, "jvb_metrics_address='jvb1.example.test' serves"),
        ({"jvb_metrics_allow": []}, "jvb_metrics_allow (got [])"),
        ({"jvb_metrics_allow": ["10.0.0.0/33"]}, 'jvb_metrics_allow (got ["10.0.0.0/33"])'),
    ],
)
def test_bad_metrics_settings_stop_the_run_before_the_host_changes(extra, message):
    hostname = testinfra_hosts[0]
    host = on(hostname)
    config = "/etc/meetops-jitsi/metrics-gateway/jvb.json"
    before = host.file(config).content_string
    result = run_converge("--limit", hostname, **extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output, output[-3000:]
    assert "changed=0" in output, output[-3000:]
    assert host.file(config).content_string == before


def test_an_empty_metrics_address_removes_the_gateway_and_a_run_brings_it_back(host):
    hostname = name(host)
    off = run_converge("--limit", hostname, "--tags", "jvb_configure", jvb_metrics_address="")
    assert off.returncode == 0, off.stdout[-3000:]
    assert not host.file("/etc/meetops-jitsi/metrics-gateway/jvb.json").exists
    assert host.run(f"systemctl is-active {GATEWAY_UNIT}").stdout.strip() == "inactive"
    assert listening_on(host, address_of(hostname)) == set()
    on_again = run_converge("--limit", hostname, "--tags", "jvb_configure")
    assert on_again.returncode == 0, on_again.stdout[-3000:]
    assert host.check_output(f"systemctl is-active {GATEWAY_UNIT}") == "active"
