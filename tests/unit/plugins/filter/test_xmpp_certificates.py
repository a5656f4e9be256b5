"""Unit tests for the xmpp_certificates filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meetops.jitsi.plugins.filter.xmpp_certificates import xmpp_certificates

JITSI = [
    {"host": "meet.example.com", "components": ["conference.meet.example.com", "lobby.meet.example.com"]},
    {"host": "auth.meet.example.com", "components": ["internal.auth.meet.example.com"]},
    {"host": "guest.meet.example.com"},
]


def test_one_certificate_per_virtual_host_covering_its_components():
    assert xmpp_certificates(JITSI) == [
        {
            "name": "meet.example.com",
            "sans": ["meet.example.com", "conference.meet.example.com", "lobby.meet.example.com"],
        },
        {
            "name": "auth.meet.example.com",
            "sans": ["auth.meet.example.com", "internal.auth.meet.example.com"],
        },
        {"name": "guest.meet.example.com", "sans": ["guest.meet.example.com"]},
    ]


def test_a_name_used_twice_names_both_owners():
    hosts = [
        {"host": "meet.example.com", "components": ["conference.meet.example.com"]},
        {"host": "auth.meet.example.com", "components": ["conference.meet.example.com"]},
    ]
    with pytest.raises(AnsibleFilterError, match=r"conference\.meet\.example\.com.*meet\.example\.com.*auth"):
        xmpp_certificates(hosts)


@pytest.mark.parametrize(
    ("hosts", "needle"),
    [
        ([{"host": "Meet.Example.com"}], "Meet.Example.com"),
        ([{"host": "meet.example.com", "components": ["bad_name.example.com"]}], "bad_name"),
        ([{"host": "meet.example.com", "components": "conference.meet.example.com"}], "must be a list"),
        ([{"name": "meet.example.com"}], "needs 'host'"),
        ("meet.example.com", "expected a list"),
    ],
)
def test_bad_input_names_the_value(hosts, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        xmpp_certificates(hosts)
