# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Private to meetops.jitsi: the one definition of the DNS names the collection accepts."""

from __future__ import annotations

import re

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
# A DNS name in lower case, one label or more, at most 253 characters: an XMPP host or component.
DNS_NAME = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}$")
# A deployment's domain: a DNS name of two labels or more whose last label is alphabetic (meet.example.com).
DOMAIN = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)+[a-z]{{2,63}}$")


def is_dns_name(value: object) -> bool:
    """Whether VALUE is a lower-case DNS name (one label or more)."""
    return isinstance(value, str) and DNS_NAME.match(value) is not None


def is_domain(value: object) -> bool:
    """Whether VALUE is a deployment's domain, such as meet.example.com."""
    return isinstance(value, str) and DOMAIN.match(value) is not None
