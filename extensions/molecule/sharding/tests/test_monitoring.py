"""Prometheus of playbooks/shard.yml (group monitoring, beside the first HAProxy): every deployed target up,
and a real client logging in to a shard seen through Prometheus's query API on that shard's Prosody."""

from __future__ import annotations

import json
import shlex
import time
import urllib.parse

from meetops_test_helpers import c2s_connections, on, stored_password, wait_for_no_test_clients
from test_sharding import DOMAIN, LBS, SHARDS

MONITOR = LBS[0]
AUTH = f"auth.{DOMAIN}"
CONFERENCE = f"conference.{DOMAIN}"

testinfra_hosts = [MONITOR]


def prometheus(path: str) -> dict:
    """The data of a GET of the Prometheus API, on loopback of its host."""
    body = on(MONITOR).check_output(f"curl -fsS {shlex.quote('http://127.0.0.1:9090' + path)}")
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]


def instant_query(query: str) -> list:
    """The result of an instant query of PromQL QUERY."""
    return prometheus("/api/v1/query?query=" + urllib.parse.quote(query))["result"]


def test_prometheus_finds_every_deployed_target_up(addresses: dict[str, str]) -> None:
    wanted = (
        {("prosody", f"{addresses[shard]}:5280") for shard in SHARDS}
        | {("haproxy", f"{addresses[lb]}:8405") for lb in LBS}
        | {("tls_site", f"{addresses[lb]}:443") for lb in LBS}
    )
    deadline = time.monotonic() + 60
    while True:
        targets = {
            (t["labels"]["job"], t["labels"]["instance"]): t["health"]
            for t in prometheus("/api/v1/targets")["activeTargets"]
        }
        if all(health == "up" for health in targets.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(targets) - {("prometheus", "127.0.0.1:9090")} == wanted, targets
    assert all(health == "up" for health in targets.values()), targets
    # HAProxy's exporter, scraped: each peer has both shards in rotation.
    result = instant_query('haproxy_backend_active_servers{proxy="shards"}')
    assert sorted(float(sample["value"][1]) for sample in result) == [2.0, 2.0], result


def test_the_sites_certificate_is_watched_through_either_haproxy(addresses: dict[str, str]) -> None:
    """The TLS probe of the site (blackbox exporter): a verified handshake with each peer, and the expiry
    Prometheus holds is the notAfter of the certificate the peer serves."""
    for lb in LBS:
        target = f"{addresses[lb]}:443"
        served = on(MONITOR).check_output(
            "python3 -c "
            + shlex.quote(
                "import socket, ssl\n"
                "context = ssl.create_default_context()\n"
                f"with socket.create_connection(({addresses[lb]!r}, 443), timeout=5) as raw:\n"
                f"    with context.wrap_socket(raw, server_hostname={DOMAIN!r}) as tls:\n"
                "        print(int(ssl.cert_time_to_seconds(tls.getpeercert()['notAfter'])))\n"
            )
        )
        selector = f'{{job="tls_site", instance="{target}"}}'
        deadline = time.monotonic() + 40
        while not ((success := instant_query(f"probe_success{selector}")) and success[0]["value"][1] == "1"):
            assert time.monotonic() < deadline, (target, success)
            time.sleep(1)
        expiry = instant_query(f"probe_ssl_earliest_cert_expiry{selector}")
        assert int(float(expiry[0]["value"][1])) == int(served), (target, expiry, served)


def test_a_real_client_on_a_shard_is_seen_through_prometheus(addresses: dict[str, str]) -> None:
    shard = SHARDS[0]
    instance = f"{addresses[shard]}:5280"
    query = f'sum(prosody_mod_c2s__connections{{job="prosody", instance="{instance}"}})'

    def connections() -> float:
        result = instant_query(query)
        return float(result[0]["value"][1]) if result else 0.0

    # From this test's client alone, once Prometheus has caught up with what the shard's Prosody reports
    # (its /metrics, served to this host).
    wait_for_no_test_clients(on(shard))
    deadline = time.monotonic() + 20
    while (before := connections()) != c2s_connections(
        on(MONITOR).check_output(f"curl -fsS http://{instance}/metrics")
    ):
        assert time.monotonic() < deadline, f"Prometheus kept {before} connections, not Prosody's count"
        time.sleep(1)
    password = stored_password(DOMAIN, f"focus@{AUTH}")
    on(shard).check_output(
        f"XMPP_PASSWORD={shlex.quote(password)} setsid -f timeout 60 "
        f"xmpp-probe muc focus@{AUTH} prometheus-probe@{CONFERENCE} --hold 30 >/dev/null 2>&1"
    )
    deadline = time.monotonic() + 20
    while (now := connections()) <= before:
        assert time.monotonic() < deadline, f"Prometheus saw {now} connections on {shard} with a client in"
        time.sleep(1)
    assert now >= before + 1
