"""Unit tests for the unknown_variables filter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.meetops.jitsi.plugins.filter.unknown_variables import (
    COLLECTION_VARIABLES,
    known_variables,
    unknown_variables,
)

REPO = Path(__file__).resolve().parents[4]


def names(result: list[dict[str, str]]) -> list[str]:
    return [entry["name"] for entry in result]


def test_a_misspelt_variable_is_reported_with_the_name_meant():
    [entry] = unknown_variables(["prosody_tcp_backlg", "prosody_domain"])
    assert entry == {
        "name": "prosody_tcp_backlg",
        "suggestion": "prosody_tcp_backlog",
        "message": (
            "prosody_tcp_backlg is not a variable of meetops.jitsi (did you mean prosody_tcp_backlog?)"
        ),
    }


def test_every_option_of_every_role_is_known():
    options = set()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        options |= set(re.findall(r"^      ([a-z][a-z0-9_]+):$", spec.read_text(), re.MULTILINE))
    assert options
    assert unknown_variables(sorted(options)) == []


def test_names_of_other_roles_and_internal_names_are_not_reported():
    assert (
        unknown_variables(["nginx_port", "jitsi_domain", "_prosody_secrets", "__web_reload", "ansible_host"])
        == []
    )


def test_collection_wide_variables_are_known_and_misspelt_ones_are_not():
    assert unknown_variables(sorted(COLLECTION_VARIABLES)) == []
    [entry] = unknown_variables(["meetops_jitsi_secret_dir"])
    assert entry["suggestion"] == "meetops_jitsi_secrets_dir"


def test_every_collection_wide_variable_the_roles_read_is_listed():
    read = set()
    for path in REPO.glob("roles/**/*.yml"):
        read |= set(re.findall(r"\bmeetops_jitsi_[a-z_]+\b", path.read_text()))
    # meetops_jitsi_<component> are the names of local facts (ansible_local), not variables.
    facts = {
        name
        for name in read
        if name.endswith("_")
        or name.split("meetops_jitsi_")[1]
        in {"prosody", "jicofo", "jvb", "web", "haproxy", "wireguard", "coturn"}
    }
    assert read - facts <= COLLECTION_VARIABLES


def test_a_role_checks_only_its_own_prefix_and_the_collections():
    found = ["prosody_tcp_backlg", "prosody_jvb_c2s_prot", "web_domian", "meetops_jitsi_secrets_dri"]
    assert names(unknown_variables(found, role="prosody")) == [
        "meetops_jitsi_secrets_dri",
        "prosody_tcp_backlg",
    ]
    assert names(unknown_variables(found, role="prosody_jvb")) == [
        "meetops_jitsi_secrets_dri",
        "prosody_jvb_c2s_prot",
    ]
    assert names(unknown_variables(found)) == sorted(found)


def test_a_name_far_from_every_known_one_has_no_suggestion():
    [entry] = unknown_variables(["jvb_zzzzzzzzzzzzzzzzzzzz"])
    assert entry["suggestion"] == ""
    assert entry["message"] == "jvb_zzzzzzzzzzzzzzzzzzzz is not a variable of meetops.jitsi"


def test_internal_roles_give_no_prefix():
    _unused, prefixes = known_variables()
    assert "_common_" not in prefixes
    assert prefixes.index("prosody_jvb_") < prefixes.index("prosody_")


def test_an_unknown_role_is_refused_naming_the_roles():
    with pytest.raises(AnsibleFilterError, match=r"role is 'nginx'.*prosody"):
        unknown_variables(["x"], role="nginx")


def test_a_string_instead_of_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match="expected a list of variable names"):
        unknown_variables("prosody_domain")
