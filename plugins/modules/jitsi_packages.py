#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Install Jitsi's packages at pinned versions from Jitsi's signed apt repository, in one call.

The one way the collection takes a package from Jitsi: the repository's key checked against a pinned
fingerprint before anything is written, a deb822 source signed by that key, the exact version installed,
pinned and held, a downgrade refused unless allowed, the packages' debconf questions answered before
their maintainer scripts run, and packages that are only unpacked (Jitsi's Prosody plugins) extracted
without running any maintainer script. A converged host costs one dpkg-query and a few file reads: no
network, no apt.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: jitsi_packages
short_description: Jitsi packages at pinned versions from Jitsi's signed apt repository
version_added: 0.1.0
description:
  - Adds one signed apt repository (by default Jitsi's, U(https://download.jitsi.org) C(stable/)) as a
    deb822 source whose C(Signed-By) is the repository's key, and installs packages from it at exactly
    the versions given, pinned (an apt preferences file) and held (C(apt-mark hold)).
  - The key is fetched from O(repository.key_url) only when the key file on the host is missing or is not
    the pinned key; its primary key fingerprint must equal O(repository.key_fingerprint), or the module
    fails before it writes anything. The key file must hold exactly that one primary key.
  - Refuses to move an installed package to an older version unless O(allow_downgrade); the message names
    the variable that holds the pin (O(packages[].pin_variable)) and the one that allows it
    (O(allow_downgrade_variable)).
  - Answers the packages' debconf questions (O(debconf)) before they are installed or upgraded, so their
    maintainer scripts never ask and never use answers of their own. Installs with
    C(DEBIAN_FRONTEND=noninteractive) and C(--force-confold), so configuration files the roles wrote
    are kept over the package's versions.
  - A package with O(packages[].unpack) is not installed; the pinned C(.deb) is downloaded (apt checks it
    against the signed repository) and the directory O(packages[].unpack.source) of its contents is
    copied to C(<unpack.dest>/<version>). Its maintainer scripts never run. Entries named like an entry
    of one of O(packages[].unpack.omit_names_in) (a C(.lua) suffix ignored) are left out, so a plugin
    directory never shadows the modules of the program that loads it. Other versions under
    C(unpack.dest) made by this module are removed.
  - C(apt-get update) runs only when the source or key changed, a pinned version is not known to apt, or
    the package lists are older than O(cache_valid_time). When it fails (repository unreachable, bad
    signature), the source and key files are put back as they were and the module fails with apt's
    message.
  - Another apt source for the same repository URI and suite (for example Jitsi's quick-install
    C(jitsi-stable.list)) makes apt refuse to work when its C(Signed-By) differs; the module fails
    before any change and names that file.
  - Check mode reports what would change without fetching anything but the key.
requirements:
  - Debian 12 or 13 (apt, dpkg, debconf); nothing else, the key is checked without GnuPG.
options:
  repository:
    description: The apt repository. Every option has Jitsi's value as its default.
    type: dict
    default: {}
    suboptions:
      name:
        description:
          - Base name of the files the module writes, C(/etc/apt/sources.list.d/<name>.sources),
            C(/etc/apt/keyrings/<name>.asc) and C(/etc/apt/preferences.d/<name>.pref).
        type: str
        default: meetops-jitsi
      uri:
        description: The repository's URI.
        type: str
        default: https://download.jitsi.org
      suite:
        description: The suite; one ending in C(/) is a flat repository (no components), as Jitsi's is.
        type: str
        default: stable/
      components:
        description: Components of a repository that is not flat.
        type: list
        elements: str
        default: []
      key_url:
        description: Where the repository's signing key is published (ASCII-armored or binary).
        type: str
        default: https://download.jitsi.org/jitsi-key.gpg.key
      key_fingerprint:
        description:
          - The full fingerprint of the repository's primary key (40 hex digits for a version 4 key,
            64 for version 6); spaces and case do not matter.
          - The default is the key Jitsi has signed its repository with since April 2021, C(FFD6 5A0D A2BE
            BDEB 73D4 4C8B B4D2 D216 F1FD 7806) (long id C(B4D2D216F1FD7806), named in Jitsi's answer on
            U(https://github.com/jitsi/jitsi-meet/issues/9084)). Jitsi does not publish the full fingerprint;
            check it with C(gpg --show-keys) on the key you fetch and pin the value you trust.
        type: str
        default: FFD65A0DA2BEBDEB73D44C8BB4D2D216F1FD7806
  packages:
    description: The packages, each at one version.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The package's name.
        type: str
        required: true
      version:
        description: The exact version, as the repository names it (C(apt-cache madison <name>)).
        type: str
        required: true
      pin_variable:
        description: The variable that holds O(packages[].version), named in messages.
        type: str
      unpack:
        description: Unpack instead of installing (see the description).
        type: dict
        suboptions:
          source:
            description: The directory of the package to copy, e.g. C(usr/share/jitsi-meet/prosody-plugins).
            type: str
            required: true
          dest:
            description: The directory that gets one subdirectory per version.
            type: path
            required: true
          omit_names_in:
            description: Directories whose entries' names are left out of the copy.
            type: list
            elements: path
            default: []
  dependencies:
    description: Packages from the host's other sources (Debian) installed with the pinned ones if missing.
    type: list
    elements: str
    default: []
  debconf:
    description: Answers to the packages' debconf questions, set before they are installed or upgraded.
    type: list
    elements: dict
    default: []
    suboptions:
      package:
        description: The package that owns the question.
        type: str
        required: true
      question:
        description: The question's name, e.g. C(jitsi-videobridge/jvb-hostname).
        type: str
        required: true
      vtype:
        description: Its debconf type.
        type: str
        required: true
        choices: [string, boolean, select, multiselect, note, text, password, title]
      value:
        description: The answer.
        type: str
        required: true
  hold:
    description: Hold the installed packages (C(apt-mark hold)) so that C(apt upgrade) leaves them at the pin.
    type: bool
    default: true
  allow_downgrade:
    description: Allow installing an older version than the one installed.
    type: bool
    default: false
  allow_downgrade_variable:
    description: The variable that sets O(allow_downgrade), named in the refusal.
    type: str
    default: allow_downgrade
  cache_valid_time:
    description: Seconds the package lists stay fresh before an installation refreshes them.
    type: int
    default: 3600
author: meetops.jitsi maintainers (@meetops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Install the pinned jicofo from Jitsi's repository
  meetops.jitsi.jitsi_packages:
    packages:
      - name: jicofo
        version: 1.0-1174-1
        pin_variable: jicofo_version
    dependencies: [openjdk-17-jre-headless]
    debconf:
      - {package: jicofo, question: jitsi-videobridge/jvb-hostname, vtype: string, value: meet.example.com}
    allow_downgrade_variable: jicofo_allow_downgrade

- name: Unpack Jitsi's Prosody plugins without running the package's setup script
  meetops.jitsi.jitsi_packages:
    packages:
      - name: jitsi-meet-prosody
        version: 1.0.9139-1
        unpack:
          source: usr/share/jitsi-meet/prosody-plugins
          dest: /usr/share/meetops-jitsi/prosody-plugins
          omit_names_in: [/usr/lib/prosody/modules]
  register: __plugins
# __plugins.unpacked['jitsi-meet-prosody'] is /usr/share/meetops-jitsi/prosody-plugins/1.0.9139-1
"""

RETURN = r"""
versions:
  description: Installed version of each installed (not unpacked) package after the run.
  type: dict
  returned: always
  sample: {"jicofo": "1.0-1174-1"}
unpacked:
  description: Directory of each unpacked package's files.
  type: dict
  returned: always
  sample: {"jitsi-meet-prosody": "/usr/share/meetops-jitsi/prosody-plugins/1.0.9139-1"}
omitted:
  description: Names left out of each unpacked package because they would shadow another program's.
  type: dict
  returned: always
  sample: {"jitsi-meet-prosody": ["mod_external_services.lua", "mod_smacks.lua"]}
actions:
  description: What was done (or, in check mode, would be done), in order.
  type: list
  elements: str
  returned: always
  sample: ["write the signing key", "apt-get update", "install jicofo=1.0-1174-1", "hold jicofo"]
key_fingerprint:
  description: Fingerprint of the repository key in use.
  type: str
  returned: always
"""

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

from ansible_collections.meetops.jitsi.plugins.module_utils import _openpgp
from ansible_collections.meetops.jitsi.plugins.module_utils._files import read_text, write_text

SOURCES_DIR = "/etc/apt/sources.list.d"
SOURCES_LIST = "/etc/apt/sources.list"
KEYRINGS_DIR = "/etc/apt/keyrings"
PREFERENCES_DIR = "/etc/apt/preferences.d"
LISTS_DIR = "/var/lib/apt/lists"
MARKER = ".meetops-jitsi-package"
QUERY_FORMAT = "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
REPOSITORY_DEFAULTS = {
    "name": "meetops-jitsi",
    "uri": "https://download.jitsi.org",
    "suite": "stable/",
    "components": [],
    "key_url": "https://download.jitsi.org/jitsi-key.gpg.key",
    "key_fingerprint": "FFD65A0DA2BEBDEB73D44C8BB4D2D216F1FD7806",
}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
VERSION_PATTERN = re.compile(r"^[0-9][A-Za-z0-9.+~:-]*$")
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
FINGERPRINT_PATTERN = re.compile(r"^([0-9A-F]{40}|[0-9A-F]{64})$")


class RefusedError(Exception):
    """A reason to stop before (or instead of) changing the host; its text is the module's message."""


# --- Pure functions: what the files should say, what the host has ---------------------------------------


@dataclass(frozen=True)
class Repository:
    name: str
    uri: str
    suite: str
    components: tuple[str, ...]
    key_url: str
    key_fingerprint: str

    @property
    def sources_path(self) -> str:
        return f"{SOURCES_DIR}/{self.name}.sources"

    @property
    def key_path(self) -> str:
        return f"{KEYRINGS_DIR}/{self.name}.asc"

    @property
    def preferences_path(self) -> str:
        return f"{PREFERENCES_DIR}/{self.name}.pref"


def repository_from(params: dict[str, Any] | None) -> Repository:
    """The repository option with Jitsi's values filled in, checked."""
    merged = dict(REPOSITORY_DEFAULTS)
    merged.update({key: value for key, value in (params or {}).items() if value is not None})
    fingerprint = _openpgp.normalize_fingerprint(str(merged["key_fingerprint"]))
    if not FINGERPRINT_PATTERN.match(fingerprint):
        raise RefusedError(
            f"repository.key_fingerprint={merged['key_fingerprint']!r} is not a full key fingerprint: "
            "give all 40 (version 4 key) or 64 (version 6 key) hex digits, as 'gpg --show-keys' prints them."
        )
    if not FILE_NAME_PATTERN.match(str(merged["name"])):
        raise RefusedError(
            f"repository.name={merged['name']!r} must be a file name (letters, digits, '.', '_', '-')."
        )
    suite = str(merged["suite"])
    components = tuple(merged["components"] or ())
    if suite.endswith("/") and components:
        raise RefusedError(
            f"repository.suite={suite!r} is a flat repository (it ends in '/'): it has no components."
        )
    if not suite.endswith("/") and not components:
        raise RefusedError(
            f"repository.suite={suite!r} is not flat (no '/' at the end): give repository.components."
        )
    return Repository(
        name=str(merged["name"]),
        uri=str(merged["uri"]).rstrip("/"),
        suite=suite,
        components=components,
        key_url=str(merged["key_url"]),
        key_fingerprint=fingerprint,
    )


def sources_text(repository: Repository) -> str:
    lines = [
        "# Written by meetops.jitsi (module jitsi_packages): the repository its pinned packages come from.",
        "Types: deb",
        f"URIs: {repository.uri}",
        f"Suites: {repository.suite}",
    ]
    if repository.components:
        lines.append(f"Components: {' '.join(repository.components)}")
    lines.append(f"Signed-By: {repository.key_path}")
    return "\n".join(lines) + "\n"


def preferences_text(pins: list[tuple[str, str]]) -> str:
    """An apt preferences file that pins each installed package at its version."""
    stanzas = [
        "# Written by meetops.jitsi (module jitsi_packages): each package stays at its pinned version."
    ]
    for name, version in sorted(pins):
        stanzas.append(f"Package: {name}\nPin: version {version}\nPin-Priority: 1001")
    return "\n\n".join(stanzas) + "\n"


def preferences_pins(text: str | None) -> dict[str, str]:
    """Package -> version of each pin in a preferences file written by preferences_text."""
    pattern = r"^Package: (\S+)\nPin: version (\S+)\nPin-Priority: 1001$"
    return dict(re.findall(pattern, text or "", flags=re.MULTILINE))


def parse_dpkg(output: str) -> dict[str, tuple[str, str]]:
    """Package -> (status abbreviation, version) from dpkg-query -W output with QUERY_FORMAT."""
    result = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) == 3:
            result[fields[0]] = (fields[1].strip(), fields[2])
    return result


def installed_version(status: tuple[str, str] | None) -> str | None:
    """The version of a fully installed package (status ii or hi), else None."""
    if status is None or len(status[0]) < 2 or status[0][1] != "i":
        return None
    return status[1]


def is_held(status: tuple[str, str] | None) -> bool:
    return status is not None and status[0][:1] == "h"


def deb822_entries(text: str) -> list[tuple[str, str]]:
    """(URI without a trailing '/', suite) of each enabled 'deb' stanza of a deb822 .sources file."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        values: dict[str, str] = {}
        current = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[:1].isspace() and current:
                values[current] += " " + line.strip()
                continue
            key, _unused, value = line.partition(":")
            current = key.strip().lower()
            values[current] = value.strip()
        if values.get("enabled", "yes").lower() == "no" or "deb" not in values.get("types", "").split():
            continue
        entries += [
            (uri.rstrip("/"), suite)
            for uri in values.get("uris", "").split()
            for suite in values.get("suites", "").split()
        ]
    return entries


def one_line_entries(text: str) -> list[tuple[str, str]]:
    """(URI without a trailing '/', suite) of each 'deb' line of a one-line-style .list file."""
    entries = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            entries.append((words[1].rstrip("/"), words[2]))
    return entries


def source_entries(path: str, text: str) -> list[tuple[str, str]]:
    """The repositories an apt source file lists, by its format (its name's suffix)."""
    return deb822_entries(text) if path.endswith(".sources") else one_line_entries(text)


def module_name(entry: str) -> str:
    """An entry of a plugin directory as the loader names it: without a .lua suffix."""
    return entry[:-4] if entry.endswith(".lua") else entry


def shadowing(entries: list[str], other_names: set[str]) -> list[str]:
    """The entries whose module name is also one of `other_names` (module names)."""
    return sorted(entry for entry in entries if module_name(entry) in other_names)


def marker_text(name: str, version: str, omitted: list[str]) -> str:
    return f"package={name}\nversion={version}\nomitted={','.join(sorted(omitted))}\n"


def madison_versions(output: str, repository: Repository) -> list[str]:
    """Versions 'apt-cache madison' lists for a package from this repository."""
    # madison names an index '<uri> <suite> Packages' (flat) or '<uri> <suite>/<component> <arch> Packages'.
    indexes = [f"{repository.uri} {repository.suite}/{component} " for component in repository.components]
    prefixes = tuple(indexes or [f"{repository.uri} {repository.suite} "])
    versions = []
    for line in output.splitlines():
        fields = [part.strip() for part in line.split("|")]
        if len(fields) == 3 and fields[2].startswith(prefixes):
            versions.append(fields[1])
    return versions


@dataclass
class Plan:
    """What the run changes: files, packages, debconf answers, unpacked directories."""

    actions: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


# --- The module ------------------------------------------------------------------------------------------


class JitsiPackages:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.repository = repository_from(self.params["repository"])
        self.plan = Plan()
        self.written: dict[str, str | None] = {}  # path -> previous content, to roll back

    # Host access ---------------------------------------------------------------------------------------

    def run(self, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        return self.module.run_command(argv, environ_update=APT_ENV, **kwargs)

    def must_run(self, argv: list[str], what: str, **kwargs: Any) -> str:
        rc, out, err = self.run(argv, **kwargs)
        if rc != 0:
            lines = [line for line in (err or out).splitlines() if line.strip()][-15:]
            raise RefusedError(f"{what} failed (rc={rc}): {' | '.join(lines)}")
        return out

    def dpkg_status(self, names: list[str]) -> dict[str, tuple[str, str]]:
        if not names:
            return {}
        rc, out, err = self.run(["dpkg-query", "-W", "-f", QUERY_FORMAT, *names])
        if rc not in (0, 1):
            raise RefusedError(f"dpkg-query failed: {err.strip()}")
        return parse_dpkg(out)

    def compare(self, left: str, operator: str, right: str) -> bool:
        rc, _unused, _unused = self.run(["dpkg", "--compare-versions", left, operator, right])
        return rc == 0

    # Steps ---------------------------------------------------------------------------------------------

    def check_inputs(self) -> None:
        for package in self.params["packages"]:
            label = package.get("pin_variable") or f"the version of {package['name']}"
            if not NAME_PATTERN.match(package["name"]):
                raise RefusedError(f"package name {package['name']!r} is not a Debian package name.")
            if not VERSION_PATTERN.match(package["version"]):
                raise RefusedError(
                    f"{label}={package['version']!r} is not a Debian version, such as 1.0-1174-1 "
                    f"(see 'apt-cache madison {package['name']}' on a host with the repository)."
                )

    def check_other_sources(self) -> None:
        """Fail, before any change, when another source file lists this repository."""
        ours = (self.repository.uri, self.repository.suite)
        names = os.listdir(SOURCES_DIR) if os.path.isdir(SOURCES_DIR) else []
        paths = [SOURCES_LIST, *sorted(os.path.join(SOURCES_DIR, entry) for entry in names)]
        for path in paths:
            if path == self.repository.sources_path or not path.endswith((".list", ".sources")):
                continue
            text = read_text(path)
            if text is not None and ours in source_entries(path, text):
                raise RefusedError(
                    f"{path} already lists the repository {self.repository.uri} {self.repository.suite}; apt "
                    f"refuses two sources for it with different Signed-By keys. Remove {path} (the "
                    f"collection writes {self.repository.sources_path}, signed by the pinned key) and run "
                    "again."
                )

    def installed_key_fingerprints(self) -> list[str] | None:
        """Fingerprints in the key file on the host; None when it is missing or not a key file."""
        try:
            with open(self.repository.key_path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        try:
            return _openpgp.primary_fingerprints(data)
        except (_openpgp.KeyFileError, UnicodeDecodeError):
            return None

    def fetch_key(self) -> str:
        """The repository key from key_url, as canonical armor, after checking its fingerprint."""
        url = self.repository.key_url
        response, info = fetch_url(self.module, url, timeout=30)
        if response is None or info.get("status") != 200:
            raise RefusedError(
                f"could not fetch the repository key from key_url={url}: {info.get('msg', 'no answer')} "
                f"(status {info.get('status')}). Nothing was changed. Check that this host reaches it."
            )
        data = response.read()
        try:
            found = _openpgp.primary_fingerprints(data)
            text = _openpgp.armored_text(data)
        except _openpgp.KeyFileError as error:
            raise RefusedError(
                f"the key at key_url={url} is not an OpenPGP public key: {error}. Nothing was changed."
            ) from error
        if found != [self.repository.key_fingerprint]:
            raise RefusedError(
                f"the key at key_url={url} has the fingerprint {', '.join(found)}, not the pinned "
                f"key_fingerprint={self.repository.key_fingerprint}. Nothing was changed. If the repository "
                "really changed its key, check the new fingerprint with its publisher and pin it."
            )
        return text

    def write(self, path: str, content: str, what: str) -> None:
        previous = read_text(path)
        if previous == content:
            return
        self.plan.actions.append(what)
        self.plan.before[path] = previous or ""
        self.plan.after[path] = content
        if not self.module.check_mode:
            self.written.setdefault(path, previous)
            write_text(self.module, path, content)

    def roll_back(self) -> None:
        for path, previous in self.written.items():
            if previous is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                write_text(self.module, path, previous)

    def lists_age(self) -> float:
        try:
            newest = max(
                os.stat(os.path.join(LISTS_DIR, entry)).st_mtime
                for entry in os.listdir(LISTS_DIR)
                if entry not in ("lock", "partial", "auxfiles")
            )
        except (OSError, ValueError):
            return float("inf")
        return time.time() - newest

    def apt_update(self, reason: str) -> None:
        self.plan.actions.append(f"apt-get update ({reason})")
        if self.module.check_mode:
            return
        rc, out, err = self.run(["apt-get", "update", "-q"])
        problems = [line for line in (err + "\n" + out).splitlines() if line.startswith(("E:", "W:", "Err:"))]
        if rc != 0 or any(self.repository.uri in line for line in problems):
            self.roll_back()
            raise RefusedError(
                f"apt-get update failed for the repository {self.repository.uri} {self.repository.suite}: "
                f"{' | '.join(problems[-8:]) or err.strip()}. The repository's source and key files are as "
                "they were before this run; nothing was installed."
            )

    def available(self, name: str) -> list[str]:
        _unused, out, _unused = self.run(["apt-cache", "madison", name])
        return madison_versions(out, self.repository)

    def debconf_answers(self) -> None:
        """Set the answers that differ from what debconf holds."""
        wanted = self.params["debconf"]
        by_package: dict[str, dict[str, str]] = {}
        for package in sorted({answer["package"] for answer in wanted}):
            rc, out, _unused = self.run(["debconf-show", package])
            current = {}
            if rc == 0:
                for line in out.splitlines():
                    question, _unused, value = line.lstrip("* ").partition(":")
                    current[question.strip()] = value.strip()
            by_package[package] = current
        lines = []
        for answer in wanted:
            have = by_package[answer["package"]].get(answer["question"])
            shown = "(password)" if answer["vtype"] == "password" else answer["value"]
            if have is None or (answer["vtype"] != "password" and have != answer["value"]):
                lines.append(f"{answer['package']} {answer['question']} {answer['vtype']} {answer['value']}")
                self.plan.actions.append(f"debconf {answer['question']}={shown}")
        if lines and not self.module.check_mode:
            self.must_run(["debconf-set-selections"], "debconf-set-selections", data="\n".join(lines) + "\n")

    def omit_names(self, spec: dict[str, Any]) -> set[str]:
        """Module names of the entries of the unpack's omit_names_in directories."""
        names: set[str] = set()
        for directory in spec["omit_names_in"]:
            if os.path.isdir(directory):
                names.update(module_name(entry) for entry in os.listdir(directory))
        return names

    def unpacked_marker(self, package: dict[str, Any]) -> str | None:
        """The marker of the package's current unpacked directory, when it is complete and shadows nothing."""
        target = os.path.join(package["unpack"]["dest"], package["version"])
        marker = read_text(os.path.join(target, MARKER))
        if marker is None or not marker.startswith(
            f"package={package['name']}\nversion={package['version']}\n"
        ):
            return None
        entries = sorted(set(os.listdir(target)) - {MARKER})
        return None if shadowing(entries, self.omit_names(package["unpack"])) else marker

    def unpack(self, package: dict[str, Any]) -> list[str]:
        """Extract the package's directory into dest/version; the names left out."""
        spec = package["unpack"]
        name, version = package["name"], package["version"]
        target = os.path.join(spec["dest"], version)
        marker = self.unpacked_marker(package)
        if marker is not None:
            return [entry for entry in marker.partition("omitted=")[2].strip().split(",") if entry]
        self.plan.actions.append(f"unpack {name}={version} into {target}")
        self.plan.before[target] = "(absent or incomplete)"
        self.plan.after[target] = f"{name} {version}"
        if self.module.check_mode:
            return []
        work = tempfile.mkdtemp(dir=self.module.tmpdir)
        self.must_run(
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"{name}={version}"],
            f"downloading {name}={version}",
            cwd=work,
        )
        debs = [entry for entry in os.listdir(work) if entry.endswith(".deb")]
        if len(debs) != 1:
            raise RefusedError(f"apt-get download {name}={version} gave {debs}, not one package file.")
        root = os.path.join(work, "root")
        self.must_run(["dpkg-deb", "-x", os.path.join(work, debs[0]), root], f"unpacking {debs[0]}")
        source = os.path.join(root, spec["source"].strip("/"))
        if not os.path.isdir(source):
            raise RefusedError(f"{name}={version} has no directory {spec['source']} (unpack.source).")
        entries = sorted(os.listdir(source))
        omitted = shadowing(entries, self.omit_names(spec))
        staging = os.path.join(spec["dest"], f".{version}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(spec["dest"], mode=0o755, exist_ok=True)
        shutil.copytree(source, staging, symlinks=True, ignore=lambda _dir, _names: [])
        for entry in omitted:
            path = os.path.join(staging, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as handle:
            handle.write(marker_text(name, version, omitted))
        os.chmod(staging, 0o755)
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.rename(staging, target)
        return omitted

    def prune(self, package: dict[str, Any]) -> None:
        """Remove the other versions this module unpacked for the package."""
        spec = package["unpack"]
        if not os.path.isdir(spec["dest"]):
            return
        for entry in sorted(os.listdir(spec["dest"])):
            path = os.path.join(spec["dest"], entry)
            marker = read_text(os.path.join(path, MARKER)) if os.path.isdir(path) else None
            if entry == package["version"] or marker is None or f"package={package['name']}\n" not in marker:
                continue
            self.plan.actions.append(f"remove {path}")
            if not self.module.check_mode:
                shutil.rmtree(path)

    # The run -------------------------------------------------------------------------------------------

    def packages_to_install(
        self, installs: list[dict[str, Any]], status: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The packages not at their pin; a downgrade is refused here, before anything changes."""
        result = []
        for package in installs:
            have = installed_version(status.get(package["name"]))
            if have == package["version"]:
                continue
            downgrade = have is not None and self.compare(have, "gt", package["version"])
            if downgrade and not self.params["allow_downgrade"]:
                label = package.get("pin_variable") or f"the pin of {package['name']}"
                raise RefusedError(
                    f"{package['name']} {have} is installed, newer than {label}={package['version']}. "
                    f"Set {label} to {have} or newer, or set {self.params['allow_downgrade_variable']}: true "
                    f"to go back to {package['version']}. Nothing was changed."
                )
            result.append(package)
        return result

    def ensure_repository(self, installs: list[dict[str, Any]]) -> bool:
        """Key, source and pins in place; whether the key or the source changed (the pins need no update)."""
        self.check_other_sources()
        if self.installed_key_fingerprints() != [self.repository.key_fingerprint]:
            self.write(self.repository.key_path, self.fetch_key(), "write the repository key")
        self.write(self.repository.sources_path, sources_text(self.repository), "write the repository source")
        changed = bool(self.plan.actions)
        # Every role that installs from this repository writes this one file: the pins of the packages this
        # call does not manage stay.
        managed = {package["name"] for package in self.params["packages"]}
        previous = preferences_pins(read_text(self.repository.preferences_path))
        pins = {name: version for name, version in previous.items() if name not in managed}
        pins.update((package["name"], package["version"]) for package in installs)
        self.write(
            self.repository.preferences_path, preferences_text(list(pins.items())), "write the version pins"
        )
        return changed

    def refresh_lists(self, wanted: list[dict[str, Any]], repository_changed: bool, installing: bool) -> None:
        """apt-get update when needed, then make sure apt offers every pinned version."""
        if repository_changed:
            self.apt_update("the repository changed")
        else:
            unknown = [
                package for package in wanted if package["version"] not in self.available(package["name"])
            ]
            if unknown:
                self.apt_update(f"{unknown[0]['name']} {unknown[0]['version']} is not in the package lists")
            elif installing and self.lists_age() > self.params["cache_valid_time"]:
                self.apt_update("the package lists are old")
        if self.module.check_mode:
            return
        for package in wanted:
            offered = self.available(package["name"])
            if package["version"] not in offered:
                label = package.get("pin_variable") or f"the pin of {package['name']}"
                raise RefusedError(
                    f"{package['name']} {package['version']} ({label}) is not in the repository "
                    f"{self.repository.uri} {self.repository.suite}; it offers "
                    f"{', '.join(offered) or 'no version of it'}. Set {label} to one of those."
                )

    def install(
        self, to_install: list[dict[str, Any]], dependencies: list[str], status: dict[str, Any]
    ) -> None:
        wanted = [f"{package['name']}={package['version']}" for package in to_install] + dependencies
        self.plan.actions.append("install " + " ".join(wanted))
        for package in to_install:
            before = installed_version(status.get(package["name"])) or "(absent)"
            self.plan.before[f"package {package['name']}"] = before
            self.plan.after[f"package {package['name']}"] = package["version"]
        if self.module.check_mode:
            return
        argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "--allow-change-held-packages"]
        argv += ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
        if self.params["allow_downgrade"]:
            argv.append("--allow-downgrades")
        try:
            self.must_run(argv + wanted, "apt-get install " + " ".join(wanted))
        except RefusedError as refusal:
            # Packages that could not be fetched leave dpkg as it was: the new pins and source go too.
            self.roll_back()
            raise RefusedError(
                f"{refusal} The repository's files are as they were before this run."
            ) from refusal

    def hold(self, installs: list[dict[str, Any]], status: dict[str, Any]) -> None:
        verb = "hold" if self.params["hold"] else "unhold"
        for package in installs:
            if is_held(status.get(package["name"])) != self.params["hold"]:
                self.plan.actions.append(f"{verb} {package['name']}")
                if not self.module.check_mode:
                    self.must_run(["apt-mark", verb, package["name"]], f"apt-mark {verb} {package['name']}")

    def main(self) -> dict[str, Any]:
        self.check_inputs()
        installs = [package for package in self.params["packages"] if not package.get("unpack")]
        unpacks = [package for package in self.params["packages"] if package.get("unpack")]
        status = self.dpkg_status([package["name"] for package in installs] + self.params["dependencies"])
        to_install = self.packages_to_install(installs, status)
        dependencies = [
            name for name in self.params["dependencies"] if installed_version(status.get(name)) is None
        ]

        repository_changed = self.ensure_repository(installs)
        to_unpack = [package for package in unpacks if self.unpacked_marker(package) is None]
        installing = bool(to_install or dependencies)
        if installing or to_unpack:
            self.refresh_lists(to_install + to_unpack, repository_changed, installing)
        self.debconf_answers()
        if installing:
            self.install(to_install, dependencies, status)
            if not self.module.check_mode:
                status = self.dpkg_status([package["name"] for package in installs])
        self.hold(installs, status)

        unpacked, omitted = {}, {}
        for package in unpacks:
            omitted[package["name"]] = self.unpack(package)
            unpacked[package["name"]] = os.path.join(package["unpack"]["dest"], package["version"])
            self.prune(package)
        versions = {
            package["name"]: installed_version(status.get(package["name"])) or package["version"]
            for package in installs
        }
        return {
            "changed": bool(self.plan.actions),
            "actions": self.plan.actions,
            "versions": versions,
            "unpacked": unpacked,
            "omitted": omitted,
            "key_fingerprint": self.repository.key_fingerprint,
            "diff": {
                "before": "".join(f"--- {key}\n{value}\n" for key, value in self.plan.before.items()),
                "after": "".join(f"+++ {key}\n{value}\n" for key, value in self.plan.after.items()),
            },
        }


ARGUMENT_SPEC: dict[str, Any] = {
    "repository": {
        "type": "dict",
        "default": {},
        "options": {
            "name": {"type": "str", "default": REPOSITORY_DEFAULTS["name"]},
            "uri": {"type": "str", "default": REPOSITORY_DEFAULTS["uri"]},
            "suite": {"type": "str", "default": REPOSITORY_DEFAULTS["suite"]},
            "components": {"type": "list", "elements": "str", "default": REPOSITORY_DEFAULTS["components"]},
            # A URL and a fingerprint, not secrets.
            "key_url": {"type": "str", "default": REPOSITORY_DEFAULTS["key_url"], "no_log": False},
            "key_fingerprint": {
                "type": "str",
                "default": REPOSITORY_DEFAULTS["key_fingerprint"],
                "no_log": False,
            },
        },
    },
    "packages": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "version": {"type": "str", "required": True},
            "pin_variable": {"type": "str"},
            "unpack": {
                "type": "dict",
                "options": {
                    "source": {"type": "str", "required": True},
                    "dest": {"type": "path", "required": True},
                    "omit_names_in": {"type": "list", "elements": "path", "default": []},
                },
            },
        },
    },
    "dependencies": {"type": "list", "elements": "str", "default": []},
    "debconf": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "package": {"type": "str", "required": True},
            "question": {"type": "str", "required": True},
            "vtype": {
                "type": "str",
                "required": True,
                "choices": [
                    "string",
                    "boolean",
                    "select",
                    "multiselect",
                    "note",
                    "text",
                    "password",
                    "title",
                ],
            },
            "value": {"type": "str", "required": True, "no_log": False},
        },
    },
    "hold": {"type": "bool", "default": True},
    "allow_downgrade": {"type": "bool", "default": False},
    "allow_downgrade_variable": {"type": "str", "default": "allow_downgrade"},
    "cache_valid_time": {"type": "int", "default": 3600},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    # Password answers stay out of the result, its invocation (module_args) included.
    module.no_log_values.update(
        answer["value"] for answer in module.params["debconf"] if answer["vtype"] == "password"
    )
    try:
        result = JitsiPackages(module).main()
    except RefusedError as refusal:
        module.fail_json(msg=str(refusal))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
