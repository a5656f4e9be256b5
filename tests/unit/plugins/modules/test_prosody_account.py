"""Unit tests for the prosody_account module: SCRAM, SASLprep, the account file parser, paths, decisions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import sys
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.meetops.jitsi.plugins.modules import prosody_account as mod

# Account files captured from real Prosody installs in the lab (Debian 12: Prosody 0.12.3, Debian 13:
# Prosody 13.0.1), written by `prosodyctl register` with the passwords named next to them.
FOCUS_012 = """return {
\t["iteration_count"] = 10000;
\t["salt"] = "1f68584e-d233-44a3-861c-5195bbbfd7ff";
\t["server_key"] = "a5ab4852859aa7fc7180d32b8882d19794144563";
\t["stored_key"] = "3f5cda721eeb3c3a54320c6b74b286396d3c5590";
};
"""
FOCUS_013 = """return {
\t["server_key"] = "83d9f9883150aba032bbdae9bdbd58c7cc984ab4";
\t["stored_key"] = "08f35e0e869b90182aee4898883c72309059521e";
\t["created"] = 1795283242;
\t["updated"] = 1795283242;
\t["iteration_count"] = 10000;
\t["salt"] = "f9f22583-3750-4af0-8011-51721b0afd25";
};
"""
FOCUS_PASSWORD = "s3cret pw"

# Prosody 13, host with password_hash = "SHA-256"; password "second-Pass".
SHA256_013 = """return {
\t["server_key"] = "3082b8b547f127ee25e7c791ff130f209a94f5d436279a3025a2f2edec4a3fb2";
\t["created"] = 1795283643;
\t["updated"] = 1795283643;
\t["stored_key"] = "a2d6a9f6c60a325584531ae9f91e0cb59587f3f15a79c26febbcf3c2296e037d";
\t["iteration_count"] = 10000;
\t["salt"] = "f1c5bb16-3fa6-4c49-8657-5e4e66e04bf9";
};
"""

# Prosody 13, after `prosodyctl shell user disable`; password "second-Pass".
DISABLED_013 = """return {
\t["stored_key"] = "f80481761add74521cce853c0b2d1257170ba1af";
\t["updated"] = 1795283658;
\t["salt"] = "28cbed20-7361-48bd-ac11-b829a676dbe9";
\t["created"] = 1795283619;
\t["server_key"] = "49ab8cf5a94db14268aca5c707902a0a0042c20d";
\t["iteration_count"] = 10000;
\t["disabled"] = true;
};
"""

# Prosody 0.12, user jürgen, registered with "pässwörd<NO-BREAK SPACE>x<SOFT HYPHEN>y".
UNICODE_012 = """return {
\t["server_key"] = "bb9c2e4c1f6c4206a9f7500b2520c669c536bfe7";
\t["salt"] = "8e276899-8eed-409b-a104-8b43ecfb1a54";
\t["iteration_count"] = 10000;
\t["stored_key"] = "284da41faa25378cf10625088c7ff9ed1731fe01";
};
"""

# Written by Prosody 13's util.serialization (lua5.4) from
# { password = "q\"u'o\\te\n\t\0\127é€😀", n = 1.5, neg = -3, big = 2^53, flag = false,
#   disabled_meta = { reason = "spam", when = 1795283658 }, list = { "a", "b" }, [5] = "five" }
SERIALIZED_013 = """return {
\t[5] = "five";
\t["password"] = "q\\"u\\'o\\\\te\\n\\t\\000\\127\\195\\169\\226\\130\\172\\240\\159\\152\\128";
\t["list"] = {
\t\t"a";
\t\t"b";
\t};
\t["disabled_meta"] = {
\t\t["reason"] = "spam";
\t\t["when"] = 1795283658;
\t};
\t["n"] = 1.5;
\t["neg"] = -3;
\t["big"] = 9007199254740992;
\t["flag"] = false;
};
"""
SERIALIZED_VALUE = {
    5: "five",
    "password": "q\"u'o\\te\n\t\x00\x7fé€😀",
    "list": {1: "a", 2: "b"},
    "disabled_meta": {"reason": "spam", "when": 1795283658},
    "n": 1.5,
    "neg": -3,
    "big": 9007199254740992,
    "flag": False,
}


# --- SCRAM -----------------------------------------------------------------------------------------


def client_proof_and_server_signature(keys: mod.ScramKeys, auth_message: bytes, hash_name: str):
    client_signature = hmac.new(keys.stored_key, auth_message, hash_name).digest()
    proof = bytes(a ^ b for a, b in zip(keys.client_key, client_signature, strict=True))
    server_signature = hmac.new(keys.server_key, auth_message, hash_name).digest()
    return base64.b64encode(proof).decode(), base64.b64encode(server_signature).decode()


def test_scram_sha1_matches_rfc5802_example():
    """RFC 5802 section 5: the published ClientProof and ServerSignature follow from the derived keys."""
    keys = mod.scram_keys("pencil", base64.b64decode("QSXCR+Q6sek8bf92"), 4096)
    assert keys.salted_password.hex() == "1d96ee3a529b5a5f9e47c01f229a2cb8a6e15f7d"
    assert keys.client_key.hex() == "e234c47bf6c36696dd6d852b99aaa2ba26555728"
    assert keys.stored_key.hex() == "e9d94660c39d65c38fbad91c358f14da0eef2bd6"
    assert keys.server_key.hex() == "0fe09258b3ac852ba502cc62ba903eaacdbf7d31"
    nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
    auth_message = f"n=user,r=fyko+d2lbbFgONRv9qkxdawL,r={nonce},s=QSXCR+Q6sek8bf92,i=4096,c=biws,r={nonce}"
    assert client_proof_and_server_signature(keys, auth_message.encode(), "sha1") == (
        "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    )


def test_scram_sha256_matches_rfc7677_example():
    keys = mod.scram_keys("pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096, "sha256")
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (
        f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}"
    )
    assert client_proof_and_server_signature(keys, auth_message.encode(), "sha256") == (
        "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    )


def test_scram_keys_follow_the_rfc_definitions():
    """StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key")."""
    keys = mod.scram_keys("other", b"salt", 7)
    salted = hashlib.pbkdf2_hmac("sha1", b"other", b"salt", 7)
    assert keys.salted_password == salted
    assert keys.stored_key == hashlib.sha1(hmac.new(salted, b"Client Key", "sha1").digest()).digest()
    assert keys.server_key == hmac.new(salted, b"Server Key", "sha1").digest()


@pytest.mark.parametrize(
    ("text", "password"),
    [
        (FOCUS_012, FOCUS_PASSWORD),
        (FOCUS_013, FOCUS_PASSWORD),
        (SHA256_013, "second-Pass"),
        (DISABLED_013, "second-Pass"),
        (UNICODE_012, "pässwörd\u00a0x\u00ady"),
        (UNICODE_012, "pässwörd xy"),  # the same password after SASLprep, as Prosody sees it
    ],
    ids=["0.12", "13", "13-sha256", "13-disabled", "0.12-unicode", "0.12-unicode-prepared"],
)
def test_password_matches_accounts_written_by_prosody(text: str, password: str):
    record = mod.parse_lua_data(text)
    assert mod.password_matches(record, password) is True
    assert mod.password_matches(record, password + "x") is False
    assert mod.password_matches(record, "S3cret pw") is False


def test_password_matches_accepts_upper_case_hex_and_float_iteration_count():
    record = mod.parse_lua_data(FOCUS_012)
    record["stored_key"] = record["stored_key"].upper()
    record["iteration_count"] = 10000.0
    assert mod.password_matches(record, FOCUS_PASSWORD) is True


def test_password_matches_plaintext_records_after_saslprep():
    """internal_plain, or a hashed host's account not yet upgraded, keeps the password in clear."""
    assert mod.password_matches({"password": "I\u00adX"}, "IX") is True
    assert mod.password_matches({"password": "IX"}, "ix") is False


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"created": 1, "updated": 1, "disabled": True},  # Prosody 13 account created without a password
        {"salt": "s", "iteration_count": 10000, "stored_key": "ab" * 20},  # no server_key
        {"salt": "", "iteration_count": 10000, "stored_key": "ab" * 20, "server_key": "ab" * 20},
        {"salt": "s", "iteration_count": 0, "stored_key": "ab" * 20, "server_key": "ab" * 20},
        {
            "salt": "s",
            "iteration_count": 10,
            "stored_key": "ab" * 24,
            "server_key": "ab" * 24,
        },  # unknown hash
    ],
)
def test_password_matches_is_false_for_incomplete_credentials(record: dict):
    assert mod.password_matches(record, "anything") is False


# --- SASLprep --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "prepared"),
    [
        ("I\u00adX", "IX"),  # RFC 4013 section 3 examples
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("pa\u00a0ss", "pa ss"),  # non-ASCII space maps to SPACE
        ("s3cret pw", "s3cret pw"),
    ],
)
def test_saslprep_maps_and_normalizes(given: str, prepared: str):
    assert mod.saslprep(given) == prepared


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("\u0007", "U+0007"),  # RFC 4013 example: prohibited character
        ("two\nlines", "U+000A"),
        ("\u0627\u0031", "right-to-left"),  # RFC 4013 example: bidi rule
        ("a\u0627b", "mixes"),
    ],
)
def test_saslprep_refuses(given: str, reason: str):
    with pytest.raises(ValueError, match=re.escape(reason)):
        mod.saslprep(given)


# --- the account file parser -----------------------------------------------------------------------


def test_parse_real_files_from_both_versions():
    assert mod.parse_lua_data(FOCUS_012) == {
        "iteration_count": 10000,
        "salt": "1f68584e-d233-44a3-861c-5195bbbfd7ff",
        "server_key": "a5ab4852859aa7fc7180d32b8882d19794144563",
        "stored_key": "3f5cda721eeb3c3a54320c6b74b286396d3c5590",
    }
    record = mod.parse_lua_data(FOCUS_013.encode())
    assert record["created"] == record["updated"] == 1795283242
    assert mod.parse_lua_data(DISABLED_013)["disabled"] is True


def test_parse_prosody_serializer_escapes_nesting_and_arrays():
    assert mod.parse_lua_data(SERIALIZED_013) == SERIALIZED_VALUE


def test_parse_other_lua_literal_forms():
    text = (
        "-- comment\nreturn { a = 'x\\65\\x41\\u{263A}\\z   y', [\"b\"] = 0x1F, c = -2.5e3, "
        "d = (1/0), e = (-1/0), f = nil, [2] = \"two\", 'pos' }"
    )
    value = mod.parse_lua_data(text)
    assert value == {
        "a": "xAA☺y",
        "b": 31,
        "c": -2500.0,
        "d": math.inf,
        "e": -math.inf,
        "f": None,
        2: "two",
        1: "pos",
    }
    assert math.isnan(mod.parse_lua_data("return (0/0);"))


def test_parse_keeps_invalid_utf8_bytes_round_trippable():
    value = mod.parse_lua_data('return { k = "\\255" };')
    assert value["k"].encode("utf-8", "surrogateescape") == b"\xff"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('return os.execute("touch /tmp/pwned");', "unexpected 'o'"),  # code is never run
        ('return { ["k"] = "unterminated };', "unterminated string"),
        ("return {} garbage", "unexpected text after the value"),
        ('return { "a" "b" }', "expected ';', ',' or '}'"),
        ('return { k = "\\q" }', "invalid escape"),
        ('return { k = "\\300" }', "too large"),
        ("return { k = [[long]] }", "unexpected '\\['"),
        ("return { k = ", "unexpected end of data"),
        ('return { k = "a\nb" }', "newline in string"),
        ("return { nil = 1 }", "expected ';', ',' or '}'"),  # a keyword is no field name
        ('return { [1] = "one", [true] = "t" }', "duplicate table key True"),
    ],
)
def test_parse_refuses_what_is_not_plain_data(text: str, error: str):
    with pytest.raises(mod.LuaDataError, match=error):
        mod.parse_lua_data(text)


# --- names and paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("auth.meet.example.com", "auth%2emeet%2eexample%2ecom"),
        ("focus", "focus"),
        ("Jvb1", "Jvb1"),
        ("a-b_c", "a%2db%5fc"),
        ("jürgen", "j%c3%bcrgen"),
    ],
)
def test_encode_path_component_like_prosody_datamanager(name: str, encoded: str):
    assert mod.encode_path_component(name) == encoded


def test_account_path_for_default_and_second_instance():
    assert (
        mod.account_path("/var/lib/prosody", "auth.example.test", "focus")
        == "/var/lib/prosody/auth%2eexample%2etest/accounts/focus.dat"
    )
    assert (
        mod.account_path("/var/lib/prosody-jvb", "auth.jvb.example.test", "jvb1")
        == "/var/lib/prosody-jvb/auth%2ejvb%2eexample%2etest/accounts/jvb1.dat"
    )


# --- reading the config loader's answer ------------------------------------------------------------

GOOD_PROBE = {
    "user": "focus",
    "host": "auth.example.test",
    "defined": True,
    "enabled": True,
    "authentication": "internal_hashed",
    "storage": "internal",
    "data_path": "/var/lib/prosody-jvb",
    "virtual_hosts": "auth.example.test localhost",
}


def test_parse_probe_output_finds_the_marked_line_among_warnings():
    out = "warn: something\n\nPROSODY_ACCOUNT_PROBE " + json.dumps(GOOD_PROBE) + "\n"
    assert mod.parse_probe_output(out) == GOOD_PROBE
    assert mod.parse_probe_output("lua: cannot open\n") is None


def test_check_probe_gives_the_target():
    target = mod.check_probe(GOOD_PROBE, "/etc/prosody-jvb/prosody.cfg.lua", "Focus", "auth.example.test")
    assert target.jid == "focus@auth.example.test"
    assert target.path == "/var/lib/prosody-jvb/auth%2eexample%2etest/accounts/focus.dat"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"error": "file", "message": "/etc/x.cfg.lua: Permission denied"}, "become: true"),
        ({"user": None}, "name='Focus' is not a valid XMPP local part"),
        ({"host": None}, "host='auth.example.test' is not a valid domain name"),
        ({"defined": None}, "host=auth.example.test is not a VirtualHost in config=/etc/x.cfg.lua"),
        ({"defined": None, "component": "muc"}, "is a Component \\(muc\\)"),
        ({"enabled": False}, "'enabled = false'"),
        ({"authentication": "ldap"}, "authentication = 'ldap'"),
        ({"storage": "sql"}, "storage 'sql'"),
        ({"data_path": "data"}, "data_path 'data' .* is relative"),
    ],
)
def test_check_probe_names_the_problem_and_the_fix(changes: dict, message: str):
    with pytest.raises(mod.ProsodyError, match=message):
        mod.check_probe({**GOOD_PROBE, **changes}, "/etc/x.cfg.lua", "Focus", "auth.example.test")


def test_scrub_removes_password_and_terminal_escapes():
    output = "Enter new password: \x1b[08m\x1b[00m\nerror near 'hunter2'"
    assert mod.scrub(output, "hunter2") == "Enter new password: \nerror near '********'"


class ModuleFailedError(Exception):
    pass


class FakeModule:
    """Just enough of AnsibleModule for the helpers that find programs."""

    def __init__(self, found: dict[str, str]) -> None:
        self.found = found

    def get_bin_path(self, name: str, opt_dirs=None) -> str | None:
        return self.found.get(name)

    def fail_json(self, msg: str, **_kwargs) -> None:
        raise ModuleFailedError(msg)


@pytest.mark.parametrize(
    ("first_line", "interpreter"),
    [
        ("#!/usr/bin/env lua5.4", "/usr/bin/lua5.4"),  # Debian 12 and 13
        (f"#!{sys.executable} -x", sys.executable),  # an absolute interpreter path is used as it is
    ],
)
def test_lua_interpreter_comes_from_prosodyctl_first_line(tmp_path: Path, first_line: str, interpreter: str):
    prosodyctl = tmp_path / "prosodyctl"
    prosodyctl.write_text(first_line + "\nCFG_SOURCEDIR='/usr/lib/prosody';\n")
    module = FakeModule({"lua5.4": "/usr/bin/lua5.4"})
    assert mod.lua_interpreter(module, str(prosodyctl)) == interpreter


def test_lua_interpreter_missing_names_it(tmp_path: Path):
    prosodyctl = tmp_path / "prosodyctl"
    prosodyctl.write_text("#!/usr/bin/env lua5.9\n")
    with pytest.raises(
        ModuleFailedError, match=r"'lua5\.9' named in .*prosodyctl's first line was not found"
    ):
        mod.lua_interpreter(FakeModule({}), str(prosodyctl))
    prosodyctl.write_bytes(b"\x7fELF")
    with pytest.raises(ModuleFailedError, match="does not start with a '#!' line"):
        mod.lua_interpreter(FakeModule({}), str(prosodyctl))


# --- decisions and diff ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "exists", "matches", "update_password", "action"),
    [
        ("present", False, None, "always", mod.CREATE),
        ("present", False, None, "on_create", mod.CREATE),
        ("present", True, True, "always", mod.NOTHING),
        ("present", True, False, "always", mod.UPDATE),
        ("present", True, None, "on_create", mod.NOTHING),
        ("absent", True, None, "always", mod.REMOVE),
        ("absent", False, None, "always", mod.NOTHING),
    ],
)
def test_decide(state: str, exists: bool, matches: bool | None, update_password: str, action: str):
    assert mod.decide(state, exists, matches, update_password) == action


def test_diff_says_whether_the_password_changes_never_what_it_is():
    jid = "focus@auth.example.test"
    assert mod.make_diff(jid, mod.CREATE, False)["after"] == f"{jid}: present\npassword: (set)\n"
    update = mod.make_diff(jid, mod.UPDATE, True)
    assert update["before"] == f"{jid}: present\npassword: (current)\n"
    assert update["after"] == f"{jid}: present\npassword: (changed)\n"
    remove = mod.make_diff(jid, mod.REMOVE, True)
    assert (remove["before"], remove["after"]) == (f"{jid}: present\n", f"{jid}: absent\n")
    same = mod.make_diff(jid, mod.NOTHING, True)
    assert same["before"] == same["after"]


# --- the whole module, with prosodyctl and the config loader replaced ------------------------------


def prosody_file(password: str, salt: str = "0a1b2c3d-0000-4000-8000-000000000000") -> str:
    keys = mod.scram_keys(mod.saslprep(password), salt.encode(), 10000)
    return (
        f'return {{\n\t["iteration_count"] = 10000;\n\t["salt"] = "{salt}";\n'
        f'\t["server_key"] = "{keys.server_key.hex()}";\n\t["stored_key"] = "{keys.stored_key.hex()}";\n}};\n'
    )


class FakeProsody:
    """Stands in for prosodyctl register/unregister; records every command and its stdin."""

    def __init__(self, account: Path, store_password: bool = True) -> None:
        self.account = account
        self.store_password = store_password
        self.calls: list[tuple[list[str], str]] = []

    def run_command(self, argv, data=None, binary_data=False, **_kwargs):
        assert binary_data
        self.calls.append((list(argv), data or ""))
        command = argv[3]
        if command == "register":
            first, second, rest = data.split("\n")
            assert first == second
            assert rest == ""
            self.account.parent.mkdir(parents=True, exist_ok=True)
            self.account.write_text(prosody_file(first if self.store_password else "something else"))
        elif command == "unregister":
            self.account.unlink()
        return 0, "", ""


@pytest.fixture
def prosody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProsody:
    config = tmp_path / "prosody.cfg.lua"
    config.write_text("-- test\n")
    data_path = tmp_path / "data"
    target = mod.Target(
        user="focus",
        host="auth.example.test",
        data_path=str(data_path),
        path=mod.account_path(str(data_path), "auth.example.test", "focus"),
    )
    fake = FakeProsody(Path(target.path))
    monkeypatch.setattr(mod, "find_prosodyctl", lambda _module: "/usr/bin/prosodyctl")
    monkeypatch.setattr(mod, "probe", lambda *_args: target)
    monkeypatch.setattr(
        AnsibleModule, "run_command", lambda _module, *args, **kwargs: fake.run_command(*args, **kwargs)
    )
    fake.config = str(config)
    return fake


def run_module(prosody: FakeProsody, capsys: pytest.CaptureFixture, **args) -> dict:
    args = {"name": "focus", "host": "auth.example.test", "config": prosody.config, **args}
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    out = capsys.readouterr().out
    if "password" in args:
        assert args["password"] not in out
    return json.loads(out)


def test_module_check_mode_create_writes_nothing(prosody: FakeProsody, capsys: pytest.CaptureFixture):
    result = run_module(prosody, capsys, password="first-Pass", _ansible_check_mode=True, _ansible_diff=True)
    assert (result["changed"], result["created"], result["password_changed"]) == (True, True, False)
    assert result["diff"]["after"] == "focus@auth.example.test: present\npassword: (set)\n"
    assert prosody.calls == []
    assert not prosody.account.exists()


def test_module_creates_with_password_on_stdin_only(prosody: FakeProsody, capsys: pytest.CaptureFixture):
    result = run_module(prosody, capsys, password="first-Pass")
    assert (result["changed"], result["created"], result["jid"]) == (True, True, "focus@auth.example.test")
    [(argv, stdin)] = prosody.calls
    assert argv == [
        "/usr/bin/prosodyctl",
        "--config",
        prosody.config,
        "register",
        "focus",
        "auth.example.test",
    ]
    assert stdin == "first-Pass\nfirst-Pass\n"
    assert result["account_file"] == str(prosody.account)


def test_module_same_password_is_no_change(prosody: FakeProsody, capsys: pytest.CaptureFixture):
    prosody.account.parent.mkdir(parents=True)
    prosody.account.write_text(prosody_file("first-Pass"))
    result = run_module(prosody, capsys, password="first-Pass")
    assert result["changed"] is False
    assert prosody.calls == []


def test_module_changed_password_check_mode_then_real(prosody: FakeProsody, capsys: pytest.CaptureFixture):
    prosody.account.parent.mkdir(parents=True)
    prosody.account.write_text(prosody_file("first-Pass"))
    result = run_module(prosody, capsys, password="second-Pass", _ansible_check_mode=True)
    assert (result["changed"], result["password_changed"]) == (True, True)
    assert prosody.calls == []
    result = run_module(prosody, capsys, password="second-Pass")
    assert (result["changed"], result["password_changed"], result["created"]) == (True, True, False)
    assert [argv[3] for argv, _unused in prosody.calls] == ["register"]
    assert mod.password_matches(mod.parse_lua_data(prosody.account.read_text()), "second-Pass")


def test_module_on_create_leaves_existing_password(prosody: FakeProsody, capsys: pytest.CaptureFixture):
    prosody.account.parent.mkdir(parents=True)
    prosody.account.write_text(prosody_file("first-Pass"))
    result = run_module(prosody, capsys, password="second-Pass", update_password="on_create")
    assert result["changed"] is False
    assert prosody.calls == []


def test_module_removes_and_is_then_idempotent(prosody: FakeProsody, capsys: pytest.CaptureFixture):
    prosody.account.parent.mkdir(parents=True)
    prosody.account.write_text(prosody_file("first-Pass"))
    result = run_module(prosody, capsys, state="absent", _ansible_check_mode=True)
    assert (result["changed"], result["removed"]) == (True, True)
    assert prosody.account.exists()
    result = run_module(prosody, capsys, state="absent")
    assert (result["changed"], result["removed"]) == (True, True)
    assert [argv[3:] for argv, _unused in prosody.calls] == [["unregister", "focus", "auth.example.test"]]
    assert not prosody.account.exists()
    assert run_module(prosody, capsys, state="absent")["changed"] is False


def test_module_fails_when_prosody_did_not_store_the_password(
    prosody: FakeProsody, capsys: pytest.CaptureFixture
):
    prosody.store_password = False
    result = run_module(prosody, capsys, password="first-Pass")
    assert result["failed"] is True
    assert "does not hold the new password" in result["msg"]


def test_module_refuses_password_prosody_cannot_take(prosody: FakeProsody, capsys: pytest.CaptureFixture):
    result = run_module(prosody, capsys, password="two\nlines")
    assert result["failed"] is True
    assert "password is not usable by Prosody" in result["msg"]
    assert prosody.calls == []


# --- The roster --------------------------------------------------------------------------------------

# A roster file as Prosody 0.12 writes it for focus after `prosodyctl mod_roster_command subscribe`.
FOCUS_ROSTER = """return {
\t[false] = {
\t\t["version"] = 2;
\t\t["pending"] = {};
\t};
\t["someone@meet.example.com"] = {
\t\t["groups"] = {};
\t\t["subscription"] = "both";
\t\t["name"] = "Some \\"one\\"";
\t};
};
"""
PROXY = [{"jid": "focus.meet.example.com", "subscription": "from"}]


def test_serialized_rosters_read_back_the_same() -> None:
    roster = mod.parse_lua_data(FOCUS_ROSTER)
    text = "return " + mod.lua_serialize(roster) + ";\n"
    assert mod.parse_lua_data(text) == roster
    assert text.startswith("return {\n\t[false] = {")


def test_a_missing_contact_is_added_and_the_rest_kept() -> None:
    current = mod.parse_lua_data(FOCUS_ROSTER)
    assert mod.roster_differs(current, PROXY)
    wanted = mod.wanted_roster(current, PROXY)
    assert wanted["focus.meet.example.com"] == {"groups": {}, "subscription": "from"}
    assert wanted["someone@meet.example.com"] == current["someone@meet.example.com"]
    assert wanted[False] == {"version": 2, "pending": {}}
    assert not mod.roster_differs(wanted, PROXY)


def test_a_new_roster_gets_prosodys_metadata_entry() -> None:
    assert mod.roster_differs(None, PROXY)
    assert not mod.roster_differs(None, [])
    wanted = mod.wanted_roster(None, PROXY)
    assert wanted[False] == {"version": 1, "pending": {}}


def test_another_subscription_state_is_a_change() -> None:
    current = mod.wanted_roster(None, [{"jid": "focus.meet.example.com", "subscription": "to"}])
    assert mod.roster_differs(current, PROXY)
    assert mod.roster_summary(mod.wanted_roster(current, PROXY)) == "focus.meet.example.com: from\n"


def test_roster_files_live_beside_the_accounts() -> None:
    path = mod.account_path("/var/lib/prosody", "auth.meet.example.com", "focus", "roster")
    assert path == "/var/lib/prosody/auth%2emeet%2eexample%2ecom/roster/focus.dat"
