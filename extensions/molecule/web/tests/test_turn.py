"""TURN beside the web site, as on a one-host deployment: meetops.jitsi.coturn (Debian's coturn), Prosody
handing out its credentials (XEP-0215) and nginx sharing port 443 with TURN over TLS. The credentials come
from a real XMPP client (the websocket probe: anonymous login through nginx, as Jitsi Meet does), and coturn's
own test client (turnutils_uclient) relays with them to coturn's own test peer (turnutils_peer)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shlex
import time
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
from meetops_test_helpers import (
    INVENTORY,
    crash_and_wait_back,
    files_with_secrets,
    host_private_key_lines,
    main_pid,
    run_playbook,
    secrets_in,
    store_secrets,
    stored_password,
    verify_table,
)

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = sorted(RUNNER.get_hosts("all"))

DOMAIN = "meet.example.test"
CONVERGE = str(Path(__file__).resolve().parents[1] / "converge.yml")
VERIFY = str(Path(__file__).resolve().parents[4] / "playbooks" / "verify.yml")
CONF = "/etc/turnserver.conf"
PEER_PORT = 3480
TTL = 600
# turnutils_uclient's default suites include TLS 1.3's, with which its second connection of a session
# stalls; one suite of the role's list (the internal CA issues ECDSA keys) keeps it on TLS 1.2.
TLS_SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
TRANSPORTS = {
    "udp": ["-p", "3478"],
    "tcp": ["-t", "-p", "3478"],
    "tls-5349": ["-t", "-S", "-F", TLS_SUITE, "-E", SYSTEM_CA, "-p", "5349"],
    "tls-443-through-nginx": ["-t", "-S", "-F", TLS_SUITE, "-E", SYSTEM_CA, "-p", "443"],
}


def address(host) -> str:
    """The address of the default route's interface, as Ansible's default_ipv4 fact has it."""
    return host.check_output("ip -4 -o route get 192.0.2.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'")


def services(host) -> tuple[list[dict[str, str]], int]:
    out = host.check_output(f"websocket-probe {DOMAIN} /xmpp-websocket --services")
    reply = json.loads(out)
    return reply["services"], reply["now"]


def credentials(host) -> tuple[str, str]:
    turn = [s for s in services(host)[0] if s["type"] == "turn"]
    return turn[0]["username"], turn[0]["password"]


def rest_password(username: str) -> str:
    """The TURN REST password of a username, from the deployment's shared secret on the controller."""
    secret = stored_password(DOMAIN, "turn").encode()
    return base64.b64encode(hmac.new(secret, username.encode(), hashlib.sha1).digest()).decode()


def relay(host, transport: str, peer: str, username: str, password: str) -> str:
    """turnutils_uclient: allocate a relay, send 10 messages through it to peer and count the echoes."""
    argv = [
        "turnutils_uclient", *TRANSPORTS[transport], "-u", username, "-w", password,
        "-e", peer, "-r", str(PEER_PORT), "-n", "10", "-m", "1", "-l", "120", "-c", "127.0.0.1",
    ]  # fmt: skip
    # "|| true": the client exits 255 on a refused allocation, which testinfra's SSH backend takes for a
    # failed connection.
    return host.run(f"timeout 30 {shlex.join(argv)} 2>&1 || true").stdout


@pytest.fixture(scope="module")
def peer(host):
    """coturn's test peer, echoing UDP on this host's address (the one coturn_allowed_peer_ips lets in)."""
    ip = address(host)
    # A transient unit: a process started in the background of 'podman exec' ends with it.
    host.run("systemctl stop meetops-test-peer; systemctl reset-failed meetops-test-peer")
    host.check_output(f"systemd-run --quiet --unit=meetops-test-peer turnutils_peer -L {ip} -p {PEER_PORT}")
    time.sleep(0.5)
    yield ip
    host.run("systemctl stop meetops-test-peer")


def test_prosody_hands_out_turn_credentials_that_expire_when_they_should(host):
    handed, now = services(host)
    entries = sorted((s["type"], s["transport"], s["port"]) for s in handed)
    assert entries == [
        ("stun", "udp", "3478"),
        ("turn", "tcp", "3478"),
        ("turn", "udp", "3478"),
        ("turns", "tcp", "443"),
    ]
    assert {s["host"] for s in handed} == {DOMAIN}
    stun = next(s for s in handed if s["type"] == "stun")
    assert "username" not in stun
    assert "password" not in stun
    for service in (s for s in handed if s["type"] != "stun"):
        expires = int(service["username"])
        # The TURN REST scheme: the username is the expiry time, the password its HMAC with the shared secret.
        assert abs(expires - (now + TTL)) <= 5, (expires, now)
        assert service["expires"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        assert service["password"] == rest_password(service["username"])
        assert service["restricted"] == "1"


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_relays_data_to_an_allowed_peer(host, peer, transport):
    username, password = credentials(host)
    out = relay(host, transport, peer, username, password)
    assert "tot_send_msgs=10, tot_recv_msgs=10" in out, out[-3000:]
    assert "Total lost packets 0 " in out, out[-3000:]


def denied_peers(host) -> list[str]:
    ip = address(host)
    # Loopback, link-local (cloud metadata), and a private address of this host's network that is not in
    # coturn_allowed_peer_ips (its gateway).
    return ["127.0.0.1", "169.254.169.254", re.sub(r"\.[0-9]+$", ".1", ip), "192.168.1.1"]


def test_relays_to_denied_addresses_are_refused(host, peer):
    username, password = credentials(host)
    for denied in denied_peers(host):
        out = relay(host, "udp", denied, username, password)
        assert "tot_recv_msgs=10" not in out
        assert "error 403 (Forbidden IP)" in out, (denied, out[-3000:])


def test_expired_and_wrong_credentials_are_refused(host, peer):
    expired = str(int(time.time()) - 60)
    valid_username = credentials(host)[0]
    for username, password in [(expired, rest_password(expired)), (valid_username, "d3Jvbmc=")]:
        since = int(time.time())
        out = relay(host, "udp", peer, username, password)
        assert "tot_recv_msgs=10" not in out
        assert "Cannot complete Allocation" in out, out[-3000:]
        # coturn says why: it found no valid credentials for the user.
        journal = host.check_output(f"journalctl --unit=coturn --output=cat --no-pager --since=@{since}")
        assert f"check_stun_auth: Cannot find credentials of user <{username}>" in journal, journal[-3000:]


def test_old_tls_is_refused_and_tls_12_accepted(host):
    # TLS 1.3 is not checked: Debian's coturn 4.6.1 (both releases) has none, it came with coturn 4.6.2.
    s_client = f"openssl s_client -connect 127.0.0.1:5349 -servername {DOMAIN}"
    cmd = host.run(f"{s_client} -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1")
    assert cmd.rc != 0
    # coturn ends the handshake (a reset, no alert): no session, no cipher.
    assert "New, (NONE), Cipher is (NONE)" in cmd.stdout, cmd.stdout
    out = host.run(
        f"openssl s_client -connect 127.0.0.1:5349 -servername {DOMAIN} -tls1_2 </dev/null 2>&1"
    ).stdout
    assert "Verify return code: 0 (ok)" in out, out


def test_browsers_still_reach_the_site_on_443(host):
    for flag in ("--http2", "--http1.1"):
        cmd = host.run(
            f"curl -sS --max-time 20 --resolve {DOMAIN}:443:127.0.0.1 {flag} -o /dev/null "
            f"-w '%{{http_code}}' https://{DOMAIN}/config.js"
        )
        assert cmd.stdout == "200", cmd.stderr


def test_turnserver_conf_is_private_and_keeps_relays_off_internal_networks(host):
    conf = host.file(CONF)
    assert (conf.user, conf.group, conf.mode) == ("root", "turnserver", 0o640)
    lines = set(conf.content_string.splitlines())
    for line in [
        "use-auth-secret", "no-cli", "no-tlsv1", "no-tlsv1_1", "no-multicast-peers", "no-tcp-relay",
        "denied-peer-ip=10.0.0.0-10.255.255.255", "denied-peer-ip=127.0.0.0-127.255.255.255",
        "denied-peer-ip=169.254.0.0-169.254.255.255",
        "denied-peer-ip=fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "denied-peer-ip=::ffff:0:0-::ffff:ffff:ffff", f"allowed-peer-ip={address(host)}",
        f"realm={DOMAIN}",
    ]:  # fmt: skip
        assert line in lines, line
    assert f"static-auth-secret={stored_password(DOMAIN, 'turn')}" in lines


def test_coturn_comes_back_by_itself_after_a_crash(host, peer):
    """The role's drop-in restarts coturn whatever ended it (Debian's unit gives up after a crash)."""
    assert host.check_output("systemctl show -p Restart --value coturn") == "always"
    assert host.check_output("systemctl show -p StartLimitBurst --value coturn") == "5"
    crash_and_wait_back(host, "coturn")
    username, password = credentials(host)
    deadline = time.monotonic() + 20
    while "tot_recv_msgs=10" not in (output := relay(host, "udp", peer, username, password)):
        assert time.monotonic() < deadline, output
        time.sleep(1)


def test_a_value_coturn_refuses_leaves_the_running_coturn_and_its_file(host, peer):
    pid, before = main_pid(host, "coturn"), host.file(CONF).content_string
    result = run_playbook(
        CONVERGE, "--limit", host.backend.get_hostname(), "--tags", "coturn_configure",
        extra_vars={"coturn_custom_config": "no-such-option=1"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # coturn's own words, from the throwaway coturn that read the candidate.
    assert "Bad configuration format: no-such-option" in output, output[-3000:]
    assert "the running coturn and its file are untouched" in output
    assert main_pid(host, "coturn") == pid
    assert host.file(CONF).content_string == before
    username, password = credentials(host)
    assert "tot_recv_msgs=10" in relay(host, "udp", peer, username, password)


def test_a_bad_peer_range_is_refused_naming_the_variable_before_the_host_changes(host):
    before = host.file(CONF).content_string
    result = run_playbook(
        CONVERGE, "--limit", host.backend.get_hostname(), "--tags", "coturn_configure",
        extra_vars={"coturn_allowed_peer_ips": ["10.0.0.0/33"]},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "coturn_allowed_peer_ips: '10.0.0.0/33' is not an IP address" in output, output[-3000:]
    assert host.file(CONF).content_string == before


def test_verify_asks_the_running_coturn(host):
    name = host.backend.get_hostname()
    result = run_playbook(VERIFY, "--limit", name)
    output = result.stdout + result.stderr
    rows = verify_table(output)
    assert result.returncode == 0, output[-3000:]
    assert rows[(name, "coturn", "service coturn")] == "ok"
    assert rows[(name, "coturn", "STUN binding on port 3478")] == "ok", output[-3000:]
    assert rows[(name, "coturn", "TURN over TLS on port 5349")] == "ok", output[-3000:]
    # Stopped, coturn fails all three.
    host.check_output("systemctl stop coturn")
    try:
        result = run_playbook(VERIFY, "--limit", name)
        rows = verify_table(result.stdout + result.stderr)
        assert result.returncode != 0
        statuses = {status for (_host, component, _check), status in rows.items() if component == "coturn"}
        assert statuses == {"FAIL"}
    finally:
        host.check_output("systemctl start coturn")


def test_a_port_another_program_holds_is_refused_naming_both(host):
    pid, before = main_pid(host, "coturn"), host.file(CONF).content_string
    # nginx holds 443 here (the multiplexer).
    result = run_playbook(
        CONVERGE, "--limit", host.backend.get_hostname(), "--tags", "coturn_configure",
        extra_vars={"coturn_tls_port": 443},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"coturn_tls_port=443: port 443 is already held on this host by nginx \(tcp ", output), (
        output[-3000:]
    )
    assert main_pid(host, "coturn") == pid
    assert host.file(CONF).content_string == before


def test_a_verbose_diff_run_prints_no_turn_secret_and_leaves_none_for_other_users(host):
    """The files holding the TURN secret (coturn's and Prosody's) are removed, so that a run with -vvv --diff
    writes them again: neither its output nor any file other users can read holds a secret."""
    secrets = store_secrets() + host_private_key_lines(host)
    turn_secret = stored_password(DOMAIN, "turn")
    holders = files_with_secrets(host, [turn_secret], readable_by_others=False)
    assert CONF in holders, holders
    assert any(path.startswith("/etc/prosody/") for path in holders), holders
    host.check_output("rm -f " + " ".join(holders))
    result = run_playbook(CONVERGE, "--limit", host.backend.get_hostname(), "--diff", "-vvv")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert host.file(CONF).exists
    assert turn_secret in secrets
    assert secrets_in(output, secrets) == []
    assert files_with_secrets(host, secrets, readable_by_others=True) == []
