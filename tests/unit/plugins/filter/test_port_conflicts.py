# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meetops.jitsi.plugins.filter.port_conflicts import port_conflicts

NGINX = [
    {"var": "nginx site (fixed)", "protocol": "tcp", "port": 80},
    {"var": "nginx site (fixed)", "protocol": "tcp", "port": 443},
    {"var": "web_https_internal_port", "protocol": "tcp", "port": 4444, "addresses": ["127.0.0.1"]},
]


def test_prosody_http_on_nginx_port_names_both_variables() -> None:
    claims = [{"var": "prosody_http_ports", "protocol": "tcp", "port": 443, "addresses": ["127.0.0.1"]}]
    [message] = port_conflicts(claims, {"web": NGINX}, "prosody")
    assert message.startswith("prosody_http_ports (prosody: tcp 443) and nginx site (fixed) (web: tcp 443)")
    assert "another port" in message


def test_distinct_ports_protocols_and_addresses_do_not_clash() -> None:
    claims = [
        {"var": "prosody_c2s_ports", "protocol": "tcp", "port": 5222},
        {"var": "coturn_port", "protocol": "udp", "port": 443},
        {"var": "prosody_http_ports", "protocol": "tcp", "port": 4444, "addresses": ["10.0.0.5"]},
    ]
    assert port_conflicts(claims, {"web": NGINX}, "prosody") == []


def test_wildcard_overlaps_a_specific_address() -> None:
    claims = [{"var": "jicofo_rest_port", "protocol": "tcp", "port": 4444, "addresses": ["0.0.0.0"]}]
    assert len(port_conflicts(claims, {"web": NGINX}, "jicofo")) == 1


def test_ranges_overlap() -> None:
    relay = [{"var": "coturn_relay_min_port", "protocol": "udp", "first": 9000, "last": 10500}]
    media = {"jvb": [{"var": "jvb1 media port", "protocol": "udp", "port": 10000}]}
    assert len(port_conflicts(relay, media, "coturn")) == 1
    assert port_conflicts([{**relay[0], "last": 9999}], media, "coturn") == []


def test_two_variables_of_one_service_clash_but_a_variable_with_itself_does_not() -> None:
    claims = [
        {"var": "prosody_c2s_ports", "protocol": "tcp", "ports": [5222, 5223]},
        {"var": "prosody_c2s_ports", "protocol": "tcp", "port": 5222, "addresses": ["::"]},
        {"var": "prosody_http_ports", "protocol": "tcp", "ports": ["5222"]},
    ]
    messages = port_conflicts(claims, {}, "prosody")
    assert len(messages) == 2
    assert all("prosody_http_ports" in message for message in messages)


def test_the_owner_s_own_earlier_record_is_replaced() -> None:
    claims = [{"var": "prosody_c2s_ports", "protocol": "tcp", "port": 5222}]
    assert port_conflicts(claims, {"prosody": claims}, "prosody") == []


@pytest.mark.parametrize(
    ("claim", "match"),
    [
        ({"var": "x", "protocol": "sctp", "port": 1}, "protocol 'sctp' must be tcp or udp"),
        ({"var": "x", "protocol": "tcp", "port": 70000}, "70000 is not a port number"),
        ({"var": "x", "protocol": "tcp", "port": "http"}, "'http' is not a port number"),
        ({"var": "x", "protocol": "tcp", "first": 9, "last": 3}, "ends before it starts"),
        ({"var": "x", "protocol": "tcp", "port": 1, "addresses": "*"}, "addresses must be a non-empty list"),
        ({"protocol": "tcp", "port": 1}, "must be a dict with var"),
        ({"var": "x", "protocol": "tcp", "ports": 5222}, "ports must be a list"),
        ({"var": "x", "protocol": "tcp", "ports": [5222, 0]}, "0 is not a port number"),
    ],
)
def test_bad_claims_name_owner_and_value(claim: dict, match: str) -> None:
    with pytest.raises(AnsibleFilterError, match=match):
        port_conflicts([claim], {}, "prosody")


def test_recorded_must_be_a_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="dict by owner"):
        port_conflicts([], [], "prosody")
