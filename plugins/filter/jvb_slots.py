# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Plan one identity and port set ("slot") per Jitsi Videobridge instance.

Several videobridges can run on one host, and autoscaled bridges come and go. Every bridge needs its own
ICE UDP port (``videobridge.ice.udp.port``), private HTTP port (``videobridge.http-servers.private.port``),
websocket ``server-id``, brewery ``muc_nickname`` and ``relay.relay-id``.

``jvb_slots`` turns the bridge topology written in inventory into one flat, explicit record per bridge
instance. Each record is derived only from its host name (or pool name), its instance index on that host
and that host's (or pool's) own settings, so adding hosts, instances or pool capacity never changes a
record that already exists. Clashes (ports, nicknames per brewery, relay ids, websocket ids, unit names)
are errors that name both owners.

``jvb_slots_for_host`` picks the records of one host out of the full plan.

The documentation of both filters lives in the adjacent ``jvb_slots.yml`` and ``jvb_slots_for_host.yml``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ansible.errors import AnsibleFilterError

PORT_MIN = 1
PORT_MAX = 65535

DEFAULT_MEDIA_PORT_BASE = 10000
DEFAULT_REST_PORT_BASE = 8080
DEFAULT_NAME_FORMAT = "jvb{index}"
DEFAULT_ID_FORMAT = "{host}-{name}"

# Placeholders each format may use. name_format cannot use {name}: it defines it.
FORMAT_FIELDS: dict[str, tuple[str, ...]] = {
    "name_format": ("host", "index"),
    "muc_nickname_format": ("host", "index", "name"),
    "websocket_id_format": ("host", "index", "name"),
    "relay_id_format": ("host", "index", "name"),
}

OPTION_KEYS = (
    "media_port_base",
    "rest_port_base",
    "region",
    "shards",
    *FORMAT_FIELDS,
    "reserved_ports",
    "pools",
)
HOST_KEYS = (
    "instances",
    "region",
    "shards",
    "media_port_base",
    "rest_port_base",
    "pinned",
    "extra",
)
POOL_KEYS = ("name", "max_bridges", "region", "shards", "media_port", "rest_port", "extra")
PIN_STR_KEYS = ("name", "muc_nickname", "websocket_server_id", "relay_id")
PIN_PORT_KEYS = ("media_port", "rest_port")
PIN_KEYS = (*PIN_STR_KEYS, *PIN_PORT_KEYS, "extra")
PORT_KEYS = ("media_port", "rest_port")

RESERVED_ALL = "*"
MAX_PROBLEMS_SHOWN = 20
# The server-id is a path segment of /colibri-ws/<server-id>/ and is matched by nginx locations.
WEBSOCKET_ID_RE = re.compile(r"^[A-Za-z0-9._~-]+$")


@dataclass(frozen=True)
class Pool:
    """An autoscaling pool: max_bridges future bridges, each alone on its own machine."""

    name: str
    max_bridges: int
    region: str | None
    shards: tuple[str, ...]
    media_port: int
    rest_port: int
    extra: Mapping[str, Any]


@dataclass(frozen=True)
class Options:
    """The validated keyword options of jvb_slots."""

    media_port_base: int
    rest_port_base: int
    region: str | None
    shards: tuple[str, ...]
    name_format: str
    muc_nickname_format: str
    websocket_id_format: str
    relay_id_format: str
    reserved_ports: Mapping[str, tuple[int, ...]]
    pools: tuple[Pool, ...]


@dataclass(frozen=True)
class HostSpec:
    """One bridge host of the topology, with the option defaults filled in."""

    host: str
    instances: int
    region: str | None
    shards: tuple[str, ...]
    media_port_base: int
    rest_port_base: int
    pinned: Mapping[int, Mapping[str, Any]]
    extra: Mapping[str, Any]


# --------------------------------------------------------------------------------------------------
# Small validation helpers. Each raises AnsibleFilterError naming the bad value and the fix.


def _fail(where: str, problem: str, fix: str, prefix: str = "jvb_slots") -> NoReturn:
    raise AnsibleFilterError(f"{prefix}: {where}: {problem}. Fix: {fix}.")


def _kind(value: Any) -> str:
    """A YAML-ish type name for error messages (Ansible wraps values in tagged subclasses)."""
    if value is None:
        return "null"
    for kind, types in (
        ("bool", bool),
        ("int", int),
        ("float", float),
        ("str", str),
        ("dict", Mapping),
        ("list", (list, tuple)),
    ):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _int(value: Any, where: str, minimum: int, fix: str) -> int:
    if not _is_int(value):
        _fail(where, f"must be an integer, got {_kind(value)} {value!r}", fix)
    if value < minimum:
        _fail(where, f"must be at least {minimum}, got {value}", fix)
    return int(value)


def _port(value: Any, where: str, fix: str) -> int:
    port = _int(value, where, PORT_MIN, fix)
    if port > PORT_MAX:
        _fail(where, f"port {port} is outside {PORT_MIN}..{PORT_MAX}", fix)
    return port


def _text(value: Any, where: str, fix: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(where, f"must be a non-empty string, got {_kind(value)} {value!r}", fix)
    return str(value)


def _optional_text(value: Any, where: str, fix: str) -> str | None:
    return None if value is None else _text(value, where, fix)


def _mapping(value: Any, where: str, fix: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        _fail(where, f"must be a dict, got {_kind(value)} {value!r}", fix)
    return value


def _known_keys(mapping: Mapping[Any, Any], allowed: Sequence[str], where: str) -> None:
    for key in sorted(mapping, key=str):
        if key not in allowed:
            _fail(
                where,
                f"unknown key {key!r}",
                f"remove it or use one of: {', '.join(allowed)}",
            )


def _shards(value: Any, where: str) -> tuple[str, ...]:
    fix = "write the shards as a list of shard names, for example [shard1, shard2]"
    if not _is_list(value):
        _fail(where, f"must be a list of shard names, got {_kind(value)} {value!r}", fix)
    shards = [_text(shard, f"{where} item {shard!r}", fix) for shard in value]
    for shard in shards:
        if shards.count(shard) > 1:
            _fail(where, f"shard {shard!r} is listed twice", "list each shard once")
    return tuple(sorted(shards))


def _format(value: Any, option: str) -> str:
    """Validate a format string: only the named placeholders of FORMAT_FIELDS, no attribute access."""
    allowed = FORMAT_FIELDS[option]
    placeholders = ", ".join("{" + name + "}" for name in allowed)
    fix = f"use only the placeholders {placeholders}, for example {{host}}-jvb{{index}}"
    fmt = _text(value, f"option {option}", fix)
    try:
        parts = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        _fail(f"option {option} {fmt!r}", f"is not a valid format string ({exc})", fix)
    for _literal, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if field_name not in allowed or conversion or (spec and "{" in spec):
            shown = field_name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            _fail(f"option {option} {fmt!r}", f"placeholder {{{shown}}} is not supported", fix)
    try:
        fmt.format(host="host", index=1, name="jvb1")
    except (ValueError, TypeError) as exc:
        _fail(f"option {option} {fmt!r}", f"cannot be rendered ({exc})", fix)
    return fmt


# --------------------------------------------------------------------------------------------------
# Parsing the options and the topology into validated records.


def _parse_pool(raw: Any, position: int, defaults: Mapping[str, Any]) -> Pool:
    where = f"pools[{position}]"
    fix = "write each pool as {name: ..., max_bridges: N, region: ..., shards: [...]}"
    pool = _mapping(raw, where, fix)
    _known_keys(pool, POOL_KEYS, where)
    for required in ("name", "max_bridges"):
        if required not in pool:
            _fail(where, f"{required} is missing", fix)
    name = _text(pool["name"], f"{where}.name", "give the pool a non-empty name")
    where = f"pool {name!r}"
    port_fix = "use a port in 1..65535"
    shards = _shards(pool["shards"], f"{where} shards") if "shards" in pool else defaults["shards"]
    if not shards:
        _fail(where, "serves no shard", "set shards on the pool or the shards option")
    return Pool(
        name=name,
        max_bridges=_int(pool["max_bridges"], f"{where} max_bridges", 1, "plan at least one bridge"),
        region=_optional_text(
            pool.get("region", defaults["region"]), f"{where} region", "use a region name or null"
        ),
        shards=shards,
        media_port=_port(
            pool.get("media_port", defaults["media_port_base"]), f"{where} media_port", port_fix
        ),
        rest_port=_port(pool.get("rest_port", defaults["rest_port_base"]), f"{where} rest_port", port_fix),
        extra=dict(_mapping(pool.get("extra", {}), f"{where} extra", "write extra as a dict")),
    )


def _parse_pools(value: Any, defaults: Mapping[str, Any]) -> tuple[Pool, ...]:
    fix = "write pools as a list of dicts, for example [{name: autoscale-eu, max_bridges: 10}]"
    if not _is_list(value):
        _fail("option pools", f"must be a list, got {_kind(value)} {value!r}", fix)
    pools = [_parse_pool(raw, position, defaults) for position, raw in enumerate(value)]
    names = [pool.name for pool in pools]
    for name in names:
        if names.count(name) > 1:
            _fail(f"pool {name!r}", "is defined twice", "give every pool its own name")
    return tuple(sorted(pools, key=lambda pool: pool.name))


def _parse_reserved(value: Any) -> dict[str, tuple[int, ...]]:
    fix = "write reserved_ports as {host or pool name or '*': [port, ...]}, for example {'*': [8888, 5222]}"
    reserved = _mapping(value, "option reserved_ports", fix)
    parsed: dict[str, tuple[int, ...]] = {}
    for name in sorted(reserved, key=str):
        where = f"reserved_ports[{name!r}]"
        _text(name, f"option reserved_ports key {name!r}", fix)
        ports = reserved[name]
        if not _is_list(ports):
            _fail(where, f"must be a list of ports, got {_kind(ports)} {ports!r}", fix)
        parsed[str(name)] = tuple(sorted({_port(port, where, "use ports in 1..65535") for port in ports}))
    return parsed


def _parse_options(options: Mapping[str, Any]) -> Options:
    _known_keys(options, OPTION_KEYS, "keyword options")
    port_fix = "use a port in 1..65535"
    region = _optional_text(options.get("region"), "option region", "use a region name or null")
    shards = _shards(options.get("shards", []), "option shards")
    media = _port(options.get("media_port_base", DEFAULT_MEDIA_PORT_BASE), "option media_port_base", port_fix)
    rest = _port(options.get("rest_port_base", DEFAULT_REST_PORT_BASE), "option rest_port_base", port_fix)
    defaults = {
        "region": region,
        "shards": shards,
        "media_port_base": media,
        "rest_port_base": rest,
    }
    return Options(
        media_port_base=media,
        rest_port_base=rest,
        region=region,
        shards=shards,
        name_format=_format(options.get("name_format", DEFAULT_NAME_FORMAT), "name_format"),
        muc_nickname_format=_format(
            options.get("muc_nickname_format", DEFAULT_ID_FORMAT), "muc_nickname_format"
        ),
        websocket_id_format=_format(
            options.get("websocket_id_format", DEFAULT_ID_FORMAT), "websocket_id_format"
        ),
        relay_id_format=_format(options.get("relay_id_format", DEFAULT_ID_FORMAT), "relay_id_format"),
        reserved_ports=_parse_reserved(options.get("reserved_ports", {})),
        pools=_parse_pools(options.get("pools", []), defaults),
    )


def _pin_index(key: Any, where: str, instances: int) -> int:
    fix = f"pin only instances 1..{instances}, or raise instances"
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    index = _int(key, f"{where} key {key!r}", 1, fix)
    if index > instances:
        _fail(f"{where} key {index}", f"the host has only {instances} instance(s)", fix)
    return index


def _parse_pin(raw: Any, where: str) -> dict[str, Any]:
    pin = _mapping(raw, where, "write the pinned fields as a dict, for example {muc_nickname: old-uuid}")
    _known_keys(pin, PIN_KEYS, where)
    parsed: dict[str, Any] = {}
    for key in PIN_STR_KEYS:
        if key in pin:
            parsed[key] = _text(pin[key], f"{where}.{key}", f"pin {key} to a non-empty string or remove it")
    for key in PIN_PORT_KEYS:
        if key in pin:
            parsed[key] = _port(pin[key], f"{where}.{key}", "use a port in 1..65535")
    if "extra" in pin:
        parsed["extra"] = dict(_mapping(pin["extra"], f"{where}.extra", "write extra as a dict"))
    return parsed


def _parse_pinned(value: Any, where: str, instances: int) -> dict[int, dict[str, Any]]:
    pinned_where = f"{where} pinned"
    pinned = _mapping(value, pinned_where, "write pinned as {instance index: {field: value}}")
    parsed: dict[int, dict[str, Any]] = {}
    for key in sorted(pinned, key=str):
        index = _pin_index(key, pinned_where, instances)
        if index in parsed:
            _fail(pinned_where, f"instance {index} is pinned twice", "pin each instance once")
        parsed[index] = _parse_pin(pinned[key], f"{pinned_where}[{index}]")
    return parsed


def _parse_host(host: Any, raw: Any, opts: Options) -> HostSpec:
    fix = "key the topology by inventory host name, for example {jvb1.example.com: {instances: 2}}"
    name = _text(host, f"topology key {host!r}", fix)
    where = f"host {name!r}"
    spec = _mapping(
        {} if raw is None else raw, where, "write the host settings as a dict, e.g. {instances: 2}"
    )
    _known_keys(spec, HOST_KEYS, where)
    port_fix = "use a port in 1..65535"
    instances = _int(spec.get("instances", 1), f"{where} instances", 1, "run at least 1 instance")
    shards = _shards(spec["shards"], f"{where} shards") if "shards" in spec else opts.shards
    if not shards:
        _fail(where, "serves no shard", "set shards on the host or the shards option")
    return HostSpec(
        host=name,
        instances=instances,
        region=_optional_text(
            spec.get("region", opts.region), f"{where} region", "use a region name or null"
        ),
        shards=shards,
        media_port_base=_port(
            spec.get("media_port_base", opts.media_port_base), f"{where} media_port_base", port_fix
        ),
        rest_port_base=_port(
            spec.get("rest_port_base", opts.rest_port_base), f"{where} rest_port_base", port_fix
        ),
        pinned=_parse_pinned(spec.get("pinned", {}), where, instances),
        extra=dict(_mapping(spec.get("extra", {}), f"{where} extra", "write extra as a dict")),
    )


def _parse_topology(topology: Any, opts: Options) -> tuple[HostSpec, ...]:
    fix = "pass a dict of bridge hosts, for example {jvb1.example.com: {instances: 2, shards: [shard1]}}"
    hosts = _mapping(topology, "input", fix)
    specs = tuple(_parse_host(host, hosts[host], opts) for host in sorted(hosts, key=str))
    pool_names = {pool.name for pool in opts.pools}
    for spec in specs:
        if spec.host in pool_names:
            _fail(
                f"pool {spec.host!r}",
                f"has the same name as host {spec.host!r}",
                "rename the pool; pool and host names share the {host} placeholder",
            )
    known = {spec.host for spec in specs} | pool_names | {RESERVED_ALL}
    for name in opts.reserved_ports:
        if name not in known:
            _fail(
                f"reserved_ports[{name!r}]",
                "names neither a host of the topology nor a pool",
                f"use a host name, a pool name or {RESERVED_ALL!r}",
            )
    return specs


# --------------------------------------------------------------------------------------------------
# Building the slots. Everything a slot holds comes from its owner (host or pool) and its index.


def _render(fmt: str, option: str, **fields: Any) -> str:
    try:
        return fmt.format(**fields)
    except (ValueError, TypeError) as exc:
        _fail(f"option {option} {fmt!r}", f"cannot be rendered for {fields} ({exc})", "fix the format")


def _slot(
    *,
    host: str | None,
    pool: str | None,
    index: int,
    region: str | None,
    shards: tuple[str, ...],
    ports: Mapping[str, int],
    extra: Mapping[str, Any],
    pin: Mapping[str, Any],
    opts: Options,
) -> dict[str, Any]:
    owner = host if host is not None else pool
    name = pin.get("name") or _render(opts.name_format, "name_format", host=owner, index=index)
    fields = {"host": owner, "index": index, "name": name}

    def ident(key: str, fmt: str, option: str) -> str:
        return pin.get(key) or _render(fmt, option, **fields)

    return {
        "host": host,
        "pool": pool,
        "index": index,
        "name": name,
        "muc_nickname": ident("muc_nickname", opts.muc_nickname_format, "muc_nickname_format"),
        "websocket_server_id": ident("websocket_server_id", opts.websocket_id_format, "websocket_id_format"),
        "relay_id": ident("relay_id", opts.relay_id_format, "relay_id_format"),
        "media_port": pin.get("media_port", ports["media_port"]),
        "rest_port": pin.get("rest_port", ports["rest_port"]),
        "region": region,
        "shards": list(shards),
        "extra": {**extra, **pin.get("extra", {})},
    }


def _host_slots(spec: HostSpec, opts: Options) -> list[dict[str, Any]]:
    return [
        _slot(
            host=spec.host,
            pool=None,
            index=index,
            region=spec.region,
            shards=spec.shards,
            ports={
                "media_port": spec.media_port_base + index - 1,
                "rest_port": spec.rest_port_base + index - 1,
            },
            extra=spec.extra,
            pin=spec.pinned.get(index, {}),
            opts=opts,
        )
        for index in range(1, spec.instances + 1)
    ]


def _pool_slots(pool: Pool, opts: Options) -> list[dict[str, Any]]:
    ports = {"media_port": pool.media_port, "rest_port": pool.rest_port}
    return [
        _slot(
            host=None,
            pool=pool.name,
            index=index,
            region=pool.region,
            shards=pool.shards,
            ports=ports,
            extra=pool.extra,
            pin={},
            opts=opts,
        )
        for index in range(1, pool.max_bridges + 1)
    ]


# --------------------------------------------------------------------------------------------------
# Collision checks. Each returns human-readable problems; every problem names both owners and the fix.


def _owner_label(slot: Mapping[str, Any]) -> str:
    """How error messages name a slot: host 'a' instance 2 (jvb2) / pool 'p' slot 3 (jvb3)."""
    if slot["host"] is not None:
        return f"host {slot['host']!r} instance {slot['index']} ({slot['name']})"
    return f"pool {slot['pool']!r} slot {slot['index']} ({slot['name']})"


def _machine(slot: Mapping[str, Any]) -> tuple[str, str, int]:
    """Ports are per machine: a host, or the one machine each pool slot runs on."""
    if slot["host"] is not None:
        return ("host", slot["host"], 0)
    return ("pool", slot["pool"], slot["index"])


def _machine_label(machine: tuple[str, str, int]) -> str:
    kind, name, index = machine
    return f"host {name!r}" if kind == "host" else f"the machine of pool {name!r} slot {index}"


def _port_fix(machine: tuple[str, str, int]) -> str:
    kind, name, _index = machine
    if kind == "host":
        return (
            "give one of them another port: change media_port_base/rest_port_base of "
            f"host {name!r} (or the option of the same name), a pinned port, or reserved_ports"
        )
    return f"give one of them another port: change media_port/rest_port of pool {name!r}"


def _range_problems(slots: Sequence[Mapping[str, Any]]) -> list[str]:
    problems = []
    for slot in slots:
        for key in PORT_KEYS:
            port = slot[key]
            if not PORT_MIN <= port <= PORT_MAX:
                problems.append(
                    f"{key} {port} of {_owner_label(slot)} is outside {PORT_MIN}..{PORT_MAX}. Fix: lower the "
                    f"port base (or pinned port) so that base + instances - 1 stays within {PORT_MAX}"
                )
    return problems


def _port_problems(slots: Sequence[Mapping[str, Any]], reserved: Mapping[str, tuple[int, ...]]) -> list[str]:
    claims: dict[tuple[str, str, int], dict[int, str]] = {}
    problems = []
    for slot in slots:
        machine = _machine(slot)
        if machine not in claims:
            names = (machine[1], RESERVED_ALL)
            claims[machine] = {
                port: f"reserved_ports[{name!r}]" for name in names for port in reserved.get(name, ())
            }
        taken = claims[machine]
        for key in PORT_KEYS:
            port = slot[key]
            owner = f"{key} of {_owner_label(slot)}"
            if port in taken:
                problems.append(
                    f"port {port} on {_machine_label(machine)} is used twice: {taken[port]} and {owner}. "
                    f"Fix: {_port_fix(machine)}"
                )
            else:
                taken[port] = owner
    return problems


def _unique_problems(
    slots: Sequence[Mapping[str, Any]],
    field: str,
    scopes: Callable[[Mapping[str, Any]], Iterable[Any]],
    scope_text: Callable[[Any], str],
    fix: str,
) -> list[str]:
    """Report each slot whose field value is already used in one of its scopes."""
    seen: dict[tuple[Any, str], Mapping[str, Any]] = {}
    problems = []
    for slot in slots:
        for scope in scopes(slot):
            key = (scope, slot[field])
            if key in seen:
                owners = f"{_owner_label(seen[key])} and {_owner_label(slot)}"
                problems.append(
                    f"{field} {slot[field]!r} is used twice{scope_text(scope)}: {owners}. Fix: {fix}"
                )
            else:
                seen[key] = slot
    return problems


def _identity_problems(slots: Sequence[Mapping[str, Any]]) -> list[str]:
    problems = []
    for slot in slots:
        ws_id = slot["websocket_server_id"]
        if not WEBSOCKET_ID_RE.match(ws_id):
            problems.append(
                f"websocket_server_id {ws_id!r} of {_owner_label(slot)} is not a plain URL path segment "
                "(letters, digits, '.', '_', '~', '-'). Fix: change websocket_id_format or the pinned value"
            )
    problems += _unique_problems(
        slots,
        "name",
        lambda slot: [_machine(slot)[:2]],
        lambda machine: f" on {machine[0]} {machine[1]!r}",
        "include {index} in name_format, or change the pinned name",
    )
    problems += _unique_problems(
        slots,
        "muc_nickname",
        lambda slot: slot["shards"],
        lambda shard: f" in the brewery of shard {shard!r}",
        "nicknames must be unique per brewery: include {host} and {name} in muc_nickname_format, "
        "or change the pinned muc_nickname",
    )
    problems += _unique_problems(
        slots,
        "relay_id",
        lambda slot: [None],
        lambda _scope: "",
        "relay ids must be unique across all bridges: include {host} and {name} in relay_id_format, "
        "or change the pinned relay_id",
    )
    problems += _unique_problems(
        slots,
        "websocket_server_id",
        lambda slot: [None],
        lambda _scope: "",
        "websocket server ids must be unique across all bridges: include {host} and {name} in "
        "websocket_id_format, or change the pinned websocket_server_id",
    )
    return problems


# --------------------------------------------------------------------------------------------------
# The filters.


def jvb_slots(topology: Any, **options: Any) -> list[dict[str, Any]]:
    """Return one slot dict per bridge instance of the topology and per planned pool bridge.

    Host slots come first, sorted by host and index, then pool slots sorted by pool and index.
    Raises AnsibleFilterError on bad input and on any collision.
    """
    opts = _parse_options(options)
    specs = _parse_topology(topology, opts)
    slots = [slot for spec in specs for slot in _host_slots(spec, opts)]
    slots += [slot for pool in opts.pools for slot in _pool_slots(pool, opts)]
    problems = _range_problems(slots) + _port_problems(slots, opts.reserved_ports) + _identity_problems(slots)
    if problems:
        listing = "\n".join(f"- {problem}" for problem in problems[:MAX_PROBLEMS_SHOWN])
        if len(problems) > MAX_PROBLEMS_SHOWN:
            listing += f"\n- ... and {len(problems) - MAX_PROBLEMS_SHOWN} more"
        raise AnsibleFilterError(f"jvb_slots: {len(problems)} problem(s) in the bridge plan:\n{listing}")
    return slots


def jvb_slots_for_host(
    slots: Any, host: Any, allow_empty: bool = False, pool: Any = None, slot: Any = None
) -> list[dict[str, Any]]:
    """Return the slots of one host, sorted by index; fail if it has none unless allow_empty.

    With pool, the host is a member of that autoscaling pool and gets the pool's slot number slot (the
    one it claimed), with its host set; an empty pool is none (the jvb role's default).
    """
    prefix = "jvb_slots_for_host"
    fix = "pass the output of meetops.jitsi.jvb_slots"
    if not _is_list(slots) or not all(isinstance(slot, Mapping) and "host" in slot for slot in slots):
        _fail("input", f"must be a list of slot dicts, got {_kind(slots)}", fix, prefix)
    if not isinstance(host, str) or not host:
        _fail(
            "host",
            f"must be a non-empty host name, got {_kind(host)} {host!r}",
            "pass inventory_hostname",
            prefix,
        )
    if not isinstance(allow_empty, bool):
        _fail(
            "allow_empty",
            f"must be a boolean, got {_kind(allow_empty)} {allow_empty!r}",
            "use true or false",
            prefix,
        )
    mine = sorted(
        (dict(slot) for slot in slots if slot["host"] == host), key=lambda slot: slot.get("index", 0)
    )
    if pool not in (None, ""):
        return [_pool_member_slot(slots, host, pool, slot, mine)]
    if not mine and not allow_empty:
        hosts = sorted({slot["host"] for slot in slots if slot["host"] is not None})
        _fail(
            f"host {host!r}",
            f"has no slot; hosts with slots: {', '.join(hosts) or 'none'}",
            "add the host to the bridge topology, correct its name, or pass allow_empty=true",
            prefix,
        )
    return mine


def _pool_member_slot(
    slots: Sequence[Mapping[str, Any]], host: str, pool: Any, index: Any, own: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Slot number index of pool, for its member host."""
    prefix = "jvb_slots_for_host"
    pools = sorted({slot["pool"] for slot in slots if slot.get("pool") is not None})
    if not isinstance(pool, str) or pool not in pools:
        _fail(
            f"pool {pool!r}",
            f"is not a pool of the plan; pools: {', '.join(pools) or 'none'}",
            "name a pool of jvb_slots_options.pools",
            prefix,
        )
    if own:
        _fail(
            f"host {host!r}",
            f"has slots of its own in the topology and is a member of pool {pool!r}",
            "take the host out of the bridge topology, or out of the pool",
            prefix,
        )
    members = [dict(slot) for slot in slots if slot.get("pool") == pool]
    if not _is_int(index) or not 1 <= index <= len(members):
        _fail(
            f"slot {index!r} of pool {pool!r}",
            f"is not one of its slots 1..{len(members)}",
            "pass the slot number the pool registry gave this host",
            prefix,
        )
    chosen = next(member for member in members if member["index"] == index)
    return {**chosen, "host": host}


class FilterModule:
    """Jitsi Videobridge slot planning filters."""

    def filters(self) -> dict[str, Any]:
        return {"jvb_slots": jvb_slots, "jvb_slots_for_host": jvb_slots_for_host}
