# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Unit tests for the jvb_slots and jvb_slots_for_host filters.

The collision and uniqueness oracles below are written independently of the plugin: they recompute the
expected ports and identities from the input topology, so a plugin that misses a clash (or invents one)
makes the property tests fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.meetops.jitsi.plugins.filter import jvb_slots as plugin
from ansible_collections.meetops.jitsi.plugins.filter.jvb_slots import (
    FilterModule,
    jvb_slots,
    jvb_slots_for_host,
)

PORT_KEYS = ("media_port", "rest_port")
SLOT_KEYS = {
    "host",
    "pool",
    "index",
    "name",
    "muc_nickname",
    "websocket_server_id",
    "relay_id",
    "media_port",
    "rest_port",
    "region",
    "shards",
    "extra",
}
RESERVED = {"*": [8888, 5222, 5280]}
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --------------------------------------------------------------------------------------------------
# The documented example (plugins/filter/jvb_slots.yml, EXAMPLES, first task).

EXAMPLE_TOPOLOGY = {
    "jvb-a.example.com": {"instances": 2, "region": "eu-west", "shards": ["shard1", "shard2"]},
    "jvb-b.example.com": {
        "region": "eu-west",
        "shards": ["shard2"],
        "rest_port_base": 9080,
        "pinned": {1: {"muc_nickname": "6f1c2b8e-legacy"}},
    },
}
EXAMPLE_POOLS = [{"name": "autoscale-eu", "max_bridges": 2, "region": "eu-west", "shards": ["shard1"]}]


def _expected_slot(host: str | None, pool: str | None, index: int, **fields: Any) -> dict[str, Any]:
    owner = host if host is not None else pool
    slot = {
        "host": host,
        "pool": pool,
        "index": index,
        "name": f"jvb{index}",
        "muc_nickname": f"{owner}-jvb{index}",
        "websocket_server_id": f"{owner}-jvb{index}",
        "relay_id": f"{owner}-jvb{index}",
        "region": "eu-west",
        "extra": {},
    }
    slot.update(fields)
    return slot


EXAMPLE_RESULT = [
    _expected_slot(
        "jvb-a.example.com", None, 1, media_port=10000, rest_port=8080, shards=["shard1", "shard2"]
    ),
    _expected_slot(
        "jvb-a.example.com", None, 2, media_port=10001, rest_port=8081, shards=["shard1", "shard2"]
    ),
    _expected_slot(
        "jvb-b.example.com",
        None,
        1,
        muc_nickname="6f1c2b8e-legacy",
        media_port=10000,
        rest_port=9080,
        shards=["shard2"],
    ),
    _expected_slot(None, "autoscale-eu", 1, media_port=10000, rest_port=8080, shards=["shard1"]),
    _expected_slot(None, "autoscale-eu", 2, media_port=10000, rest_port=8080, shards=["shard1"]),
]


def _doc() -> dict[str, Any]:
    return yaml.safe_load(Path(plugin.__file__).with_suffix(".yml").read_text())


def _commented_result(examples: str, marker: str = "# jvb_plan is:") -> Any:
    """The YAML shown as a comment block right after the marker line in EXAMPLES."""
    lines = examples.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == marker) + 1
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        block.append(line.strip()[2:])
    return yaml.safe_load("\n".join(block))


def test_filters_are_registered() -> None:
    assert FilterModule().filters() == {"jvb_slots": jvb_slots, "jvb_slots_for_host": jvb_slots_for_host}


def test_documented_example_input_matches_this_test() -> None:
    task = yaml.safe_load(_doc()["EXAMPLES"])[0]
    assert task["vars"]["jvb_topology"] == EXAMPLE_TOPOLOGY
    assert task["vars"]["jvb_pools"] == EXAMPLE_POOLS
    assert task["vars"]["jvb_reserved_ports"] == RESERVED


def test_documented_example_result() -> None:
    result = jvb_slots(EXAMPLE_TOPOLOGY, reserved_ports=RESERVED, pools=EXAMPLE_POOLS)
    assert result == EXAMPLE_RESULT
    assert _commented_result(_doc()["EXAMPLES"]) == EXAMPLE_RESULT


def test_documented_return_keys_match_the_slots() -> None:
    contains = _doc()["RETURN"]["_value"]["contains"]
    assert set(contains) == SLOT_KEYS
    for slot in jvb_slots(EXAMPLE_TOPOLOGY, pools=EXAMPLE_POOLS):
        assert set(slot) == SLOT_KEYS


def test_documented_options_match_the_accepted_options() -> None:
    options = set(_doc()["DOCUMENTATION"]["options"]) - {"_input"}
    assert options == set(plugin.OPTION_KEYS)
    pool_options = set(_doc()["DOCUMENTATION"]["options"]["pools"]["suboptions"])
    assert pool_options == set(plugin.POOL_KEYS)


def test_documented_collision_example_fails_as_described() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        jvb_slots(EXAMPLE_TOPOLOGY, rest_port_base=8888, reserved_ports=RESERVED)
    assert (
        "port 8888 on host 'jvb-a.example.com' is used twice: reserved_ports['*'] and rest_port of "
        "host 'jvb-a.example.com' instance 1 (jvb1)" in str(err.value)
    )


# --------------------------------------------------------------------------------------------------
# Behaviour of single settings.


def test_null_host_settings_mean_one_instance_with_defaults() -> None:
    (slot,) = jvb_slots({"h1": None}, shards=["s"], region="r")
    assert slot == {
        "host": "h1",
        "pool": None,
        "index": 1,
        "name": "jvb1",
        "muc_nickname": "h1-jvb1",
        "websocket_server_id": "h1-jvb1",
        "relay_id": "h1-jvb1",
        "media_port": 10000,
        "rest_port": 8080,
        "region": "r",
        "shards": ["s"],
        "extra": {},
    }


def test_ports_follow_the_host_bases() -> None:
    slots = jvb_slots(
        {"h1": {"instances": 3, "media_port_base": 20000, "rest_port_base": 7000}},
        shards=["s"],
    )
    assert [(s["media_port"], s["rest_port"]) for s in slots] == [
        (20000, 7000),
        (20001, 7001),
        (20002, 7002),
    ]


def test_host_settings_override_options_and_explicit_null_region() -> None:
    slots = jvb_slots(
        {"h1": {"shards": ["b", "a"], "region": None}, "h2": {}},
        shards=["s"],
        region="eu",
        media_port_base=11000,
    )
    assert [(s["host"], s["shards"], s["region"], s["media_port"]) for s in slots] == [
        ("h1", ["a", "b"], None, 11000),
        ("h2", ["s"], "eu", 11000),
    ]


def test_formats_with_spec_and_pinned_name_feed_the_other_formats() -> None:
    slots = jvb_slots(
        {
            "h1": {
                "instances": 2,
                "pinned": {"2": {"name": "legacy", "extra": {"mem": "2g"}}},
                "extra": {"a": 1},
            }
        },
        shards=["s"],
        name_format="vb{index:02d}",
        muc_nickname_format="{name}.{host}",
        websocket_id_format="{host}_{index}",
        relay_id_format="relay-{name}",
    )
    assert [
        (s["name"], s["muc_nickname"], s["websocket_server_id"], s["relay_id"], s["extra"]) for s in slots
    ] == [
        ("vb01", "vb01.h1", "h1_1", "relay-vb01", {"a": 1}),
        ("legacy", "legacy.h1", "h1_2", "relay-legacy", {"a": 1, "mem": "2g"}),
    ]


def test_pinned_ports_and_ids_replace_derived_ones() -> None:
    pin = {
        "media_port": 10500,
        "rest_port": 8500,
        "relay_id": "r",
        "websocket_server_id": "w",
    }
    (slot,) = jvb_slots({"h1": {"pinned": {1: pin}}}, shards=["s"])
    assert {key: slot[key] for key in pin} == pin


def test_pools_share_ports_but_not_identities() -> None:
    slots = jvb_slots({}, shards=["s"], pools=[{"name": "p", "max_bridges": 3, "media_port": 10000}])
    assert {(s["media_port"], s["rest_port"]) for s in slots} == {(10000, 8080)}
    assert [s["muc_nickname"] for s in slots] == ["p-jvb1", "p-jvb2", "p-jvb3"]
    assert all(s["host"] is None and s["pool"] == "p" for s in slots)


def test_same_nickname_in_different_breweries_is_allowed() -> None:
    slots = jvb_slots(
        {"h1": {"shards": ["s1"], "pinned": {1: {"muc_nickname": "n"}}}, "h2": {"shards": ["s2"]}},
        muc_nickname_format="n",
    )
    assert [s["muc_nickname"] for s in slots] == ["n", "n"]


def test_output_is_independent_of_dict_order() -> None:
    forward = {"b": {"instances": 2}, "a": {}, "c": {"shards": ["z", "y"]}}
    backward = dict(reversed(list(forward.items())))
    pools = [{"name": "q", "max_bridges": 1}, {"name": "p", "max_bridges": 2}]
    assert jvb_slots(forward, shards=["s"], pools=pools) == jvb_slots(
        backward, shards=["s"], pools=list(reversed(pools))
    )
    assert [(s["host"], s["pool"], s["index"]) for s in jvb_slots(forward, shards=["s"], pools=pools)] == [
        ("a", None, 1),
        ("b", None, 1),
        ("b", None, 2),
        ("c", None, 1),
        (None, "p", 1),
        (None, "p", 2),
        (None, "q", 1),
    ]


def test_slots_do_not_share_mutable_state() -> None:
    slots = jvb_slots({"h1": {"instances": 2, "extra": {"a": 1}}}, shards=["s"])
    slots[0]["extra"]["a"] = 2
    slots[0]["shards"].append("x")
    assert slots[1]["extra"] == {"a": 1}
    assert slots[1]["shards"] == ["s"]


def test_empty_topology_without_pools_plans_nothing() -> None:
    assert jvb_slots({}) == []


# --------------------------------------------------------------------------------------------------
# Collisions: every message names both owners.


def _problem(topology: Any, **options: Any) -> str:
    with pytest.raises(AnsibleFilterError) as err:
        jvb_slots(topology, **options)
    message = str(err.value)
    assert message.startswith("jvb_slots: ")
    assert "Fix: " in message
    return message


COLLISIONS = [
    pytest.param(
        {"h1": {"instances": 2, "pinned": {2: {"media_port": 10000}}}},
        {},
        [
            "port 10000 on host 'h1'",
            "media_port of host 'h1' instance 1 (jvb1)",
            "media_port of host 'h1' instance 2",
        ],
        id="media-media",
    ),
    pytest.param(
        {"h1": {"instances": 2, "rest_port_base": 10001}},
        {},
        [
            "port 10001 on host 'h1'",
            "rest_port of host 'h1' instance 1 (jvb1)",
            "media_port of host 'h1' instance 2",
        ],
        id="media-vs-other-instance-rest",
    ),
    pytest.param(
        {"h1": {"rest_port_base": 10000}},
        {},
        [
            "port 10000 on host 'h1'",
            "media_port of host 'h1' instance 1",
            "rest_port of host 'h1' instance 1",
        ],
        id="media-vs-own-rest",
    ),
    pytest.param(
        {"h1": {"instances": 3, "rest_port_base": 8886}},
        {"reserved_ports": {"*": [8888]}},
        ["port 8888 on host 'h1'", "reserved_ports['*']", "rest_port of host 'h1' instance 3 (jvb3)"],
        id="reserved-everywhere",
    ),
    pytest.param(
        {"h1": {}, "h2": {"media_port_base": 5222}},
        {"reserved_ports": {"h2": [5222]}},
        ["port 5222 on host 'h2'", "reserved_ports['h2']", "media_port of host 'h2' instance 1"],
        id="reserved-per-host",
    ),
    pytest.param(
        {},
        {"pools": [{"name": "p", "max_bridges": 1, "rest_port": 10000}]},
        [
            "port 10000 on the machine of pool 'p' slot 1",
            "media_port of pool 'p' slot 1",
            "rest_port of pool 'p'",
        ],
        id="pool-machine",
    ),
    pytest.param(
        {},
        {"pools": [{"name": "p", "max_bridges": 1}], "reserved_ports": {"p": [8080]}},
        [
            "port 8080 on the machine of pool 'p' slot 1",
            "reserved_ports['p']",
            "rest_port of pool 'p' slot 1",
        ],
        id="pool-reserved",
    ),
    pytest.param(
        {"h1": {"instances": 2, "media_port_base": 65535}},
        {},
        ["media_port 65536 of host 'h1' instance 2 (jvb2) is outside 1..65535"],
        id="port-out-of-range",
    ),
    pytest.param(
        {
            "h1": {"shards": ["s1", "s2"]},
            "h2": {"shards": ["s2"], "pinned": {1: {"muc_nickname": "h1-jvb1"}}},
        },
        {},
        [
            "muc_nickname 'h1-jvb1'",
            "brewery of shard 's2'",
            "host 'h1' instance 1 (jvb1)",
            "host 'h2' instance 1",
        ],
        id="nickname-same-brewery",
    ),
    pytest.param(
        {"p": None},
        {"shards": ["s"], "pools": [{"name": "pool", "max_bridges": 1}], "muc_nickname_format": "{name}"},
        [
            "muc_nickname 'jvb1'",
            "brewery of shard 's'",
            "host 'p' instance 1 (jvb1)",
            "pool 'pool' slot 1 (jvb1)",
        ],
        id="nickname-host-vs-pool",
    ),
    pytest.param(
        {"h1": {"shards": ["s1"]}, "h2": {"shards": ["s2"], "pinned": {1: {"relay_id": "h1-jvb1"}}}},
        {},
        ["relay_id 'h1-jvb1' is used twice", "host 'h1' instance 1 (jvb1)", "host 'h2' instance 1 (jvb1)"],
        id="relay-id-across-shards",
    ),
    pytest.param(
        {"h1": {"shards": ["s1"]}, "h2": {"shards": ["s2"]}},
        {"websocket_id_format": "{name}"},
        ["websocket_server_id 'jvb1' is used twice", "host 'h1' instance 1", "host 'h2' instance 1"],
        id="websocket-id",
    ),
    pytest.param(
        {"2001:db8::1": {}},
        {},
        ["websocket_server_id '2001:db8::1-jvb1' of host '2001:db8::1' instance 1", "URL path segment"],
        id="websocket-id-characters",
    ),
    pytest.param(
        {"h1": {"instances": 2}},
        {"name_format": "jvb", "muc_nickname_format": "{host}{index}"},
        ["name 'jvb' is used twice on host 'h1'", "host 'h1' instance 1 (jvb)", "host 'h1' instance 2 (jvb)"],
        id="unit-name",
    ),
]


@pytest.mark.parametrize(("topology", "options", "fragments"), COLLISIONS)
def test_collision_names_both_owners(topology: Any, options: dict[str, Any], fragments: list[str]) -> None:
    message = _problem(topology, **{"shards": ["s"], **options})
    for fragment in fragments:
        assert fragment in message


def test_all_problems_are_reported_together_and_capped() -> None:
    message = _problem({"h1": {"instances": 2}, "h2": {}}, shards=["s"], relay_id_format="r")
    assert "2 problem(s)" in message
    assert message.count("relay_id 'r' is used twice") == 2
    many = _problem({f"h{i}": {} for i in range(30)}, shards=["s"], relay_id_format="r")
    assert "29 problem(s)" in many
    assert "... and 9 more" in many


# --------------------------------------------------------------------------------------------------
# Bad input: each error names the bad value and the fix.

BAD_INPUT = [
    pytest.param(["h1"], {}, ["input", "must be a dict", "['h1']"], id="topology-list"),
    pytest.param({1: {}}, {}, ["topology key 1", "non-empty string"], id="host-int"),
    pytest.param({"": {}}, {}, ["topology key ''"], id="host-empty"),
    pytest.param({"h1": "2"}, {}, ["host 'h1'", "must be a dict", "'2'"], id="host-settings-str"),
    pytest.param(
        {"h1": {"instances": 0}}, {}, ["host 'h1' instances", "at least 1, got 0"], id="instances-0"
    ),
    pytest.param({"h1": {"instances": -3}}, {}, ["host 'h1' instances", "got -3"], id="instances-negative"),
    pytest.param(
        {"h1": {"instances": "2"}}, {}, ["host 'h1' instances", "integer, got str '2'"], id="instances-str"
    ),
    pytest.param(
        {"h1": {"instances": True}}, {}, ["host 'h1' instances", "got bool True"], id="instances-bool"
    ),
    pytest.param(
        {"h1": {"instances": 1.5}}, {}, ["host 'h1' instances", "got float 1.5"], id="instances-float"
    ),
    pytest.param(
        {"h1": {"instance": 2}}, {}, ["host 'h1'", "unknown key 'instance'", "instances"], id="host-key"
    ),
    pytest.param({"h1": {"region": 5}}, {}, ["host 'h1' region", "got int 5"], id="region-int"),
    pytest.param({"h1": {"region": " "}}, {}, ["host 'h1' region", "got str ' '"], id="region-blank"),
    pytest.param(
        {"h1": {"shards": "s1"}},
        {},
        ["host 'h1' shards", "got str 's1'", "[shard1, shard2]"],
        id="shards-str",
    ),
    pytest.param({"h1": {"shards": ["s1", ""]}}, {}, ["host 'h1' shards item ''"], id="shard-empty"),
    pytest.param(
        {"h1": {"shards": ["a", "a"]}}, {}, ["host 'h1' shards", "shard 'a' is listed twice"], id="shard-dup"
    ),
    pytest.param({"h1": {"shards": []}}, {}, ["host 'h1'", "serves no shard"], id="shards-none"),
    pytest.param({"h1": {"media_port_base": 0}}, {}, ["host 'h1' media_port_base", "got 0"], id="base-0"),
    pytest.param({"h1": {"rest_port_base": 70000}}, {}, ["host 'h1' rest_port_base", "70000"], id="base-big"),
    pytest.param({"h1": {"media_port_base": "x"}}, {}, ["host 'h1' media_port_base", "'x'"], id="base-str"),
    pytest.param(
        {"h1": {"pinned": [1]}}, {}, ["host 'h1' pinned", "must be a dict", "[1]"], id="pinned-list"
    ),
    pytest.param(
        {"h1": {"pinned": {3: {}}}}, {}, ["pinned key 3", "only 1 instance", "pin only"], id="pin-index-big"
    ),
    pytest.param({"h1": {"pinned": {0: {}}}}, {}, ["pinned key 0", "at least 1"], id="pin-index-0"),
    pytest.param({"h1": {"pinned": {"a": {}}}}, {}, ["pinned key 'a'", "integer"], id="pin-index-str"),
    pytest.param({"h1": {"pinned": {1: {}, "1": {}}}}, {}, ["instance 1 is pinned twice"], id="pin-twice"),
    pytest.param({"h1": {"pinned": {1: "n"}}}, {}, ["pinned[1]", "must be a dict", "'n'"], id="pin-str"),
    pytest.param(
        {"h1": {"pinned": {1: {"nick": "n"}}}}, {}, ["pinned[1]", "unknown key 'nick'"], id="pin-key"
    ),
    pytest.param(
        {"h1": {"pinned": {1: {"media_port": 0}}}}, {}, ["pinned[1].media_port", "got 0"], id="pin-port"
    ),
    pytest.param(
        {"h1": {"pinned": {1: {"relay_id": ""}}}}, {}, ["pinned[1].relay_id", "got str ''"], id="pin-empty"
    ),
    pytest.param(
        {"h1": {"pinned": {1: {"extra": []}}}}, {}, ["pinned[1].extra", "must be a dict"], id="pin-extra"
    ),
    pytest.param({"h1": {"extra": "x"}}, {}, ["host 'h1' extra", "must be a dict", "'x'"], id="extra-str"),
    pytest.param({}, {"media_base": 1}, ["unknown key 'media_base'", "media_port_base"], id="option-unknown"),
    pytest.param({}, {"shards": "s"}, ["option shards", "got str 's'"], id="option-shards"),
    pytest.param({}, {"region": ["eu"]}, ["option region", "got list"], id="option-region"),
    pytest.param({}, {"media_port_base": 65536}, ["option media_port_base", "65536"], id="option-port"),
    pytest.param({}, {"rest_port_base": None}, ["option rest_port_base", "got null"], id="option-port-null"),
    pytest.param(
        {}, {"name_format": "{name}"}, ["name_format '{name}'", "placeholder {name}"], id="fmt-name"
    ),
    pytest.param(
        {}, {"relay_id_format": "{fqdn}"}, ["relay_id_format", "placeholder {fqdn}"], id="fmt-unknown"
    ),
    pytest.param(
        {}, {"muc_nickname_format": "{0}"}, ["muc_nickname_format", "placeholder {0}"], id="fmt-positional"
    ),
    pytest.param({}, {"name_format": "{host.upper}"}, ["name_format", "{host.upper}"], id="fmt-attribute"),
    pytest.param(
        {}, {"name_format": "{host!r}"}, ["name_format", "placeholder {host!r}"], id="fmt-conversion"
    ),
    pytest.param({}, {"websocket_id_format": "{host"}, ["websocket_id_format '{host'"], id="fmt-syntax"),
    pytest.param(
        {}, {"name_format": "{host:d}"}, ["name_format '{host:d}'", "cannot be rendered"], id="fmt-spec"
    ),
    pytest.param({}, {"name_format": 5}, ["option name_format", "got int 5"], id="fmt-type"),
    pytest.param({}, {"pools": {"name": "p"}}, ["option pools", "must be a list"], id="pools-dict"),
    pytest.param({}, {"pools": ["p"]}, ["pools[0]", "must be a dict", "'p'"], id="pool-str"),
    pytest.param({}, {"pools": [{"max_bridges": 1}]}, ["pools[0]", "name is missing"], id="pool-no-name"),
    pytest.param({}, {"pools": [{"name": "p"}]}, ["pools[0]", "max_bridges is missing"], id="pool-no-max"),
    pytest.param(
        {}, {"pools": [{"name": "p", "max_bridges": 0}]}, ["pool 'p' max_bridges", "got 0"], id="pool-0"
    ),
    pytest.param(
        {}, {"pools": [{"name": "p", "max_bridges": 1, "size": 2}]}, ["unknown key 'size'"], id="pool-key"
    ),
    pytest.param(
        {},
        {"pools": [{"name": "p", "max_bridges": 1}, {"name": "p", "max_bridges": 2}]},
        ["pool 'p'", "defined twice"],
        id="pool-twice",
    ),
    pytest.param(
        {"p": {}},
        {"pools": [{"name": "p", "max_bridges": 1}]},
        ["pool 'p'", "same name as host 'p'"],
        id="pool-host",
    ),
    pytest.param(
        {},
        {"shards": [], "pools": [{"name": "p", "max_bridges": 1}]},
        ["pool 'p'", "serves no shard"],
        id="pool-shards",
    ),
    pytest.param(
        {},
        {"pools": [{"name": "p", "max_bridges": 1, "rest_port": 0}]},
        ["pool 'p' rest_port"],
        id="pool-port",
    ),
    pytest.param(
        {}, {"reserved_ports": [8888]}, ["option reserved_ports", "must be a dict", "[8888]"], id="res-list"
    ),
    pytest.param({}, {"reserved_ports": {"*": 8888}}, ["reserved_ports['*']", "got int 8888"], id="res-int"),
    pytest.param({}, {"reserved_ports": {"*": [0]}}, ["reserved_ports['*']", "got 0"], id="res-port"),
    pytest.param(
        {"h1": {}}, {"reserved_ports": {"h2": [1]}}, ["reserved_ports['h2']", "neither a host"], id="res-name"
    ),
]


@pytest.mark.parametrize(("topology", "options", "fragments"), BAD_INPUT)
def test_bad_input_names_the_value_and_the_fix(
    topology: Any, options: dict[str, Any], fragments: list[str]
) -> None:
    message = _problem(topology, **{"shards": ["s"], **options})
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("topology", "options", "where", "key"),
    [
        pytest.param({"h1": {"public_port_base": 9090}}, {}, "host 'h1'", "public_port_base", id="host"),
        pytest.param({}, {"public_port_base": 9090}, "keyword options", "public_port_base", id="option"),
        pytest.param(
            {},
            {"pools": [{"name": "p", "max_bridges": 1, "public_port": 9090}]},
            "pools[0]",
            "public_port",
            id="pool",
        ),
        pytest.param(
            {"h1": {"pinned": {1: {"public_port": 9090}}}}, {}, "host 'h1' pinned[1]", "public_port", id="pin"
        ),
    ],
)
def test_removed_public_port_settings_are_unknown_keys(
    topology: Any, options: dict[str, Any], where: str, key: str
) -> None:
    """public_port_base and public_port were removed; setting them is refused, not silently ignored."""
    message = _problem(topology, **{"shards": ["s"], **options})
    assert message.startswith(f"jvb_slots: {where}: unknown key {key!r}. Fix: remove it or use one of: ")
    allowed = message.split("use one of: ", 1)[1]
    assert "public_port" not in allowed


# --------------------------------------------------------------------------------------------------
# jvb_slots_for_host

PLAN = jvb_slots(EXAMPLE_TOPOLOGY, reserved_ports=RESERVED, pools=EXAMPLE_POOLS)


def test_slots_for_host_picks_one_host_in_index_order() -> None:
    assert jvb_slots_for_host(list(reversed(PLAN)), "jvb-a.example.com") == EXAMPLE_RESULT[:2]
    assert jvb_slots_for_host(PLAN, "jvb-b.example.com") == [EXAMPLE_RESULT[2]]


def test_slots_for_host_returns_copies() -> None:
    mine = jvb_slots_for_host(PLAN, "jvb-b.example.com")
    mine[0]["name"] = "changed"
    assert PLAN[2]["name"] == "jvb1"


def test_slots_for_unknown_host_fails_unless_allowed() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        jvb_slots_for_host(PLAN, "jvb-c.example.com")
    message = str(err.value)
    assert "host 'jvb-c.example.com'" in message
    assert "jvb-a.example.com, jvb-b.example.com" in message
    assert "allow_empty=true" in message
    assert jvb_slots_for_host(PLAN, "jvb-c.example.com", allow_empty=True) == []


@pytest.mark.parametrize(
    ("slots", "host", "allow_empty", "fragment"),
    [
        pytest.param({"host": "h"}, "h", False, "input: must be a list of slot dicts, got dict", id="dict"),
        pytest.param([{"name": "jvb1"}], "h", False, "input: must be a list of slot dicts", id="no-host-key"),
        pytest.param(PLAN, "", False, "host: must be a non-empty host name, got str ''", id="host-empty"),
        pytest.param(PLAN, None, False, "got null None", id="host-null"),
        pytest.param(
            PLAN, "jvb-a.example.com", "yes", "allow_empty: must be a boolean, got str 'yes'", id="bool"
        ),
    ],
)
def test_slots_for_host_bad_input(slots: Any, host: Any, allow_empty: Any, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as err:
        jvb_slots_for_host(slots, host, allow_empty)
    assert str(err.value).startswith("jvb_slots_for_host: ")
    assert fragment in str(err.value)
    assert "Fix: " in str(err.value)


def test_a_pool_member_gets_the_slot_it_claimed_under_its_own_name() -> None:
    pool = EXAMPLE_POOLS[0]["name"]
    [mine] = jvb_slots_for_host(PLAN, "bridge-i-0abc", pool=pool, slot=2)
    planned = next(slot for slot in PLAN if slot["pool"] == pool and slot["index"] == 2)
    assert mine == {**planned, "host": "bridge-i-0abc"}
    assert planned["host"] is None


@pytest.mark.parametrize(
    ("host", "pool", "slot", "fragment"),
    [
        pytest.param("new", "nope", 1, "pool 'nope': is not a pool of the plan; pools: ", id="unknown-pool"),
        pytest.param("new", None, 1, None, id="no-pool-means-host-mode"),
        pytest.param("new", "", 1, None, id="empty-pool-means-host-mode"),
        pytest.param("new", "POOL", 0, "slot 0 of pool 'POOL': is not one of its slots 1..", id="slot-0"),
        pytest.param("new", "POOL", "1", "slot '1' of pool 'POOL'", id="slot-str"),
        pytest.param("new", "POOL", 999, "slot 999 of pool 'POOL'", id="slot-too-high"),
        pytest.param(
            "jvb-a.example.com", "POOL", 1, "has slots of its own in the topology", id="host-and-member"
        ),
    ],
)
def test_pool_member_bad_input(host: str, pool: Any, slot: Any, fragment: str | None) -> None:
    pool = EXAMPLE_POOLS[0]["name"] if pool == "POOL" else pool
    fragment = fragment and fragment.replace("POOL", EXAMPLE_POOLS[0]["name"])
    if fragment is None:
        assert jvb_slots_for_host(PLAN, host, allow_empty=True, pool=pool, slot=slot) == []
        return
    with pytest.raises(AnsibleFilterError) as err:
        jvb_slots_for_host(PLAN, host, pool=pool, slot=slot)
    assert str(err.value).startswith("jvb_slots_for_host: ")
    assert fragment in str(err.value)
    assert "Fix: " in str(err.value)


# --------------------------------------------------------------------------------------------------
# Property tests. Valid topologies keep every port range apart: instances stay at most 10 after growth,
# and the bases are at least 100 apart and away from the reserved ports.

SHARDS = ("shard1", "shard2", "shard3")
host_names = st.from_regex(r"jvb-[a-z0-9]{1,6}(\.example\.com)?", fullmatch=True)
pool_names = st.from_regex(r"pool-[a-z]{1,5}", fullmatch=True)
shard_lists = st.lists(st.sampled_from(SHARDS), min_size=1, max_size=3, unique=True)
regions = st.sampled_from(["eu", "us", None])


@st.composite
def host_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"instances": draw(st.integers(1, 6)), "shards": draw(shard_lists)}
    optional = {
        "region": regions,
        "media_port_base": st.sampled_from([10000, 11000, 12000]),
        "rest_port_base": st.sampled_from([8080, 8180, 9080]),
        "extra": st.dictionaries(st.sampled_from(["mem", "gc"]), st.integers(0, 9), max_size=2),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    return spec


@st.composite
def pool_specs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "name": draw(pool_names),
        "max_bridges": draw(st.integers(1, 6)),
        "region": draw(regions),
        "shards": draw(shard_lists),
    }


topologies = st.dictionaries(host_names, host_specs(), max_size=5)
pool_lists = st.lists(pool_specs(), max_size=3, unique_by=lambda pool: pool["name"])


def _machine(slot: Mapping[str, Any]) -> tuple[Any, ...]:
    return ("host", slot["host"]) if slot["host"] is not None else ("pool", slot["pool"], slot["index"])


def _duplicates(pairs: Iterable[tuple[Any, Any]]) -> set[tuple[Any, Any]]:
    seen: set[tuple[Any, Any]] = set()
    dups = set()
    for pair in pairs:
        if pair in seen:
            dups.add(pair)
        seen.add(pair)
    return dups


def _assert_mentions(message: str, fragments: Iterable[str]) -> None:
    """Every fragment is in the message, or (when the listing was cut short) at least one is."""
    found = [fragment in message for fragment in fragments]
    assert all(found) if "more" not in message.splitlines()[-1] else any(found)


def _assert_plan_is_clean(slots: list[dict[str, Any]], reserved: Mapping[str, list[int]]) -> None:
    """Independent re-check of every uniqueness rule on a returned plan."""
    claims = []
    for machine in {_machine(slot) for slot in slots}:
        claims += [(machine, port) for port in set(reserved.get("*", [])) | set(reserved.get(machine[1], []))]
    claims += [(_machine(s), s[key]) for s in slots for key in PORT_KEYS if s[key] is not None]
    assert not _duplicates(claims)
    assert all(1 <= port <= 65535 for _machine_, port in claims)
    assert not _duplicates((shard, s["muc_nickname"]) for s in slots for shard in s["shards"])
    assert not _duplicates((None, s["relay_id"]) for s in slots)
    assert not _duplicates((None, s["websocket_server_id"]) for s in slots)
    assert not _duplicates((_machine(s)[:2], s["name"]) for s in slots)


@PROPERTY_SETTINGS
@given(topology=topologies, pools=pool_lists)
def test_property_valid_topologies_plan_one_clean_slot_per_instance(
    topology: dict[str, Any], pools: list[dict[str, Any]]
) -> None:
    slots = jvb_slots(topology, reserved_ports=RESERVED, pools=pools)
    _assert_plan_is_clean(slots, RESERVED)
    expected = [(h, None, i) for h in sorted(topology) for i in range(1, topology[h]["instances"] + 1)]
    expected += [
        (None, p["name"], i)
        for p in sorted(pools, key=lambda p: p["name"])
        for i in range(1, p["max_bridges"] + 1)
    ]
    assert [(s["host"], s["pool"], s["index"]) for s in slots] == expected


@PROPERTY_SETTINGS
@given(topology=topologies, pools=pool_lists, data=st.data())
def test_property_order_of_hosts_and_pools_does_not_matter(
    topology: dict[str, Any], pools: list[dict[str, Any]], data: st.DataObject
) -> None:
    hosts = data.draw(st.permutations(list(topology.items())))
    shuffled_pools = data.draw(st.permutations(pools))
    assert jvb_slots(dict(hosts), reserved_ports=RESERVED, pools=list(shuffled_pools)) == jvb_slots(
        topology, reserved_ports=RESERVED, pools=pools
    )


@PROPERTY_SETTINGS
@given(topology=topologies, pools=pool_lists, data=st.data())
def test_property_growth_keeps_every_existing_slot(
    topology: dict[str, Any], pools: list[dict[str, Any]], data: st.DataObject
) -> None:
    before = jvb_slots(topology, reserved_ports=RESERVED, pools=pools)

    grown = {
        host: {**spec, "instances": spec["instances"] + data.draw(st.integers(0, 4))}
        for host, spec in topology.items()
    }
    new_hosts = data.draw(
        st.dictionaries(host_names.filter(lambda h: h not in topology), host_specs(), max_size=3)
    )
    grown.update(new_hosts)
    grown_pools = [
        {**pool, "max_bridges": pool["max_bridges"] + data.draw(st.integers(0, 4))} for pool in pools
    ]
    taken = {pool["name"] for pool in pools}
    grown_pools += data.draw(
        st.lists(
            pool_specs().filter(lambda p: p["name"] not in taken), max_size=2, unique_by=lambda p: p["name"]
        )
    )

    after = jvb_slots(grown, reserved_ports=RESERVED, pools=grown_pools)
    _assert_plan_is_clean(after, RESERVED)
    missing = [slot for slot in before if slot not in after]
    assert not missing
    added = sum(grown[h]["instances"] for h in grown) - sum(topology[h]["instances"] for h in topology)
    added += sum(p["max_bridges"] for p in grown_pools) - sum(p["max_bridges"] for p in pools)
    assert len(after) - len(before) == added


@PROPERTY_SETTINGS
@given(topology=topologies, pools=pool_lists, data=st.data())
def test_property_adding_shards_keeps_identities_and_ports(
    topology: dict[str, Any], pools: list[dict[str, Any]], data: st.DataObject
) -> None:
    before = jvb_slots(topology, reserved_ports=RESERVED, pools=pools)
    more = data.draw(st.lists(st.sampled_from([*SHARDS, "shard4"]), max_size=2))
    grown = {host: {**spec, "shards": sorted({*spec["shards"], *more})} for host, spec in topology.items()}
    grown_pools = [{**pool, "shards": sorted({*pool["shards"], *more})} for pool in pools]
    after = jvb_slots(grown, reserved_ports=RESERVED, pools=grown_pools)

    def without_shards(slots: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{key: value for key, value in slot.items() if key != "shards"} for slot in slots]

    assert without_shards(after) == without_shards(before)
    for old, new in zip(before, after, strict=True):
        assert set(old["shards"]) <= set(new["shards"])


# Collision oracle: overlapping bases and pins are likely here; jvb_slots must fail exactly when the
# ports recomputed from the input clash.

CLASHY_BASES = st.sampled_from([8080, 8082, 8888, 10000, 10002])


@st.composite
def clashy_topologies(draw: st.DrawFn) -> dict[str, Any]:
    hosts = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    topology = {}
    for host in hosts:
        spec: dict[str, Any] = {"instances": draw(st.integers(1, 4))}
        for key in ("media_port_base", "rest_port_base"):
            if draw(st.booleans()):
                spec[key] = draw(CLASHY_BASES)
        if draw(st.booleans()):
            index = draw(st.integers(1, spec["instances"]))
            spec["pinned"] = {index: {draw(st.sampled_from(PORT_KEYS)): draw(CLASHY_BASES)}}
        topology[host] = spec
    return topology


def _expected_port_clashes(topology: Mapping[str, Any], reserved: Mapping[str, list[int]]) -> list[int]:
    """Every port claim that finds its port already taken on the same host, in claim order."""
    clashes = []
    for host, spec in topology.items():
        taken = set(reserved.get("*", [])) | set(reserved.get(host, []))
        for index in range(1, spec["instances"] + 1):
            pin = spec.get("pinned", {}).get(index, {})
            bases = {"media_port": 10000, "rest_port": 8080}
            for key, default in bases.items():
                port = pin.get(key, spec.get(f"{key}_base", default) + index - 1)
                if port in taken:
                    clashes.append(port)
                taken.add(port)
    return clashes


@PROPERTY_SETTINGS
@given(
    topology=clashy_topologies(),
    reserved=st.dictionaries(st.sampled_from(["*", "a"]), st.lists(CLASHY_BASES, max_size=2), max_size=2),
)
def test_property_port_collisions_fail_exactly_when_ports_clash(
    topology: dict[str, Any], reserved: dict[str, list[int]]
) -> None:
    reserved = {name: ports for name, ports in reserved.items() if name == "*" or name in topology}
    clashes = _expected_port_clashes(topology, reserved)
    if clashes:
        message = _problem(topology, shards=["s"], reserved_ports=reserved)
        assert message.startswith(f"jvb_slots: {len(clashes)} problem(s)")
        _assert_mentions(message, [f"port {port} on host " for port in clashes])
    else:
        _assert_plan_is_clean(jvb_slots(topology, shards=["s"], reserved_ports=reserved), reserved)


# Identity oracle: formats that may drop {host} or {index} and hosts in overlapping shards.

ID_FORMATS = st.sampled_from(["{host}-{name}", "{name}", "{host}", "{host}{index}", "bridge"])


@PROPERTY_SETTINGS
@given(
    topology=st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.fixed_dictionaries({"instances": st.integers(1, 3), "shards": shard_lists}),
        min_size=1,
    ),
    formats=st.tuples(ID_FORMATS, ID_FORMATS, ID_FORMATS),
)
def test_property_identity_collisions_fail_exactly_when_ids_clash(
    topology: dict[str, Any], formats: tuple[str, str, str]
) -> None:
    nick_fmt, ws_fmt, relay_fmt = formats
    instances = [
        (h, i, spec["shards"]) for h, spec in topology.items() for i in range(1, spec["instances"] + 1)
    ]

    def rendered(fmt: str, host: str, index: int) -> str:
        return fmt.format(host=host, index=index, name=f"jvb{index}")

    nicknames = [(shard, rendered(nick_fmt, h, i)) for h, i, shards in instances for shard in shards]
    ws_ids = [rendered(ws_fmt, h, i) for h, i, _shards in instances]
    relay_ids = [rendered(relay_fmt, h, i) for h, i, _shards in instances]
    # One problem per repeated use of a value within its scope (a brewery, or all bridges).
    expected = sum(
        count - 1 for values in (nicknames, ws_ids, relay_ids) for count in Counter(values).values()
    )
    clashing = {
        f"muc_nickname {nick!r} is used twice in the brewery of shard {shard!r}"
        for shard, nick in nicknames
        if nicknames.count((shard, nick)) > 1
    }
    clashing |= {f"websocket_server_id {ws!r} is used twice" for ws in ws_ids if ws_ids.count(ws) > 1}
    clashing |= {f"relay_id {relay!r} is used twice" for relay in relay_ids if relay_ids.count(relay) > 1}
    options = {"muc_nickname_format": nick_fmt, "websocket_id_format": ws_fmt, "relay_id_format": relay_fmt}
    if expected:
        message = _problem(topology, **options)
        assert message.startswith(f"jvb_slots: {expected} problem(s)")
        _assert_mentions(message, clashing)
    else:
        _assert_plan_is_clean(jvb_slots(topology, **options), {})
