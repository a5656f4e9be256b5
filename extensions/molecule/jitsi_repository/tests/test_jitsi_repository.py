"""The roles' install path against a real signed apt repository of fixture packages (prepare.yml builds it).

The module meetops.jitsi.jitsi_packages as jicofo, web and jvb use it (a pinned version installed, pinned and
held; upgraded by changing the pin; a downgrade refused; a wrong key or an unreachable repository refused
before anything changes) and as prosody uses it (the plugin package downloaded and its plugin directory
unpacked, without Prosody's own module names). The packages are fixtures (meetops-fixture-*), not Jitsi's:
this proves the repository mechanics, not Jitsi's software. No Jicofo or videobridge runs (molecule.yml).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from meetops_test_helpers import on, run_playbook

SERVER = "jitsi_repository-server"
BRIDGE = "jitsi_repository-bridge"
SIGNAL = "jitsi_repository-signal"
# The hosts the roles converge; the server is reached with on(SERVER).
testinfra_hosts = [BRIDGE, SIGNAL]

SCENARIO = Path(__file__).resolve().parents[1]
CONVERGE = SCENARIO / "converge.yml"
# The phases the scenario skips (Jicofo's and the bridges' run phases), as molecule.yml says.
SKIP_TAGS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["options"]["skip-tags"]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
KEY = (EPHEMERAL / "fixture-repository" / "key-fingerprint").read_text().strip()
OTHER_KEY = (EPHEMERAL / "fixture-repository" / "other-key-fingerprint").read_text().strip()

URI = "http://jitsi_repository-server:8080"
REPOSITORY = {"uri": URI, "suite": "stable/", "key_url": f"{URI}/key.asc", "key_fingerprint": KEY}
SOURCES = "/etc/apt/sources.list.d/meetops-jitsi.sources"
KEY_FILE = "/etc/apt/keyrings/meetops-jitsi.asc"
PREFERENCES = "/etc/apt/preferences.d/meetops-jitsi.pref"
DOMAIN = "meet.repository.test"
CA_NAME = f"meetops-jitsi-{DOMAIN}"
DOCS = SCENARIO.parents[2] / "docs" / "jitsi-keys" / "prosody.md"
PLUGINS_PACKAGE = "meetops-fixture-prosody-plugins"
UNPACKED = "/usr/share/meetops-jitsi/prosody-plugins/1.0.1-1"


@dataclass(frozen=True)
class Pin:
    """A role's package: its host, both versions in the repository, the variables that pin it."""

    role: str
    host: str
    package: str
    first: str
    second: str

    @property
    def variable(self) -> str:
        return f"{self.role}_version"

    @property
    def allow(self) -> str:
        return f"{self.role}_allow_downgrade"


PINS = [
    Pin("jicofo", SIGNAL, "meetops-fixture-focus", "1.0-1", "1.0-2"),
    Pin("web", SIGNAL, "meetops-fixture-web", "1.0.1-1", "1.0.2-1"),
    Pin("jvb", BRIDGE, "meetops-fixture-bridge", "2.0-1", "2.0-2"),
]
FIXTURE_PACKAGES = [pin.package for pin in PINS] + [PLUGINS_PACKAGE]
FIRST = {pin.variable: pin.first for pin in PINS}
SECOND = {pin.variable: pin.second for pin in PINS}
INSTALL_TAGS = ",".join(f"{pin.role}_install" for pin in PINS)


def name(host) -> str:
    return host.backend.get_hostname()


def pins_of(hostname: str) -> list[Pin]:
    return [pin for pin in PINS if pin.host == hostname]


def packages(host, names: list[str]) -> dict[str, tuple[str, str]]:
    """Package -> (dpkg status abbreviation, version) of the names dpkg knows."""
    cmd = host.run(
        f"dpkg-query -W -f '${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {shlex.join(names)}"
    )
    found = {}
    for line in cmd.stdout.splitlines():
        package, status, version = line.split("\t")
        found[package] = (status.strip(), version)
    return found


def installed(host, names: list[str]) -> dict[str, str]:
    """Package -> version of the names that are installed."""
    return {package: v for package, (s, v) in packages(host, names).items() if s[1:2] == "i"}


def held(host) -> set[str]:
    return set(host.check_output("apt-mark showhold").split())


def etc_state(host) -> str:
    """Every path under /etc/apt and /etc/jitsi with its type, mode, owner and link target, and each file's
    checksum: equal before and after a run that must change nothing there."""
    return host.check_output(
        "find /etc/apt /etc/jitsi -printf '%p %y %m %u:%g %l\\n' | LC_ALL=C sort"
        " && find /etc/apt /etc/jitsi -type f -exec sha256sum {} + | LC_ALL=C sort"
    )


def converge(*args: str, tags: str = "", **extra_vars) -> subprocess.CompletedProcess:
    """converge.yml from the verifier: the scenario's phases, or only the phases tagged `tags`."""
    phases = ["--tags", tags] if tags else ["--skip-tags", SKIP_TAGS]
    return run_playbook(str(CONVERGE), *phases, *args, extra_vars=extra_vars)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def recap(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """Host -> counters of the PLAY RECAP."""
    found = {}
    for line in result.stdout.split("PLAY RECAP", 1)[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(ok=\d+.*)$", line.strip())
        if match:
            found[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return found


def show_keys(armored: str) -> list[list[str]]:
    """gpg --show-keys --with-colons of a key file, run on the repository server (the hosts have no GnuPG)."""
    out = on(SERVER).check_output(
        f"printf '%s' {shlex.quote(armored)} | GNUPGHOME=$(mktemp -d) gpg --batch --with-colons --show-keys"
    )
    return [line.split(":") for line in out.splitlines()]


def documented_modules() -> list[str]:
    """The module names docs/jitsi-keys/prosody.md lists, as prepare.yml reads them."""
    lines = DOCS.read_text().splitlines()
    return sorted({line.split()[0] for line in lines if re.match(r"^([a-z_]+) .*/mod_\1\.lua$", line)})


# --- After converge: the packages, the source, the key, the pins ------------------------------------------


def test_each_fixture_package_is_installed_at_its_first_pin_and_held(host):
    pins = pins_of(name(host))
    assert packages(host, [pin.package for pin in pins]) == {pin.package: ("hi", pin.first) for pin in pins}
    assert {pin.package for pin in pins} <= held(host)


def test_a_host_has_only_the_fixture_packages_of_its_roles(host):
    # The bridge host got the bridge package alone; the plugin package is unpacked, never installed.
    assert set(installed(host, FIXTURE_PACKAGES)) == {pin.package for pin in pins_of(name(host))}


def test_the_bridge_packages_dependency_came_from_debian():
    bridge = on(BRIDGE)
    assert bridge.check_output("dpkg-query -W -f '${Depends}' meetops-fixture-bridge") == "jq"
    version = installed(bridge, ["jq"])["jq"]
    madison = bridge.check_output("apt-cache madison jq")
    assert re.search(rf"^\s*jq \| {re.escape(version)} \| http://deb\.debian\.org/", madison, re.M), madison
    assert URI not in madison


def test_no_python3_debian_was_needed(host):
    assert not host.package("python3-debian").is_installed


def test_the_repository_is_one_deb822_source_signed_by_its_key_file(host):
    text = host.file(SOURCES).content_string
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "Types: deb",
        f"URIs: {URI}",
        "Suites: stable/",
        f"Signed-By: {KEY_FILE}",
    ]
    listed = host.run(f"grep -rlF {shlex.quote(URI)} /etc/apt/sources.list /etc/apt/sources.list.d")
    assert listed.stdout.split() == [SOURCES]


def test_the_key_file_holds_exactly_the_repositorys_throwaway_key(host):
    key = host.file(KEY_FILE)
    assert (key.user, key.group, key.mode) == ("root", "root", 0o644)
    records = show_keys(key.content_string)
    assert [record[0] for record in records if record[0] in ("pub", "sub", "sec")] == ["pub"]
    assert next(record[9] for record in records if record[0] == "fpr") == KEY


def test_the_preferences_pin_the_hosts_packages_above_the_newer_versions(host):
    pins = pins_of(name(host))
    text = host.file(PREFERENCES).content_string
    stanzas = re.findall(r"^Package: (\S+)\nPin: version (\S+)\nPin-Priority: (\d+)$", text, re.M)
    assert sorted(stanzas) == sorted((pin.package, pin.first, "1001") for pin in pins)
    for pin in pins:
        # apt reads the signed repository (both versions offered) and keeps the pinned one.
        policy = host.check_output(f"apt-cache policy {pin.package}")
        assert f"Candidate: {pin.first}" in policy, policy
        assert re.search(
            rf"^\s+{re.escape(pin.second)} 500\n\s+500 {re.escape(URI)} stable/ Packages$", policy, re.M
        )


# --- The plugins, unpacked from the plugin package ----------------------------------------------------------


def test_the_plugin_package_is_unpacked_without_the_module_named_like_prosodys():
    signal = on(SIGNAL)
    entries = set(signal.check_output(f"ls -A {UNPACKED}").split())
    assert "mod_meetops_fixture_recorder.lua" in entries
    assert "mod_smacks.lua" not in entries
    for module in documented_modules():
        link = signal.file(f"{UNPACKED}/mod_{module}.lua")
        assert link.is_symlink, module
        assert link.linked_to == f"{UNPACKED}/mod_meetops_fixture_recorder.lua"
    assert "omitted=mod_smacks.lua\n" in signal.file(f"{UNPACKED}/.meetops-jitsi-package").content_string
    # The package does carry it: leaving it out was the role's doing.
    contents = on(SERVER).check_output(
        f"dpkg-deb -c /srv/meetops-fixture-repo/www/stable/{PLUGINS_PACKAGE}_1.0.1-1_all.deb"
    )
    assert "./usr/share/meetops-fixture/prosody-plugins/mod_smacks.lua" in contents


def test_prosody_loads_its_own_smacks_and_the_plugins_from_the_unpacked_package():
    signal = on(SIGNAL)
    assert f'plugin_paths = {{ "{UNPACKED}" }}' in signal.file("/etc/prosody/prosody.cfg.lua").content_string
    for module, vhost, path in (
        ("smacks", DOMAIN, "/usr/lib/prosody/modules/mod_smacks.lua"),
        ("client_proxy", f"focus.{DOMAIN}", f"{UNPACKED}/mod_client_proxy.lua"),
    ):
        shown = signal.check_output(
            f"timeout 30 prosodyctl shell {shlex.quote(f'module:info({module!r}, {vhost!r})')} 2>/dev/null"
        )
        assert f"path: {path}" in shown, shown
    assert not signal.file("/tmp/meetops-fixture-shadow-loaded").exists


# --- The internal CA in the trust stores ------------------------------------------------------------------


def test_the_signalling_nodes_java_trusts_the_internal_ca():
    signal = on(SIGNAL)
    # Jicofo's Java runtime, a dependency the jicofo role installs with the package.
    assert signal.package("openjdk-21-jre-headless").is_installed
    listed = signal.check_output(
        "keytool -list -keystore /etc/ssl/certs/java/cacerts -storepass changeit "
        f"-alias debian:{CA_NAME}.pem 2>/dev/null"
    )
    in_java = re.search(r"\(SHA-256\): ([0-9A-F:]+)", listed).group(1)
    on_disk = signal.check_output(
        f"openssl x509 -noout -fingerprint -sha256 -in /usr/local/share/ca-certificates/{CA_NAME}.crt"
    )
    assert on_disk.split("=", 1)[1] == in_java


def test_the_bridge_host_trusts_the_internal_ca_and_its_shards_bridge_prosody():
    bridge = on(BRIDGE)
    ca = (EPHEMERAL / "secrets" / DOMAIN / "ca" / "ca.crt").read_text().strip()
    assert bridge.file(f"/usr/local/share/ca-certificates/{CA_NAME}.crt").content_string.strip() == ca
    assert ca in bridge.file("/etc/ssl/certs/ca-certificates.crt").content_string
    # The certificate of the signalling node's prosody-jvb, as a bridge would check it.
    cmd = bridge.run(
        f"timeout 20 openssl s_client -connect {SIGNAL}:6222 -starttls xmpp -xmpphost auth.jvb.{DOMAIN} "
        f"-verify_hostname auth.jvb.{DOMAIN} -verify_return_error -CAfile /etc/ssl/certs/ca-certificates.crt "
        "</dev/null"
    )
    assert "Verify return code: 0 (ok)" in cmd.stdout, cmd.stdout[-2000:] + cmd.stderr[-2000:]


# --- Refusals: a wrong key, an unreachable repository ------------------------------------------------------


def refused(result: subprocess.CompletedProcess, hostname: str, *expected: str) -> None:
    """The run failed on the host, naming what is expected, and changed nothing."""
    text = output(result)
    assert result.returncode != 0, text[-3000:]
    for phrase in expected:
        assert phrase in text, text[-3000:]
    counters = recap(result)[hostname]
    assert (counters["failed"], counters["changed"]) == (1, 0), counters


@pytest.mark.parametrize("case", ["the pin names another key", "the key URL serves another key"])
def test_a_key_other_than_the_pinned_one_is_refused_before_anything_is_written(case):
    bridge = on(BRIDGE)
    packages_before = installed(bridge, [*FIXTURE_PACKAGES, "jq"])
    saved = "/root/meetops-jitsi.asc.saved"
    if case == "the pin names another key":
        # The key file holds the repository's key, which is not the pinned one: fetched and refused.
        repository = dict(REPOSITORY, key_fingerprint=OTHER_KEY)
        expected = f"has the fingerprint {KEY}, not the pinned key_fingerprint={OTHER_KEY}"
    else:
        # A host without the key file, and a key URL that serves someone else's key.
        bridge.check_output(f"mv {KEY_FILE} {saved}")
        repository = dict(REPOSITORY, key_url=f"{URI}/other-key.asc")
        expected = f"has the fingerprint {OTHER_KEY}, not the pinned key_fingerprint={KEY}"
    try:
        before = etc_state(bridge)
        result = converge("--limit", BRIDGE, tags="jvb_install", meetops_jitsi_apt_repository=repository)
        after = etc_state(bridge)
    finally:
        if case != "the pin names another key":
            bridge.check_output(f"mv {saved} {KEY_FILE}")
    refused(result, BRIDGE, expected, "Nothing was changed.")
    assert after == before
    assert installed(bridge, [*FIXTURE_PACKAGES, "jq"]) == packages_before


def test_a_key_url_nothing_answers_on_is_refused_and_nothing_written():
    bridge = on(BRIDGE)
    before, packages_before = etc_state(bridge), installed(bridge, FIXTURE_PACKAGES)
    # A repository of its own name and address, so the run gets as far as fetching its key.
    repository = {
        "name": "meetops-jitsi-unreachable",
        "uri": "http://jitsi_repository-server:8081",
        "suite": "stable/",
        "key_url": "http://jitsi_repository-server:8081/key.asc",
        "key_fingerprint": KEY,
    }
    result = converge("--limit", BRIDGE, tags="jvb_install", meetops_jitsi_apt_repository=repository)
    refused(
        result,
        BRIDGE,
        "could not fetch the repository key from key_url=http://jitsi_repository-server:8081/key.asc",
        "Nothing was changed.",
    )
    assert etc_state(bridge) == before
    assert installed(bridge, FIXTURE_PACKAGES) == packages_before


def start_repository() -> None:
    """Start the repository's HTTP server and wait until it answers."""
    server = on(SERVER)
    server.check_output("systemctl start meetops-fixture-repo.service")
    server.check_output(
        "timeout 20 bash -c 'until (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; do sleep 0.2; done'"
    )


@pytest.fixture
def repository_stopped():
    """The repository's HTTP server stopped for the test, and answering again afterwards."""
    on(SERVER).check_output("systemctl stop meetops-fixture-repo.service")
    try:
        yield
    finally:
        start_repository()


def test_an_unreachable_repository_fails_the_update_and_changes_nothing(repository_stopped):
    bridge = on(BRIDGE)
    before, packages_before = etc_state(bridge), installed(bridge, FIXTURE_PACKAGES)
    # A pin the package lists do not know: the module refreshes them, which fails.
    result = converge("--limit", BRIDGE, tags="jvb_install", jvb_version="2.0-9")
    refused(
        result,
        BRIDGE,
        f"apt-get update failed for the repository {URI} stable/",
        "The repository's source and key files are as they were before this run; nothing was installed.",
    )
    assert etc_state(bridge) == before
    assert installed(bridge, FIXTURE_PACKAGES) == packages_before


@pytest.fixture(scope="module")
def failed_download():
    """A pin the package lists know (2.0-2, not installed) while the repository is down, so that apt-get
    install cannot download it: the bridge's state before and after the run, and the run. The bridge and the
    server are put back as they were before the tests look."""
    bridge = on(BRIDGE)
    before = {"etc": etc_state(bridge), "packages": installed(bridge, FIXTURE_PACKAGES)}
    preferences = bridge.file(PREFERENCES).content_string
    on(SERVER).check_output("systemctl stop meetops-fixture-repo.service")
    try:
        result = converge("--limit", BRIDGE, tags="jvb_install", jvb_version="2.0-2")
        after = {"etc": etc_state(bridge), "packages": installed(bridge, FIXTURE_PACKAGES)}
    finally:
        start_repository()
    assert bridge.file(PREFERENCES).content_string == preferences
    return {"before": before, "result": result, "after": after}


def test_a_download_from_an_unreachable_repository_fails_and_installs_nothing(failed_download):
    result = failed_download["result"]
    text = output(result)
    assert result.returncode != 0, text[-3000:]
    assert "apt-get install meetops-fixture-bridge=2.0-2 failed" in text, text[-3000:]
    assert f"{URI}/stable/meetops-fixture-bridge_2.0-2_all.deb" in text, text[-3000:]
    assert failed_download["after"]["packages"] == failed_download["before"]["packages"]


def test_a_download_from_an_unreachable_repository_leaves_etc_as_it_was(failed_download):
    assert failed_download["after"]["etc"] == failed_download["before"]["etc"]


# --- Upgrade by changing the pins, downgrade refused, downgrade allowed ------------------------------------


@pytest.fixture(scope="class")
def upgraded():
    """The converge with the second versions; the first ones again afterwards (when the class's last test
    did not already go back to them)."""
    # The install phases only: the pins are what changes, and a whole converge would only repeat itself.
    state = {"result": converge(tags=INSTALL_TAGS, **SECOND), "restored": False}
    yield state
    if not state["restored"]:
        restore = converge(tags=INSTALL_TAGS, **FIRST, **{pin.allow: True for pin in PINS})
        assert restore.returncode == 0, output(restore)[-3000:]


class TestPinChanges:
    """In order: the second versions, a re-run, downgrades refused, the first versions again when allowed."""

    def test_new_pins_upgrade_each_package_and_keep_it_held(self, upgraded):
        result = upgraded["result"]
        assert result.returncode == 0, output(result)[-3000:]
        for pin in PINS:
            host = on(pin.host)
            assert packages(host, [pin.package]) == {pin.package: ("hi", pin.second)}
            assert (
                f"Package: {pin.package}\nPin: version {pin.second}\n"
                in host.file(PREFERENCES).content_string
            )
            assert f"Candidate: {pin.second}" in host.check_output(f"apt-cache policy {pin.package}")

    def test_a_second_run_with_the_new_pins_changes_nothing(self, upgraded):
        assert upgraded["result"].returncode == 0
        result = converge(tags=INSTALL_TAGS, **SECOND)
        assert result.returncode == 0, output(result)[-3000:]
        counters = recap(result)
        assert {host: counters[host]["changed"] for host in (SIGNAL, BRIDGE)} == {SIGNAL: 0, BRIDGE: 0}

    @pytest.mark.parametrize("pin", PINS, ids=[pin.role for pin in PINS])
    def test_an_older_pin_is_refused_naming_the_pin_and_the_switch(self, upgraded, pin):
        assert upgraded["result"].returncode == 0
        host = on(pin.host)
        before = etc_state(host), installed(host, FIXTURE_PACKAGES)
        result = converge(
            "--limit", pin.host, tags=f"{pin.role}_install", **dict(SECOND, **{pin.variable: pin.first})
        )
        refused(
            result,
            pin.host,
            f"{pin.package} {pin.second} is installed, newer than {pin.variable}={pin.first}. "
            f"Set {pin.variable} to {pin.second} or newer, "
            f"or set {pin.allow}: true to go back to {pin.first}. Nothing was changed.",
        )
        assert (etc_state(host), installed(host, FIXTURE_PACKAGES)) == before

    def test_an_allowed_downgrade_goes_back_to_the_first_pins(self, upgraded):
        assert upgraded["result"].returncode == 0
        result = converge(tags=INSTALL_TAGS, **FIRST, **{pin.allow: True for pin in PINS})
        upgraded["restored"] = result.returncode == 0
        assert result.returncode == 0, output(result)[-3000:]
        for pin in PINS:
            host = on(pin.host)
            assert packages(host, [pin.package]) == {pin.package: ("hi", pin.first)}
            assert (
                f"Package: {pin.package}\nPin: version {pin.first}\n" in host.file(PREFERENCES).content_string
            )
