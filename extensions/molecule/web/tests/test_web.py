"""meetops.jitsi.web: nginx in front of the real Prosody of meetops.jitsi.prosody, checked with curl, openssl
and an XMPP-over-websocket client inside each container. TLS is verified against the system trust store,
where the internal CA was added: no check below skips certificate verification."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
from meetops_test_helpers import crash_and_wait_back, main_pid

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = sorted(RUNNER.get_hosts("all"))

DOMAIN = "meet.example.test"
RESOLVE = f"--resolve {DOMAIN}:443:127.0.0.1"
SITE = f"/etc/nginx/sites-available/{DOMAIN}.conf"
CONFIG_JS = f"/etc/jitsi/meet/{DOMAIN}-config.js"
CERT = f"/etc/jitsi/meet/tls/{DOMAIN}.crt"
CA = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / DOMAIN / "ca" / "ca.crt"
CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
# Port 443 is shared with TURN over TLS here: a TLS client offering no ALPN reaches coturn, so openssl offers
# http/1.1 as a browser does (curl and the websocket probe do too).
S_CLIENT = f"openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN} -alpn http/1.1"
BOSH_OPEN = (
    f"<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='{DOMAIN}' ver='1.6' "
    "wait='10' xml:lang='en' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' "
    "xmpp:version='1.0'/>"
)


def name(host) -> str:
    return host.backend.get_hostname()


def curl(host, url: str, *args: str) -> tuple[int, dict[str, str], str]:
    """Status, headers (lower-case names) and body of a request; the system store verifies the certificate."""
    cmd = host.run(f"curl -sS --max-time 20 {RESOLVE} -D /tmp/headers {shlex.join(args)} {shlex.quote(url)}")
    assert cmd.rc == 0, f"curl {url}: {cmd.stderr}"
    lines = host.file("/tmp/headers").content_string.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _unused, v in (line.partition(":") for line in lines[1:] if line)
    }
    return status, headers, cmd.stdout


def wait_for_health(host, want_ok: bool, timeout: int = 60) -> int:
    deadline = time.time() + timeout
    while True:
        status, _unused, _unused = curl(host, f"https://{DOMAIN}/about/health")
        if (200 <= status < 300) == want_ok or time.time() > deadline:
            return status
        time.sleep(2)


def test_nginx_runs_from_debian_and_its_configuration_tests_ok(host):
    assert host.package("nginx").is_installed
    service = host.service("nginx")
    assert service.is_running
    assert service.is_enabled
    cmd = host.run("nginx -t")
    assert cmd.rc == 0, cmd.stderr
    assert "test is successful" in cmd.stderr


def test_the_auth_request_module_is_built_in(host):
    assert "--with-http_auth_request_module" in host.run("nginx -V").stderr


def test_site_replaces_debians_default(host):
    enabled = host.file(f"/etc/nginx/sites-enabled/{DOMAIN}.conf")
    assert enabled.is_symlink
    assert enabled.linked_to == SITE
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    # No backups are left where nginx or an admin would trip over them.
    assert host.run("ls /etc/nginx/*~ /etc/nginx/*/*~ 2>/dev/null").stdout == ""


def test_files_are_owned_by_root(host):
    for path, mode in (
        (SITE, 0o644),
        (CONFIG_JS, 0o644),
        ("/etc/nginx/conf.d/meetops-jitsi-web.conf", 0o644),
    ):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", mode), path
    key = host.file(f"/etc/jitsi/meet/tls/{DOMAIN}.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o640)


def test_https_with_the_internal_ca_and_http2(host):
    cmd = host.run(
        f"curl -sS {RESOLVE} --cacert /usr/local/share/ca-certificates/meetops-jitsi-{DOMAIN}.crt "
        f"-o /dev/null -w '%{{http_code}} %{{http_version}}' https://{DOMAIN}/config.js"
    )
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout == "200 2"


def test_certificate_names_and_issuer(host):
    sans = host.check_output(f"openssl x509 -in {CERT} -noout -ext subjectAltName")
    for dns in (DOMAIN, f"shard.{DOMAIN}", name(host)):
        assert f"DNS:{dns}" in sans
    # Signed by the CA the Prosody role made for this deployment (the one on the controller).
    host_ca = host.file(f"/usr/local/share/ca-certificates/meetops-jitsi-{DOMAIN}.crt").content_string
    assert host_ca.strip() == CA.read_text().strip()
    cmd = host.run(
        f"openssl verify -CAfile /usr/local/share/ca-certificates/meetops-jitsi-{DOMAIN}.crt {CERT}"
    )
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    # The host name is in the certificate: a check by host name verifies too.
    cmd = host.run(
        f"curl -sS --resolve {name(host)}:443:127.0.0.1 -o /dev/null https://{name(host)}/about/health"
    )
    assert cmd.rc == 0, cmd.stderr


@pytest.mark.parametrize("protocol", ["tls1_2", "tls1_3"])
def test_tls_12_and_13_are_accepted(host, protocol):
    out = host.run(f"{S_CLIENT} -{protocol} </dev/null 2>&1").stdout
    assert "Verify return code: 0 (ok)" in out
    assert re.search(r"New, TLSv1\.[23], Cipher is (ECDHE|TLS_)", out), out


def test_tls_11_is_refused(host):
    # SECLEVEL=0 lets this openssl offer TLS 1.1 at all; the server must still refuse it.
    cmd = host.run(f"{S_CLIENT} -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1")
    assert cmd.rc != 0
    assert "alert protocol version" in cmd.stdout, cmd.stdout


def test_no_session_tickets_and_only_mozilla_intermediate_ciphers(host):
    out = host.run(f"{S_CLIENT} -tls1_2 </dev/null 2>&1").stdout
    assert "Verify return code: 0 (ok)" in out
    assert "TLS session ticket:" not in out
    # A forward-secret CBC suite: nginx's default (HIGH:!aNULL:!MD5) takes it, Mozilla's intermediate not.
    cmd = host.run(f"{S_CLIENT} -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0' </dev/null 2>&1")
    assert cmd.rc != 0
    assert "alert handshake failure" in cmd.stdout, cmd.stdout


def test_config_js_holds_the_deployment(host):
    status, headers, body = curl(host, f"https://{DOMAIN}/config.js")
    assert status == 200
    assert headers["content-type"] == "application/javascript"
    match = re.search(r"^var config = (\{.*\});\s*$", body, re.S | re.M)
    assert match, body
    config = json.loads(match.group(1))
    assert config["hosts"]["domain"] == DOMAIN
    assert config["hosts"]["muc"] == f"conference.{DOMAIN}"
    assert config["bosh"] == f"//{DOMAIN}/http-bind"
    assert config["websocket"] == f"wss://{DOMAIN}/xmpp-websocket"
    assert config["focusUserJid"] == f"focus@auth.{DOMAIN}"
    # web_config_overrides, merged recursively: the role's hosts keys stay.
    # web_config_overrides merged with web_stun_servers (the deployment's own STUN for peer-to-peer calls).
    assert config["p2p"] == {"enabled": False, "stunServers": [{"urls": f"stun:{DOMAIN}:3478"}]}
    assert config["hosts"]["anonymousdomain"] == f"guest.{DOMAIN}"
    assert config["conferenceRequestUrl"] == f"https://{DOMAIN}/conference-request/v1"
    # The file names the tenant through server-side includes, which are empty at the root.
    assert body == re.sub(r"<!--# echo var='\w+' default='' -->", "", host.file(CONFIG_JS).content_string)


def test_a_tenants_config_js_names_the_tenant(host):
    status, headers, body = curl(host, f"https://{DOMAIN}/school/config.js")
    assert status == 200
    assert headers["content-type"] == "application/javascript"
    config = json.loads(re.search(r"^var config = (\{.*\});\s*$", body, re.S | re.M).group(1))
    # Jitsi's domain mapper maps conference.<tenant>.<domain> to the tenant's rooms.
    assert config["hosts"]["muc"] == f"conference.school.{DOMAIN}"
    assert config["hosts"]["domain"] == DOMAIN
    assert config["bosh"] == f"//{DOMAIN}/school/http-bind"
    assert config["websocket"] == f"wss://{DOMAIN}/school/xmpp-websocket"
    assert config["conferenceRequestUrl"] == f"https://{DOMAIN}/school/conference-request/v1"


def test_a_tenants_bosh_reaches_prosody(host):
    status, _unused, body = curl(
        host,
        f"https://{DOMAIN}/school/http-bind?room=probe",
        "-X",
        "POST",
        "-H",
        "Content-Type: text/xml; charset=utf-8",
        "--data",
        BOSH_OPEN,
    )
    assert status == 200
    assert re.search(r"<body [^>]*sid='[0-9a-f-]+'", body), body


def test_tenant_names_are_dns_labels(host):
    # An underscore would make conference.my_school.<domain>, which Prosody 13.0.3+ refuses: not a tenant.
    status, _unused, _unused = curl(host, f"https://{DOMAIN}/my_school/http-bind")
    assert status == 404


CONFERENCE_LISTENER = """
import http.server, json, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open("/tmp/conference-requests", "a") as out:
            out.write(json.dumps({"path": self.path, "body": body.decode()}) + "\\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ready": true}')
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", 8888), Handler).handle_request()
http.server.HTTPServer(("127.0.0.1", 8888), Handler).handle_request()
"""


def test_conference_requests_go_to_jicofos_rest_port(host):
    """A stand-in listener on Jicofo's REST port (no Jicofo here) records what nginx passes on."""
    host.check_output("rm -f /tmp/conference-requests")
    listener = shlex.quote(CONFERENCE_LISTENER)
    host.check_output(f"systemd-run --unit=meetops-conference-listener --collect python3 -c {listener}")
    try:
        host.check_output("timeout 10 sh -c 'until ss -ltn | grep -q 127.0.0.1:8888; do sleep 0.2; done'")
        for path in ("/conference-request/v1?room=lesson", "/school/conference-request/v1?room=lesson"):
            status, headers, body = curl(
                host,
                f"https://{DOMAIN}{path}",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data",
                '{"room": "lesson@conference.meet.example.test"}',
            )
            assert (status, body) == (200, '{"ready": true}'), (path, status, body)
            assert headers["x-jitsi-shard"] == name(host)
        requests = [
            json.loads(line) for line in host.file("/tmp/conference-requests").content_string.splitlines()
        ]
        assert [request["path"] for request in requests] == ["/conference-request/v1?room=lesson"] * 2
        assert requests[0]["body"] == '{"room": "lesson@conference.meet.example.test"}'
    finally:
        host.run("systemctl stop meetops-conference-listener")


def test_bosh_is_proxied_to_prosody_with_its_arguments(host):
    status, _unused, body = curl(
        host,
        f"https://{DOMAIN}/http-bind?room=probe",
        "-X",
        "POST",
        "-H",
        "Content-Type: text/xml; charset=utf-8",
        "--data",
        BOSH_OPEN,
    )
    assert status == 200
    # Prosody's answer: a new BOSH session for the domain, with its stream features (anonymous login).
    assert re.search(r"<body [^>]*sid='[0-9a-f-]+'", body), body
    assert f"from='{DOMAIN}'" in body
    assert "<mechanism>ANONYMOUS</mechanism>" in body
    status, _unused, body = curl(host, f"https://{DOMAIN}/http-bind?room=probe")
    assert (status, "Prosody BOSH endpoint" in body) == (200, True)


def test_websocket_upgrade_reaches_prosody(host):
    cmd = host.run(f"timeout 30 websocket-probe {DOMAIN}")
    assert cmd.rc == 0, cmd.stderr
    result = json.loads(cmd.stdout)
    assert " 101 " in result["status"], result
    assert result["headers"]["sec-websocket-protocol"] == "xmpp"
    assert result["headers"]["x-jitsi-shard"] == name(host)
    # Prosody opened an XMPP stream for the domain over the websocket.
    assert "urn:ietf:params:xml:ns:xmpp-framing" in result["frame"]
    assert f'from="{DOMAIN}"' in result["frame"] or f"from='{DOMAIN}'" in result["frame"]


@pytest.mark.parametrize(
    "url", ["/config.js", "/about/health", "/http-bind", "/no-such-room/file", "/external_api.js"]
)
def test_every_https_response_names_the_shard(host, url):
    _unused, headers, _unused = curl(host, f"https://{DOMAIN}{url}")
    assert headers.get("x-jitsi-shard") == name(host)
    assert headers.get("strict-transport-security") == "max-age=63072000"


def test_port_80_redirects_to_https_except_acme(host):
    out = host.check_output(f"curl -sS -o /dev/null -D - -H 'Host: {DOMAIN}' 'http://127.0.0.1/room?x=1'")
    assert out.startswith("HTTP/1.1 301")
    assert f"Location: https://{DOMAIN}/room?x=1" in out
    assert f"X-Jitsi-Shard: {name(host)}" in out
    acme = host.check_output(
        f"curl -sS -o /dev/null -w '%{{http_code}}' -H 'Host: {DOMAIN}' http://127.0.0.1/.well-known/acme-challenge/t"
    )
    assert acme == "404"


def test_the_application_is_served_when_installed(host):
    """A stand-in web root (jitsi-meet-web is not installable here): room names get index.html with its
    server-side includes, static files are cacheable and open to any origin. Removed afterwards."""
    root = "/usr/share/jitsi-meet"
    existed = host.file(root).exists
    host.check_output(
        f"mkdir -p {root}/libs && echo 'probe' > {root}/libs/probe.js && "
        f"printf '<html><script><!--#include virtual=\"/config.js\" --></script></html>' > {root}/index.html"
    )
    try:
        status, _unused, body = curl(host, f"https://{DOMAIN}/SomeRoom")
        assert status == 200
        assert f'"domain": "{DOMAIN}"' in body  # config.js included by SSI
        status, headers, _unused = curl(host, f"https://{DOMAIN}/libs/probe.js?v=1")
        assert status == 200
        assert headers["access-control-allow-origin"] == "*"
        assert headers["cache-control"] == "max-age=31536000"
        assert headers["x-jitsi-shard"] == name(host)
        _unused, headers, _unused = curl(host, f"https://{DOMAIN}/libs/probe.js")
        assert "cache-control" not in headers
    finally:
        host.run(f"rm -rf {root}" if not existed else f"rm -f {root}/libs/probe.js {root}/index.html")


def test_health_follows_prosody(host):
    assert wait_for_health(host, want_ok=True) == 200
    host.check_output("systemctl stop prosody")
    try:
        status = wait_for_health(host, want_ok=False, timeout=10)
        assert not 200 <= status < 300, status
    finally:
        host.check_output("systemctl start prosody")
    assert wait_for_health(host, want_ok=True) == 200


def test_health_refuses_connections_without_nginx(host):
    host.check_output("systemctl stop nginx")
    try:
        cmd = host.run(f"curl -sS {RESOLVE} https://{DOMAIN}/about/health")
        assert cmd.rc == 7, cmd.stderr  # couldn't connect
    finally:
        host.check_output("systemctl start nginx")
    assert wait_for_health(host, want_ok=True) == 200


def test_nginx_comes_back_by_itself_after_a_crash(host):
    """Debian's nginx.service never restarts nginx; the role's drop-in does, a few times at most."""
    assert host.check_output("systemctl show -p Restart --value nginx") == "on-failure"
    assert host.check_output("systemctl show -p StartLimitBurst --value nginx") == "5"
    crash_and_wait_back(host, "nginx")
    assert wait_for_health(host, want_ok=True) == 200


def test_prosody_comes_back_by_itself_after_a_crash(host):
    """Debian's prosody.service restarts Prosody after an abnormal end (Restart=on-abnormal), which the role
    keeps; the site's health follows it back."""
    assert host.check_output("systemctl show -p Restart --value prosody") == "on-abnormal"
    crash_and_wait_back(host, "prosody")
    assert wait_for_health(host, want_ok=True) == 200


def test_the_internal_health_check_is_not_reachable(host):
    status, _unused, _unused = curl(host, f"https://{DOMAIN}/_meetops_web/prosody-health")
    assert status == 404


def test_workers_get_the_open_files_they_were_sized_for(host):
    conf = host.file("/etc/nginx/nginx.conf").content_string
    assert re.search(r"^worker_rlimit_nofile 20000;$", conf, re.M)
    assert re.search(r"^\tworker_connections 10000;$", conf, re.M)
    workers = host.check_output(f"pgrep -P {main_pid(host, 'nginx')}").split()
    assert workers
    for pid in workers:
        limits = host.file(f"/proc/{pid}/limits").content_string
        assert re.search(r"Max open files\s+20000\s+20000", limits), limits
    log = host.file("/var/log/nginx/error.log").content_string
    assert "setrlimit" not in log
    assert "[emerg]" not in log


def run_configure(host, **extra_vars) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            INVENTORY,
            "--limit",
            name(host),
            "--tags",
            "web_configure",
            "-e",
            json.dumps(extra_vars),
            str(CONVERGE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_refused_change_fails_with_nginxs_reason_and_the_old_configuration_keeps_serving(host):
    pid = main_pid(host, "nginx")
    before = {path: host.file(path).content_string for path in (SITE, "/etc/nginx/nginx.conf")}
    result = run_configure(
        host, web_custom_server_config="bogus_directive on;", web_worker_rlimit_nofile=16000
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # nginx's own words, from nginx -t on the candidate.
    assert 'unknown directive "bogus_directive"' in output, output[-3000:]
    assert "the previous files are back in place" in output
    assert main_pid(host, "nginx") == pid
    assert {path: host.file(path).content_string for path in before} == before
    assert host.run("nginx -t").rc == 0
    assert host.run("ls /etc/nginx/*~ /etc/nginx/*/*~ 2>/dev/null").stdout == ""
    assert wait_for_health(host, want_ok=True) == 200
    status, headers, _unused = curl(host, f"https://{DOMAIN}/config.js")
    assert (status, headers["x-jitsi-shard"]) == (200, name(host))


def served_serial(host) -> str:
    return host.check_output(
        f"echo | openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN} -alpn http/1.1 2>/dev/null"
        " | openssl x509 -noout -serial"
    )


def test_a_certificate_due_for_renewal_is_renewed_and_served_with_only_the_configure_tag(host):
    before = host.check_output(f"openssl x509 -in {CERT} -noout -serial")
    assert served_serial(host) == before
    # The certificate now expires within the renewal window (it was issued for a year).
    result = run_configure(host, web_certificate_days=800, web_certificate_renew_days=700)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    after = host.check_output(f"openssl x509 -in {CERT} -noout -serial")
    assert after != before, "the certificate was not renewed under --tags web_configure"
    assert served_serial(host) == after, "nginx still serves the old certificate"
