"""Unit tests for the domain test and the collection's DNS names (module_utils/_names)."""

from __future__ import annotations

import pytest

from ansible_collections.meetops.jitsi.plugins.module_utils._names import is_dns_name, is_domain
from ansible_collections.meetops.jitsi.plugins.test.domain import TestModule as DomainTests


@pytest.mark.parametrize(
    "value",
    ["meet.example.com", "a.bc", "meet-1.example.org", "x" * 63 + ".example.com", "jvb.meet.example.test"],
)
def test_deployment_domains_are_accepted(value):
    assert is_domain(value)
    assert DomainTests().tests()["domain"](value)


@pytest.mark.parametrize(
    "value",
    [
        "localhost",
        "Meet.example.com",
        "meet_example.com",
        "meet.example.com.",
        "-meet.example.com",
        "meet-.example.com",
        "meet.example.c0m",
        "x" * 64 + ".example.com",
        ("a" * 60 + ".") * 5 + "com",
        "meet example.com",
        "",
        None,
        42,
        ["meet.example.com"],
    ],
)
def test_anything_else_is_refused(value):
    assert not is_domain(value)


def test_a_dns_name_may_be_one_label():
    assert is_dns_name("localhost")
    assert is_dns_name("conference.meet.example.com")
    assert not is_dns_name("Conference.meet.example.com")
    assert not is_dns_name("")
