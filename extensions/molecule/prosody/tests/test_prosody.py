"""meetops.jitsi.prosody: checks of the running server, with real XMPP clients inside each container."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
from meetops_test_helpers import (
    SECRETS_DIR,
    c2s_connections,
    run_module,
    stored_password,
    wait_for_no_test_clients,
)

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = sorted(RUNNER.get_hosts("all"))

DOMAIN = "meet.example.test"
AUTH = f"auth.{DOMAIN}"
JVB_AUTH = f"auth.jvb.{DOMAIN}"
BREWERY = f"jvbbrewery@muc.jvb.{DOMAIN}"
CONFERENCE = f"conference.{DOMAIN}"
SECRETS = SECRETS_DIR / DOMAIN
CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"


def password(account: str) -> str:
    return stored_password(DOMAIN, account)


def name(host) -> str:
    return host.backend.get_hostname()


def probe(host, *args: str, account: str | None = None) -> dict:
    env = f"XMPP_PASSWORD={shlex.quote(password(account))} " if account else ""
    cmd = host.run(f"{env}timeout 200 xmpp-probe {shlex.join(args)}")
    result = json.loads(cmd.stdout.strip().splitlines()[-1]) if cmd.stdout.strip() else {}
    assert cmd.rc == 0, f"{args}: {result or cmd.stderr}"
    return result


def main_pid(host, unit: str = "prosody") -> str:
    return host.check_output(f"systemctl show -p MainPID --value {unit}")


@pytest.mark.parametrize("unit", ["prosody", "prosody-jvb"])
def test_both_prosody_processes_run_and_are_enabled(host, unit):
    service = host.service(unit)
    assert service.is_running
    assert service.is_enabled


@pytest.mark.parametrize("port", [5222, 5280, 6222])
def test_listen_backlog_is_511(host, port):
    # For a listening socket, ss shows the accept backlog in Send-Q.
    lines = host.check_output(f"ss -Hltn 'sport = :{port}'").splitlines()
    assert lines, f"nothing listens on {port}"
    assert {line.split()[2] for line in lines} == {"511"}, lines


def test_http_port_is_on_loopback_only(host):
    local = {line.split()[3] for line in host.check_output("ss -Hltn 'sport = :5280'").splitlines()}
    assert local == {"127.0.0.1:5280"}


@pytest.mark.parametrize("instance", ["prosody", "prosody-jvb"])
def test_log_names_the_network_backend(host, instance):
    log = host.file(f"/var/log/{instance}/prosody.log").content_string
    assert "Prosody is using the epoll backend for connection handling" in log


@pytest.mark.parametrize("instance", ["prosody", "prosody-jvb"])
def test_no_errors_logged(host, instance):
    errors = host.file(f"/var/log/{instance}/prosody.err")
    content = errors.content_string if errors.exists else ""
    assert content.strip() == "", content


def test_configuration_matches_the_installed_version(host):
    config = host.file("/etc/prosody/prosody.cfg.lua")
    assert (config.user, config.group, config.mode) == ("root", "prosody", 0o640)
    text = config.content_string
    version = host.check_output("dpkg-query -W -f '${Version}' prosody")
    # tcp_backlog only inside network_settings; never at top level, where 0.12+ ignores it.
    assert "network_settings = {\n\ttcp_backlog = 511;\n}" in text
    assert not [line for line in text.splitlines() if line.startswith("tcp_backlog")]
    assert ("component_admins_as_room_owners = true" in text) == version.startswith("13.")
    # Both Debian releases run Prosody on Lua 5.4, which accepts step_size.
    assert host.file("/usr/bin/prosody").content_string.startswith("#!/usr/bin/env lua5.4")
    assert "\tstep_size = 13;" in text
    assert 'unlimited_jids = { "focus@auth.meet.example.test"; "jvb@auth.meet.example.test"; }' in text


def test_private_keys_are_readable_only_by_root_and_prosody(host):
    for hostname in (DOMAIN, AUTH):
        key = host.file(f"/etc/prosody/certs/{hostname}.key")
        assert (key.user, key.group, key.mode) == ("root", "prosody", 0o640)


@pytest.mark.parametrize("xmpp_host", [DOMAIN, AUTH])
def test_certificates_are_trusted_through_the_system_store(host, xmpp_host):
    cmd = host.run(
        f"openssl s_client -starttls xmpp -xmpphost {xmpp_host} -connect 127.0.0.1:5222 "
        f"-verify_hostname {xmpp_host} -verify_return_error -CApath /etc/ssl/certs </dev/null"
    )
    assert "Verify return code: 0 (ok)" in cmd.stdout, cmd.stdout[-2000:] + cmd.stderr[-1000:]


def test_ca_is_in_the_java_compatible_system_bundle(host):
    ca = host.file(f"/usr/local/share/ca-certificates/meetops-jitsi-{DOMAIN}.crt").content_string.strip()
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    assert ca in host.file("/etc/ssl/certs/ca-certificates.crt").content_string


def test_secrets_stay_on_the_controller_with_private_modes():
    files = sorted((SECRETS / "passwords").iterdir())
    assert [f.name for f in files] == sorted(
        [f"focus@{AUTH}", f"jvb@{AUTH}", f"limited@{AUTH}", f"focus@{JVB_AUTH}", f"jvb@{JVB_AUTH}"]
    )
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o600"}
    assert oct((SECRETS / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"
    inventory = Path(INVENTORY).read_text()
    assert not any(password(f.name) in inventory for f in files)


def test_focus_authenticates_over_tls_on_the_auth_host(host):
    result = probe(host, "login", f"focus@{AUTH}", account=f"focus@{AUTH}")
    assert result["jid"].startswith(f"focus@{AUTH}/")


def test_wrong_password_is_refused(host):
    cmd = host.run(f"XMPP_PASSWORD=wrong timeout 60 xmpp-probe login focus@{AUTH}")
    assert cmd.rc == 1
    assert "authentication failed" in cmd.stdout


def test_anonymous_participant_joins_a_conference_room_over_websocket(host):
    room = f"probe-room@{CONFERENCE}"
    result = probe(host, "join", f"focus@{AUTH}", room, "--nick", "alice", account=f"focus@{AUTH}")
    participant = result["participant"]
    assert participant["jid"].endswith(f"@{DOMAIN}/") or f"@{DOMAIN}/" in participant["jid"]
    assert {"alice", "focus"} <= set(participant["occupants_seen"])


def test_focus_is_exempt_from_rate_limits_and_others_are_not(host):
    # 2 MB of stanzas: at the role's 512kb/s an ordinary account needs about 4 s, the exempt focus far less.
    limited = probe(host, "flood", f"limited@{AUTH}", "--bytes", "2000000", account=f"limited@{AUTH}")
    focus = probe(host, "flood", f"focus@{AUTH}", "--bytes", "2000000", account=f"focus@{AUTH}")
    assert limited["seconds"] > 3.0, limited
    assert focus["seconds"] < 1.5, focus
    assert focus["seconds"] * 3 < limited["seconds"]


def run_converge(host, tags: str = "prosody_configure", **extra_vars) -> subprocess.CompletedProcess:
    """The converge playbook on one host, only the phases `tags`; by default the configuration, written and
    checked but not yet reaching the running Prosody (the run phase, prosody_run, restarts it)."""
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            INVENTORY,
            "--limit",
            name(host),
            "--tags",
            tags,
            "-e",
            json.dumps(extra_vars),
            str(CONVERGE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_bad_configuration_fails_with_prosodys_reason_and_leaves_prosody_running(host):
    pid = main_pid(host)
    before = host.file("/etc/prosody/prosody.cfg.lua").content_string
    backups = host.run("ls /etc/prosody/").stdout
    result = run_converge(host, prosody_custom_global_config="broken = {")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # Prosody's own words, from prosodyctl check config on the candidate, in the role's message.
    message = re.search(r"The new /etc/prosody/prosody.cfg.lua was not installed.*", output)
    assert message, output[-3000:]
    assert "A problem occurred while reading the config file" in message.group(0), output[-3000:]
    assert main_pid(host) == pid
    assert host.file("/etc/prosody/prosody.cfg.lua").content_string == before
    # No backup of the refused candidate is left behind.
    assert host.run("ls /etc/prosody/").stdout == backups


def test_bridge_prosody_configuration(host):
    text = host.file("/etc/prosody-jvb/prosody.cfg.lua").content_string
    assert "c2s_stanza_size_limit = 10485760" in text
    assert "network_settings = {\n\ttcp_backlog = 511;\n}" in text
    assert 'data_path = "/var/lib/prosody-jvb"' in text
    # Only the bridges' and focus's host and the brewery MUC; no participant host, no conference rooms.
    assert [line for line in text.splitlines() if line.startswith(("VirtualHost", "Component"))] == [
        f'VirtualHost "{JVB_AUTH}"',
        f'Component "muc.jvb.{DOMAIN}" "muc"',
    ]
    assert host.check_output("systemd-analyze verify prosody-jvb.service 2>&1 || true") == ""


def test_each_prosody_accepts_only_its_own_accounts(host):
    probe(host, "login", f"jvb@{JVB_AUTH}", "--port", "6222", account=f"jvb@{JVB_AUTH}")
    probe(host, "login", f"jvb@{AUTH}", "--port", "5222", account=f"jvb@{AUTH}")
    for jid, port in ((f"jvb@{JVB_AUTH}", 5222), (f"jvb@{AUTH}", 6222)):
        cmd = host.run(
            f"XMPP_PASSWORD={shlex.quote(password(jid))} timeout 60 xmpp-probe login {jid} --port {port}"
        )
        assert cmd.rc == 1, f"{jid} logged in on port {port}: {cmd.stdout}"


def test_bridge_and_focus_join_the_brewery_on_the_bridge_prosody(host):
    result = probe(
        host,
        "muc",
        f"jvb@{JVB_AUTH}",
        BREWERY,
        "--port",
        "6222",
        "--nick",
        "bridge-probe",
        account=f"jvb@{JVB_AUTH}",
    )
    assert "bridge-probe" in result["occupants_seen"]
    result = probe(host, "muc", f"focus@{JVB_AUTH}", BREWERY, "--port", "6222", account=f"focus@{JVB_AUTH}")
    assert result["nick"] in result["occupants_seen"]


@pytest.mark.parametrize(("restarted", "untouched"), [("prosody-jvb", "prosody"), ("prosody", "prosody-jvb")])
def test_instances_restart_independently(host, restarted, untouched):
    before = main_pid(host, untouched)
    host.check_output(f"systemctl restart {restarted}")
    host.check_output(f"timeout 20 sh -c 'until systemctl is-active -q {restarted}; do sleep 0.2; done'")
    assert main_pid(host, untouched) == before
    assert host.service(restarted).is_running


# --- Jitsi's module set, loaded by the running Prosody from a plugin directory -----------------------

DOCS = Path(__file__).resolve().parents[4] / "docs" / "jitsi-keys" / "prosody.md"
PLUGINS = "/srv/meetops-fixture-plugins"
# Where docs/jitsi-keys/prosody.md's "loaded on" column puts a module, as hosts of this scenario.
PLACES = {
    "main": DOMAIN,
    "auth": AUTH,
    "conference": CONFERENCE,
    "internal": f"internal.{AUTH}",
    "lobby": f"lobby.{DOMAIN}",
    "breakout": f"breakout.{DOMAIN}",
}


def documented_modules() -> dict[str, set[str]]:
    """Host -> Jitsi modules, from the jitsi-modules block (every feature on, no occupant limit)."""
    block = DOCS.read_text().split("```jitsi-modules\n", 1)[1].split("```", 1)[0]
    expected: dict[str, set[str]] = {}
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        module, place, when, _unused = (cell.strip() for cell in line.split("|"))
        if when == "prosody_max_occupants":
            continue
        host = (
            place.split()[1].replace("<domain>", DOMAIN) if place.startswith("component") else PLACES[place]
        )
        expected.setdefault(host, set()).add(module)
    return expected


def loaded_modules(host, hosts, config="/etc/prosody/prosody.cfg.lua", paths=()) -> dict:
    """The module meetops.jitsi.prosody_modules, run by Ansible against the host."""
    args = {"config": config, "hosts": list(hosts), "paths": list(paths)}
    return run_module(name(host), "meetops.jitsi.prosody_modules", args)


def shell_list(host, vhost: str, config: str = "/etc/prosody/prosody.cfg.lua") -> set[str]:
    """The modules the running Prosody reports loaded on VHOST (its admin shell).

    A Prosody restarted by an earlier test is active before its admin socket is listening: wait for it,
    for at most 30 seconds."""
    command = f"prosodyctl --config {config} shell {shlex.quote(f'module:list({vhost!r})')} 2>/dev/null"
    deadline = time.monotonic() + 30
    while (result := host.run(command)).rc != 0:
        assert time.monotonic() < deadline, result.stdout
        time.sleep(0.5)
    lines = result.stdout.splitlines()
    start = lines.index(f"{vhost}:")
    return {line.strip() for line in lines[start + 1 :] if line.startswith("    ")}


def test_running_prosody_loaded_every_documented_module_on_its_host(host):
    fixture = {Path(p).stem.removeprefix("mod_") for p in host.check_output(f"ls {PLUGINS}").split()}
    for vhost, modules in documented_modules().items():
        loaded = shell_list(host, vhost)
        assert modules <= loaded, f"{vhost}: {sorted(modules - loaded)} not loaded"
        # No other module of the plugin directory is loaded there.
        assert (loaded & fixture) == modules, f"{vhost}: {sorted(loaded & fixture)}"


def test_modules_come_from_the_plugin_directory_and_prosodys_own_are_not_shadowed(host):
    text = host.file("/etc/prosody/prosody.cfg.lua").content_string
    assert f'plugin_paths = {{ "{PLUGINS}" }}' in text
    for name, vhost, where in (
        ("client_proxy", f"focus.{DOMAIN}", f"{PLUGINS}/mod_client_proxy.lua"),
        ("smacks", DOMAIN, "/usr/lib/prosody/modules/mod_smacks.lua"),
        ("muc", CONFERENCE, "/usr/lib/prosody/modules/muc/mod_muc.lua"),
    ):
        output = host.check_output(
            f"prosodyctl shell {shlex.quote(f'module:info({name!r}, {vhost!r})')} 2>/dev/null"
        )
        assert f"path: {where}" in output, output


def test_focus_roster_holds_the_client_proxy(host):
    roster = host.file(f"/var/lib/prosody/{AUTH.replace('.', '%2e')}/roster/focus.dat")
    assert roster.user == "prosody"
    assert roster.mode == 0o640
    assert f'["focus.{DOMAIN}"] = {{' in roster.content_string
    assert '["subscription"] = "from";' in roster.content_string


def test_mapper_options_name_the_conference_muc(host):
    text = host.file("/etc/prosody/prosody.cfg.lua").content_string
    assert f'muc_mapper_domain_base = "{DOMAIN}"' in text
    assert 'muc_mapper_domain_prefix = "conference"' in text
    assert f'Component "focus.{DOMAIN}" "client_proxy"\n\ttarget_address = "focus@{AUTH}"' in text


def test_a_missing_module_fails_the_run_naming_it_before_anything_changes(host):
    before = host.file("/etc/prosody/prosody.cfg.lua").content_string
    pid = main_pid(host)
    host.check_output(f"mv {PLUGINS}/mod_muc_meeting_id.lua /root/mod_muc_meeting_id.lua")
    try:
        result = run_converge(host)
    finally:
        host.check_output(f"mv /root/mod_muc_meeting_id.lua {PLUGINS}/mod_muc_meeting_id.lua")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"mod_muc_meeting_id are not in {PLUGINS}" in output, output[-3000:]
    assert host.file("/etc/prosody/prosody.cfg.lua").content_string == before
    assert main_pid(host) == pid


def test_a_plugin_directory_that_shadows_prosodys_modules_is_refused(host):
    before = host.file("/etc/prosody/prosody.cfg.lua").content_string
    host.check_output(f"cp {PLUGINS}/mod_meetops_fixture_recorder.lua {PLUGINS}/mod_smacks.lua")
    try:
        result = run_converge(host)
    finally:
        host.check_output(f"rm -f {PLUGINS}/mod_smacks.lua")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{PLUGINS} holds mod_smacks, which Prosody ships itself" in output, output[-3000:]
    assert host.file("/etc/prosody/prosody.cfg.lua").content_string == before


def test_the_plugins_lua_libraries_load_in_prosodys_lua(host):
    host.check_output(
        'lua5.4 -e \'require "cjson.safe"; require "inspect"; require "basexx"; require "_openssl"\''
    )


def test_prosody_modules_reports_what_the_running_server_loaded(host):
    result = loaded_modules(host, [f"focus.{DOMAIN}"], paths=[f"smacks@{DOMAIN}"])
    assert "client_proxy" in result["modules"][f"focus.{DOMAIN}"], result
    assert result["paths"][f"smacks@{DOMAIN}"] == "/usr/lib/prosody/modules/mod_smacks.lua"


def idle_probe(host, burst: int) -> dict:
    output = host.check_output(f"timeout 60 idle-after-pause-probe {DOMAIN} --burst {burst} --wait 20")
    return json.loads(output.splitlines()[-1])


def test_an_idle_connection_is_timed_out_even_after_a_rate_limit_pause(host):
    """Prosody's epoll backend up to 13.0.2, and 0.12 up to 0.12.5, stops timing out a connection once
    mod_limits has paused it (fixed in 13.0.3, Prosody changeset 334fb7adb0bc). On Debian 13 the role takes a
    fixed Prosody from trixie-backports. Debian 12 has no fixed Prosody: there the defect shows, as the
    role's README says, and this test fails when Debian fixes it."""
    version = host.check_output("dpkg-query -W -f '${Version}' prosody")
    # At 1mb/s a stream header (about 200 bytes) is read without a pause and a 4000-byte burst with one
    # (epoll pauses after a read that costs more than 1 ms); see idle_after_pause_probe.py.
    # The run phase too: network settings take effect when Prosody starts.
    applied = "prosody_configure,prosody_run"
    result = run_converge(
        host, applied, prosody_network_settings={"read_timeout": 5}, prosody_limits_c2s_rate="1mb/s"
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    try:
        # The control: without a pause, both versions act on a silent connection after read_timeout.
        unpaused = idle_probe(host, burst=0)
        paused = idle_probe(host, burst=4000)
    finally:
        restored = run_converge(host, applied)
        assert restored.returncode == 0, (restored.stdout + restored.stderr)[-3000:]
    assert unpaused["acted"], unpaused
    if version.startswith("0.12"):
        assert not paused["acted"], f"Prosody {version} timed the paused connection out: {paused}"
    else:
        assert version.startswith("13.0."), version
        assert int(version.split(".")[2].split("-")[0]) >= 3, version
        assert paused["acted"], f"Prosody {version} never timed the paused connection out: {paused}"


# --- Prosody's statistics (mod_http_openmetrics) -----------------------------------------------------


def http_get(host, url: str, headers: dict | None = None) -> tuple[int, str]:
    """The HTTP status and body of GET URL, asked from inside HOST (its loopback)."""
    fetch = (
        "import sys, urllib.error, urllib.request\n"
        f"request = urllib.request.Request({url!r}, headers={headers or {}!r})\n"
        "try:\n"
        "    response = urllib.request.urlopen(request, timeout=10)\n"
        "except urllib.error.HTTPError as error:\n"
        "    response = error\n"
        "print(response.status)\n"
        "sys.stdout.write(response.read().decode())\n"
    )
    cmd = host.run(f"python3 -c {shlex.quote(fetch)}")
    assert cmd.rc == 0, cmd.stderr
    status, _sep, body = cmd.stdout.partition("\n")
    return int(status), body


def metrics(host) -> tuple[int, str]:
    """GET /metrics on the main Prosody's HTTP port."""
    return http_get(host, "http://127.0.0.1:5280/metrics", {"Host": DOMAIN})


def hold_a_client(host, room: str, seconds: int) -> None:
    """A real client (the focus) logs in and stays in ROOM for SECONDS, in the background."""
    host.check_output(
        f"XMPP_PASSWORD={shlex.quote(password(f'focus@{AUTH}'))} setsid -f timeout 60 "
        f"xmpp-probe muc focus@{AUTH} {room}@{CONFERENCE} --hold {seconds} >/dev/null 2>&1"
    )


def test_prosody_serves_its_statistics_on_loopback_and_they_follow_real_clients(host):
    status, text = metrics(host)
    assert status == 200, text[:500]
    assert "# TYPE prosody_" in text
    before = c2s_connections(text)
    hold_a_client(host, "metrics-probe", 10)
    deadline = time.monotonic() + 8
    while (now := c2s_connections(metrics(host)[1])) <= before:
        assert time.monotonic() < deadline, f"c2s connections stayed at {now} while a client was logged in"
        time.sleep(0.5)
    assert now >= before + 1


# --- Prometheus beside it (meetops.jitsi.monitoring) ---------------------------------------------------


def prometheus(host, path: str) -> dict:
    """The data of a GET of Prometheus's HTTP API on loopback."""
    status, body = http_get(host, f"http://127.0.0.1:9090{path}")
    assert status == 200, body[:1000]
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]


def test_prometheus_scrapes_prosody_and_holds_the_alerting_rules(host):
    deadline = time.monotonic() + 30
    while True:
        targets = {t["labels"]["job"]: t for t in prometheus(host, "/api/v1/targets")["activeTargets"]}
        if all(t["health"] == "up" for t in targets.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(targets) == {"prometheus", "prosody"}
    assert {job: t["health"] for job, t in targets.items()} == {"prometheus": "up", "prosody": "up"}, targets
    assert targets["prosody"]["labels"]["shard"] == "molecule"
    rules = {r["name"] for g in prometheus(host, "/api/v1/rules")["groups"] for r in g["rules"]}
    assert {
        "ComponentDown",
        "ShardFailingHealthChecks",
        "NoShardInRotation",
        "ShardDrainedTooLong",
        "BridgeDrainingTooLong",
        "meetops_jitsi:jvb_pool_stress:avg",
        "BridgePoolNeedsMoreBridges",
        "BridgePoolHasSpareBridges",
        "CertificateExpiresSoon",
        "TLSProbeFailing",
    } <= rules


def test_the_bridge_and_certificate_rules_fire_as_documented_in_promtools_unit_test(host):
    """The scaling rule of bridge pools, the draining alert and the certificate alerts, on the rendered rules
    file, by promtool's own rule tests (tests/rules_test.yml: synthetic series, named as jitsi-videobridge's
    /metrics and the blackbox exporter's TLS probes)."""
    cases = Path(__file__).with_name("rules_test.yml").read_text()
    path = "/tmp/meetops-rules-test.yml"
    host.check_output(f"printf %s {shlex.quote(cases)} > {path}")
    result = host.run(f"promtool test rules {path}")
    assert result.rc == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            {"monitoring_pool_scale_in_stress": 0.8},
            "monitoring_pool_scale_in_stress=0.8: must be a number from 0 to below monitoring_pool_scale_out",
        ),
        ({"monitoring_pool_scale_out_stress": 1.5}, "monitoring_pool_scale_out_stress=1.5: must be a number"),
        ({"monitoring_bridge_draining_for": "3 hours"}, "monitoring_bridge_draining_for=3 hours: must be"),
        (
            {"monitoring_tls_probes": [{"name": "site", "server_name": "not a name", "targets": ["x:443"]}]},
            "monitoring_tls_probes: probe 'site': server_name must be the DNS name",
        ),
        (
            {"monitoring_tls_probes": [{"name": "xmpp", "server_name": "a.test", "targets": ["x"]}]},
            "monitoring_tls_probes: probe 'xmpp': targets must be a non-empty list of host:port",
        ),
    ],
)
def test_bad_monitoring_settings_fail_naming_the_variable_before_the_rules_change(host, extra_vars, message):
    rules = "/etc/prometheus/meetops-jitsi.rules.yml"
    before = host.file(rules).content_string
    result = run_converge(host, "monitoring", **extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output, output[-3000:]
    assert host.file(rules).content_string == before


def test_prometheus_sees_a_real_client_arrive_on_prosody(host):
    query = "/api/v1/query?query=" + urllib.parse.quote('sum(prosody_mod_c2s__connections{job="prosody"})')

    def connections() -> float:
        result = prometheus(host, query)["result"]
        return float(result[0]["value"][1]) if result else 0.0

    # From the clients of this test alone, once Prometheus has caught up with what Prosody reports.
    wait_for_no_test_clients(host)
    deadline = time.monotonic() + 20
    while (before := connections()) != c2s_connections(metrics(host)[1]):
        assert time.monotonic() < deadline, f"Prometheus kept {before} connections, not Prosody's count"
        time.sleep(1)
    hold_a_client(host, "prometheus-probe", 30)
    deadline = time.monotonic() + 20
    while (now := connections()) <= before:
        assert time.monotonic() < deadline, f"Prometheus saw {now} client connections with a client logged in"
        time.sleep(1)
