"""meetops.jitsi.jicofo: checks of what the role leaves on each host, read with a real HOCON parser.

jicofo.conf is parsed inside the container with `hocon` from Debian's ruby-hocon, the parser the jicofo
package's own scripts use (the role installs it for its check). Debian 12 runs the default, one bridge per
conference; Debian 13 the relay variant (molecule.yml, group_vars debian13).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
from meetops_test_helpers import address_of, hocon, http_ask, on, stored_password, stored_password_file

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = sorted(RUNNER.get_hosts("all"))

DOMAIN = "meet.example.test"
AUTH = f"auth.{DOMAIN}"
JVB = f"jvb.{DOMAIN}"
JVB_AUTH = f"auth.{JVB}"
SECRETS = stored_password_file(DOMAIN, f"focus@{AUTH}").parent
CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
KEY_LIST = Path(__file__).resolve().parents[4] / "docs" / "jitsi-keys" / "jicofo.md"

CONFIG = "/etc/jitsi/jicofo/jicofo.conf"
ENV_FILE = "/etc/jitsi/jicofo/config"
LEGACY = "/etc/jitsi/jicofo/sip-communicator.properties"


def name(host) -> str:
    return host.backend.get_hostname()


def relay(host) -> bool:
    """The Debian 13 host runs the relay variant."""
    return "debian13" in RUNNER.get_variables(name(host))["group_names"]


def controller_password(account: str) -> str:
    return stored_password(DOMAIN, account)


def parse(host, path: str = CONFIG) -> dict:
    """The whole file as JSON, from ruby-hocon inside the container."""
    return hocon(host, path, "jicofo")


def leaf_paths(tree: dict, prefix: str = "jicofo") -> set[str]:
    """Full key paths of the values; a list is one value."""
    paths = set()
    for key, value in tree.items():
        path = f"{prefix}.{key}"
        paths |= leaf_paths(value, path) if isinstance(value, dict) else {path}
    return paths


def documented_keys() -> set[str]:
    """Key paths of the fenced jitsi-keys block in docs/jitsi-keys/jicofo.md."""
    block = re.search(r"^```jitsi-keys\n(.*?)^```", KEY_LIST.read_text(), re.DOTALL | re.MULTILINE)
    assert block, f"no jitsi-keys block in {KEY_LIST}"
    lines = [line.split("|", 1)[0].strip() for line in block.group(1).splitlines()]
    return {line for line in lines if line and not line.startswith("#")}


def run_converge(host, tags: str, **extra_vars) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "ansible-playbook",
            *("-i", INVENTORY, "--limit", name(host), "--tags", tags),
            *("-e", json.dumps(extra_vars)),
            str(CONVERGE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_key_list_is_well_formed():
    keys = documented_keys()
    assert len(keys) >= 25
    assert all(re.fullmatch(r"jicofo(\.[a-z][a-z0-9-]*)+", key) for key in keys), keys


def test_every_rendered_key_is_in_the_key_list(host):
    rendered = leaf_paths(parse(host))
    unknown = rendered - documented_keys()
    assert not unknown, f"keys not in {KEY_LIST.name}: {sorted(unknown)}"


def test_client_connection_to_the_main_prosody(host):
    client = parse(host)["xmpp"]["client"]
    expected = {
        "hostname": "localhost",
        "port": 5222,
        "domain": AUTH,
        "xmpp-domain": DOMAIN,
        "username": "focus",
        "conference-muc-jid": f"conference.{DOMAIN}",
        "disable-certificate-verification": False,
    }
    assert {key: client.get(key) for key in expected} == expected
    # client_proxy by default (Debian 13); not where Prosody loads none of Jitsi's plugins (Debian 12).
    assert client.get("client-proxy") == (f"focus.{DOMAIN}" if relay(host) else None)


def test_service_connection_to_the_bridge_prosody(host):
    service = parse(host)["xmpp"]["service"]
    expected = {
        "enabled": True,
        "hostname": "localhost",
        "port": 6222,
        "domain": JVB_AUTH,
        "xmpp-domain": JVB,
        "username": "focus",
        "disable-certificate-verification": False,
    }
    assert {key: service.get(key) for key in expected} == expected


def test_bridges_are_found_in_the_brewery_of_the_bridge_prosody(host):
    bridge = parse(host)["bridge"]
    assert bridge["brewery-jid"] == f"jvbbrewery@muc.{JVB}"
    assert bridge["xmpp-connection-name"] == "Service"
    assert bridge["max-bridge-participants"] == 80
    assert bridge["health-checks"] == {"enabled": True, "interval": "10 seconds"}


def test_bridge_selection_follows_relay(host):
    config = parse(host)
    if relay(host):
        assert config["bridge"]["selection-strategy"] == "RegionBasedBridgeSelectionStrategy"
        assert config["octo"] == {"enabled": True}
        assert config["local-region"] == "eu-central"
        assert config["bridge"]["region-groups"] == [["eu-central", "eu-west"], ["us-east", "us-west"]]
        assert config["xmpp"]["trusted-domains"] == [f"recorder.{DOMAIN}"]
    else:
        assert config["bridge"]["selection-strategy"] == "SingleBridgeSelectionStrategy"
        assert config["octo"] == {"enabled": False}
        assert "local-region" not in config
        assert "region-groups" not in config["bridge"]
        assert config["xmpp"]["trusted-domains"] == []


def test_health_check_and_rest_api_on_loopback(host):
    config = parse(host)
    assert config["health"] == {"enabled": True}
    assert config["rest"] == {"host": "127.0.0.1", "port": 8888}


def test_only_the_metrics_reach_other_hosts_through_the_gateway(host):
    """jicofo_metrics_address: the gateway listens on the host's address at Jicofo's REST port and asks
    Jicofo's loopback REST API for /metrics alone. Jicofo does not run here (no package), so /metrics is a
    bad gateway naming that upstream; move-endpoints (a GET that moves participants) never gets through."""
    address = address_of(name(host))
    other = on(next(h for h in RUNNER.get_hosts("all") if h != name(host)))
    status, _content_type, body = http_ask(other, address, 8888)
    assert status == 502
    assert body.startswith("jicofo: the upstream http://127.0.0.1:8888/metrics did not answer"), body
    assert http_ask(other, address, 8888, "GET", "/move-endpoints/move-fraction")[0] == 404
    assert http_ask(other, address, 8888, "POST", "/conference-request/v1")[0] == 405
    assert http_ask(host, address, 8888, source="127.0.0.1")[0] == 403
    assert host.check_output("systemctl is-active meetops-metrics-gateway@jicofo.service") == "active"


def test_a_metrics_gateway_needs_the_rest_api_on_loopback(host):
    result = run_converge(host, "jicofo", jicofo_rest_host="0.0.0.0")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "but jicofo_rest_host is '0.0.0.0'. Set jicofo_rest_host" in output, output[-3000:]
    assert "changed=0" in output, output[-3000:]


@pytest.mark.parametrize("path", [CONFIG, ENV_FILE, LEGACY])
def test_files_are_readable_only_by_root_and_jicofo(host, path):
    f = host.file(path)
    assert (f.user, f.group, f.mode) == ("root", "jitsi", 0o640)


def test_configuration_directory_is_as_the_package_makes_it(host):
    d = host.file("/etc/jitsi/jicofo")
    assert (d.user, d.group, d.mode) == ("jicofo", "jitsi", 0o750)


def test_jicofo_runs_as_a_system_user_without_login_shell(host):
    user = host.user("jicofo")
    assert user.exists
    assert user.group == "jitsi"
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000


def test_passwords_are_the_controller_side_ones(host):
    config = parse(host)
    client = controller_password(f"focus@{AUTH}")
    service = controller_password(f"focus@{JVB_AUTH}")
    assert re.fullmatch(r"[A-Za-z0-9]{32}", client)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", service)
    assert client != service
    # Compared without printing them.
    assert config["xmpp"]["client"]["password"] == client, "client password differs from the controller's"
    assert config["xmpp"]["service"]["password"] == service, "service password differs from the controller's"


def test_secrets_stay_on_the_controller_with_private_modes():
    files = sorted(SECRETS.iterdir())
    assert [f.name for f in files] == sorted([f"focus@{AUTH}", f"focus@{JVB_AUTH}"])
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o600"}
    inventory = Path(INVENTORY).read_text()
    assert not any(controller_password(f.name) in inventory for f in files)


def test_service_environment_points_java_at_jicofo_conf(host):
    script = f'. {ENV_FILE}; printf \'%s\\n\' "$JICOFO_MAX_MEMORY" "$JAVA_SYS_PROPS"'
    heap, props = host.check_output(f"bash -c {shlex.quote(script)}").splitlines()
    assert heap == "3072m"
    assert f"-Dconfig.file={CONFIG}" in props.split()
    assert "-Djava.util.logging.config.file=/etc/jitsi/jicofo/logging.properties" in props.split()


def test_legacy_properties_cannot_override_jicofo_conf(host):
    lines = host.file(LEGACY).content_string.splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == []
    backups = host.run("ls /etc/jitsi/jicofo/ | grep '^sip-communicator.properties\\..*~$'").stdout.split()
    if relay(host):  # the fresh Debian 13 host had no legacy file to keep
        assert backups == []
    else:  # Debian 12 had stale properties (prepare.yml): kept aside, not in force
        assert len(backups) == 1
        backup = host.file(f"/etc/jitsi/jicofo/{backups[0]}")
        assert (backup.user, backup.group, backup.mode) == ("root", "root", 0o600)
        assert "org.jitsi.jicofo.BRIDGE_MUC" in backup.content_string


def test_the_roles_unit_restarts_jicofo_after_a_crash_but_not_in_a_loop(host):
    unit = host.file("/etc/systemd/system/jicofo.service")
    assert (unit.user, unit.mode) == ("root", 0o644)
    show = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show -p Restart -p StartLimitBurst -p User -p RestartPreventExitStatus jicofo"
        ).splitlines()
    )
    assert show == {
        "Restart": "on-failure",
        "StartLimitBurst": "5",
        "User": "jicofo",
        "RestartPreventExitStatus": "2",
    }
    assert "/usr/share/jicofo/jicofo.sh" in host.check_output("systemctl show -p ExecStart --value jicofo")
    assert ENV_FILE in host.check_output("systemctl show -p EnvironmentFiles --value jicofo")


def test_validator_is_installed(host):
    assert host.package("ruby-hocon").is_installed
    assert host.file("/usr/local/sbin/meetops-jicofo-check-config").mode == 0o755


def test_without_the_package_jicofo_is_not_started_and_the_role_says_so(host):
    assert not host.package("jicofo").is_installed
    assert not host.service("jicofo").is_running
    assert not host.service("jicofo").is_enabled
    assert not host.package("python3-debian").is_installed, "no repository setup without packages"
    assert not host.file("/etc/apt/sources.list.d/jitsi.sources").exists
    result = run_converge(host, "jicofo_run")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Jicofo is not started: jicofo_install_packages is false" in result.stdout


def test_broken_configuration_is_refused_with_the_parsers_reason(host):
    before = host.file(CONFIG).sha256sum
    result = run_converge(host, "jicofo_configure", jicofo_custom_config="broken = {")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "was not installed; the running one is untouched" in output, output[-3000:]
    # ruby-hocon's own words about the candidate.
    assert "jicofo.conf is not usable: " in output
    assert "end of file" in output, output[-3000:]
    assert host.file(CONFIG).sha256sum == before
    # Nothing secret in the refusal.
    assert controller_password(f"focus@{AUTH}") not in output
