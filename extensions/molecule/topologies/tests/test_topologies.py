"""playbooks/single.yml and playbooks/multi_bridge.yml, checked by playbooks/verify.yml and by the bridge host
itself: it trusts the deployment's internal CA (system and Java stores) and its rendered jvb.conf logs in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
from meetops_test_helpers import address_of, hocon, on, run_module, run_playbook, verify_table

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
SINGLE = RUNNER.get_hosts("jitsi")[0]
SIGNAL = RUNNER.get_hosts("signal")[0]
BRIDGE = RUNNER.get_hosts("videobridge")[0]
DOMAIN = "meet.topologies.test"
VERIFY = str(Path(__file__).resolve().parents[4] / "playbooks" / "verify.yml")

# Runs once; the tests reach the hosts themselves.
testinfra_hosts = [BRIDGE]


@pytest.fixture(scope="module")
def verified() -> tuple[int, str, dict]:
    result = run_playbook(VERIFY)
    output = result.stdout + result.stderr
    return result.returncode, output, verify_table(output)


def test_verify_passes_and_names_what_is_not_installed(verified):
    rc, output, rows = verified
    assert rc == 0, output[-4000:]
    for host in (SINGLE, SIGNAL):
        assert rows[(host, "jicofo", "service")] == "not installed"
        assert rows[(host, "prosody prosody", "service prosody.service")] == "ok"
        assert rows[(host, "prosody prosody-jvb", "service prosody-jvb.service")] == "ok"
        assert rows[(host, "web", "shard health (/about/health)")] == "ok"
    for host in (SINGLE, BRIDGE):
        health = [
            status
            for (h, component, check), status in rows.items()
            if h == host and check.startswith("health on port")
        ]
        assert health, rows
        assert set(health) == {"not installed"}, rows
    assert not [key for key, status in rows.items() if status == "FAIL"]


def test_the_running_prosody_has_the_modules_of_a_meeting(verified):
    _unused, _unused, rows = verified
    for host, domain in ((SINGLE, "single.topologies.test"), (SIGNAL, DOMAIN)):
        for vhost in (domain, f"conference.{domain}", f"focus.{domain}", f"auth.{domain}"):
            assert rows[(host, "prosody prosody", f"modules on {vhost}")] == "ok"
        assert rows[(host, "prosody prosody", f"login focus@auth.{domain} (TLS verified)")] == "ok"
        assert rows[(host, "prosody prosody", "Prosody's own smacks, not a plugin's")] == "ok"


def test_the_bridge_host_logs_in_to_its_shard_over_verified_tls(verified):
    _unused, _unused, rows = verified
    logins = {
        check: status
        for (h, component, check), status in rows.items()
        if h == BRIDGE and component == "jvb credentials"
    }
    assert logins
    assert set(logins.values()) == {"ok"}, logins


def test_the_rendered_jvb_conf_logs_in_from_the_bridge_host(host):
    """The credentials of each instance's jvb.conf, exactly as a videobridge would read them."""
    for name in ("jvb1", "jvb2"):
        conf = f"/etc/jitsi/videobridge/{name}/jvb.conf"
        settings = hocon(host, conf, "videobridge")["apis"]["xmpp-client"]["configs"]["shard"]
        login_as_a_bridge_would(BRIDGE, settings)


def login_as_a_bridge_would(bridge: str, settings: dict, extra_inventories: tuple[str, ...] = ()) -> None:
    """From host BRIDGE, log in with the xmpp-client settings of a jvb.conf, over verified TLS."""
    result = run_module(
        bridge,
        "meetops.jitsi.xmpp_login",
        {
            "host": settings["hostname"],
            "port": int(settings["port"]),
            "domain": settings["domain"],
            "username": settings["username"],
            "password": settings["password"],
        },
        extra_inventories=extra_inventories,
    )
    assert result.get("authenticated") is True, result.get("msg")
    assert result["certificate"]["subject_cn"] == f"auth.jvb.{DOMAIN}"
    assert settings["password"] not in str(result)


def test_openssl_verifies_the_bridge_prosody_from_the_bridge_host(host):
    signal_address = address_of(SIGNAL)
    cmd = host.run(
        f"echo | openssl s_client -starttls xmpp -xmpphost auth.jvb.{DOMAIN} -connect {signal_address}:6222 "
        f"-verify_return_error -verify_hostname auth.jvb.{DOMAIN} 2>&1"
    )
    assert cmd.rc == 0, cmd.stdout[-2000:]
    assert "Verify return code: 0 (ok)" in cmd.stdout


def test_the_bridge_hosts_java_trust_store_holds_the_ca(host):
    """A Java runtime came before the role (prepare.yml), as jitsi-videobridge2 brings one."""
    alias = f"debian:meetops-jitsi-{DOMAIN}.pem"
    cmd = host.run(f"keytool -list -keystore /etc/ssl/certs/java/cacerts -storepass changeit -alias {alias}")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    assert "trustedCertEntry" in cmd.stdout


def test_a_stopped_prosody_fails_verify_naming_the_host_and_the_check():
    signal = on(SIGNAL)
    signal.check_output("systemctl stop prosody")
    try:
        result = run_playbook(VERIFY)
    finally:
        signal.check_output("systemctl start prosody")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    rows = verify_table(output)
    assert rows[(SIGNAL, "prosody prosody", "service prosody.service")] == "FAIL"
    assert f"{SIGNAL} / prosody prosody / service prosody.service" in output
    # The other deployment is unaffected.
    assert rows[(SINGLE, "prosody prosody", "service prosody.service")] == "ok"
