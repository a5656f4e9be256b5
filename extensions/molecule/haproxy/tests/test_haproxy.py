"""meetops.jitsi.haproxy: real HTTPS requests through both HAProxies to two test shards.

The shards are nginx answering every path with 200 and "X-Jitsi-Shard: <name>" (prepare.yml); they echo the
room token HAProxy computed (X-Seen-Stick-Token) and the forwarded headers. lb1 runs HAProxy 2.6, lb2 3.0.
"""

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
from meetops_test_helpers import address_of, crash_and_wait_back, on

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
LBS = sorted(RUNNER.get_hosts("lb"))
BACKENDS = sorted(RUNNER.get_hosts("backend"))
testinfra_hosts = LBS

DOMAIN = "meet.example.test"
SOCKET = "/run/haproxy/admin.sock"
CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
# Health checks every 1 s, 2 failures mark a shard down, 2 successes up (molecule.yml).
CHECK_DEADLINE = 15


def admin(name: str, command: str) -> str:
    return on(name).check_output(f"echo {shlex.quote(command)} | socat -t 5 stdio {SOCKET}")


def fetch(lb: str, paths: list[str], via: str | None = None) -> list[dict]:
    """GET each path through HAProxy `lb`, from inside `via` (default: `lb`), verifying its certificate."""
    target = address_of(lb)
    script = (
        "while IFS= read -r p; do "
        f"curl -sS -o /dev/null --max-time 10 --resolve {DOMAIN}:443:{target} "
        "-w '%{http_code}|%header{x-jitsi-shard}|%header{x-seen-stick-token}|%header{x-seen-forwarded-proto}"
        "|%header{x-seen-forwarded-for}\\n' "
        f'"https://{DOMAIN}$p" || echo "curl-failed|||"; done'
    )
    cmd = on(via or lb).run(f"bash -c {shlex.quote(script)} <<'EOF'\n" + "\n".join(paths) + "\nEOF")
    assert cmd.rc == 0, cmd.stderr
    results = []
    for path, line in zip(paths, cmd.stdout.splitlines(), strict=True):
        code, shard, token, proto, xff = line.split("|")
        results.append(
            {"path": path, "code": code, "shard": shard, "token": token, "proto": proto, "xff": xff}
        )
    failed = [r for r in results if r["code"] != "200"]
    assert not failed, f"{cmd.stderr}\n{failed}"
    return results


def shards(lb: str, paths: list[str]) -> list[str]:
    return [r["shard"] for r in fetch(lb, paths)]


def table(lb: str) -> dict[str, str]:
    """The stick table as {room token: shard address:port}."""
    out = admin(lb, "show table shards")
    return dict(re.findall(r" key=(\S+) .*server_key=(\S+)", out))


def servers(lb: str) -> dict[str, dict]:
    """show servers state: {server name: {"op_state": 2 up / 0 down, "weight": current weight}}."""
    rows = [line.split() for line in admin(lb, "show servers state shards").splitlines()[1:]]
    return {
        r[3]: {"op_state": int(r[5]), "weight": int(r[7])}
        for r in rows
        if len(r) > 7 and not r[0].startswith("#")
    }


def wait_for(what: str, condition, deadline: float = CHECK_DEADLINE) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < deadline, f"{what} not within {deadline} s"
        time.sleep(0.25)
    return time.monotonic() - start


def master_pid(lb: str) -> str:
    return on(lb).check_output("systemctl show -p MainPID --value haproxy")


def run_role(**extra_vars) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            INVENTORY,
            "--tags",
            "haproxy_configure",
            "-e",
            json.dumps(extra_vars),
            str(CONVERGE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_haproxy_runs_and_is_enabled(host):
    service = host.service("haproxy")
    assert service.is_running
    assert service.is_enabled


def test_configuration_is_private_and_valid(host):
    config = host.file("/etc/haproxy/haproxy.cfg")
    assert (config.user, config.group, config.mode) == ("root", "haproxy", 0o640)
    assert f"localpeer {host.backend.get_hostname()}" in config.content_string
    assert host.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0
    pem = host.file(f"/etc/haproxy/certs/{DOMAIN}.pem")
    assert (pem.user, pem.group, pem.mode) == ("root", "haproxy", 0o640)


def test_admin_socket_for_inspection(host):
    sock = host.file(SOCKET)
    assert sock.is_socket
    assert (sock.group, sock.mode) == ("haproxy", 0o660)
    assert "# table: shards, type: string" in host.check_output(
        f"echo 'show table shards' | socat stdio {SOCKET}"
    )


def test_peers_are_connected(host):
    me = host.backend.get_hostname()
    peers = host.check_output(f"echo 'show peers' | socat stdio {SOCKET}")
    for other in LBS:
        if other != me:
            assert re.search(rf"id={re.escape(other)}\(remote,active\).*last_status=ESTA", peers), peers


def test_both_shards_are_up_and_checked_over_tls(host):
    state = servers(host.backend.get_hostname())
    assert set(state) == set(BACKENDS)
    assert {s["op_state"] for s in state.values()} == {2}, state
    # The health checks arrive at the shards' nginx over TLS with the public domain as Host.
    log = on(BACKENDS[0]).check_output("grep -c 'GET /about/health' /var/log/nginx/access.log || true")
    assert int(log) > 0


def metric(text: str, name: str, labels: str) -> float:
    """The value of one sample of HAProxy's Prometheus exporter, e.g. metric(text, "x", 'proxy="https"')."""
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+]+)$", text, re.M)
    assert match, f"no {name}{{{labels}}} in: {text[:1500]}"
    return float(match.group(1))


def test_the_prometheus_exporter_reports_the_shards_and_counts_the_requests(host):
    """HAProxy's built-in exporter on loopback (haproxy_metrics_port): both shards up, and one more request
    through the public frontend counted."""
    lb = host.backend.get_hostname()

    def scrape() -> str:
        return host.check_output("curl -sS --fail --max-time 10 http://127.0.0.1:8405/metrics")

    before = scrape()
    assert metric(before, "haproxy_backend_active_servers", 'proxy="shards"') == len(BACKENDS)
    fetch(lb, ["/"])
    after = scrape()
    requests = "haproxy_frontend_http_requests_total"
    assert metric(after, requests, 'proxy="https"') >= metric(before, requests, 'proxy="https"') + 1
    # Only /metrics is served there.
    assert host.run("curl -sS --fail --max-time 10 -o /dev/null http://127.0.0.1:8405/").rc != 0


@pytest.mark.parametrize("lb", LBS)
def test_frontend_certificate_verifies_and_headers_are_forwarded(lb):
    # fetch() verifies the certificate against the system store (the internal CA), without -k.
    result = fetch(lb, ["/"], via=LBS[0])[0]
    assert result["proto"] == "https"
    assert result["xff"] == address_of(LBS[0])


@pytest.mark.parametrize("lb", LBS)
def test_plain_http_redirects_to_https(lb):
    out = on(LBS[0]).check_output(
        f"curl -sS -o /dev/null -w '%{{http_code}} %{{redirect_url}}' --resolve {DOMAIN}:80:{address_of(lb)} "
        f"'http://{DOMAIN}/someroom?x=1'"
    )
    assert out == f"301 https://{DOMAIN}/someroom?x=1"


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/?room=Alpha", "alpha"),
        ("/http-bind?room=alpha", "alpha"),
        ("/xmpp-websocket?room=ALPHA", "alpha"),
        ("/Alpha", "alpha"),
        ("/acme/beta", "acme/beta"),
        ("/acme/http-bind?room=Beta", "acme/beta"),
        ("/acme/xmpp-websocket?room=beta", "acme/beta"),
        ("/my%2520room", "my%20room"),
        ("/my%20room", "my%20room"),
        ("/", ""),
        ("/?room=", ""),
        ("/http-bind", ""),
        ("/xmpp-websocket", ""),
        ("/config.js", ""),
        ("/interface_config.js", ""),
        ("/external_api.js", ""),
        ("/favicon.ico", ""),
        ("/libs/app.bundle.min.js", ""),
        ("/css/all.css", ""),
        ("/images/watermark.svg", ""),
        ("/sounds/joined.mp3", ""),
        ("/static/close.html", ""),
        ("/lang/main-de.json", ""),
        ("/about/health", ""),
        ("/colibri-ws/jvb1/abc", ""),
        ("/_unlock", ""),
        ("/acme/config.js", ""),
        ("/acme/libs/app.bundle.min.js", ""),
        ("/a/b/c", ""),
    ],
)
def test_room_token_from_query_and_path(path, token):
    assert fetch(LBS[0], [path])[0]["token"] == token


def test_same_room_lands_on_the_same_shard_through_both_haproxies():
    lb1, lb2 = LBS
    rooms = [f"same-{i:02d}" for i in range(16)]
    first = dict(zip(rooms, shards(lb1, [f"/http-bind?room={r}" for r in rooms]), strict=True))
    # The other HAProxy learns each room from its peer (both hash rooms differently: 2.6 and 3.0).
    wait_for("peer sync", lambda: set(rooms) <= set(table(lb2)), 5)
    for lb in (lb1, lb2):
        assert shards(lb, [f"/{r}" for r in rooms]) == [first[r] for r in rooms]
        assert shards(lb, [f"/xmpp-websocket?room={r.upper()}" for r in rooms]) == [first[r] for r in rooms]
    # A tenant's room: the page /<tenant>/<room> and its BOSH requests /<tenant>/http-bind?room=<room>.
    tenant = dict(zip(rooms, shards(lb2, [f"/acme/{r}" for r in rooms]), strict=True))
    wait_for("peer sync", lambda: {f"acme/{r}" for r in rooms} <= set(table(lb1)), 5)
    assert shards(lb1, [f"/acme/http-bind?room={r}" for r in rooms]) == [tenant[r] for r in rooms]


def test_new_rooms_spread_over_both_shards():
    for lb in LBS:
        landed = shards(lb, [f"/?room=spread-{lb}-{i:02d}" for i in range(48)])
        counts = {b: landed.count(b) for b in BACKENDS}
        assert min(counts.values()) >= 12, f"{lb}: {counts}"


def test_peers_hold_the_same_rooms():
    wait_for("peer sync", lambda: table(LBS[0]) == table(LBS[1]), 5)
    tables = [table(lb) for lb in LBS]
    assert len(tables[0]) > 100
    assert tables[0] == tables[1]


def test_haproxy_comes_back_by_itself_after_a_crash_and_relearns_the_rooms():
    """Debian's haproxy.service restarts HAProxy whatever ended it; the new process learns the stick table
    from its peer, so every room stays on its shard."""
    lb = LBS[1]
    assert on(lb).check_output("systemctl show -p Restart --value haproxy") == "always"
    rooms = table(LBS[0])
    crash_and_wait_back(on(lb), "haproxy")
    wait_for("the stick table learnt from the peer", lambda: table(lb) == table(LBS[0]), 15)
    assert {room: table(lb).get(room) for room in rooms} == rooms


def test_static_requests_are_not_remembered():
    fetch(LBS[0], ["/libs/never-a-room.js", "/config.js?v=2", "/_unlock"])
    assert not {"never-a-room.js", "config.js", "_unlock"} & set(table(LBS[0]))


def test_unhealthy_shard_loses_its_rooms_and_comes_back():
    down, other = BACKENDS
    candidates = [f"failover-old-{i:02d}" for i in range(16)]
    landed = shards(LBS[0], [f"/?room={r}" for r in candidates])
    moved = [room for room, shard in zip(candidates, landed, strict=True) if shard == down]
    assert len(moved) >= 3, moved
    wait_for("peer sync", lambda: set(moved) <= set(table(LBS[1])), 5)
    on(down).check_output("systemctl stop nginx")
    try:
        for lb in LBS:
            seconds = wait_for(f"{down} down on {lb}", lambda lb=lb: servers(lb)[down]["op_state"] == 0)
            print(f"{down} marked down on {lb} after {seconds:.1f} s")
        for lb in LBS:
            assert set(shards(lb, [f"/?room=failover-{lb}-{i:02d}" for i in range(20)])) == {other}
            # Its rooms go to the healthy shard too, and the stick table now says so.
            assert shards(lb, [f"/{r}" for r in moved]) == [other] * len(moved)
    finally:
        on(down).check_output("systemctl start nginx")
    for lb in LBS:
        seconds = wait_for(f"{down} up on {lb}", lambda lb=lb: servers(lb)[down]["op_state"] == 2)
        print(f"{down} back up on {lb} after {seconds:.1f} s")
    for lb in LBS:
        landed = shards(lb, [f"/?room=after-{lb}-{i:02d}" for i in range(24)])
        assert down in landed, landed
        assert other in landed, landed
        # A room that moved stays where its conference now is.
        assert shards(lb, [f"/{r}" for r in moved]) == [other] * len(moved)


@pytest.mark.parametrize("lb", LBS)
def test_reload_keeps_connections_and_the_stick_table(lb):
    before = table(lb)
    pid = master_pid(lb)
    # A download of about 8 s through HAProxy, running while it reloads.
    on(lb).check_output(
        f"nohup curl -sS --resolve {DOMAIN}:443:{address_of(lb)} -o /tmp/slow.bin -w '%{{http_code}}' "
        f"https://{DOMAIN}/slow > /tmp/slow.out 2>&1 & echo $! > /tmp/slow.pid"
    )
    time.sleep(2)
    on(lb).check_output("systemctl reload haproxy")
    assert master_pid(lb) == pid
    on(lb).check_output(
        "timeout 60 sh -c 'while kill -0 $(cat /tmp/slow.pid); do sleep 0.5; done' 2>/dev/null"
    )
    assert on(lb).file("/tmp/slow.out").content_string == "200"
    assert on(lb).file("/tmp/slow.bin").size == 262144
    assert before.items() <= table(lb).items()


def test_drained_shard_keeps_its_rooms_and_takes_no_new_ones():
    lb1, lb2 = LBS
    drained, other = BACKENDS
    candidates = [f"drain-{i:02d}" for i in range(16)]
    kept = [
        r
        for r, s in zip(candidates, shards(lb1, [f"/?room={r}" for r in candidates]), strict=True)
        if s == drained
    ]
    assert len(kept) >= 3, kept
    wait_for("peer sync", lambda: set(kept) <= set(table(lb2)), 5)
    before = {lb: table(lb) for lb in LBS}
    pids = {lb: master_pid(lb) for lb in LBS}
    try:
        result = run_role(haproxy_drained_shards=[drained])
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        for lb in LBS:
            assert servers(lb)[drained]["weight"] == 0
            assert servers(lb)[other]["weight"] == 100
            # Reloaded, not restarted, and the stick table came through the reload.
            assert master_pid(lb) == pids[lb]
            assert before[lb].items() <= table(lb).items()
            assert shards(lb, [f"/{r}" for r in kept]) == [drained] * len(kept)
            assert set(shards(lb, [f"/?room=drained-new-{lb}-{i:02d}" for i in range(20)])) == {other}
    finally:
        undrain = run_role()
    assert undrain.returncode == 0, (undrain.stdout + undrain.stderr)[-3000:]
    for lb in LBS:
        assert servers(lb)[drained]["weight"] == 100
        landed = shards(lb, [f"/?room=undrained-{lb}-{i:02d}" for i in range(24)])
        assert drained in landed, landed
        assert other in landed, landed


def test_bad_configuration_fails_with_haproxys_reason_and_the_old_one_keeps_serving():
    configs = {lb: on(lb).file("/etc/haproxy/haproxy.cfg").content_string for lb in LBS}
    pids = {lb: master_pid(lb) for lb in LBS}
    result = run_role(haproxy_hash_function="nosuchhash")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # HAProxy's own words, from "haproxy -c" on the candidate file, in the role's message.
    message = re.search(r"The new /etc/haproxy/haproxy.cfg was not installed.*", output)
    assert message, output[-3000:]
    assert "'hash-type' only supports" in message.group(0), output[-3000:]
    for lb in LBS:
        assert on(lb).file("/etc/haproxy/haproxy.cfg").content_string == configs[lb]
        assert master_pid(lb) == pids[lb]
        assert on(lb).service("haproxy").is_running
        fetch(lb, ["/?room=still-serving"])
