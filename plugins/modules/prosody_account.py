#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Create, update and remove Prosody XMPP accounts idempotently, without ever exposing the password.

How it reads: Prosody's own config loader (run by the Lua interpreter prosodyctl uses) says where the
account lives: the prepared user and host names, whether the host is a VirtualHost, its
authentication and storage, and the data_path. The account file is then parsed here (a small parser
for the Lua table Prosody serializes, never evaluated) and the password checked by recomputing the
SCRAM keys from the stored salt and iteration count (RFC 5802/7677), as mod_auth_internal_hashed does.

How it writes, and why: through prosodyctl, with the password on stdin (never in argv):
`prosodyctl --config CFG register USER HOST` creates or re-keys an account and
`prosodyctl --config CFG unregister USER HOST` removes it. These two are the only account commands
that work the same on Prosody 0.12 and 13 and with Prosody stopped: on 13, adduser/passwd/deluser are
wrappers around `prosodyctl shell`, which needs a running server with the admin socket. Prosody thus
keeps owning the storage format (hash, iteration count, timestamps, owner prosody:prosody, mode 0640),
and unregister also purges the user's other stores (roster, vCard, ...), which deleting the account file
would leave behind. This is also the command Jitsi Meet's own packaging uses for its service accounts.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: prosody_account
short_description: Manage Prosody XMPP accounts idempotently, with check mode and diff
version_added: 0.1.0
description:
  - Creates, re-keys or removes one account on a Prosody C(VirtualHost) that uses
    C(authentication = "internal_hashed") (the default) or C(internal_plain), with the default file
    storage (C(<data_path>/<encoded host>/accounts/<encoded user>.dat)). Works with Prosody 0.12
    (Debian 12) and Prosody 13 (Debian 13), whether Prosody is running or not.
  - Reads the config with Prosody's own config loader (including C(Include) files), so a second
    Prosody instance with its own config file and C(data_path) is handled by pointing O(config) at it.
  - Checks the password without changing it, by recomputing the SCRAM-SHA-1 (or SCRAM-SHA-256, told
    apart by the stored key length) keys from the stored salt and iteration count and comparing them with
    the stored ones. A run with the same password therefore reports no change.
  - Writes with C(prosodyctl --config CONFIG register USER HOST) and removes with
    C(prosodyctl --config CONFIG unregister USER HOST), the password given on standard input, never on a
    command line. Prosody writes the file itself (owner C(prosody), mode C(0640)). After a write the
    account file is read back and the password checked again.
  - The password is never logged and never returned; the diff only says whether it is set or changed.
  - Must run as root (C(become)), because the config and the account files are readable by root and
    C(prosody) only.
notes:
  - Re-keying rewrites the account record as C(prosodyctl register) does. On Prosody 13 that resets the
    record's C(created) time and enables an account that was disabled (a warning says so).
  - Accounts created this way get no explicit role on Prosody 13, like accounts created by
    C(prosodyctl register) (Jitsi Meet's own packaging); give admin rights with the C(admins) option.
  - Hosts that keep accounts in another storage (C(storage = "sql")) are refused, because their accounts
    cannot be read from files.
  - A running Prosody sees the change at once (file storage is not cached); existing sessions of a
    removed or re-keyed account stay connected until they disconnect.
options:
  name:
    description:
      - Local part of the account (the C(focus) in C(focus@auth.meet.example.com)).
      - Prepared as Prosody does (nodeprep), so C(Focus) and C(focus) are the same account.
    type: str
    required: true
    aliases: [user]
  host:
    description:
      - The C(VirtualHost) the account belongs to, as configured in O(config), for example
        C(auth.meet.example.com). A C(Component) cannot hold accounts.
    type: str
    required: true
  password:
    description:
      - The password. Required with O(state=present). Never logged or returned.
      - Must be valid under SASLprep (no control characters such as newlines); Prosody prepares it the
        same way before hashing.
    type: str
  state:
    description: Whether the account exists.
    type: str
    choices: [present, absent]
    default: present
  update_password:
    description:
      - V(always) sets the password of an existing account when it differs from O(password).
      - V(on_create) sets it only when the account is created, and leaves an existing account alone.
    type: str
    choices: [always, on_create]
    default: always
  roster:
    description:
      - Contacts the account's roster must hold, each with its subscription state; other contacts are left
        alone. Not managed when omitted.
      - Jicofo's C(focus) account needs C(focus.<domain>), Jitsi's client proxy component, with subscription
        C(from), so the component receives focus's presence; this is what C(prosodyctl mod_roster_command
        subscribe) makes in Jitsi's packaging.
      - Written to Prosody's roster file (C(<data_path>/<host>/roster/<user>.dat), owner C(prosody), mode
        C(0640)). A running Prosody keeps the roster of an online account in memory, so restart Prosody (or
        let the account log in again) after a change.
    type: list
    elements: dict
    suboptions:
      jid:
        description: The contact's bare JID (or a component's domain).
        type: str
        required: true
      subscription:
        description: The subscription state, as in RFC 6121.
        type: str
        choices: [from, to, both]
        default: from
  config:
    description:
      - The Prosody config file of the instance, for example C(/etc/prosody-jvb/prosody.cfg.lua) for a
        second instance. Its C(data_path) (default C(/var/lib/prosody)) tells where the accounts are.
    type: path
    default: /etc/prosody/prosody.cfg.lua
  prosodyctl:
    description:
      - Path of C(prosodyctl). By default it is looked up in C(PATH).
      - Its first line names the Lua interpreter used to read the config.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: debian
requirements:
  - Prosody 0.12 or 13 installed on the target (C(prosodyctl) and its Lua interpreter).
author:
  - meetops.jitsi maintainers (@meetops)
"""

EXAMPLES = r"""
- name: Jicofo's account on the auth domain
  meetops.jitsi.prosody_account:
    name: focus
    host: auth.meet.example.com
    password: "{{ jicofo_auth_password }}"
  become: true

- name: A videobridge account on the second Prosody instance, password kept once created
  meetops.jitsi.prosody_account:
    name: jvb1
    host: auth.meet.example.com
    password: "{{ jvb_auth_password }}"
    update_password: on_create
    config: /etc/prosody-jvb/prosody.cfg.lua
  become: true

- name: Remove an old account
  meetops.jitsi.prosody_account:
    name: jibri
    host: auth.meet.example.com
    state: absent
  become: true
"""

RETURN = r"""
jid:
  description: The account's JID, with the user and host prepared as Prosody does.
  returned: always
  type: str
  sample: focus@auth.meet.example.com
account_file:
  description:
    - The account file in Prosody's data directory (whether or not it exists).
  returned: always
  type: str
  sample: /var/lib/prosody/auth%2emeet%2eexample%2ecom/accounts/focus.dat
created:
  description: Whether the account was (or in check mode would be) created.
  returned: always
  type: bool
  sample: true
password_changed:
  description: Whether the password of an existing account was (or in check mode would be) set.
  returned: always
  type: bool
  sample: false
removed:
  description: Whether the account was (or in check mode would be) removed.
  returned: always
  type: bool
  sample: false
roster_changed:
  description: Whether the roster was (or in check mode would be) written.
  returned: always
  type: bool
  sample: true
"""

import hashlib
import hmac
import json
import os
import pwd
import re
import tempfile
from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meetops.jitsi.plugins.module_utils._saslprep import saslprep

DEFAULT_CONFIG = "/etc/prosody/prosody.cfg.lua"
PROBE_MARKER = "PROSODY_ACCOUNT_PROBE "
SUPPORTED_AUTHENTICATION = ("internal_hashed", "internal_plain")
# Hex length of a stored key -> hash of the SCRAM mechanism it was made for (Prosody's password_hash).
HASH_BY_KEY_LENGTH = {40: "sha1", 64: "sha256"}

# Run by the Lua interpreter from prosodyctl's first line, with prosodyctl's path, the config file, the
# host and the user as arguments. It sets up Lua's search paths as prosodyctl does, loads the config
# with Prosody's configmanager and prints one marked JSON line. It never sees the password.
PROBE = r"""
local ctl, config_file, host, user = ...
for line in io.lines(ctl) do
    local k, _, v = line:match("^(CFG_[%u_]+)%s*=%s*(['\"])(.-)%2")
    if k then _G[k] = v end
end
local source = CFG_SOURCEDIR or "/usr/lib/prosody"
package.path = source .. "/?.lua;" .. package.path
package.cpath = source .. "/?.so;" .. package.cpath
if not pcall(require, "prosody.loader") then pcall(require, "loader") end
local function req(name)
    local ok, mod = pcall(require, "prosody." .. name)
    if ok then return mod end
    return require(name)
end
local json = req "util.json"
local function emit(t) io.stdout:write("\nPROSODY_ACCOUNT_PROBE ", json.encode(t), "\n") end
local cm = req "core.configmanager"
if cm.set_credential_fallback_mode then cm.set_credential_fallback_mode("warn") end
local ok, level, err = cm.load(config_file)
if not ok then return emit({ error = tostring(level), message = tostring(err) }) end
local stringprep = req "util.encodings".stringprep
local h, u = stringprep.nameprep(host), stringprep.nodeprep(user, true)
local config = cm.getconfig()
local virtual_hosts = {}
for name, section in pairs(config) do
    if name ~= "*" and type(section) == "table" and rawget(section, "defined")
        and not rawget(section, "component_module") then
        virtual_hosts[#virtual_hosts + 1] = name
    end
end
table.sort(virtual_hosts)
local result = { host = h, user = u, virtual_hosts = table.concat(virtual_hosts, " "),
    data_path = cm.get("*", "data_path") or CFG_DATADIR or "data" }
local section = h and rawget(config, h)
if type(section) == "table" and rawget(section, "component_module") then
    result.component = rawget(section, "component_module")
elseif type(section) == "table" and rawget(section, "defined") then
    result.defined = true
    result.enabled = cm.get(h, "enabled") ~= false
    result.authentication = cm.get(h, "authentication") or "internal_hashed"
    local storage, driver, roster = cm.get(h, "storage"), nil, nil
    if type(storage) == "string" then driver, roster = storage, storage
    elseif type(storage) == "table" then driver, roster = storage.accounts, storage.roster end
    result.storage = driver or cm.get(h, "default_storage") or "internal"
    result.roster_storage = roster or cm.get(h, "default_storage") or "internal"
end
emit(result)
"""


class LuaDataError(ValueError):
    """The text is not a Lua data table of the form Prosody's serializer writes."""


class ProsodyError(Exception):
    """A problem the user has to fix; the message names the bad value and the fix."""


# ---------------------------------------------------------------------------------------------------
# Parsing the account file: `return { ["key"] = value; ... };`, as util.serialization writes it.
# ---------------------------------------------------------------------------------------------------

SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    '"': 34,
    "'": 39,
    "\n": 10,
}
NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?",
)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAMED_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
DECIMAL_ESCAPE = re.compile(r"[0-9]{1,3}")
HEX_ESCAPE = re.compile(r"x([0-9a-fA-F]{2})")
UNICODE_ESCAPE = re.compile(r"u\{([0-9a-fA-F]{1,8})\}")
LUA_KEYWORDS = frozenset(("true", "false", "nil", "and", "or", "not", "function", "return", "end"))
SPECIAL_NUMBERS = {"(1/0)": float("inf"), "(-1/0)": float("-inf"), "(0/0)": float("nan")}


class LuaDataParser:
    """Recursive-descent parser for Lua literals: tables, strings, numbers, booleans and nil.

    Lua strings are byte strings: the text is read as Latin-1 (one character per byte) and each string
    value is decoded from UTF-8 at the end, invalid bytes kept as surrogate escapes.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> LuaDataError:
        line = self.text.count("\n", 0, self.pos) + 1
        return LuaDataError(f"{what} at line {line} (offset {self.pos})")

    def skip(self) -> None:
        while self.pos < len(self.text):
            if self.text[self.pos] in " \t\r\n\f\v":
                self.pos += 1
            elif self.text.startswith("--", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end + 1
            else:
                return

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        if not self.peek(token):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def document(self) -> object:
        self.skip()
        match = NAME.match(self.text, self.pos)
        if match and match.group() == "return":
            self.pos = match.end()
        value = self.value()
        if self.peek(";"):
            self.pos += 1
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the value")
        return value

    def value(self) -> object:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("unexpected end of data")
        char = self.text[self.pos]
        if char == "{":
            return self.table()
        if char in "\"'":
            return self.string()
        for literal, number in SPECIAL_NUMBERS.items():
            if self.text.startswith(literal, self.pos):
                self.pos += len(literal)
                return number
        if char == "-":
            self.pos += 1
            number = self.number()
            return -number
        if char.isdigit() or char == ".":
            return self.number()
        match = NAME.match(self.text, self.pos)
        if match and match.group() in ("true", "false", "nil"):
            self.pos = match.end()
            return {"true": True, "false": False, "nil": None}[match.group()]
        raise self.fail(f"unexpected {char!r}")

    def number(self) -> int | float:
        self.skip()
        match = NUMBER.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a number")
        self.pos = match.end()
        token = match.group()
        if token[:2] in ("0x", "0X"):
            return int(token, 16)
        if re.fullmatch(r"[0-9]+", token):
            return int(token)
        return float(token)

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out = bytearray()
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string")
            char = self.text[self.pos]
            if char == quote:
                self.pos += 1
                return out.decode("utf-8", "surrogateescape")
            if char == "\n":
                raise self.fail("newline in string")
            if char == "\\":
                self.pos += 1
                self.escape(out)
            else:
                out.append(ord(char))
                self.pos += 1

    def escape(self, out: bytearray) -> None:
        text, pos = self.text, self.pos
        char = text[pos : pos + 1]
        if char in SIMPLE_ESCAPES:
            out.append(SIMPLE_ESCAPES[char])
            self.pos += 1
        elif match := HEX_ESCAPE.match(text, pos):
            out.append(int(match.group(1), 16))
            self.pos = match.end()
        elif match := DECIMAL_ESCAPE.match(text, pos):
            if int(match.group()) > 255:
                raise self.fail(f"decimal escape \\{match.group()} too large")
            out.append(int(match.group()))
            self.pos = match.end()
        elif char == "z":
            self.pos += 1
            while self.pos < len(text) and text[self.pos] in " \t\r\n\f\v":
                self.pos += 1
        elif (match := UNICODE_ESCAPE.match(text, pos)) and int(match.group(1), 16) <= 0x10FFFF:
            out.extend(chr(int(match.group(1), 16)).encode("utf-8", "surrogatepass"))
            self.pos = match.end()
        else:
            raise self.fail(f"invalid escape \\{char}")

    def table(self) -> dict[object, object]:
        self.expect("{")
        result: dict[object, object] = {}
        index = 1
        while not self.peek("}"):
            if self.peek("["):
                self.pos += 1
                key = self.value()
                if not isinstance(key, (str, int, float)):
                    raise self.fail(f"unsupported table key {key!r}")
                if key in result:
                    # Also [false] beside [0] (or [true] beside [1]): one key in Python. Rosters use [false]
                    # for their metadata and no numeric keys.
                    raise self.fail(f"duplicate table key {key!r}")
                self.expect("]")
                self.expect("=")
                result[key] = self.value()
            elif (match := NAMED_FIELD.match(self.text, self.pos)) and match.group(1) not in LUA_KEYWORDS:
                self.pos = match.end()
                result[match.group(1)] = self.value()
            else:
                result[index] = self.value()
                index += 1
            if self.peek(";") or self.peek(","):
                self.pos += 1
            elif not self.peek("}"):
                raise self.fail("expected ';', ',' or '}'")
        self.pos += 1
        return result


def parse_lua_data(text: str | bytes) -> object:
    """Parse Prosody's serialized data (`return { ... };`) without evaluating it."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return LuaDataParser(text).document()


# ---------------------------------------------------------------------------------------------------
# Where Prosody keeps the account.
# ---------------------------------------------------------------------------------------------------


def encode_path_component(value: str) -> str:
    """Encode a user or host name as Prosody's datamanager does: every byte but [A-Za-z0-9] as %xx."""
    return "".join(
        chr(byte) if chr(byte).isascii() and chr(byte).isalnum() else f"%{byte:02x}"
        for byte in value.encode("utf-8")
    )


def account_path(data_path: str, host: str, user: str, store: str = "accounts") -> str:
    return os.path.join(data_path, encode_path_component(host), store, encode_path_component(user) + ".dat")


# ---------------------------------------------------------------------------------------------------
# The roster: the same serialization, written back.
# ---------------------------------------------------------------------------------------------------


def lua_quote(value: str) -> str:
    """A Lua string literal for `value` (what util.serialization writes for strings)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def lua_serialize(value: object, depth: int = 0) -> str:
    """Lua data in the form Prosody's file storage writes and reads: tables, strings, numbers, booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return lua_quote(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "\t" * (depth + 1)
        items = sorted(value.items(), key=lambda item: (item[0] is not False, str(item[0])))
        lines = [f"{pad}[{lua_serialize(key)}] = {lua_serialize(item, depth + 1)};" for key, item in items]
        return "{\n" + "\n".join(lines) + "\n" + "\t" * depth + "}"
    raise LuaDataError(f"cannot write a {type(value).__name__} into a roster")


def wanted_roster(
    current: dict[object, object] | None, contacts: list[dict[str, str]]
) -> dict[object, object]:
    """The roster with each contact at its subscription, everything else as it was."""
    roster: dict[object, object] = dict(current or {})
    meta = roster.get(False)
    roster[False] = dict(meta) if isinstance(meta, dict) else {"version": 1, "pending": {}}
    for contact in contacts:
        item = roster.get(contact["jid"])
        item = dict(item) if isinstance(item, dict) else {"groups": {}}
        item["subscription"] = contact["subscription"]
        item.setdefault("groups", {})
        roster[contact["jid"]] = item
    return roster


def roster_differs(current: dict[object, object] | None, contacts: list[dict[str, str]]) -> bool:
    if current is None:
        return bool(contacts)
    for contact in contacts:
        item = current.get(contact["jid"])
        if not isinstance(item, dict) or item.get("subscription") != contact["subscription"]:
            return True
    return False


# ---------------------------------------------------------------------------------------------------
# SASLprep (RFC 4013) and SCRAM (RFC 5802, RFC 7677).
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScramKeys:
    salted_password: bytes
    client_key: bytes
    stored_key: bytes
    server_key: bytes


def scram_keys(password: str, salt: bytes, iterations: int, hash_name: str = "sha1") -> ScramKeys:
    """Derive the SCRAM keys of RFC 5802 section 3 from an already prepared password."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    return ScramKeys(
        salted_password=salted,
        client_key=client_key,
        stored_key=hashlib.new(hash_name, client_key).digest(),
        server_key=hmac.new(salted, b"Server Key", hash_name).digest(),
    )


def password_matches(record: dict[object, object], password: str) -> bool:
    """Tell whether an account record accepts the password, the way mod_auth_internal_hashed checks it.

    A plaintext `password` field (internal_plain, or an account not yet upgraded) is compared after
    SASLprep; otherwise the SCRAM keys are recomputed from the stored salt and iteration count (Prosody
    uses the salt string's bytes as they are) and compared with the stored hex keys. A record without
    complete credentials, such as a disabled Prosody 13 account created without a password, never
    matches.
    """
    prepared = saslprep(password)
    plain = record.get("password")
    if isinstance(plain, str) and plain:
        try:
            return hmac.compare_digest(saslprep(plain).encode("utf-8"), prepared.encode("utf-8"))
        except ValueError:
            return False
    salt, iterations = record.get("salt"), record.get("iteration_count")
    stored, server = record.get("stored_key"), record.get("server_key")
    if not (isinstance(salt, str) and salt and isinstance(stored, str) and isinstance(server, str)):
        return False
    if isinstance(iterations, float) and iterations.is_integer():
        iterations = int(iterations)
    hash_name = HASH_BY_KEY_LENGTH.get(len(stored))
    if not isinstance(iterations, int) or iterations < 1 or hash_name is None:
        return False
    keys = scram_keys(prepared, salt.encode("utf-8", "surrogateescape"), iterations, hash_name)
    return hmac.compare_digest(keys.stored_key.hex(), stored.lower()) and hmac.compare_digest(
        keys.server_key.hex(), server.lower()
    )


# ---------------------------------------------------------------------------------------------------
# Deciding what to do.
# ---------------------------------------------------------------------------------------------------

CREATE = "create"
UPDATE = "update"
REMOVE = "remove"
NOTHING = "nothing"


def decide(state: str, exists: bool, matches: bool | None, update_password: str) -> str:
    """Return the action: create, update (set the password), remove or nothing.

    matches is whether the existing account accepts the wanted password; None when it was not checked.
    """
    if state == "absent":
        return REMOVE if exists else NOTHING
    if not exists:
        return CREATE
    if update_password == "always" and not matches:
        return UPDATE
    return NOTHING


def make_diff(jid: str, action: str, exists: bool) -> dict[str, str]:
    """Before/after text of the account: existence and whether the password changes, never the value."""
    before = f"{jid}: present\n" if exists else f"{jid}: absent\n"
    if action == CREATE:
        after = f"{jid}: present\npassword: (set)\n"
    elif action == UPDATE:
        before += "password: (current)\n"
        after = f"{jid}: present\npassword: (changed)\n"
    elif action == REMOVE:
        after = f"{jid}: absent\n"
    else:
        after = before
    return {"before_header": jid, "after_header": jid, "before": before, "after": after}


# ---------------------------------------------------------------------------------------------------
# Talking to the target's Prosody.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What Prosody's config says about the account's host."""

    user: str
    host: str
    data_path: str
    path: str
    roster_storage: str = "internal"

    @property
    def jid(self) -> str:
        return f"{self.user}@{self.host}"


def parse_probe_output(stdout: str) -> dict[str, object] | None:
    """The config loader's answer: the last line that starts with the marker, as JSON."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROBE_MARKER):
            return json.loads(line[len(PROBE_MARKER) :])
    return None


def check_probe(info: dict[str, object], config: str, name: str, host: str) -> Target:
    """Turn the config loader's answer into a Target, or raise naming what is wrong and how to fix it."""
    if info.get("error"):
        hint = "; run the task as root (become: true)" if "denied" in str(info.get("message")) else ""
        raise ProsodyError(
            f"Prosody could not load config={config} ({info['error']}): {info.get('message')}{hint}"
        )
    if not info.get("user"):
        raise ProsodyError(
            f"name={name!r} is not a valid XMPP local part (Prosody's nodeprep refuses it); "
            "use letters, digits and . _ - without spaces or any of \"&'/:<>@"
        )
    if not info.get("host"):
        raise ProsodyError(f"host={host!r} is not a valid domain name (Prosody's nameprep refuses it)")
    prepped_host = str(info["host"])
    configured = str(info.get("virtual_hosts") or "").split()
    if info.get("component"):
        raise ProsodyError(
            f"host={prepped_host} is a Component ({info['component']}) in config={config}, which has no "
            f"accounts; use a VirtualHost that holds accounts (configured there: {', '.join(configured)})"
        )
    if not info.get("defined"):
        raise ProsodyError(
            f"host={prepped_host} is not a VirtualHost in config={config} (configured there: "
            f"{', '.join(configured) or 'none'}); add 'VirtualHost \"{prepped_host}\"' to that config "
            "(or an Include'd file) first, or point config at the instance that serves it"
        )
    if not info.get("enabled", True):
        raise ProsodyError(
            f"VirtualHost {prepped_host} has 'enabled = false' in config={config}; enable it first"
        )
    authentication = info.get("authentication")
    if authentication not in SUPPORTED_AUTHENTICATION:
        raise ProsodyError(
            f"VirtualHost {prepped_host} uses authentication = {authentication!r} in config={config}; "
            f"this module manages accounts of {' and '.join(SUPPORTED_AUTHENTICATION)} hosts only"
        )
    if info.get("storage") != "internal":
        raise ProsodyError(
            f"VirtualHost {prepped_host} keeps accounts in storage {info.get('storage')!r} "
            f"in config={config}; "
            'this module reads Prosody\'s file storage (storage = "internal", the default) only'
        )
    data_path = str(info.get("data_path") or "")
    if not os.path.isabs(data_path):
        raise ProsodyError(
            f"data_path {data_path!r} in config={config} is relative, so it depends on Prosody's working "
            "directory; set an absolute data_path in that config"
        )
    user = str(info["user"])
    return Target(
        user=user,
        host=prepped_host,
        data_path=data_path,
        path=account_path(data_path, prepped_host, user),
        roster_storage=str(info.get("roster_storage") or "internal"),
    )


def find_prosodyctl(module: AnsibleModule) -> str:
    path = module.params["prosodyctl"]
    if path:
        if not os.access(path, os.X_OK):
            module.fail_json(
                msg=f"prosodyctl={path} is not an executable file; install prosody or fix the path"
            )
        return path
    found = module.get_bin_path("prosodyctl", opt_dirs=["/usr/sbin", "/usr/bin", "/usr/local/bin"])
    if not found:
        module.fail_json(
            msg="prosodyctl was not found in PATH; install the prosody package (apt-get install prosody) "
            "or set prosodyctl=/path/to/prosodyctl"
        )
    return found


def lua_interpreter(module: AnsibleModule, prosodyctl: str) -> str:
    """The interpreter named in prosodyctl's first line (`#!/usr/bin/env lua5.4` or `#!/usr/bin/lua5.2`)."""
    with open(prosodyctl, "rb") as handle:
        first = handle.readline().decode("utf-8", "replace").strip()
    words = first[2:].split() if first.startswith("#!") else []
    if not words:
        module.fail_json(msg=f"{prosodyctl} does not start with a '#!' line naming its Lua interpreter")
    name = words[-1] if os.path.basename(words[0]) == "env" else words[0]
    found = name if os.path.isabs(name) and os.access(name, os.X_OK) else module.get_bin_path(name)
    if not found:
        module.fail_json(
            msg=f"the Lua interpreter {name!r} named in {prosodyctl}'s first line was not found; "
            "reinstall prosody so its Lua dependency is installed"
        )
    return found


def probe(module: AnsibleModule, prosodyctl: str, config: str, name: str, host: str) -> Target:
    """Ask Prosody's config loader about the account's host; fail naming the problem and its fix."""
    lua = lua_interpreter(module, prosodyctl)
    rc, out, err = module.run_command(
        [lua, "-", prosodyctl, config, host, name], data=PROBE, binary_data=True
    )
    info = parse_probe_output(out)
    if info is None:
        module.fail_json(
            msg=f"reading config={config} with Prosody's config loader ({lua}) failed (rc={rc}): "
            + (err or out).strip()[-2000:]
        )
    try:
        return check_probe(info, config, name, host)
    except ProsodyError as exc:
        module.fail_json(msg=str(exc))
        raise  # fail_json exits; this only tells type checkers so


def read_account(
    module: AnsibleModule, path: str, what: str = "an account file"
) -> dict[object, object] | None:
    """The account record (or roster), or None when the file does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except PermissionError:
        module.fail_json(msg=f"cannot read {path}: permission denied; run the task as root (become: true)")
    try:
        record = parse_lua_data(data)
    except LuaDataError as exc:
        module.fail_json(msg=f"{path} is not {what} Prosody wrote: {exc}; check or remove it")
    if not isinstance(record, dict):
        module.fail_json(msg=f"{path} does not hold a table; check or remove it")
    return record


def scrub(text: str, password: str | None) -> str:
    """prosodyctl output without the password (it does not echo it; this is a second guard)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if password:
        text = text.replace(password, "********")
    return text.strip()


def run_prosodyctl(module: AnsibleModule, argv: list[str], password: str | None) -> None:
    # register prompts twice ("Enter new password", "Retype new password") and reads lines from stdin.
    data = f"{password}\n{password}\n" if password is not None else ""
    rc, out, err = module.run_command(argv, data=data, binary_data=True)
    if rc != 0:
        module.fail_json(msg=f"{' '.join(argv)} failed (rc={rc}): {scrub(out + chr(10) + err, password)}")


def write_roster(module: AnsibleModule, path: str, roster: dict[object, object]) -> None:
    """Write the roster file as Prosody's file storage does: owner prosody, mode 0640."""
    try:
        owner = pwd.getpwnam("prosody")
    except KeyError:
        module.fail_json(msg="there is no user prosody on this host; install prosody first")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o750)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    fd, tmp = tempfile.mkstemp(dir=module.tmpdir)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("return " + lua_serialize(roster) + ";\n")
    module.atomic_move(tmp, path)
    # atomic_move gives a new file root's ownership; Prosody's own files are prosody's, mode 0640.
    os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(path, 0o640)


def roster_summary(roster: dict[object, object] | None) -> str:
    """One line per contact, for the diff."""
    items = sorted((roster or {}).items(), key=lambda pair: str(pair[0]))
    return "".join(
        f"{jid}: {item.get('subscription')}\n"
        for jid, item in items
        if jid is not False and isinstance(item, dict)
    )


def ensure_roster(
    module: AnsibleModule, target: Target, contacts: list[dict[str, str]], diff: dict[str, str]
) -> bool:
    """Put the contacts into the account's roster, adding it to the diff; whether it changed."""
    if target.roster_storage != "internal":
        module.fail_json(
            msg=f"VirtualHost {target.host} keeps rosters in storage {target.roster_storage!r}; roster= "
            'needs Prosody\'s file storage (storage = "internal")'
        )
    path = account_path(target.data_path, target.host, target.user, "roster")
    current = read_account(module, path, "a roster file")
    changed = roster_differs(current, contacts)
    wanted = wanted_roster(current, contacts) if changed else current
    if changed and not module.check_mode:
        write_roster(module, path, wanted)
    diff["before"] += "roster:\n" + roster_summary(current)
    diff["after"] += "roster:\n" + roster_summary(wanted)
    return changed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True, "aliases": ["user"]},
            "host": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "update_password": {
                "type": "str",
                "choices": ["always", "on_create"],
                "default": "always",
                "no_log": False,
            },
            "config": {"type": "path", "default": DEFAULT_CONFIG},
            "prosodyctl": {"type": "path"},
            "roster": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "jid": {"type": "str", "required": True},
                    "subscription": {"type": "str", "choices": ["from", "to", "both"], "default": "from"},
                },
            },
        },
        required_if=[("state", "present", ["password"])],
        supports_check_mode=True,
    )
    params = module.params
    state: str = params["state"]
    password: str | None = params["password"] if state == "present" else None
    config: str = params["config"]

    if password is not None:
        try:
            if not saslprep(password):
                raise ValueError("it is empty")
        except ValueError as exc:
            module.fail_json(msg=f"password is not usable by Prosody: {exc}; choose another password")
    if params["name"].startswith("-"):
        module.fail_json(msg=f"name={params['name']!r} starts with '-', which prosodyctl takes for an option")
    if not os.path.isfile(config):
        module.fail_json(msg=f"config={config} does not exist; give the Prosody config file of this instance")

    prosodyctl = find_prosodyctl(module)
    target = probe(module, prosodyctl, config, params["name"], params["host"])
    record = read_account(module, target.path)
    exists = record is not None
    matches = None
    if exists and password is not None and params["update_password"] == "always":
        matches = password_matches(record, password)
    action = decide(state, exists, matches, params["update_password"])

    if action == UPDATE and record.get("disabled"):
        module.warn(f"{target.jid} is disabled; setting its password through prosodyctl register enables it")

    if action != NOTHING and not module.check_mode:
        base = [prosodyctl, "--config", config]
        if action == REMOVE:
            run_prosodyctl(module, [*base, "unregister", target.user, target.host], None)
            if os.path.exists(target.path):
                module.fail_json(msg=f"prosodyctl unregister succeeded but {target.path} still exists")
        else:
            run_prosodyctl(module, [*base, "register", target.user, target.host], password)
            written = read_account(module, target.path)
            if written is None or not password_matches(written, password):
                module.fail_json(
                    msg=f"prosodyctl register succeeded but {target.path} does not hold the new password; "
                    f"check that data_path in config={config} is the one this Prosody uses"
                )

    diff = make_diff(target.jid, action, exists)
    managed = params["roster"] is not None and state == "present"
    roster_changed = managed and ensure_roster(module, target, params["roster"], diff)

    module.exit_json(
        changed=action != NOTHING or roster_changed,
        jid=target.jid,
        account_file=target.path,
        created=action == CREATE,
        password_changed=action == UPDATE,
        removed=action == REMOVE,
        roster_changed=roster_changed,
        diff=diff,
    )


if __name__ == "__main__":
    main()
