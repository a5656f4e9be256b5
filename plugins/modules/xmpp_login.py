#!/usr/bin/python
# Copyright (c) 2026 meetops.jitsi maintainers
# SPDX-License-Identifier: MIT
"""Prove that an account can log in to a running Prosody with verified TLS, as Jicofo or a bridge does.

How it talks: a minimal XMPP client on the standard library only (RFC 6120/6121, XEP-0045). A TCP
connection, the stream header, STARTTLS (required), the TLS upgrade with the server certificate verified
against server_name, a stream restart, SASL (SCRAM-SHA-256, then SCRAM-SHA-1, then PLAIN over TLS only
when no SCRAM mechanism is offered), another restart, resource binding, the legacy session when the server
requires it, and optionally a MUC join that reports the room's occupants and the elements of their
presences (a videobridge puts its colibri stats there). The server's XML is read with an incremental
parser (xml.etree.ElementTree.XMLPullParser) straight from the socket; every read and write is bounded
by the timeout. Each protocol step is a small function that raises StepError naming the step and the
option to look at.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xmpp_login
short_description: Log in to a running XMPP server over verified TLS and optionally join a MUC room
version_added: 0.1.0
description:
  - Connects to a running Prosody (or any XMPP server) the way Jicofo or a Jitsi videobridge does, and
    proves that O(username) can log in on O(domain) - TCP, stream header, STARTTLS (required), TLS 1.2 or
    later with the server certificate verified for O(server_name), SASL authentication, resource binding.
  - SASL mechanisms, in this order of preference - C(SCRAM-SHA-256), C(SCRAM-SHA-1) (RFC 5802 and 7677,
    the server's signature is verified too, so a server that does not know the password is caught), and
    C(PLAIN) only when the server offers no SCRAM mechanism (and then always inside TLS).
  - With O(muc_room), joins that room (XEP-0045) under O(muc_nickname), waits for the server to confirm
    the join (the self-presence, status code 110), keeps collecting presences for O(muc_wait) seconds, and
    reports the other occupants with the top-level elements of their presences, for example
    C({http://jitsi.org/protocol/colibri}stats) for a videobridge in the brewery room. It then leaves the
    room and closes the stream.
  - Uses the Python standard library only, so it runs on Debian 12 and 13 hosts without extra packages.
  - Changes nothing on the server and reports C(changed=false); runs the same in check mode.
  - On failure the result names the protocol step that failed in RV(failed_step) and the message says
    why and which option to look at.
notes:
  - Joining a room makes the module an ordinary occupant for about O(muc_wait) seconds; the other
    occupants see it join and leave. Joining a room that does not exist creates it (RV(room_created)),
    and leaving destroys it again unless the room is persistent.
  - The password is never logged or returned.
options:
  host:
    description: Host name or address to connect to.
    type: str
    default: localhost
  port:
    description: TCP port of the server's client connections (C(c2s_ports)).
    type: int
    default: 5222
  domain:
    description:
      - The XMPP domain of the account, for example C(auth.meet.example.com); sent as the stream's C(to)
        and part of the bound JID. It must be a C(VirtualHost) of the server.
    type: str
    required: true
  username:
    description: Local part of the account, for example C(focus) or C(jvb).
    type: str
    required: true
  password:
    description: The account's password. Never logged or returned.
    type: str
    required: true
  server_name:
    description:
      - The name the server's certificate must be valid for (checked against its subject alternative
        names). Defaults to O(domain).
    type: str
  ca_file:
    description:
      - A PEM bundle of the CA certificates to trust, for example the deployment's internal CA. By default
        the system trust store.
    type: path
  verify_certificate:
    description:
      - Whether to verify the server's certificate and its name. V(false) is for diagnostics only; the
        connection is still encrypted but not authenticated.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the connection, the TLS handshake and each answer of the server.
    type: float
    default: 10
  resource:
    description: The resource to bind (the part after C(/) of the full JID).
    type: str
    default: meetops-verify
  muc_room:
    description:
      - A room JID to join after logging in, for example C(jvbbrewery@muc.jvb.meet.example.com).
    type: str
  muc_nickname:
    description:
      - The nickname in O(muc_room). By default C(meetops-verify-) and random hex digits, unique per run,
        so that it never takes the place of a real occupant.
    type: str
  muc_wait:
    description: Seconds to keep collecting occupants' presences after the server confirms the join.
    type: float
    default: 2.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
author:
  - meetops.jitsi maintainers (@meetops)
"""

EXAMPLES = r"""
# The internal CA is in the system trust store (the prosody role puts it there), so no ca_file is needed.
- name: Jicofo's account logs in to the main Prosody
  meetops.jitsi.xmpp_login:
    domain: auth.meet.example.com
    username: focus
    password: "{{ jicofo_auth_password }}"

- name: A videobridge account joins the brewery on prosody-jvb and sees the other bridges
  meetops.jitsi.xmpp_login:
    host: signal1.meet.example.com
    port: 6222
    domain: auth.jvb.meet.example.com
    username: jvb
    password: "{{ jvb_auth_password }}"
    ca_file: /etc/ssl/certs/ca-certificates.crt
    muc_room: jvbbrewery@muc.jvb.meet.example.com
    muc_wait: 3
  register: __brewery

- name: Every bridge in the brewery publishes its stats
  ansible.builtin.assert:
    that:
      - __brewery.occupants | length >= 1
      - __brewery.occupants | rejectattr('elements', 'contains', '{http://jitsi.org/protocol/colibri}stats')
        | list | length == 0

- name: Diagnose a certificate problem (encrypted, but the server is not authenticated)
  meetops.jitsi.xmpp_login:
    domain: auth.meet.example.com
    username: focus
    password: "{{ jicofo_auth_password }}"
    verify_certificate: false
  register: __login

- name: Show the certificate the server presents
  ansible.builtin.debug:
    var: __login.certificate
"""

RETURN = r"""
authenticated:
  description: Whether the account logged in and bound a resource; true whenever the module succeeds.
  returned: always
  type: bool
  sample: true
mechanism:
  description: The SASL mechanism used.
  returned: success
  type: str
  sample: SCRAM-SHA-1
offered_mechanisms:
  description: The SASL mechanisms the server offered after TLS.
  returned: when the server reached the authentication step
  type: list
  elements: str
  sample: [SCRAM-SHA-1, PLAIN]
tls_version:
  description: The negotiated TLS version.
  returned: when the TLS handshake succeeded
  type: str
  sample: TLSv1.3
tls_cipher:
  description: The negotiated TLS cipher suite.
  returned: when the TLS handshake succeeded
  type: str
  sample: TLS_AES_256_GCM_SHA384
certificate:
  description:
    - The server certificate. With O(verify_certificate=false) only its fingerprint is known, since
      Python decodes only certificates it has verified.
  returned: when the TLS handshake succeeded
  type: dict
  contains:
    subject_cn:
      description: The common name of the subject.
      type: str
      sample: auth.meet.example.com
    issuer_cn:
      description: The common name of the issuer.
      type: str
      sample: meetops internal CA
    subject_alt_names:
      description: The DNS names (and addresses) of the subject alternative name extension.
      type: list
      elements: str
      sample: [auth.meet.example.com, meet.example.com]
    not_after:
      description: The end of the validity period, as the certificate says it.
      type: str
      sample: Jun  1 12:00:00 2027 GMT
    sha256:
      description: The SHA-256 fingerprint of the DER certificate, in hex.
      type: str
      sample: 3f1c0d...
jid:
  description: The full JID the server bound.
  returned: success
  type: str
  sample: focus@auth.meet.example.com/meetops-verify
occupants:
  description:
    - The other occupants of O(muc_room) (not this session), in the order their presences arrived.
    - C(elements) are the top-level child elements of each occupant's last presence, in Clark notation
      (C({namespace}name)), for example C({http://jitsi.org/protocol/colibri}stats) or
      C({http://jabber.org/protocol/muc#user}x).
  returned: when O(muc_room) is set and the join succeeded
  type: list
  elements: dict
  contains:
    nick:
      description: The occupant's nickname (the resource of its room JID).
      type: str
    elements:
      description: The top-level element names of its presence.
      type: list
      elements: str
    role:
      description: Its role in the room (C(moderator), C(participant), C(visitor)), when given.
      type: str
    affiliation:
      description: Its affiliation (C(owner), C(admin), C(member), C(none)), when given.
      type: str
    jid:
      description: Its real JID, when the room shows it; otherwise null.
      type: str
  sample:
    - nick: jvb-1
      role: participant
      affiliation: none
      jid: jvb@auth.jvb.meet.example.com/jvb-1
      elements: ["{http://jabber.org/protocol/muc#user}x", "{http://jitsi.org/protocol/colibri}stats"]
room_created:
  description: Whether joining created O(muc_room) because it did not exist (status code 201).
  returned: when O(muc_room) is set and the join succeeded
  type: bool
  sample: false
failed_step:
  description:
    - On failure, the step that failed - C(options), C(connect), C(stream), C(starttls), C(tls),
      C(authenticate), C(bind), C(session) or C(muc).
  returned: failure
  type: str
  sample: authenticate
"""

import base64
import hashlib
import hmac
import secrets
import socket
import ssl
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meetops.jitsi.plugins.module_utils._saslprep import saslprep as _saslprep

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"

# SCRAM mechanisms in order of preference, with their hash; PLAIN only when none of them is offered.
SCRAM_MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}
MAX_SCRAM_ITERATIONS = 10_000_000  # more would keep this host computing PBKDF2 for many seconds
RECV_SIZE = 65536
CLOSE_WAIT = 1.0  # seconds to wait for the server's </stream:stream> after ours

# What to check when the server ends the stream with one of these errors (RFC 6120 section 4.9.3).
STREAM_ERROR_HINTS = {
    "host-unknown": "the server does not serve domain={domain}; check domain (a VirtualHost of the server)",
    "improper-addressing": "check domain",
    "policy-violation": "the server refused the connection by policy (a limit or a block list)",
    "connection-timeout": "the server gave up waiting; check timeout",
    "see-other-host": "the server redirects to another host; check host",
}


# Why a MUC service refuses a join, by the error condition (XEP-0045 section 7.2).
MUC_JOIN_HINTS = {
    "item-not-found": "the room is locked (a new room stays locked until its creator configures it, unless "
    "the MUC component has muc_room_locking = false) or cannot be created; check muc_room",
    "not-allowed": "this account may not create rooms there (restrict_room_creation), so the room must "
    "exist first; check muc_room",
    "not-authorized": "the room is password-protected, which this module does not support",
    "registration-required": "the room is members-only and the account is not a member",
    "forbidden": "the account is banned from the room",
    "conflict": "the nickname is in use; set another muc_nickname",
    "service-unavailable": "the room is full",
    "remote-server-not-found": "there is no MUC service at that domain; check muc_room",
}


class StepError(Exception):
    """One protocol step failed; the message names the bad value and what to check."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


class StreamClosedError(Exception):
    """The server ended the stream or the connection broke; the message says how."""


class NoAnswerError(Exception):
    """Nothing complete arrived from the server before the deadline."""


class SaslFailureError(Exception):
    """The server answered <failure/>; the message is its condition (and text)."""


def local_name(tag: str) -> str:
    """'{namespace}name' -> 'name'."""
    return tag.rpartition("}")[2]


def condition_of(element: ET.Element, namespace: str) -> str:
    """'condition (text)' of an error element whose children are in `namespace`."""
    condition = "undefined-condition"
    text = ""
    for child in element:
        if child.tag == f"{{{namespace}}}text":
            text = (child.text or "").strip()
        elif child.tag.startswith(f"{{{namespace}}}"):
            condition = local_name(child.tag)
    return condition + (f" ({text})" if text else "")


def stanza_error(stanza: ET.Element) -> str:
    """The condition (and text) of a stanza's <error/>, for example 'not-authorized'."""
    error = stanza.find(f"{{{NS_CLIENT}}}error")
    return "an error without details" if error is None else condition_of(error, NS_STANZAS)


# ---------------------------------------------------------------------------------------------------
# The stream: text out, the top-level elements in, read incrementally from the socket.
# ---------------------------------------------------------------------------------------------------


class XmppStream:
    """An XMPP stream over a socket. Every read waits at most until a deadline the caller gives."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.ended: str | None = None  # why the server's stream ended, once it has
        self.reset()

    def reset(self) -> None:
        """Forget the old stream: after STARTTLS and after SASL both sides start a new one."""
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root: ET.Element | None = None
        self.header: dict[str, str] | None = None
        self.pending: deque[ET.Element] = deque()

    def send(self, text: str) -> None:
        self.sock.settimeout(self.timeout)
        self.sock.sendall(text.encode("utf-8"))

    def open(self, domain: str) -> None:
        """Send a stream header; the server answers with its own header and its features."""
        self.reset()
        self.send(
            f"<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' "
            f"to={quoteattr(domain)} version='1.0' xml:lang='en'>"
        )

    def feed(self, data: bytes) -> None:
        """Parse bytes from the server: the header, complete top-level elements, the end."""
        try:
            self.parser.feed(data)
            events = list(self.parser.read_events())
        except ET.ParseError as exc:
            raise StreamClosedError(f"the server sent invalid XML ({exc})") from None
        for event, element in events:
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = element
                    self.header = dict(element.attrib)
                continue
            self.depth -= 1
            if self.depth == 0:
                self.ended = self.ended or "the server closed the stream"
            elif self.depth == 1 and self.root is not None:
                self.root.remove(element)  # the stream's tree does not grow with each stanza
                if element.tag == f"{{{NS_STREAM}}}error":
                    self.ended = f"stream error {condition_of(element, NS_STREAM_ERRORS)}"
                else:
                    self.pending.append(element)

    def receive(self, deadline: float) -> None:
        """Read once from the socket, waiting at most until the deadline."""
        if self.ended:
            raise StreamClosedError(self.ended)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoAnswerError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            raise NoAnswerError from None
        except ssl.SSLError as exc:
            raise StreamClosedError(f"TLS error: {exc.reason or exc}") from None
        except OSError as exc:
            raise StreamClosedError(exc.strerror or str(exc)) from None
        if not data:
            self.ended = self.ended or "the server closed the connection"
            raise StreamClosedError(self.ended)
        self.feed(data)

    def wait_header(self, deadline: float) -> dict[str, str]:
        """The attributes of the server's stream header."""
        while self.header is None:
            self.receive(deadline)
        return self.header

    def next_element(self, deadline: float) -> ET.Element:
        """The next complete top-level element; the stream's end (or a stream error) raises."""
        while not self.pending:
            self.receive(deadline)
        return self.pending.popleft()

    def wait_for(self, deadline: float, wanted: Callable[[ET.Element], bool]) -> ET.Element:
        """The next element for which `wanted` is true; others (pushes, pings) are skipped."""
        while True:
            element = self.next_element(deadline)
            if wanted(element):
                return element

    def close(self) -> None:
        """Send the closing tag and wait briefly for the server's; errors no longer matter here."""
        wait = min(self.timeout, CLOSE_WAIT)
        try:
            if self.ended is None:
                self.sock.settimeout(wait)
                self.sock.sendall(b"</stream:stream>")
                deadline = time.monotonic() + wait
                while True:
                    self.receive(deadline)
        except (StreamClosedError, NoAnswerError, OSError):
            pass
        finally:
            self.sock.close()


# ---------------------------------------------------------------------------------------------------
# Connection, stream features and TLS.
# ---------------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """The module's options, server_name and muc_nickname already defaulted."""

    host: str
    port: int
    domain: str
    username: str
    password: str
    server_name: str
    ca_file: str | None = None
    verify_certificate: bool = True
    timeout: float = 10.0
    resource: str = "meetops-verify"
    muc_room: str | None = None
    muc_nickname: str = "meetops-verify"
    muc_wait: float = 2.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def connect(settings: Settings) -> socket.socket:
    try:
        return socket.create_connection((settings.host, settings.port), timeout=settings.timeout)
    except socket.gaierror as exc:
        raise StepError(
            "connect", f"could not resolve host={settings.host}: {exc.strerror}; check host"
        ) from None
    except TimeoutError:
        raise StepError(
            "connect",
            f"could not connect to {settings.where}: no answer within timeout={settings.timeout:g}s; "
            "check host, port and the firewalls in between",
        ) from None
    except OSError as exc:
        raise StepError(
            "connect",
            f"could not connect to {settings.where}: {exc.strerror or exc}; check host and port, and that "
            "the XMPP server is running and listening there",
        ) from None


def read_features(stream: XmppStream, settings: Settings, step: str) -> ET.Element:
    """The server's stream header and <stream:features/> after the stream was (re)opened."""
    deadline = time.monotonic() + settings.timeout
    try:
        header = stream.wait_header(deadline)
        if not header.get("version", "").startswith("1."):
            raise StepError(
                step,
                f"the server at {settings.where} does not speak XMPP 1.0 "
                f"(stream version={header.get('version')!r}); check host and port",
            )
        return stream.wait_for(deadline, lambda e: e.tag == f"{{{NS_STREAM}}}features")
    except NoAnswerError:
        raise StepError(
            step,
            f"the server at {settings.where} sent no XMPP stream header and features within "
            f"timeout={settings.timeout:g}s; check that port={settings.port} is an XMPP client port",
        ) from None
    except StreamClosedError as exc:
        reason = str(exc)
        for condition, hint in STREAM_ERROR_HINTS.items():
            if reason.startswith(f"stream error {condition}"):
                reason += "; " + hint.format(domain=settings.domain)
                break
        raise StepError(
            step, f"the server at {settings.where} ended the stream for domain={settings.domain}: {reason}"
        ) from None


def starttls(stream: XmppStream, features: ET.Element, settings: Settings) -> None:
    """Ask for TLS; the server must offer it and answer <proceed/>."""
    if features.find(f"{{{NS_TLS}}}starttls") is None:
        offered = ", ".join(local_name(child.tag) for child in features) or "none"
        raise StepError(
            "starttls",
            f"the server did not offer STARTTLS at {settings.where} (stream features: {offered}); this "
            f"module logs in over TLS only: give domain={settings.domain} a certificate in the server's "
            "config, or check host and port",
        )
    stream.send(f"<starttls xmlns='{NS_TLS}'/>")
    try:
        answer = stream.wait_for(
            time.monotonic() + settings.timeout, lambda e: e.tag.startswith(f"{{{NS_TLS}}}")
        )
    except NoAnswerError:
        raise StepError(
            "starttls", f"STARTTLS at {settings.where} got no answer within timeout={settings.timeout:g}s"
        ) from None
    except StreamClosedError as exc:
        raise StepError("starttls", f"STARTTLS at {settings.where} failed: {exc}") from None
    if answer.tag != f"{{{NS_TLS}}}proceed":
        raise StepError(
            "starttls",
            f"the server at {settings.where} refused STARTTLS (<{local_name(answer.tag)}/>); check its TLS "
            "certificate configuration (its log says why)",
        )


def tls_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2 or later; the certificate verified against ca_file (or the system store) unless disabled."""
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise StepError(
            "tls", f"ca_file={settings.ca_file} cannot be loaded as a PEM CA bundle: {exc}; fix ca_file"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not settings.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def common_name(name: object) -> str | None:
    """The commonName of a subject or issuer as ssl.getpeercert() gives it."""
    for rdn in name or ():
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def certificate_facts(tls: ssl.SSLSocket) -> dict[str, object]:
    """Names and validity of the peer certificate (only known when verified), and its fingerprint."""
    facts: dict[str, object] = {}
    der = tls.getpeercert(binary_form=True)
    if der:
        facts["sha256"] = hashlib.sha256(der).hexdigest()
    decoded = tls.getpeercert() or {}
    if decoded:
        facts["subject_cn"] = common_name(decoded.get("subject"))
        facts["issuer_cn"] = common_name(decoded.get("issuer"))
        facts["subject_alt_names"] = [value for _kind, value in decoded.get("subjectAltName", ())]
        facts["not_after"] = decoded.get("notAfter")
    return facts


def upgrade_tls(stream: XmppStream, settings: Settings, report: dict[str, object]) -> None:
    """Wrap the connection in TLS, verifying the certificate for server_name unless told not to."""
    context = tls_context(settings)
    stream.sock.settimeout(settings.timeout)
    try:
        tls = context.wrap_socket(stream.sock, server_hostname=settings.server_name)
    except ssl.SSLCertVerificationError as exc:
        reason = str(exc.verify_message or exc.reason or exc).rstrip(".")
        raise StepError(
            "tls",
            f"TLS certificate verification failed for server_name={settings.server_name}: {reason}. "
            "The server's certificate must be issued for that name by a CA in ca_file "
            "(or the system trust store).",
        ) from None
    except TimeoutError:
        raise StepError(
            "tls",
            f"the TLS handshake with {settings.where} did not finish within timeout={settings.timeout:g}s",
        ) from None
    except ssl.SSLError as exc:
        raise StepError(
            "tls",
            f"the TLS handshake with {settings.where} failed: {exc.reason or exc}; the server must offer "
            "TLS 1.2 or later",
        ) from None
    except OSError as exc:
        raise StepError(
            "tls", f"the TLS handshake with {settings.where} failed: {exc.strerror or exc}"
        ) from None
    stream.sock = tls
    report["tls_version"] = tls.version()
    cipher = tls.cipher()
    report["tls_cipher"] = cipher[0] if cipher else None
    report["certificate"] = certificate_facts(tls)


# ---------------------------------------------------------------------------------------------------
# SASL: SCRAM (RFC 5802, RFC 7677) and PLAIN (RFC 4616).
# ---------------------------------------------------------------------------------------------------


def saslprep(value: str, option: str) -> str:
    """Prepare a user name or password as Prosody does (RFC 4013); ValueError names option and rule."""
    text = _saslprep(value, option)
    if not text:
        raise ValueError(f"{option} is empty")
    return text


def scram_escape(name: str) -> str:
    """RFC 5802 saslname: '=' and ',' written as =3D and =2C."""
    return name.replace("=", "=3D").replace(",", "=2C")


def parse_scram_attributes(message: str) -> dict[str, str]:
    """'r=...,s=...,i=...' -> {'r': ..., 's': ..., 'i': ...}; the first of repeated keys counts."""
    attributes: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise ValueError(f"the server sent a malformed SCRAM attribute {part!r}")
        attributes.setdefault(key, value)
    return attributes


@dataclass
class ScramClient:
    """The client side of SCRAM without channel binding (gs2 header 'n,,')."""

    hash_name: str
    username: str
    password: str
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    gs2_header: str = "n,,"
    expected_server_signature: bytes | None = None

    @property
    def client_first_bare(self) -> str:
        return f"n={scram_escape(self.username)},r={self.nonce}"

    def client_first(self) -> str:
        return self.gs2_header + self.client_first_bare

    def client_final(self, server_first: str) -> str:
        """The answer to the server's first message, with the ClientProof; raises ValueError if malformed."""
        attributes = parse_scram_attributes(server_first)
        if "m" in attributes:
            raise ValueError("the server requires an unsupported SCRAM extension (m=)")
        nonce, salt_text, iterations_text = attributes.get("r"), attributes.get("s"), attributes.get("i")
        if not nonce or not salt_text or not iterations_text:
            raise ValueError(f"the server's SCRAM challenge lacks r=, s= or i=: {server_first!r}")
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce):
            raise ValueError("the server's SCRAM nonce does not extend the client's")
        try:
            salt = base64.b64decode(salt_text, validate=True)
            iterations = int(iterations_text)
        except ValueError:
            raise ValueError(
                f"the server's SCRAM salt or iteration count is malformed: {server_first!r}"
            ) from None
        if not 1 <= iterations <= MAX_SCRAM_ITERATIONS:
            raise ValueError(
                f"the server asks for {iterations} SCRAM iterations (this module allows 1 to "
                f"{MAX_SCRAM_ITERATIONS})"
            )
        salted = hashlib.pbkdf2_hmac(self.hash_name, self.password.encode("utf-8"), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", self.hash_name).digest()
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        server_key = hmac.new(salted, b"Server Key", self.hash_name).digest()
        without_proof = f"c={base64.b64encode(self.gs2_header.encode()).decode()},r={nonce}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}".encode()
        client_signature = hmac.new(stored_key, auth_message, self.hash_name).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        self.expected_server_signature = hmac.new(server_key, auth_message, self.hash_name).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def verify_server_final(self, server_final: str) -> None:
        """Check the server's v= against the ServerSignature; raises ValueError when it does not match."""
        if not server_final:
            raise ValueError("the server's success carries no SCRAM signature (v=) to verify it by")
        attributes = parse_scram_attributes(server_final)
        if "e" in attributes:
            raise ValueError(f"the server reports the SCRAM error {attributes['e']}")
        if self.expected_server_signature is None:
            raise ValueError("the server ended SCRAM before the client sent its proof")
        try:
            signature = base64.b64decode(attributes.get("v", ""), validate=True)
        except ValueError:
            signature = b""
        if not signature or not hmac.compare_digest(signature, self.expected_server_signature):
            raise ValueError(
                "the server's SCRAM signature (v=) does not verify, so the server does not hold this "
                "account's password (or something in between is not the server)"
            )


def choose_mechanism(offered: list[str]) -> str | None:
    """SCRAM-SHA-256, then SCRAM-SHA-1; PLAIN only when no SCRAM mechanism is offered."""
    for mechanism in SCRAM_MECHANISMS:
        if mechanism in offered:
            return mechanism
    return "PLAIN" if "PLAIN" in offered else None


def offered_mechanisms(features: ET.Element) -> list[str]:
    mechanisms = features.find(f"{{{NS_SASL}}}mechanisms")
    if mechanisms is None:
        return []
    return [(child.text or "").strip() for child in mechanisms.findall(f"{{{NS_SASL}}}mechanism")]


def decode_sasl(element: ET.Element) -> str:
    """The base64 payload of a SASL element ('=' or nothing is empty)."""
    data = (element.text or "").strip()
    if data in ("", "="):
        return ""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"the server sent malformed base64 in <{local_name(element.tag)}/>") from None


def encode_sasl(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode() or "="


def sasl_exchange(
    stream: XmppStream, mechanism: str, initial: str, respond: Callable[[str], str], deadline: float
) -> str:
    """<auth/> with the initial response, an answer to each <challenge/>; the data of <success/>."""
    stream.send(f"<auth xmlns='{NS_SASL}' mechanism={quoteattr(mechanism)}>{encode_sasl(initial)}</auth>")
    while True:
        answer = stream.wait_for(deadline, lambda e: e.tag.startswith(f"{{{NS_SASL}}}"))
        name = local_name(answer.tag)
        if name == "success":
            return decode_sasl(answer)
        if name == "failure":
            raise SaslFailureError(condition_of(answer, NS_SASL))
        if name != "challenge":
            raise ValueError(f"the server sent an unexpected <{name}/>")
        reply = respond(decode_sasl(answer))
        stream.send(f"<response xmlns='{NS_SASL}'>{encode_sasl(reply) if reply else ''}</response>")


def scram_login(stream: XmppStream, mechanism: str, username: str, password: str, deadline: float) -> None:
    """SCRAM, the server's signature verified whether it comes in <success/> or a last <challenge/>."""
    scram = ScramClient(SCRAM_MECHANISMS[mechanism], username, password)
    verified = False

    def respond(challenge: str) -> str:
        nonlocal verified
        if scram.expected_server_signature is None:
            return scram.client_final(challenge)
        scram.verify_server_final(challenge)
        verified = True
        return ""

    outcome = sasl_exchange(stream, mechanism, scram.client_first(), respond, deadline)
    if not verified:
        scram.verify_server_final(outcome)


def authenticate(
    stream: XmppStream, features: ET.Element, settings: Settings, report: dict[str, object]
) -> None:
    """SASL with the best mechanism the server offers."""
    offered = offered_mechanisms(features)
    report["offered_mechanisms"] = offered
    account = f"username={settings.username} on domain={settings.domain}"
    mechanism = choose_mechanism(offered)
    if mechanism is None:
        raise StepError(
            "authenticate",
            f"the server offers no SASL mechanism this module supports for {account} (offered: "
            f"{', '.join(offered) or 'none'}; supported: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN); check the "
            "VirtualHost's authentication setting",
        )
    try:
        username = saslprep(settings.username, "username")
        password = saslprep(settings.password, "password")
    except ValueError as exc:
        raise StepError("authenticate", f"{exc}; the server would refuse it too") from None
    deadline = time.monotonic() + settings.timeout
    try:
        if mechanism == "PLAIN":
            sasl_exchange(stream, mechanism, f"\0{username}\0{password}", lambda _challenge: "", deadline)
        else:
            scram_login(stream, mechanism, username, password, deadline)
    except SaslFailureError as exc:
        raise StepError(
            "authenticate", f"authentication failed for {account}: {exc} (check the password)."
        ) from None
    except ValueError as exc:
        raise StepError("authenticate", f"{mechanism} authentication failed for {account}: {exc}") from None
    except NoAnswerError:
        raise StepError(
            "authenticate",
            f"no answer to {mechanism} authentication for {account} within timeout={settings.timeout:g}s",
        ) from None
    except StreamClosedError as exc:
        raise StepError("authenticate", f"{mechanism} authentication failed for {account}: {exc}") from None
    report["mechanism"] = mechanism


# ---------------------------------------------------------------------------------------------------
# Resource binding, session, MUC.
# ---------------------------------------------------------------------------------------------------


def iq_set(stream: XmppStream, settings: Settings, step: str, stanza_id: str, payload: str) -> ET.Element:
    """Send an <iq type='set'/> and return its result; an error answer raises StepError."""
    stream.send(f"<iq type='set' id={quoteattr(stanza_id)}>{payload}</iq>")

    def answer(element: ET.Element) -> bool:
        return element.tag == f"{{{NS_CLIENT}}}iq" and element.get("id") == stanza_id

    try:
        reply = stream.wait_for(time.monotonic() + settings.timeout, answer)
    except NoAnswerError:
        raise StepError(
            step, f"no answer to the {step} request within timeout={settings.timeout:g}s"
        ) from None
    except StreamClosedError as exc:
        raise StepError(step, f"the {step} request failed: {exc}") from None
    if reply.get("type") != "result":
        raise StepError(step, f"the server refused the {step} request: {stanza_error(reply)}")
    return reply


def bind(stream: XmppStream, features: ET.Element, settings: Settings, report: dict[str, object]) -> None:
    """Bind the resource; the server says the session's full JID."""
    if features.find(f"{{{NS_BIND}}}bind") is None:
        raise StepError("bind", "the server did not offer resource binding after authentication")
    payload = f"<bind xmlns='{NS_BIND}'><resource>{escape(settings.resource)}</resource></bind>"
    reply = iq_set(stream, settings, "bind", "bind_1", payload)
    jid = (reply.findtext(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid") or "").strip()
    if not jid:
        raise StepError("bind", "the server's answer to resource binding holds no JID")
    report["jid"] = jid


def session_required(features: ET.Element) -> bool:
    """The RFC 3921 session is offered and not marked <optional/> (RFC 6121 appendix E)."""
    session = features.find(f"{{{NS_SESSION}}}session")
    return session is not None and session.find(f"{{{NS_SESSION}}}optional") is None


def establish_session(stream: XmppStream, features: ET.Element, settings: Settings) -> None:
    if session_required(features):
        iq_set(stream, settings, "session", "session_1", f"<session xmlns='{NS_SESSION}'/>")


def muc_status(presence: ET.Element) -> tuple[ET.Element | None, set[str]]:
    """The muc#user <item/> of a presence and its status codes."""
    user = presence.find(f"{{{NS_MUC_USER}}}x")
    if user is None:
        return None, set()
    codes = {status.get("code", "") for status in user.findall(f"{{{NS_MUC_USER}}}status")}
    return user.find(f"{{{NS_MUC_USER}}}item"), codes


def occupant_entry(nick: str, presence: ET.Element) -> dict[str, object]:
    """nick, role, affiliation, real JID (when shown) and the presence's top-level element names."""
    item, _codes = muc_status(presence)
    elements: list[str] = []
    for child in presence:
        if child.tag not in elements:
            elements.append(child.tag)
    return {
        "nick": nick,
        "role": None if item is None else item.get("role"),
        "affiliation": None if item is None else item.get("affiliation"),
        "jid": None if item is None else item.get("jid"),
        "elements": elements,
    }


class Room:
    """The occupants of one room, as its presences arrive."""

    def __init__(self, jid: str, nickname: str) -> None:
        self.jid = jid
        self.nickname = nickname
        self.occupants: dict[str, dict[str, object]] = {}
        self.joined = False
        self.created = False

    def handle(self, presence: ET.Element) -> None:
        """Take one presence; raises StepError when the server refuses the join."""
        bare, _unused, nick = presence.get("from", "").partition("/")
        if bare.lower() != self.jid.lower():
            return
        kind = presence.get("type")
        if kind == "error":
            if not self.joined and nick in ("", self.nickname):
                error = stanza_error(presence)
                hint = MUC_JOIN_HINTS.get(error.partition(" ")[0], "check the room's configuration")
                raise StepError(
                    "muc",
                    f"joining muc_room={self.jid} as muc_nickname={self.nickname} was refused: "
                    f"{error}; {hint}",
                )
            return
        _item, codes = muc_status(presence)
        if "110" in codes:  # this session's own presence
            if kind != "unavailable":
                self.joined = True
                self.created = self.created or "201" in codes
                self.nickname = nick or self.nickname  # the server may have changed it (status 210)
                self.occupants.pop(self.nickname, None)
            return
        if not nick or nick == self.nickname:
            return
        if kind == "unavailable":
            self.occupants.pop(nick, None)
        else:
            self.occupants[nick] = occupant_entry(nick, presence)


def is_presence(element: ET.Element) -> bool:
    return element.tag == f"{{{NS_CLIENT}}}presence"


def join_room(stream: XmppStream, settings: Settings, room: Room, report: dict[str, object]) -> None:
    """Join, wait for the self-presence (status 110), then collect presences for muc_wait seconds."""
    stream.send(
        f"<presence to={quoteattr(f'{room.jid}/{room.nickname}')}>"
        f"<x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>"
    )
    try:
        deadline = time.monotonic() + settings.timeout
        while not room.joined:
            room.handle(stream.wait_for(deadline, is_presence))
    except NoAnswerError:
        raise StepError(
            "muc",
            f"the server did not confirm joining muc_room={room.jid} (no self-presence with status 110) "
            f"within timeout={settings.timeout:g}s; check that the room's MUC service exists",
        ) from None
    except StreamClosedError as exc:
        raise StepError("muc", f"joining muc_room={room.jid} failed: {exc}") from None
    try:
        deadline = time.monotonic() + settings.muc_wait
        while True:
            room.handle(stream.wait_for(deadline, is_presence))
    except NoAnswerError:
        pass
    except StreamClosedError as exc:
        raise StepError("muc", f"the server ended the stream while in muc_room={room.jid}: {exc}") from None
    report["occupants"] = list(room.occupants.values())
    report["room_created"] = room.created


def leave_room(stream: XmppStream, room: Room) -> None:
    stream.send(f"<presence to={quoteattr(f'{room.jid}/{room.nickname}')} type='unavailable'/>")


# ---------------------------------------------------------------------------------------------------
# The whole login, and the module.
# ---------------------------------------------------------------------------------------------------


def has_controls(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def check_settings(settings: Settings) -> None:
    """Refuse option values that cannot work, before connecting."""
    for option in ("domain", "server_name"):
        value = getattr(settings, option)
        if not value or any(char in value for char in "@/ ") or has_controls(value):
            raise StepError(
                "options", f"{option}={value!r} is not a domain name (like auth.meet.example.com)"
            )
    if not settings.username or any(char in settings.username for char in "@/ "):
        raise StepError(
            "options", f"username={settings.username!r} must be the local part only (jvb, not jvb@domain)"
        )
    if not settings.resource or has_controls(settings.resource):
        raise StepError("options", f"resource={settings.resource!r} must be non-empty text without controls")
    if settings.timeout <= 0:
        raise StepError("options", f"timeout={settings.timeout:g} must be more than 0 seconds")
    if settings.muc_wait < 0:
        raise StepError("options", f"muc_wait={settings.muc_wait:g} must be 0 seconds or more")
    if settings.muc_room is not None:
        node, _at, service = settings.muc_room.partition("@")
        if not node or not service or any(char in settings.muc_room for char in "/ ") or has_controls(node):
            raise StepError(
                "options",
                f"muc_room={settings.muc_room!r} is not a room JID "
                "(like room@muc.meet.example.com, without /nick)",
            )
        if not settings.muc_nickname or has_controls(settings.muc_nickname):
            raise StepError(
                "options", f"muc_nickname={settings.muc_nickname!r} must be non-empty text without controls"
            )


def login(settings: Settings, report: dict[str, object]) -> None:
    """Every step in order; raises StepError at the first that fails, `report` holding what was found."""
    check_settings(settings)
    stream = XmppStream(connect(settings), settings.timeout)
    step = "stream"
    try:
        stream.open(settings.domain)
        features = read_features(stream, settings, step)
        step = "starttls"
        starttls(stream, features, settings)
        step = "tls"
        upgrade_tls(stream, settings, report)
        stream.open(settings.domain)
        features = read_features(stream, settings, step)
        step = "authenticate"
        authenticate(stream, features, settings, report)
        step = "bind"
        stream.open(settings.domain)
        features = read_features(stream, settings, step)
        bind(stream, features, settings, report)
        step = "session"
        establish_session(stream, features, settings)
        report["authenticated"] = True
        if settings.muc_room is not None:
            step = "muc"
            room = Room(settings.muc_room, settings.muc_nickname)
            join_room(stream, settings, room, report)
            leave_room(stream, room)
    except OSError as exc:  # a write failed: the connection broke
        raise StepError(
            step, f"the connection to {settings.where} broke during {step}: {exc.strerror or exc}"
        ) from None
    finally:
        stream.close()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "default": "localhost"},
            "port": {"type": "int", "default": 5222},
            "domain": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "server_name": {"type": "str"},
            "ca_file": {"type": "path"},
            "verify_certificate": {"type": "bool", "default": True},
            "timeout": {"type": "float", "default": 10.0},
            "resource": {"type": "str", "default": "meetops-verify"},
            "muc_room": {"type": "str"},
            "muc_nickname": {"type": "str"},
            "muc_wait": {"type": "float", "default": 2.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    settings = Settings(
        host=params["host"],
        port=params["port"],
        domain=params["domain"],
        username=params["username"],
        password=params["password"],
        server_name=params["server_name"] or params["domain"],
        ca_file=params["ca_file"],
        verify_certificate=params["verify_certificate"],
        timeout=params["timeout"],
        resource=params["resource"],
        muc_room=params["muc_room"],
        muc_nickname=params["muc_nickname"] or f"meetops-verify-{secrets.token_hex(4)}",
        muc_wait=params["muc_wait"],
    )
    report: dict[str, object] = {}
    try:
        login(settings, report)
    except StepError as exc:
        report.setdefault("authenticated", False)  # true when only the room join failed
        module.fail_json(msg=str(exc), failed_step=exc.step, changed=False, **report)
    if not settings.verify_certificate:
        module.warn(
            "verify_certificate=false: the connection was encrypted but the server was not authenticated, "
            "so this proves nothing about its certificate; use it for diagnostics only"
        )
    if report.get("room_created"):
        module.warn(
            f"muc_room={settings.muc_room} did not exist, so joining it created it (it goes away again when "
            "empty unless it is persistent); check muc_room"
        )
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
