"""Unit tests for the prosody_modules module: reading the admin shell's answers."""

from __future__ import annotations

from ansible_collections.meetops.jitsi.plugins.modules import prosody_modules as mod

# prosodyctl shell 'module:list("focus.meet.example.test")' on Prosody 13.0.6, with the warning Prosody prints
# before it when lua-unbound is missing (its indented lines must not be taken for modules).
LIST = """
**************************
Prosody was unable to find lua-unbound
This package can be obtained in the following ways:

  Debian/Ubuntu | sudo apt install lua-unbound
       luarocks | luarocks install luaunbound

Old DNS resolver library will be used
**************************

focus.meet.example.test:
    admin_shell
    authz_internal
    client_proxy
    iq
    saslauth
    tls
"""
INFO = """on VirtualHost "meet.example.test"
  path: /usr/lib/prosody/modules/mod_smacks.lua
  status: [core] Loaded
  provides:
Result: true
"""


def test_the_modules_listed_under_the_host_are_read():
    assert mod.parse_list(LIST, "focus.meet.example.test") == [
        "admin_shell",
        "authz_internal",
        "client_proxy",
        "iq",
        "saslauth",
        "tls",
    ]


def test_another_hosts_list_is_empty():
    assert mod.parse_list(LIST, "meet.example.test") == []


def test_the_path_of_a_loaded_module_is_read():
    assert mod.parse_path(INFO) == "/usr/lib/prosody/modules/mod_smacks.lua"
    assert mod.parse_path("Result: false\n") == ""
