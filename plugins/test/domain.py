# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Test ``domain``: whether a value is a deployment's DNS domain, the one check every role uses."""

from __future__ import annotations

from typing import Any

from ansible_collections.meetops.jitsi.plugins.module_utils._names import is_domain

DOCUMENTATION = r"""
name: domain
short_description: Whether a value is a deployment's DNS domain, such as meet.example.com
version_added: 0.2.0
author: meetops.jitsi maintainers (@meetops)
description:
  - True for a lower-case DNS name of two labels or more (each 1 to 63 letters, digits or inner hyphens, 253
    characters in all) whose last label is alphabetic, such as C(meet.example.com); false for anything else,
    a string in upper case, with an underscore, a trailing dot or a single label included.
  - The roles check their domains with it (C(prosody_domain), C(web_domain), C(jicofo_domain) and the others),
    so all of them accept the same names.
options:
  _input:
    description: The value to test.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check the domain
  ansible.builtin.assert:
    that: prosody_domain is meetops.jitsi.domain
    fail_msg: prosody_domain='{{ prosody_domain }}' must be a lower-case DNS name such as meet.example.com.
"""

RETURN = r"""
_value:
  description: Whether the value is a deployment's domain.
  type: bool
"""


class TestModule:
    """The domain test."""

    def tests(self) -> dict[str, Any]:
        return {"domain": is_domain}
