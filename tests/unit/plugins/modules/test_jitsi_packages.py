"""Unit tests for the jitsi_packages module: the files it writes, what it reads, whole runs on a fake host.

The whole runs use a real AnsibleModule (patch_module_args) whose run_command answers from FakeHost, a
small model of dpkg, apt and debconf, and whose fetch_url serves a fixture key. The module's path
constants point into tmp_path.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.meetops.jitsi.plugins.module_utils import _openpgp
from ansible_collections.meetops.jitsi.plugins.modules import jitsi_packages as mod
from ansible_collections.meetops.jitsi.tests.unit.plugins.openpgp_keys import (
    BOTH_ASC,
    K1_ASC,
    K1_FPR,
    K2_FPR,
    K2_GPG,
)

JITSI = "https://download.jitsi.org"
KEY_URL = "https://download.jitsi.org/jitsi-key.gpg.key"
DEBIAN = "http://deb.debian.org/debian"
QUICK_INSTALL_LINE = (
    "deb [signed-by=/usr/share/keyrings/jitsi-keyring.gpg] https://download.jitsi.org stable/"
)
OLD, PIN, NEW = "1.0-1173-1", "1.0-1174-1", "1.0-1180-1"
JDK = "openjdk-17-jre-headless"
JICOFO = {"name": "jicofo", "version": PIN, "pin_variable": "jicofo_version"}
INSTALL_OPTIONS = [
    "apt-get",
    "install",
    "-y",
    "-q",
    "--no-install-recommends",
    "--allow-change-held-packages",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
]
PLUGINS = "usr/share/jitsi-meet/prosody-plugins"
PROSODY_PLUGINS_OLD, PROSODY_PLUGINS = "1.0.9100-1", "1.0.9139-1"


def repository(**overrides: Any) -> mod.Repository:
    return mod.repository_from({"key_fingerprint": K1_FPR, **overrides})


# --- repository_from ------------------------------------------------------------------------------------


JITSI_DEFAULTS = mod.Repository(
    name="meetops-jitsi",
    uri=JITSI,
    suite="stable/",
    components=(),
    key_url=KEY_URL,
    key_fingerprint="FFD65A0DA2BEBDEB73D44C8BB4D2D216F1FD7806",
)


@pytest.mark.parametrize(
    "params",
    [
        {},
        None,
        dict.fromkeys(("name", "uri", "suite", "components", "key_url", "key_fingerprint")),
    ],
    ids=["empty", "none", "all-none"],  # all-none: what AnsibleModule gives for an empty repository dict
)
def test_repository_defaults_are_jitsis(params: dict | None):
    assert mod.repository_from(params) == JITSI_DEFAULTS


def test_repository_overrides():
    found = mod.repository_from(
        {
            "name": "example-jitsi",
            "uri": "https://deb.example.org/jitsi/",
            "suite": "bookworm",
            "components": ["main", "contrib"],
            "key_url": "https://deb.example.org/key.asc",
            "key_fingerprint": "0xb5b4 6492 6863 b268 0b85  7aae 83c0 c798 d85c bd66",
        }
    )
    assert found == mod.Repository(
        name="example-jitsi",
        uri="https://deb.example.org/jitsi",
        suite="bookworm",
        components=("main", "contrib"),
        key_url="https://deb.example.org/key.asc",
        key_fingerprint=K1_FPR,
    )


def test_repository_accepts_a_version_6_fingerprint():
    fingerprint = "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9"
    assert mod.repository_from({"key_fingerprint": fingerprint.lower()}).key_fingerprint == fingerprint


@pytest.mark.parametrize(
    "fingerprint",
    [
        "2DC1389C",  # a short key id
        "EF8B479E2DC1389C",  # a long key id
        "66A9CD0595D6AFA247290D3BEF8B479E2DC1389",  # 39 digits
        "66A9CD0595D6AFA247290D3BEF8B479E2DC1389CA",  # 41 digits
        "G6A9CD0595D6AFA247290D3BEF8B479E2DC1389C",  # not hex
        "66A9:CD05:95D6:AFA2:4729:0D3B:EF8B:479E:2DC1:389C",
        "",
    ],
)
def test_repository_refuses_what_is_not_a_full_fingerprint(fingerprint: str):
    with pytest.raises(
        mod.RefusedError, match=r"repository\.key_fingerprint=.* is not a full key fingerprint"
    ):
        mod.repository_from({"key_fingerprint": fingerprint})


def test_repository_refuses_a_flat_suite_with_components():
    with pytest.raises(mod.RefusedError, match=r"repository\.suite='stable/' is a flat repository"):
        mod.repository_from({"components": ["main"]})


def test_repository_refuses_a_suite_without_components():
    with pytest.raises(
        mod.RefusedError, match=r"repository\.suite='bookworm' is not flat.*repository\.components"
    ):
        mod.repository_from({"suite": "bookworm"})


@pytest.mark.parametrize("name", ["../etc/passwd", "jitsi stable", "a/b", ""])
def test_repository_refuses_a_name_that_is_not_a_file_name(name: str):
    with pytest.raises(mod.RefusedError, match=r"repository\.name=.* must be a file name"):
        mod.repository_from({"name": name})


def test_repository_paths_follow_the_directory_constants(monkeypatch: pytest.MonkeyPatch):
    found = repository()
    assert found.sources_path == "/etc/apt/sources.list.d/meetops-jitsi.sources"
    assert found.key_path == "/etc/apt/keyrings/meetops-jitsi.asc"
    assert found.preferences_path == "/etc/apt/preferences.d/meetops-jitsi.pref"
    monkeypatch.setattr(mod, "KEYRINGS_DIR", "/elsewhere/keyrings")
    assert found.key_path == "/elsewhere/keyrings/meetops-jitsi.asc"


# --- the files ------------------------------------------------------------------------------------------


def test_sources_text_for_a_flat_repository():
    assert mod.sources_text(repository()) == (
        "# Written by meetops.jitsi (module jitsi_packages): the repository its pinned packages come from.\n"
        "Types: deb\n"
        "URIs: https://download.jitsi.org\n"
        "Suites: stable/\n"
        "Signed-By: /etc/apt/keyrings/meetops-jitsi.asc\n"
    )


def test_sources_text_with_components(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(mod, "KEYRINGS_DIR", "/srv/keyrings")
    found = repository(
        name="mirror", uri="https://deb.example.org/jitsi/", suite="bookworm", components=["a", "b"]
    )
    assert mod.sources_text(found).splitlines()[1:] == [
        "Types: deb",
        "URIs: https://deb.example.org/jitsi",
        "Suites: bookworm",
        "Components: a b",
        "Signed-By: /srv/keyrings/mirror.asc",
    ]
    # apt reads what the module writes as the repository it configures.
    assert mod.deb822_entries(mod.sources_text(found)) == [("https://deb.example.org/jitsi", "bookworm")]


def test_preferences_text_pins_each_package_sorted():
    assert mod.preferences_text([("jicofo", PIN), ("jitsi-videobridge2", "2.3-209-gb5fbe618-1")]) == (
        "# Written by meetops.jitsi (module jitsi_packages): each package stays at its pinned version.\n"
        "\n"
        "Package: jicofo\n"
        "Pin: version 1.0-1174-1\n"
        "Pin-Priority: 1001\n"
        "\n"
        "Package: jitsi-videobridge2\n"
        "Pin: version 2.3-209-gb5fbe618-1\n"
        "Pin-Priority: 1001\n"
    )
    assert mod.preferences_text([("b", "2"), ("a", "1")]) == mod.preferences_text([("a", "1"), ("b", "2")])


def test_preferences_text_without_pins_is_the_comment_only():
    assert mod.preferences_text([]) == (
        "# Written by meetops.jitsi (module jitsi_packages): each package stays at its pinned version.\n"
    )


def test_preferences_pins_read_back_what_preferences_text_wrote():
    text = mod.preferences_text([("jicofo", PIN), ("jitsi-meet-web", "1.0.9365-1")])
    assert mod.preferences_pins(text) == {"jicofo": PIN, "jitsi-meet-web": "1.0.9365-1"}
    assert mod.preferences_pins(None) == {}


def test_marker_text():
    assert (
        mod.marker_text("p", "1.0", ["mod_z.lua", "mod_a"])
        == "package=p\nversion=1.0\nomitted=mod_a,mod_z.lua\n"
    )


# --- what dpkg says -------------------------------------------------------------------------------------

DPKG_OUTPUT = (
    "jicofo\tii \t1.0-1174-1\n"
    "jitsi-videobridge2\thi \t2.3-209-gb5fbe618-1\n"
    "jitsi-meet-web\trc \t1.0.9139-1\n"
    "jitsi-meet-prosody\tun \t\n"
    "half\tiU \t1.0\n"
    "not a dpkg line\n"
)


def test_parse_dpkg():
    assert mod.parse_dpkg(DPKG_OUTPUT) == {
        "jicofo": ("ii", PIN),
        "jitsi-videobridge2": ("hi", "2.3-209-gb5fbe618-1"),
        "jitsi-meet-web": ("rc", "1.0.9139-1"),
        "jitsi-meet-prosody": ("un", ""),
        "half": ("iU", "1.0"),
    }
    assert mod.parse_dpkg("") == {}


@pytest.mark.parametrize(
    ("name", "version", "held"),
    [
        ("jicofo", PIN, False),
        ("jitsi-videobridge2", "2.3-209-gb5fbe618-1", True),
        ("jitsi-meet-web", None, False),  # removed, its configuration files kept
        ("jitsi-meet-prosody", None, False),  # known to dpkg, not installed
        ("half", None, False),  # unpacked, not configured
        ("absent", None, False),
    ],
)
def test_installed_version_and_is_held(name: str, version: str | None, held: bool):
    status = mod.parse_dpkg(DPKG_OUTPUT).get(name)
    assert mod.installed_version(status) == version
    assert mod.is_held(status) is held


# --- what other apt sources list ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        (QUICK_INSTALL_LINE + "\n", [(JITSI, "stable/")]),
        ("# " + QUICK_INSTALL_LINE + "\n", []),
        ("#deb https://download.jitsi.org stable/\n", []),
        ("deb-src https://download.jitsi.org stable/\n", []),
        ("deb https://download.jitsi.org/ stable/ # the quick install\n", [(JITSI, "stable/")]),
        (
            "deb [ arch=amd64 signed-by=/k.gpg ] https://download.jitsi.org unstable/\n",
            [(JITSI, "unstable/")],
        ),
        (
            f"deb {DEBIAN} bookworm main contrib\n\ndeb {DEBIAN} bookworm-updates main\n",
            [(DEBIAN, "bookworm"), (DEBIAN, "bookworm-updates")],
        ),
        ("deb https://download.jitsi.org\n", []),  # no suite: not an entry
        ("", []),
    ],
    ids=[
        "quick-install",
        "commented",
        "commented-tight",
        "deb-src",
        "slash-comment",
        "options",
        "debian",
        "short",
        "empty",
    ],
)
def test_one_line_entries(text: str, entries: list[tuple[str, str]]):
    assert mod.one_line_entries(text) == entries
    assert mod.source_entries("/etc/apt/sources.list.d/x.list", text) == entries


DEB822 = f"""\
# Debian's own
Types: deb deb-src
URIs: {DEBIAN}/ https://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://download.jitsi.org
Suites: stable/
Enabled: no

Types: deb-src
URIs: https://download.jitsi.org
Suites: stable/

# Types: deb
# URIs: https://download.jitsi.org
# Suites: stable/

types: deb
uris:
 https://download.jitsi.org/
suites: unstable/
  stable/
"""


def test_deb822_entries():
    assert mod.deb822_entries(DEB822) == [
        (DEBIAN, "bookworm"),
        (DEBIAN, "bookworm-updates"),
        ("https://deb.debian.org/debian", "bookworm"),
        ("https://deb.debian.org/debian", "bookworm-updates"),
        (JITSI, "unstable/"),
        (JITSI, "stable/"),
    ]
    assert mod.source_entries("/etc/apt/sources.list.d/x.sources", DEB822) == mod.deb822_entries(DEB822)


@pytest.mark.parametrize(
    "text",
    [
        "Types: deb\nURIs: https://download.jitsi.org\nSuites: stable/\nEnabled: no\n",
        "Types: deb\nURIs: https://download.jitsi.org\nSuites: stable/\nEnabled: No\n",
        "Types: deb-src\nURIs: https://download.jitsi.org\nSuites: stable/\n",
        "URIs: https://download.jitsi.org\nSuites: stable/\n",
        "#Types: deb\n#URIs: https://download.jitsi.org\n#Suites: stable/\n",
    ],
    ids=["disabled", "disabled-case", "deb-src", "no-types", "commented"],
)
def test_deb822_entries_skips_stanzas_apt_does_not_use(text: str):
    assert mod.deb822_entries(text) == []


def test_deb822_entries_counts_an_enabled_stanza():
    text = f"Types: deb\nURIs: {JITSI}\nSuites: stable/\nEnabled: yes\n"
    assert mod.deb822_entries(text) == [(JITSI, "stable/")]


# --- plugin names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        ("mod_smacks.lua", "mod_smacks"),
        ("mod_b", "mod_b"),
        ("util.lib.lua", "util.lib"),
        ("mod_x.lua.bak", "mod_x.lua.bak"),
        (".lua", ""),
    ],
)
def test_module_name(entry: str, name: str):
    assert mod.module_name(entry) == name


def test_shadowing_compares_module_names_whatever_the_entry_kind():
    builtins = {mod.module_name(entry) for entry in ["mod_smacks.lua", "mod_muc", "mod_b.lua", "util"]}
    entries = ["mod_a.lua", "mod_b", "mod_smacks.lua", "util.lib.lua", "mod_muc.lua"]
    assert mod.shadowing(entries, builtins) == ["mod_b", "mod_muc.lua", "mod_smacks.lua"]
    assert mod.shadowing(entries, set()) == []


# --- what apt-cache madison says ------------------------------------------------------------------------

# Column layout as apt 2.6 (Debian 12) prints it for a flat and a component repository.
MADISON = f"""\
    jicofo | {NEW} | {JITSI} stable/ Packages
    jicofo | {PIN} | {JITSI} stable/ Packages
    jicofo | 1.0-1190-1 | {JITSI} unstable/ Packages
    jicofo | 1.0-1191-1 | {JITSI}.mirror.example stable/ Packages
    jicofo | 1.0-900-1 | {DEBIAN} bookworm/main amd64 Packages
N: a line that is not a version
"""


def test_madison_versions_from_this_repository_only():
    assert mod.madison_versions(MADISON, repository()) == [NEW, PIN]
    assert mod.madison_versions(MADISON, repository(suite="unstable/")) == ["1.0-1190-1"]
    assert mod.madison_versions("", repository()) == []


def test_madison_versions_of_a_repository_with_components():
    found = repository(uri=DEBIAN, suite="bookworm", components=["main"])
    assert mod.madison_versions(MADISON, found) == ["1.0-900-1"]
    assert (
        mod.madison_versions(MADISON, repository(uri=DEBIAN, suite="bookworm", components=["contrib"])) == []
    )


# --- a fake host: dpkg, apt and debconf as run_command sees them ----------------------------------------


def version_key(version: str) -> list[Any]:
    """Enough of Debian version ordering for the versions in these tests."""
    return [int(part) if part.isdigit() else part for part in re.findall(r"\d+|\D+", version)]


COMPARISONS = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
}


@dataclass
class Call:
    argv: list[str]
    environ: dict[str, str] | None
    data: str | None
    cwd: str | None


class FakeHost:
    """The host's package state; run_command answers from it and records every call."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etc = root / "etc" / "apt"
        self.lists = root / "var" / "lib" / "apt" / "lists"
        self.tmpdir = root / "module-tmp"
        self.installed: dict[str, tuple[str, str]] = {"ca-certificates": ("ii", "20230311")}
        self.offered: dict[str, list[str]] = {  # what Jitsi's repository has, newest first
            "jicofo": [NEW, PIN, OLD],
            "jitsi-meet-prosody": [PROSODY_PLUGINS, PROSODY_PLUGINS_OLD],
        }
        self.known: dict[str, list[str]] = {}  # what the host's package lists know of Jitsi's repository
        self.debian = {JDK: "17.0.13+11-2~deb12u1", "ca-certificates": "20230311"}
        self.debconf: dict[str, dict[str, tuple[str, str]]] = {}  # package -> question -> (vtype, value)
        self.update_answer = (0, f"Hit:1 {JITSI} stable/ InRelease\nReading package lists...\n", "")
        self.install_answer: tuple[int, str, str] | None = None  # set: apt-get install fails with it
        self.key: bytes | None = K1_ASC.encode()  # what key_url serves; None: unreachable
        self.fetched: list[str] = []
        self.calls: list[Call] = []
        self.deb_tree = {
            f"{PLUGINS}/mod_a.lua": "-- a\n",
            f"{PLUGINS}/mod_smacks.lua": "-- Jitsi's copy of smacks\n",
            f"{PLUGINS}/mod_b/mod_b.lua": "-- b\n",
            f"{PLUGINS}/util.lib.lua": "-- util\n",
            "usr/share/doc/jitsi-meet-prosody/copyright": "Apache-2.0\n",
        }

    # What the module reaches ---------------------------------------------------------------------------

    def fetch_url(self, module: Any, url: str, **_kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.fetched.append(url)
        if self.key is None:
            msg = "Request failed: <urlopen error [Errno -3] Temporary failure in name resolution>"
            return None, {"status": -1, "msg": msg, "url": url}
        return io.BytesIO(self.key), {"status": 200, "msg": f"OK ({len(self.key)} bytes)", "url": url}

    def run_command(
        self,
        argv: list[str],
        environ_update: dict[str, str] | None = None,
        data: str | None = None,
        cwd: str | None = None,
        **_kwargs: Any,
    ) -> tuple[int, str, str]:
        argv = [str(word) for word in argv]
        self.calls.append(Call(argv, environ_update, data, cwd))
        for words, handler in self.handlers().items():
            if argv[: len(words)] == list(words):
                return handler(argv[len(words) :], data=data, cwd=cwd)
        raise AssertionError(f"the module ran an unexpected command: {argv}")

    def handlers(self) -> dict[tuple[str, ...], Any]:
        return {
            ("dpkg-query", "-W"): self.dpkg_query,
            ("dpkg", "--compare-versions"): self.dpkg_compare_versions,
            ("apt-get", "update"): self.apt_get_update,
            ("apt-cache", "madison"): self.apt_cache_madison,
            ("apt-get", "install"): self.apt_get_install,
            ("apt-mark", "hold"): self.apt_mark_hold,
            ("apt-mark", "unhold"): self.apt_mark_unhold,
            ("debconf-show",): self.debconf_show,
            ("debconf-set-selections",): self.debconf_set_selections,
            ("apt-get", "download"): self.apt_get_download,
            ("dpkg-deb", "-x"): self.dpkg_deb_extract,
        }

    def dpkg_query(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        assert args[:2] == ["-f", mod.QUERY_FORMAT]
        out, err = "", ""
        for name in args[2:]:
            if name in self.installed:
                status, version = self.installed[name]
                out += f"{name}\t{status} \t{version}\n"
            else:
                err += f"dpkg-query: no packages found matching {name}\n"
        return (1 if err else 0), out, err

    def dpkg_compare_versions(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        left, operator, right = args
        return (0 if COMPARISONS[operator](version_key(left), version_key(right)) else 1), "", ""

    def apt_get_update(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        assert args == ["-q"]
        rc, out, err = self.update_answer
        problems = [line for line in (out + err).splitlines() if line.startswith(("E:", "W:", "Err:"))]
        if rc == 0 and not any(JITSI in line for line in problems):
            self.known = {name: list(versions) for name, versions in self.offered.items()}
            self.touch_lists()
        return rc, out, err

    def apt_cache_madison(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        [name] = args
        lines = [f"{name:>10} | {version} | {JITSI} stable/ Packages" for version in self.known.get(name, [])]
        if name in self.debian:
            lines.append(f"{name:>10} | {self.debian[name]} | {DEBIAN} bookworm/main amd64 Packages")
        return 0, "".join(line + "\n" for line in lines), ""

    def apt_get_install(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        if self.install_answer is not None:
            return self.install_answer
        words = [
            word for index, word in enumerate(args) if not word.startswith("-") and args[index - 1] != "-o"
        ]
        for word in words:
            name, _unused, version = word.partition("=")
            if not version and name in self.debian:
                version = self.debian[name]
            elif version not in self.known.get(name, []):
                return 100, "", f"E: Version '{version}' for '{name}' was not found\n"
            status, have = self.installed.get(name, ("ii", None))
            if have and version_key(version) < version_key(have) and "--allow-downgrades" not in args:
                return 100, "", "E: Packages were downgraded and -y was used without --allow-downgrades.\n"
            self.installed[name] = ("hi" if status == "hi" else "ii", version)
        return 0, "Setting up ...\n", ""

    def apt_mark_hold(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        [name] = args
        self.installed[name] = ("hi", self.installed[name][1])
        return 0, f"{name} set on hold.\n", ""

    def apt_mark_unhold(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        [name] = args
        self.installed[name] = ("ii", self.installed[name][1])
        return 0, f"Canceled hold on {name}.\n", ""

    def debconf_show(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        [package] = args
        out = ""
        for question, (vtype, value) in self.debconf.get(package, {}).items():
            out += f"* {question}: {'(password omitted)' if vtype == 'password' else value}\n"
        return 0, out, ""

    def debconf_set_selections(
        self, args: list[str], data: str | None, **_kwargs: Any
    ) -> tuple[int, str, str]:
        assert args == []
        assert data is not None
        assert data.endswith("\n")
        for line in data.splitlines():
            package, question, vtype, value = line.split(None, 3)
            self.debconf.setdefault(package, {})[question] = (vtype, value)
        return 0, "", ""

    def apt_get_download(self, args: list[str], cwd: str | None, **_kwargs: Any) -> tuple[int, str, str]:
        assert args[:3] == ["-q", "-o", "APT::Sandbox::User=root"]
        name, _unused, version = args[3].partition("=")
        if version not in self.known.get(name, []):
            return 100, "", f"E: Version '{version}' for '{name}' was not found\n"
        assert cwd is not None
        (Path(cwd) / f"{name}_{version}_all.deb").write_bytes(b"!<arch>\n")
        return 0, f"Get:1 {JITSI} stable/ {name} all {version}\n", ""

    def dpkg_deb_extract(self, args: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        deb, directory = args
        assert Path(deb).is_file()
        for relative, content in self.deb_tree.items():
            path = Path(directory) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return 0, "", ""

    # For the tests -------------------------------------------------------------------------------------

    def touch_lists(self, age: float = 0) -> None:
        path = self.lists / "download.jitsi.org_stable_Packages"
        path.write_text("Package: jicofo\n")
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))

    def ran(self, *words: str) -> list[Call]:
        """The calls whose command line starts with these words."""
        return [call for call in self.calls if call.argv[: len(words)] == list(words)]

    def commands(self) -> list[str]:
        """Each call's program and first argument (its subcommand)."""
        return [" ".join(call.argv[:2]) for call in self.calls]

    def files(self) -> dict[str, str]:
        """Every file under etc/apt, by its path relative to it."""
        return {
            str(path.relative_to(self.etc)): path.read_text()
            for path in self.etc.rglob("*")
            if path.is_file()
        }

    def path(self, constant: str, name: str) -> Path:
        return Path(getattr(mod, constant)) / name


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost(tmp_path)
    monkeypatch.setattr(mod, "SOURCES_DIR", str(fake.etc / "sources.list.d"))
    monkeypatch.setattr(mod, "SOURCES_LIST", str(fake.etc / "sources.list"))
    monkeypatch.setattr(mod, "KEYRINGS_DIR", str(fake.etc / "keyrings"))
    monkeypatch.setattr(mod, "PREFERENCES_DIR", str(fake.etc / "preferences.d"))
    monkeypatch.setattr(mod, "LISTS_DIR", str(fake.lists))
    (fake.etc / "sources.list.d").mkdir(parents=True)
    (fake.etc / "sources.list").write_text(
        f"deb {DEBIAN} bookworm main\ndeb {DEBIAN} bookworm-updates main\n"
    )
    (fake.lists / "partial").mkdir(parents=True)
    (fake.lists / "lock").touch()
    fake.tmpdir.mkdir()
    monkeypatch.setattr(
        AnsibleModule, "run_command", lambda _module, *args, **kwargs: fake.run_command(*args, **kwargs)
    )
    monkeypatch.setattr(mod, "fetch_url", fake.fetch_url)
    return fake


def run_module(host: FakeHost, capsys: pytest.CaptureFixture, **args: Any) -> dict[str, Any]:
    """One run of the module on the host; its result. The host's record of calls starts empty."""
    args = {
        "repository": {"key_fingerprint": K1_FPR},
        "packages": [JICOFO],
        "_ansible_tmpdir": str(host.tmpdir),
        **args,
    }
    host.calls.clear()
    host.fetched.clear()
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    out = capsys.readouterr().out
    for answer in args.get("debconf", []):
        if answer["vtype"] == "password":
            assert answer["value"] not in out
    return json.loads(out)


def converge(host: FakeHost, capsys: pytest.CaptureFixture, **args: Any) -> dict[str, Any]:
    result = run_module(host, capsys, **args)
    assert result["changed"] is True, result
    assert "failed" not in result, result
    return result


def paths(host: FakeHost) -> tuple[Path, Path, Path]:
    """The key, source and pins files of the default repository."""
    return (
        host.path("KEYRINGS_DIR", "meetops-jitsi.asc"),
        host.path("SOURCES_DIR", "meetops-jitsi.sources"),
        host.path("PREFERENCES_DIR", "meetops-jitsi.pref"),
    )


APT_CHANGES = ("apt-get update", "apt-get install", "apt-mark hold", "apt-mark unhold", "apt-get download")


# --- whole runs -----------------------------------------------------------------------------------------


def test_fresh_host_gets_key_source_pins_package_and_hold(host: FakeHost, capsys: pytest.CaptureFixture):
    result = run_module(host, capsys, dependencies=[JDK, "ca-certificates"])
    key, sources, pins = paths(host)
    assert result["changed"] is True
    assert result["actions"] == [
        "write the repository key",
        "write the repository source",
        "write the version pins",
        "apt-get update (the repository changed)",
        f"install jicofo={PIN} {JDK}",
        "hold jicofo",
    ]
    assert result["versions"] == {"jicofo": PIN}
    assert (result["unpacked"], result["omitted"]) == ({}, {})
    assert result["key_fingerprint"] == K1_FPR
    assert "diff" not in result
    assert host.fetched == [KEY_URL]
    assert key.read_text() == _openpgp.armored_text(K1_ASC.encode())
    assert _openpgp.primary_fingerprints(key.read_bytes()) == [K1_FPR]
    assert sources.read_text() == (
        "# Written by meetops.jitsi (module jitsi_packages): the repository its pinned packages come from.\n"
        f"Types: deb\nURIs: {JITSI}\nSuites: stable/\nSigned-By: {key}\n"
    )
    assert pins.read_text() == mod.preferences_text([("jicofo", PIN)])
    assert oct(sources.stat().st_mode & 0o777) == "0o644"
    assert host.commands() == [
        "dpkg-query -W",
        "apt-get update",
        "apt-cache madison",
        "apt-get install",
        "dpkg-query -W",
        "apt-mark hold",
    ]
    [install] = host.ran("apt-get", "install")
    assert install.argv == [*INSTALL_OPTIONS, f"jicofo={PIN}", JDK]
    assert install.environ is not None
    assert install.environ["DEBIAN_FRONTEND"] == "noninteractive"
    assert host.ran("apt-mark", "hold")[0].argv == ["apt-mark", "hold", "jicofo"]
    assert host.installed["jicofo"] == ("hi", PIN)


def test_diff_mode_shows_the_files_and_the_package(host: FakeHost, capsys: pytest.CaptureFixture):
    result = run_module(host, capsys, _ansible_diff=True)
    key, sources, _pins = paths(host)
    assert f"--- {sources}\n\n" in result["diff"]["before"]
    assert "--- package jicofo\n(absent)\n" in result["diff"]["before"]
    assert f"+++ {sources}\n{sources.read_text()}\n" in result["diff"]["after"]
    assert f"+++ {key}\n{_openpgp.ARMOR_BEGIN}" in result["diff"]["after"]
    assert f"+++ package jicofo\n{PIN}\n" in result["diff"]["after"]


def test_a_failed_download_puts_the_repository_files_back(host: FakeHost, capsys: pytest.CaptureFixture):
    host.install_answer = (100, "", f"E: Failed to fetch {JITSI}/jicofo_{PIN}_all.deb  Could not connect\n")
    result = run_module(host, capsys)
    assert result["failed"] is True
    assert "apt-get install jicofo=" in result["msg"]
    assert "The repository's files are as they were before this run." in result["msg"]
    assert not any(path.exists() for path in paths(host)), "the new source, key or pins stayed"


def test_another_roles_pins_in_the_shared_file_stay(host: FakeHost, capsys: pytest.CaptureFixture):
    """jicofo, jvb and web each call the module for their own package; the pins file is shared."""
    run_module(host, capsys)
    _unused, _unused, pins = paths(host)
    pins.write_text(mod.preferences_text([("jicofo", PIN), ("jitsi-meet-web", "1.0.9365-1")]))
    result = run_module(host, capsys)
    assert "write the version pins" not in result["actions"], result["actions"]
    assert mod.preferences_pins(pins.read_text()) == {"jicofo": PIN, "jitsi-meet-web": "1.0.9365-1"}


def test_converged_host_changes_nothing_and_runs_no_apt(host: FakeHost, capsys: pytest.CaptureFixture):
    debconf = [{"package": "jicofo", "question": "jicofo/jvb-hostname", "vtype": "string", "value": "meet"}]
    converge(host, capsys, dependencies=[JDK], debconf=debconf)
    before = host.files()
    result = run_module(host, capsys, dependencies=[JDK], debconf=debconf)
    assert result["changed"] is False
    assert result["actions"] == []
    assert result["versions"] == {"jicofo": PIN}
    assert host.fetched == []
    assert {call.argv[0] for call in host.calls} <= {"dpkg-query", "debconf-show"}
    assert host.ran("dpkg-query")
    assert host.files() == before


def test_host_converged_by_hand_keeps_its_key_file(host: FakeHost, capsys: pytest.CaptureFixture):
    """A key file in place holding just the pinned key is kept, even in another armor than the module's."""
    key, sources, pins = paths(host)
    key.parent.mkdir(parents=True)
    pins.parent.mkdir(parents=True)
    by_hand = K1_ASC.replace("-----\n\n", "-----\nComment: saved by hand\n\n", 1)
    key.write_text(by_hand)
    sources.write_text(mod.sources_text(repository()))
    pins.write_text(mod.preferences_text([("jicofo", PIN)]))
    host.installed["jicofo"] = ("hi", PIN)
    result = run_module(host, capsys)
    assert result["changed"] is False
    assert host.fetched == []
    assert host.commands() == ["dpkg-query -W"]
    assert key.read_text() == by_hand


@pytest.mark.parametrize(
    "installed_key",
    [_openpgp.armor(K2_GPG), BOTH_ASC, K1_ASC.replace("=C42T", "=C42U"), "not a key\n", ""],
    ids=["other-key", "pinned-and-another", "damaged", "garbage", "empty"],
)
def test_key_file_without_just_the_pinned_key_is_fetched_again(
    host: FakeHost, capsys: pytest.CaptureFixture, installed_key: str
):
    key, _sources, _pins = paths(host)
    converge(host, capsys)
    key.write_text(installed_key)
    result = run_module(host, capsys)
    # Nothing to install or unpack: the lists are left for the next installation (or apt's daily update).
    assert result["actions"] == ["write the repository key"]
    assert host.fetched == [KEY_URL]
    assert _openpgp.primary_fingerprints(key.read_bytes()) == [K1_FPR]
    assert not host.ran("apt-get", "install")


def test_upgrade_to_a_newer_pin(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    _key, _sources, pins = paths(host)
    result = run_module(host, capsys, packages=[{**JICOFO, "version": NEW}])
    assert result["actions"] == ["write the version pins", f"install jicofo={NEW}"]
    [install] = host.ran("apt-get", "install")
    assert install.argv == [*INSTALL_OPTIONS, f"jicofo={NEW}"]
    assert "--allow-downgrades" not in install.argv
    assert host.ran("dpkg", "--compare-versions") != []
    # The lists are fresh and know the new version: changing the pins file alone needs no apt-get update.
    assert not host.ran("apt-get", "update")
    assert pins.read_text() == mod.preferences_text([("jicofo", NEW)])
    assert host.installed["jicofo"] == ("hi", NEW)
    assert result["versions"] == {"jicofo": NEW}


def test_upgrade_to_a_version_the_lists_do_not_know_yet_updates_them(
    host: FakeHost, capsys: pytest.CaptureFixture
):
    host.offered["jicofo"] = [PIN, OLD]
    converge(host, capsys)
    host.offered["jicofo"].insert(0, NEW)  # the repository publishes a new version
    result = run_module(host, capsys, packages=[{**JICOFO, "version": NEW}])
    assert result["actions"] == [
        "write the version pins",
        f"apt-get update (jicofo {NEW} is not in the package lists)",
        f"install jicofo={NEW}",
    ]
    assert host.installed["jicofo"] == ("hi", NEW)


def test_old_lists_are_refreshed_before_an_installation_only(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    host.touch_lists(age=7200)
    assert run_module(host, capsys)["changed"] is False  # nothing to install: old lists do not matter
    assert not host.ran("apt-get", "update")
    result = run_module(host, capsys, dependencies=[JDK])
    assert result["actions"] == ["apt-get update (the package lists are old)", f"install {JDK}"]
    host.installed.pop(JDK)
    result = run_module(host, capsys, dependencies=[JDK], cache_valid_time=86400)
    assert result["actions"] == [f"install {JDK}"]


def test_downgrade_is_refused_naming_both_variables(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    before = host.files()
    result = run_module(
        host,
        capsys,
        packages=[{**JICOFO, "version": OLD}],
        allow_downgrade_variable="jicofo_allow_downgrade",
    )
    assert result["failed"] is True
    assert result["msg"] == (
        f"jicofo {PIN} is installed, newer than jicofo_version={OLD}. Set jicofo_version to {PIN} or newer, "
        f"or set jicofo_allow_downgrade: true to go back to {OLD}. Nothing was changed."
    )
    assert host.files() == before
    assert host.fetched == []
    assert {call.argv[0] for call in host.calls} <= {"dpkg-query", "dpkg"}
    assert host.installed["jicofo"] == ("hi", PIN)


def test_downgrade_refusal_without_pin_variable_names_the_pin(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    result = run_module(host, capsys, packages=[{"name": "jicofo", "version": OLD}])
    assert f"newer than the pin of jicofo={OLD}" in result["msg"]
    assert "set allow_downgrade: true" in result["msg"]


def test_downgrade_when_allowed(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    result = run_module(host, capsys, packages=[{**JICOFO, "version": OLD}], allow_downgrade=True)
    assert "failed" not in result
    [install] = host.ran("apt-get", "install")
    assert install.argv == [*INSTALL_OPTIONS, "--allow-downgrades", f"jicofo={OLD}"]
    assert host.installed["jicofo"] == ("hi", OLD)
    assert paths(host)[2].read_text() == mod.preferences_text([("jicofo", OLD)])


def test_wrong_key_is_refused_and_nothing_written(host: FakeHost, capsys: pytest.CaptureFixture):
    host.key = K2_GPG
    before = host.files()
    result = run_module(host, capsys)
    assert result["failed"] is True
    assert f"the key at key_url={KEY_URL} has the fingerprint {K2_FPR}" in result["msg"]
    assert f"not the pinned key_fingerprint={K1_FPR}" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert host.files() == before
    assert not any(path.exists() for path in paths(host))
    assert host.commands() == ["dpkg-query -W"]


def test_a_key_file_with_the_pinned_key_and_another_is_refused(host: FakeHost, capsys: pytest.CaptureFixture):
    host.key = BOTH_ASC.encode()
    result = run_module(host, capsys)
    assert f"has the fingerprint {K1_FPR}, {K2_FPR}, not the pinned" in result["msg"]
    assert not any(path.exists() for path in paths(host))


def test_what_is_not_a_key_is_refused(host: FakeHost, capsys: pytest.CaptureFixture):
    host.key = b"<html><body>Moved</body></html>\n"
    result = run_module(host, capsys)
    assert result["msg"].startswith(f"the key at key_url={KEY_URL} is not an OpenPGP public key: ")
    assert "Nothing was changed" in result["msg"]
    assert not any(path.exists() for path in paths(host))


def test_unreachable_key_url(host: FakeHost, capsys: pytest.CaptureFixture):
    host.key = None
    before = host.files()
    result = run_module(
        host, capsys, repository={"key_fingerprint": K1_FPR, "key_url": "https://keys.invalid/k"}
    )
    assert result["failed"] is True
    assert result["msg"] == (
        "could not fetch the repository key from key_url=https://keys.invalid/k: Request failed: <urlopen "
        "error [Errno -3] Temporary failure in name resolution> (status -1). Nothing was changed. Check that "
        "this host reaches it."
    )
    assert host.fetched == ["https://keys.invalid/k"]
    assert host.files() == before
    assert host.commands() == ["dpkg-query -W"]


UPDATE_FAILURES = {
    "unsigned": (
        100,
        "Hit:1 http://deb.debian.org/debian bookworm InRelease\n",
        f"Err:2 {JITSI} stable/ InRelease\n"
        "  The following signatures couldn't be verified because the public key is not available: "
        "NO_PUBKEY EF8B479E2DC1389C\n"
        f"E: The repository '{JITSI} stable/ InRelease' is not signed.\n",
    ),
    "unreachable": (
        0,
        f"Err:2 {JITSI} stable/ InRelease\n  Could not resolve 'download.jitsi.org'\n",
        f"W: Failed to fetch {JITSI}/stable/InRelease  Could not resolve 'download.jitsi.org'\n"
        "W: Some index files failed to download. They have been ignored, or old ones used instead.\n",
    ),
}


@pytest.mark.parametrize("failure", UPDATE_FAILURES, ids=list(UPDATE_FAILURES))
def test_failed_update_removes_the_new_files(host: FakeHost, capsys: pytest.CaptureFixture, failure: str):
    host.update_answer = UPDATE_FAILURES[failure]
    before = host.files()
    result = run_module(host, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(f"apt-get update failed for the repository {JITSI} stable/: ")
    assert f"Err:2 {JITSI} stable/ InRelease" in result["msg"]
    assert result["msg"].endswith(
        "The repository's source and key files are as they were before this run; nothing was installed."
    )
    assert host.files() == before
    assert not any(path.exists() for path in paths(host))
    assert not host.ran("apt-get", "install")
    assert not host.ran("apt-cache")


def test_failed_update_puts_the_previous_files_back(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys, packages=[{**JICOFO, "version": OLD}])
    key, sources, _pins = paths(host)
    key.write_text(_openpgp.armor(K2_GPG))  # the repository moved to K1; this host still has K2
    sources.write_text(
        sources.read_text().replace("Suites: stable/", "Suites: stable/\nArchitectures: amd64")
    )
    before = host.files()
    host.update_answer = UPDATE_FAILURES["unsigned"]
    result = run_module(host, capsys)
    assert "apt-get update failed" in result["msg"]
    assert host.files() == before
    assert host.installed["jicofo"] == ("hi", OLD)


def test_update_warnings_about_other_repositories_do_not_stop_it(
    host: FakeHost, capsys: pytest.CaptureFixture
):
    host.update_answer = (
        0,
        "",
        f"W: Failed to fetch {DEBIAN}/dists/bookworm/InRelease  Connection timed out\n",
    )
    result = run_module(host, capsys)
    assert "failed" not in result
    assert host.installed["jicofo"] == ("hi", PIN)


def test_pin_the_repository_does_not_offer(host: FakeHost, capsys: pytest.CaptureFixture):
    result = run_module(host, capsys, packages=[{**JICOFO, "version": "1.0-1190-1"}])
    assert result["failed"] is True
    assert result["msg"] == (
        f"jicofo 1.0-1190-1 (jicofo_version) is not in the repository {JITSI} stable/; it offers "
        f"{NEW}, {PIN}, {OLD}. Set jicofo_version to one of those."
    )
    assert not host.ran("apt-get", "install")
    assert "jicofo" not in host.installed


def test_pin_of_a_package_the_repository_does_not_have(host: FakeHost, capsys: pytest.CaptureFixture):
    result = run_module(host, capsys, packages=[{"name": "jitsi-nothing", "version": "1.0-1"}])
    assert result["msg"] == (
        f"jitsi-nothing 1.0-1 (the pin of jitsi-nothing) is not in the repository {JITSI} stable/; it offers "
        "no version of it. Set the pin of jitsi-nothing to one of those."
    )


OTHER_SOURCES = {
    "sources.list.d/jitsi-stable.list": QUICK_INSTALL_LINE + "\n",
    "sources.list.d/jitsi.sources": (
        f"Types: deb\nURIs: {JITSI}/\nSuites: stable/\nSigned-By: /usr/share/keyrings/jitsi-keyring.gpg\n"
    ),
    "sources.list": f"deb {DEBIAN} bookworm main\n{QUICK_INSTALL_LINE}\n",
}


@pytest.mark.parametrize("name", OTHER_SOURCES, ids=list(OTHER_SOURCES))
def test_another_source_of_the_repository_is_refused(
    host: FakeHost, capsys: pytest.CaptureFixture, name: str
):
    other = host.etc / name
    other.write_text(OTHER_SOURCES[name])
    before = host.files()
    result = run_module(host, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(f"{other} already lists the repository {JITSI} stable/; apt refuses")
    assert f"Remove {other}" in result["msg"]
    assert host.files() == before
    assert host.fetched == []
    assert host.commands() == ["dpkg-query -W"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("sources.list.d/jitsi-unstable.list", "deb https://download.jitsi.org unstable/\n"),
        ("sources.list.d/jitsi-stable.list", "# " + QUICK_INSTALL_LINE + "\n"),
        ("sources.list.d/jitsi-stable.list.save", QUICK_INSTALL_LINE + "\n"),  # apt ignores the suffix
        ("sources.list.d/jitsi.sources", f"Types: deb\nURIs: {JITSI}\nSuites: stable/\nEnabled: no\n"),
        ("sources.list.d/jitsi-src.list", "deb-src https://download.jitsi.org stable/\n"),
    ],
    ids=["other-suite", "commented", "save-suffix", "disabled", "deb-src"],
)
def test_sources_apt_does_not_count_for_the_repository_are_left_alone(
    host: FakeHost, capsys: pytest.CaptureFixture, name: str, text: str
):
    (host.etc / name).write_text(text)
    result = run_module(host, capsys)
    assert "failed" not in result
    assert (host.etc / name).read_text() == text


def test_check_mode_on_a_fresh_host(host: FakeHost, capsys: pytest.CaptureFixture):
    before = host.files()
    result = run_module(host, capsys, _ansible_check_mode=True, _ansible_diff=True, dependencies=[JDK])
    assert result["changed"] is True
    assert result["actions"] == [
        "write the repository key",
        "write the repository source",
        "write the version pins",
        "apt-get update (the repository changed)",
        f"install jicofo={PIN} {JDK}",
        "hold jicofo",
    ]
    assert result["versions"] == {"jicofo": PIN}
    key, sources, _pins = paths(host)
    assert f"+++ {key}\n{_openpgp.armored_text(K1_ASC.encode())}\n" in result["diff"]["after"]
    assert f"+++ {sources}\n{mod.sources_text(repository())}\n" in result["diff"]["after"]
    assert f"+++ package jicofo\n{PIN}\n" in result["diff"]["after"]
    assert host.files() == before
    assert not any(path.exists() for path in paths(host))
    assert host.fetched == [KEY_URL]  # the key is checked in check mode too
    assert host.commands() == ["dpkg-query -W"]
    assert host.installed == {"ca-certificates": ("ii", "20230311")}


def test_check_mode_on_a_converged_host(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    result = run_module(host, capsys, _ansible_check_mode=True)
    assert (result["changed"], result["actions"]) == (False, [])
    assert host.commands() == ["dpkg-query -W"]


def test_check_mode_upgrade_reports_without_installing(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    before = host.files()
    result = run_module(host, capsys, packages=[{**JICOFO, "version": NEW}], _ansible_check_mode=True)
    assert result["actions"] == ["write the version pins", f"install jicofo={NEW}"]
    assert host.files() == before
    assert not any(host.ran(*command.split()) for command in APT_CHANGES)
    assert host.installed["jicofo"] == ("hi", PIN)


DEBCONF = [
    {
        "package": "jicofo",
        "question": "jitsi-videobridge/jvb-hostname",
        "vtype": "string",
        "value": "meet.example",
    },
    {"package": "jicofo", "question": "jicofo/jicofo-authuser", "vtype": "string", "value": "focus"},
    {
        "package": "jicofo",
        "question": "jicofo/jicofo-authpassword",
        "vtype": "password",
        "value": "Sup3r-secret",
    },
]


def test_debconf_answers_that_differ_are_set_before_installing(host: FakeHost, capsys: pytest.CaptureFixture):
    host.debconf["jicofo"] = {
        "jitsi-videobridge/jvb-hostname": ("string", "old.example"),
        "jicofo/jicofo-authuser": ("string", "focus"),
    }
    result = run_module(host, capsys, debconf=DEBCONF, _ansible_diff=True)
    [selections] = host.ran("debconf-set-selections")
    assert selections.data == (
        "jicofo jitsi-videobridge/jvb-hostname string meet.example\n"
        "jicofo jicofo/jicofo-authpassword password Sup3r-secret\n"
    )
    assert host.calls.index(selections) < host.calls.index(host.ran("apt-get", "install")[0])
    assert host.ran("debconf-show") == [host.ran("debconf-show", "jicofo")[0]]  # once per package
    debconf_actions = [action for action in result["actions"] if action.startswith("debconf")]
    assert debconf_actions == [
        "debconf jitsi-videobridge/jvb-hostname=meet.example",
        "debconf jicofo/jicofo-authpassword=(password)",
    ]
    assert "Sup3r-secret" not in json.dumps(result)  # not in the invocation's module_args either
    assert result["invocation"]["module_args"]["debconf"][0]["value"] == "meet.example"
    # debconf-show hides passwords: a password it holds is left as it is, the other answers now match.
    result = run_module(host, capsys, debconf=DEBCONF)
    assert result["changed"] is False
    assert not host.ran("debconf-set-selections")


def test_debconf_answer_alone_is_a_change(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    answer = DEBCONF[:1]
    result = run_module(host, capsys, debconf=answer, _ansible_check_mode=True)
    assert result["actions"] == ["debconf jitsi-videobridge/jvb-hostname=meet.example"]
    assert not host.ran("debconf-set-selections")
    result = run_module(host, capsys, debconf=answer)
    assert (result["changed"], result["actions"]) == (
        True,
        ["debconf jitsi-videobridge/jvb-hostname=meet.example"],
    )
    assert host.debconf["jicofo"]["jitsi-videobridge/jvb-hostname"] == ("string", "meet.example")
    assert not host.ran("apt-get")


def test_unhold(host: FakeHost, capsys: pytest.CaptureFixture):
    converge(host, capsys)
    result = run_module(host, capsys, hold=False)
    assert result["actions"] == ["unhold jicofo"]
    assert host.ran("apt-mark", "unhold")[0].argv == ["apt-mark", "unhold", "jicofo"]
    assert run_module(host, capsys, hold=False)["changed"] is False


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ({"name": "Jicofo", "version": PIN}, "package name 'Jicofo' is not a Debian package name."),
        (
            {"name": "jicofo", "version": "latest", "pin_variable": "jicofo_version"},
            "jicofo_version='latest' is",
        ),
        (
            {"name": "jicofo", "version": "1.0 1174"},
            "the version of jicofo='1.0 1174' is not a Debian version",
        ),
    ],
)
def test_inputs_are_checked_before_anything(host: FakeHost, capsys: pytest.CaptureFixture, package, message):
    result = run_module(host, capsys, packages=[package])
    assert result["failed"] is True
    assert message in result["msg"]
    assert host.calls == []


def test_repository_refusal_is_the_modules_message(host: FakeHost, capsys: pytest.CaptureFixture):
    result = run_module(host, capsys, repository={"key_fingerprint": "2DC1389C"})
    assert result["failed"] is True
    assert result["msg"].startswith("repository.key_fingerprint='2DC1389C' is not a full key fingerprint")
    assert host.calls == []


# --- unpacked packages ----------------------------------------------------------------------------------


@pytest.fixture
def plugins(host: FakeHost) -> dict[str, Any]:
    """Jitsi's Prosody plugins, unpacked beside a Prosody whose modules include mod_smacks."""
    builtins = host.root / "usr" / "lib" / "prosody" / "modules"
    builtins.mkdir(parents=True)
    (builtins / "mod_smacks.lua").write_text("-- Prosody's smacks\n")
    (builtins / "mod_muc").mkdir()
    return {
        "name": "jitsi-meet-prosody",
        "version": PROSODY_PLUGINS,
        "unpack": {
            "source": PLUGINS,
            "dest": str(host.root / "usr" / "share" / "meetops-jitsi" / "prosody-plugins"),
            "omit_names_in": [str(builtins), str(host.root / "no" / "such" / "directory")],
        },
    }


def unpack(
    host: FakeHost, capsys: pytest.CaptureFixture, package: dict[str, Any], **args: Any
) -> dict[str, Any]:
    return run_module(host, capsys, packages=[package], **args)


def listing(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def test_unpack_copies_the_directory_without_what_would_shadow_prosody(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    result = unpack(host, capsys, plugins)
    target = Path(plugins["unpack"]["dest"]) / PROSODY_PLUGINS
    assert result["changed"] is True
    assert result["unpacked"] == {"jitsi-meet-prosody": str(target)}
    assert result["omitted"] == {"jitsi-meet-prosody": ["mod_smacks.lua"]}
    assert result["versions"] == {}
    assert result["actions"] == [
        "write the repository key",
        "write the repository source",
        "write the version pins",
        "apt-get update (the repository changed)",
        f"unpack jitsi-meet-prosody={PROSODY_PLUGINS} into {target}",
    ]
    assert listing(target) == {"mod_a.lua", "mod_b", "mod_b/mod_b.lua", "util.lib.lua", mod.MARKER}
    assert (target / "mod_a.lua").read_text() == "-- a\n"
    assert (target / mod.MARKER).read_text() == mod.marker_text(
        "jitsi-meet-prosody", PROSODY_PLUGINS, ["mod_smacks.lua"]
    )
    assert oct(target.stat().st_mode & 0o777) == "0o755"
    assert [path.name for path in target.parent.iterdir()] == [PROSODY_PLUGINS]  # no staging left behind
    # Downloaded through apt (which checks it against the signed repository), never installed.
    [download] = host.ran("apt-get", "download")
    assert download.argv[-1] == f"jitsi-meet-prosody={PROSODY_PLUGINS}"
    assert download.cwd is not None
    assert Path(download.cwd).is_relative_to(host.tmpdir)
    assert not host.ran("apt-get", "install")
    assert not host.ran("dpkg", "-i")
    assert not host.ran("dpkg-query")
    assert "jitsi-meet-prosody" not in host.installed
    assert paths(host)[2].read_text() == mod.preferences_text([])


def test_unpack_second_run_does_nothing(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    unpack(host, capsys, plugins)
    result = unpack(host, capsys, plugins)
    assert (result["changed"], result["actions"]) == (False, [])
    assert result["omitted"] == {"jitsi-meet-prosody": ["mod_smacks.lua"]}
    assert result["unpacked"] == {
        "jitsi-meet-prosody": str(Path(plugins["unpack"]["dest"]) / PROSODY_PLUGINS)
    }
    assert host.calls == []
    assert host.fetched == []


def test_unpack_again_when_prosody_gains_a_module_of_that_name(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    unpack(host, capsys, plugins)
    target = Path(plugins["unpack"]["dest"]) / PROSODY_PLUGINS
    (Path(plugins["unpack"]["omit_names_in"][0]) / "mod_a.lua").write_text("-- Prosody's own mod_a now\n")
    result = unpack(host, capsys, plugins)
    assert result["actions"] == [f"unpack jitsi-meet-prosody={PROSODY_PLUGINS} into {target}"]
    assert result["omitted"] == {"jitsi-meet-prosody": ["mod_a.lua", "mod_smacks.lua"]}
    assert listing(target) == {"mod_b", "mod_b/mod_b.lua", "util.lib.lua", mod.MARKER}
    assert host.commands() == ["apt-cache madison", "apt-cache madison", "apt-get download", "dpkg-deb -x"]
    assert unpack(host, capsys, plugins)["changed"] is False


def test_unpack_again_when_the_directory_is_incomplete(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    unpack(host, capsys, plugins)
    target = Path(plugins["unpack"]["dest"]) / PROSODY_PLUGINS
    (target / mod.MARKER).unlink()
    (target / "mod_a.lua").unlink()
    result = unpack(host, capsys, plugins)
    assert result["changed"] is True
    assert listing(target) == {"mod_a.lua", "mod_b", "mod_b/mod_b.lua", "util.lib.lua", mod.MARKER}


def test_unpack_of_a_new_version_prunes_only_its_own_old_directories(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    dest = Path(plugins["unpack"]["dest"])
    unpack(host, capsys, {**plugins, "version": PROSODY_PLUGINS_OLD})
    foreign = dest / "local-plugins"
    foreign.mkdir()
    (foreign / "mod_local.lua").write_text("-- someone's\n")
    other_package = dest / "0.1-1"
    other_package.mkdir()
    (other_package / mod.MARKER).write_text(mod.marker_text("jitsi-meet-prosody-extra", "0.1-1", []))
    result = unpack(host, capsys, plugins)
    assert result["actions"] == [
        f"unpack jitsi-meet-prosody={PROSODY_PLUGINS} into {dest / PROSODY_PLUGINS}",
        f"remove {dest / PROSODY_PLUGINS_OLD}",
    ]
    assert sorted(path.name for path in dest.iterdir()) == sorted(["0.1-1", "local-plugins", PROSODY_PLUGINS])
    assert (foreign / "mod_local.lua").read_text() == "-- someone's\n"
    assert result["unpacked"] == {"jitsi-meet-prosody": str(dest / PROSODY_PLUGINS)}


def test_unpack_in_check_mode_writes_nothing(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    unpack(host, capsys, {**plugins, "version": PROSODY_PLUGINS_OLD})
    dest = Path(plugins["unpack"]["dest"])
    before = listing(dest)
    result = unpack(host, capsys, plugins, _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["actions"] == [
        f"unpack jitsi-meet-prosody={PROSODY_PLUGINS} into {dest / PROSODY_PLUGINS}",
        f"remove {dest / PROSODY_PLUGINS_OLD}",
    ]
    assert listing(dest) == before
    assert not host.ran("apt-get")
    assert not host.ran("dpkg-deb")


def test_unpack_of_a_package_without_the_source_directory(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    plugins["unpack"]["source"] = "/usr/share/jitsi-meet/no-such-plugins/"
    result = unpack(host, capsys, plugins)
    assert result["msg"] == (
        f"jitsi-meet-prosody={PROSODY_PLUGINS} has no directory /usr/share/jitsi-meet/no-such-plugins/ "
        "(unpack.source)."
    )
    assert not Path(plugins["unpack"]["dest"]).exists()


def test_installed_and_unpacked_packages_in_one_run(
    host: FakeHost, capsys: pytest.CaptureFixture, plugins: dict[str, Any]
):
    result = run_module(host, capsys, packages=[JICOFO, plugins])
    assert result["versions"] == {"jicofo": PIN}
    assert list(result["unpacked"]) == ["jitsi-meet-prosody"]
    assert paths(host)[2].read_text() == mod.preferences_text([("jicofo", PIN)])  # only installed ones pinned
    assert [call.argv[-1] for call in host.ran("apt-cache", "madison")] == ["jicofo", "jitsi-meet-prosody"]
    assert run_module(host, capsys, packages=[JICOFO, plugins])["changed"] is False
