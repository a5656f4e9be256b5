"""Unit tests for the xmpp_login module: SCRAM vectors, the stream parser, and logins to a fake server.

The fake server runs in a thread on 127.0.0.1 with a certificate from a CA made here. It implements just
enough XMPP: STARTTLS, SCRAM-SHA-1/SCRAM-SHA-256/PLAIN with real server-side checks of a known password,
resource binding, the legacy session, and a MUC room with occupants. Every socket has a timeout.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.meetops.jitsi.plugins.modules import xmpp_login as mod

DOMAIN = "auth.example.test"
USERNAME = "jvb"
PASSWORD = "correct horse,=battery"
ROOM = "jvbbrewery@muc.example.test"
COLIBRI_STATS = "{http://jitsi.org/protocol/colibri}stats"
MUC_USER_X = "{http://jabber.org/protocol/muc#user}x"
SOCKET_TIMEOUT = 5.0


# --- SCRAM test vectors ------------------------------------------------------------------------------


def test_scram_sha1_rfc5802_section5_vector():
    client = mod.ScramClient("sha1", "user", "pencil", nonce="fyko+d2lbbFgONRv9qkxdawL")
    assert client.client_first() == "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    final = client.client_final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    assert final == "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    client.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")


def test_scram_sha256_rfc7677_section3_vector():
    client = mod.ScramClient("sha256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert client.client_first() == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = client.client_final(
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    assert final == (
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    client.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def rfc5802_client() -> mod.ScramClient:
    client = mod.ScramClient("sha1", "user", "pencil", nonce="fyko+d2lbbFgONRv9qkxdawL")
    client.client_final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    return client


@pytest.mark.parametrize(
    ("server_final", "message"),
    [
        ("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "does not verify"),
        ("v=rmF9pqV8S7suAoZWja4dJRkFsKQ", "does not verify"),  # base64 without its padding
        ("v=", "does not verify"),
        ("e=invalid-proof", "SCRAM error invalid-proof"),
        ("", "carries no SCRAM signature"),
    ],
)
def test_scram_server_signature_failures_are_detected(server_final: str, message: str):
    with pytest.raises(ValueError, match=message):
        rfc5802_client().verify_server_final(server_final)


def test_scram_server_final_before_the_proof_is_refused():
    with pytest.raises(ValueError, match="before the client sent its proof"):
        mod.ScramClient("sha1", "user", "pencil", nonce="abc").verify_server_final("v=AAAA")


@pytest.mark.parametrize(
    ("server_first", "message"),
    [
        ("r=other-nonce,s=QSXCR+Q6sek8bf92,i=4096", "does not extend"),
        ("r=abc,s=QSXCR+Q6sek8bf92,i=4096", "does not extend"),  # the same nonce, nothing added
        ("m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096", "unsupported SCRAM extension"),
        ("r=abcdef,i=4096", "lacks r=, s= or i="),
        ("r=abcdef,s=QSXCR+Q6sek8bf92,i=many", "malformed"),
        ("r=abcdef,s=QSXCR+Q6sek8bf92,i=0", "iterations"),
        ("r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999", "iterations"),
        ("garbage", "malformed SCRAM attribute"),
    ],
)
def test_scram_bad_server_first_messages_are_refused(server_first: str, message: str):
    with pytest.raises(ValueError, match=message):
        mod.ScramClient("sha1", "user", "pencil", nonce="abc").client_final(server_first)


def test_scram_names_are_escaped():
    assert mod.scram_escape("a=b,c") == "a=3Db=2Cc"
    assert mod.ScramClient("sha1", "a,b", "pw", nonce="n").client_first() == "n,,n=a=2Cb,r=n"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"], "SCRAM-SHA-256"),
        (["PLAIN", "SCRAM-SHA-1"], "SCRAM-SHA-1"),
        (["SCRAM-SHA-1-PLUS", "PLAIN"], "PLAIN"),
        (["DIGEST-MD5"], None),
        ([], None),
    ],
)
def test_mechanism_preference(offered: list[str], chosen: str | None):
    assert mod.choose_mechanism(offered) == chosen


def test_saslprep_maps_spaces_and_refuses_controls():
    assert mod.saslprep("I\u00adX", "password") == "IX"
    assert mod.saslprep("a\u00a0b", "password") == "a b"
    assert mod.saslprep("\u2168", "password") == "IX"
    with pytest.raises(ValueError, match="password contains the prohibited character U\\+000A"):
        mod.saslprep("line\nbreak", "password")
    with pytest.raises(ValueError, match="password is empty"):
        mod.saslprep("\u00ad", "password")


# --- The stream parser and the small steps -----------------------------------------------------------


@pytest.fixture
def pair():
    left, right = socket.socketpair()
    left.settimeout(SOCKET_TIMEOUT)
    right.settimeout(SOCKET_TIMEOUT)
    yield mod.XmppStream(left, 1.0), right
    left.close()
    right.close()


SERVER_START = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    " id='s1' from='auth.example.test' version='1.0'>"
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "</stream:features>"
)


def test_stream_reads_elements_split_at_every_byte(pair):
    stream, _server = pair
    data = (SERVER_START + "<presence from='a@b/c'><status>h\u00e9</status></presence>").encode()
    for index in range(len(data)):
        stream.feed(data[index : index + 1])
    assert stream.header == {"id": "s1", "from": "auth.example.test", "version": "1.0"}
    deadline = time.monotonic() + 1
    features = stream.next_element(deadline)
    assert features.tag == "{http://etherx.jabber.org/streams}features"
    assert features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is not None
    presence = stream.next_element(deadline)
    assert presence.findtext("{jabber:client}status") == "h\u00e9"
    assert len(stream.root) == 0  # delivered elements do not pile up under the stream


def test_stream_reads_from_the_socket_and_times_out(pair):
    stream, server = pair
    server.sendall(SERVER_START.encode())
    features = mod.read_features(stream, mod.Settings("h", 1, DOMAIN, USERNAME, PASSWORD, DOMAIN), "stream")
    assert features.tag.endswith("features")
    started = time.monotonic()
    with pytest.raises(mod.NoAnswerError):
        stream.next_element(time.monotonic() + 0.2)
    assert time.monotonic() - started < 1


def test_stream_error_is_reported_with_its_condition(pair):
    stream, server = pair
    server.sendall(
        (
            SERVER_START.partition("<stream:features>")[0]
            + "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></stream:error>"
            "</stream:stream>"
        ).encode()
    )
    settings = mod.Settings("127.0.0.1", 5222, "wrong.example.test", USERNAME, PASSWORD, "wrong.example.test")
    with pytest.raises(mod.StepError) as info:
        mod.read_features(stream, settings, "stream")
    assert info.value.step == "stream"
    assert "stream error host-unknown (no such host)" in str(info.value)
    assert "the server does not serve domain=wrong.example.test" in str(info.value)


def test_stream_invalid_xml_and_closed_connection(pair):
    stream, server = pair
    with pytest.raises(mod.StreamClosedError, match="invalid XML"):
        stream.feed(b"<stream:stream xmlns:stream='x'><a></b>")
    stream.reset()
    server.close()
    with pytest.raises(mod.StreamClosedError, match="closed the connection"):
        stream.next_element(time.monotonic() + 1)


def features(xml: str) -> ET.Element:
    return ET.fromstring(f"<features xmlns='http://etherx.jabber.org/streams'>{xml}</features>")


@pytest.mark.parametrize(
    ("xml", "required"),
    [
        ("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", True),
        ("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>", False),
        ("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>", False),
    ],
)
def test_session_only_when_offered_and_not_optional(xml: str, required: bool):
    assert mod.session_required(features(xml)) is required


def test_offered_mechanisms_are_read_from_features():
    xml = (
        "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
        "<mechanism> PLAIN </mechanism></mechanisms>"
    )
    assert mod.offered_mechanisms(features(xml)) == ["SCRAM-SHA-1", "PLAIN"]
    assert mod.offered_mechanisms(features("")) == []


def presence(xml: str) -> ET.Element:
    return ET.fromstring(f"<presence xmlns='jabber:client' {xml}</presence>")


def test_room_tracks_occupants_and_the_self_presence():
    room = mod.Room(ROOM, "me")
    muc_x = "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>"
    room.handle(
        presence(f"from='{ROOM}/jvb-1'>{muc_x}</x><stats xmlns='http://jitsi.org/protocol/colibri'/>")
    )
    room.handle(presence(f"from='{ROOM}/gone'>{muc_x}</x>"))
    room.handle(presence(f"from='other@muc.example.test/x'>{muc_x}</x>"))  # another room
    assert not room.joined
    room.handle(presence(f"from='{ROOM}/me-renamed'>{muc_x}<status code='110'/><status code='210'/></x>"))
    room.handle(presence(f"from='{ROOM}/gone' type='unavailable'>{muc_x}</x>"))
    assert (room.joined, room.created, room.nickname) == (True, False, "me-renamed")
    assert list(room.occupants) == ["jvb-1"]
    assert room.occupants["jvb-1"] == {
        "nick": "jvb-1",
        "role": "participant",
        "affiliation": "none",
        "jid": None,
        "elements": [MUC_USER_X, COLIBRI_STATS],
    }


def test_room_refusal_names_the_condition():
    room = mod.Room(ROOM, "me")
    refusal = presence(
        f"from='{ROOM}/me' type='error'><error type='auth'>"
        "<registration-required xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
    )
    with pytest.raises(
        mod.StepError, match="was refused: registration-required; the room is members-only"
    ) as info:
        room.handle(refusal)
    assert info.value.step == "muc"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"domain": "jvb@auth.example.test"}, "domain='jvb@auth.example.test' is not a domain name"),
        ({"server_name": "a b"}, "server_name='a b' is not a domain name"),
        ({"username": "jvb@auth.example.test"}, "must be the local part only"),
        ({"muc_room": "jvbbrewery"}, "muc_room='jvbbrewery' is not a room JID"),
        ({"muc_room": f"{ROOM}/nick"}, "is not a room JID"),
        ({"timeout": 0}, "timeout=0 must be more than 0 seconds"),
        ({"muc_wait": -1}, "muc_wait=-1 must be 0 seconds or more"),
    ],
)
def test_bad_options_are_refused_before_connecting(capsys, args: dict, message: str):
    result = run_module(capsys, port=1, **args)
    assert result["failed"] is True
    assert result["failed_step"] == "options"
    assert message in result["msg"]


# --- A throwaway PKI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    certificates: dict[str, tuple[Path, Path]]  # server name -> (certificate, key)


def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meetops test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certificates = {}
    for name in (DOMAIN, "other.example.test"):
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        write_key(key, key_path)
        certificates[name] = (cert_path, key_path)
    return Pki(ca=directory / "ca.pem", certificates=certificates)


# --- The fake XMPP server ----------------------------------------------------------------------------

NS = {
    "stream": "http://etherx.jabber.org/streams",
    "tls": "urn:ietf:params:xml:ns:xmpp-tls",
    "sasl": "urn:ietf:params:xml:ns:xmpp-sasl",
    "bind": "urn:ietf:params:xml:ns:xmpp-bind",
    "session": "urn:ietf:params:xml:ns:xmpp-session",
    "muc": "http://jabber.org/protocol/muc",
}
STREAM_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    " id='{id}' from='{domain}' version='1.0' xml:lang='en'>"
)
MUC_USER = (
    "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='{affiliation}' role='{role}'{jid}/>"
)


class Peer:
    """The server's view of the client's stream."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.restart()

    def restart(self) -> None:
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.header: dict[str, str] | None = None
        self.elements: deque[ET.Element] = deque()
        self.ended = False

    def pump(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.parser.feed(data)
        for event, element in self.parser.read_events():
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.header = dict(element.attrib)
                continue
            self.depth -= 1
            if self.depth == 1:
                self.elements.append(element)
            elif self.depth == 0:
                self.ended = True

    def read_header(self) -> dict[str, str]:
        while self.header is None:
            self.pump()
        return self.header

    def next(self) -> ET.Element:
        while not self.elements:
            if self.ended:
                raise EOFError
            self.pump()
        return self.elements.popleft()

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())


@dataclass
class ServerOptions:
    starttls: bool = True
    mechanisms: tuple[str, ...] = ("SCRAM-SHA-1", "PLAIN")
    password: str = PASSWORD
    bad_signature: bool = False
    session: str | None = "optional"  # None (not offered), "optional" or "required"
    room_error: str | None = None
    silent: bool = False
    certificate_name: str = DOMAIN


@dataclass
class Seen:
    """What the fake server saw the client do."""

    stream_to: list[str] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    resource: str | None = None
    session: bool = False
    joined_as: str | None = None
    join_payload: list[str] = field(default_factory=list)
    left_room: bool = False
    closed_stream: bool = False
    errors: list[str] = field(default_factory=list)


def sasl_attributes(message: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in message.split(","))


class FakeXmppServer:
    """Serves one client connection in a thread."""

    def __init__(self, pki: Pki, options: ServerOptions) -> None:
        self.pki = pki
        self.options = options
        self.seen = Seen()
        self.stop = threading.Event()
        self.connection: socket.socket | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def wait(self) -> Seen:
        self.thread.join(SOCKET_TIMEOUT)
        assert not self.thread.is_alive(), "the fake server did not finish"
        return self.seen

    def close(self) -> None:
        self.stop.set()
        self.thread.join(SOCKET_TIMEOUT)
        self.listener.close()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _address = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(SOCKET_TIMEOUT)
            self.connection = conn
            try:
                self.serve(conn)
            except EOFError:
                pass
            except Exception as exc:  # recorded for the test to show; the client sees a broken stream
                self.seen.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                self.connection.close()  # the TLS socket once there is one (conn is then detached)
            return

    def open_stream(self, peer: Peer, features: str) -> None:
        header = peer.read_header()
        self.seen.stream_to.append(header.get("to", ""))
        peer.send(STREAM_HEADER.format(id=secrets.token_hex(4), domain=DOMAIN))
        if header.get("to") != DOMAIN:
            peer.send(
                "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
                "</stream:stream>"
            )
            raise EOFError
        peer.send(f"<stream:features>{features}</stream:features>")

    def mechanisms(self) -> str:
        items = "".join(f"<mechanism>{name}</mechanism>" for name in self.options.mechanisms)
        return f"<mechanisms xmlns='{NS['sasl']}'>{items}</mechanisms>"

    def serve(self, conn: socket.socket) -> None:
        peer = Peer(conn)
        if self.options.silent:
            while not self.stop.is_set():
                try:
                    peer.pump()
                except TimeoutError:
                    continue
            return
        if not self.options.starttls:
            self.open_stream(peer, self.mechanisms())
            self.drain(peer)
            return
        self.open_stream(peer, f"<starttls xmlns='{NS['tls']}'><required/></starttls>")
        assert peer.next().tag == f"{{{NS['tls']}}}starttls"
        peer.send(f"<proceed xmlns='{NS['tls']}'/>")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.pki.certificates[self.options.certificate_name])
        self.connection = tls = context.wrap_socket(conn, server_side=True)
        peer = Peer(tls)
        self.open_stream(peer, self.mechanisms())
        if not self.authenticate(peer):
            self.drain(peer)
            return
        peer.restart()
        session = {
            None: "",
            "optional": f"<session xmlns='{NS['session']}'><optional/></session>",
            "required": f"<session xmlns='{NS['session']}'/>",
        }[self.options.session]
        self.open_stream(peer, f"<bind xmlns='{NS['bind']}'/>{session}")
        self.serve_session(peer)

    def drain(self, peer: Peer) -> None:
        """Record what the client still sends until it closes the stream, then close ours."""
        try:
            while True:
                element = peer.next()
                if element.tag == f"{{{NS['sasl']}}}auth":
                    self.seen.auth.append(element.get("mechanism", ""))
        except EOFError:
            self.seen.closed_stream = peer.ended
            peer.send("</stream:stream>")

    def authenticate(self, peer: Peer) -> bool:
        auth = peer.next()
        assert auth.tag == f"{{{NS['sasl']}}}auth"
        mechanism = auth.get("mechanism", "")
        self.seen.auth.append(mechanism)
        initial = base64.b64decode(auth.text or "").decode()
        if mechanism == "PLAIN":
            ok = initial == f"\0{USERNAME}\0{self.options.password}"
            peer.send(f"<success xmlns='{NS['sasl']}'/>" if ok else self.failure())
            return ok
        hash_name = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mechanism]
        assert initial.startswith("n,,")
        client_first_bare = initial[3:]
        first = sasl_attributes(client_first_bare)
        nonce = first["r"] + secrets.token_urlsafe(12)
        salt = secrets.token_bytes(16)
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i=4096"
        peer.send(
            f"<challenge xmlns='{NS['sasl']}'>{base64.b64encode(server_first.encode()).decode()}</challenge>"
        )
        response = peer.next()
        client_final = base64.b64decode(response.text or "").decode()
        without_proof, _unused, proof_b64 = client_final.rpartition(",p=")
        salted = hashlib.pbkdf2_hmac(hash_name, self.options.password.encode(), salt, 4096)
        stored_key = hashlib.new(hash_name, hmac.new(salted, b"Client Key", hash_name).digest()).digest()
        server_key = hmac.new(salted, b"Server Key", hash_name).digest()
        auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
        client_signature = hmac.new(stored_key, auth_message, hash_name).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof_b64), client_signature, strict=True))
        ok = (
            first["n"] == USERNAME
            and sasl_attributes(without_proof) == {"c": "biws", "r": nonce}
            and hashlib.new(hash_name, client_key).digest() == stored_key
        )
        if not ok:
            peer.send(self.failure())
            return False
        signature = hmac.new(server_key, auth_message, hash_name).digest()
        if self.options.bad_signature:
            signature = bytes(len(signature))
        server_final = base64.b64encode(b"v=" + base64.b64encode(signature)).decode()
        peer.send(f"<success xmlns='{NS['sasl']}'>{server_final}</success>")
        return True

    def failure(self) -> str:
        text = "<text>Invalid username or password</text>"
        return f"<failure xmlns='{NS['sasl']}'><not-authorized/>{text}</failure>"

    def serve_session(self, peer: Peer) -> None:
        jid = f"{USERNAME}@{DOMAIN}"
        try:
            while True:
                stanza = peer.next()
                kind = stanza.tag.rpartition("}")[2]
                if kind == "iq" and stanza.find(f"{{{NS['bind']}}}bind") is not None:
                    self.seen.resource = stanza.findtext(f"{{{NS['bind']}}}bind/{{{NS['bind']}}}resource")
                    jid = f"{USERNAME}@{DOMAIN}/{self.seen.resource}"
                    peer.send(
                        f"<iq type='result' id='{stanza.get('id')}'><bind xmlns='{NS['bind']}'>"
                        f"<jid>{jid}</jid></bind></iq>"
                    )
                elif kind == "iq" and stanza.find(f"{{{NS['session']}}}session") is not None:
                    self.seen.session = True
                    peer.send(f"<iq type='result' id='{stanza.get('id')}'/>")
                elif kind == "presence":
                    self.room_presence(peer, stanza, jid)
        except EOFError:
            self.seen.closed_stream = peer.ended
            peer.send("</stream:stream>")

    def room_presence(self, peer: Peer, stanza: ET.Element, jid: str) -> None:
        to = stanza.get("to", "")
        room, _unused, nick = to.partition("/")
        assert room == ROOM
        if stanza.get("type") == "unavailable":
            self.seen.left_room = True
            self_x = MUC_USER.format(affiliation="none", role="none", jid="") + "<status code='110'/></x>"
            peer.send(f"<presence from='{to}' to='{jid}' type='unavailable'>{self_x}</presence>")
            return
        self.seen.joined_as = nick
        self.seen.join_payload = [child.tag for child in stanza]
        if self.options.room_error:
            peer.send(
                f"<presence from='{to}' to='{jid}' type='error'><x xmlns='{NS['muc']}'/><error type='auth'>"
                f"<{self.options.room_error} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
            )
            return

        def occupant(name: str, extra: str = "", affiliation: str = "none", role: str = "participant") -> str:
            x = MUC_USER.format(affiliation=affiliation, role=role, jid=f" jid='{name}@{DOMAIN}/x'")
            return f"<presence from='{ROOM}/{name}' to='{jid}'>{x}</x>{extra}</presence>"

        stats = (
            "<stats xmlns='http://jitsi.org/protocol/colibri'><stat name='stress_level' value='0.1'/></stats>"
        )
        peer.send(occupant("jvb-1", stats + "<c xmlns='http://jabber.org/protocol/caps' node='n' ver='v'/>"))
        peer.send(occupant("focus", affiliation="owner", role="moderator"))
        peer.send(occupant("jvb-old", stats))
        self_x = MUC_USER.format(affiliation="none", role="participant", jid=f" jid='{jid}'")
        self_x += "<status code='100'/><status code='110'/></x>"
        peer.send(f"<presence from='{to}' to='{jid}'>{self_x}</presence>")
        time.sleep(0.05)  # presences that arrive after the join must be collected during muc_wait
        peer.send(occupant("jvb-2", stats))
        gone = MUC_USER.format(affiliation="none", role="none", jid="")
        peer.send(f"<presence from='{ROOM}/jvb-old' to='{jid}' type='unavailable'>{gone}</x></presence>")


@pytest.fixture
def start_server(pki: Pki):
    servers: list[FakeXmppServer] = []

    def start(**options) -> FakeXmppServer:
        server = FakeXmppServer(pki, ServerOptions(**options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def run_module(capsys: pytest.CaptureFixture, **args) -> dict:
    args = {
        "host": "127.0.0.1",
        "domain": DOMAIN,
        "username": USERNAME,
        "password": PASSWORD,
        "timeout": 3,
        "muc_wait": 0.3,
        **args,
    }
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    out = capsys.readouterr().out
    assert PASSWORD not in out
    return json.loads(out)


def login(capsys: pytest.CaptureFixture, server: FakeXmppServer, pki: Pki, **args) -> dict:
    return run_module(capsys, port=server.port, ca_file=str(pki.ca), **args)


# --- Logins against the fake server ------------------------------------------------------------------


def test_login_and_room_occupants(capsys, pki: Pki, start_server):
    server = start_server()
    result = login(capsys, server, pki, muc_room=ROOM)
    assert result["changed"] is False
    assert result["authenticated"] is True
    assert result["mechanism"] == "SCRAM-SHA-1"
    assert result["offered_mechanisms"] == ["SCRAM-SHA-1", "PLAIN"]
    assert result["jid"] == f"{USERNAME}@{DOMAIN}/meetops-verify"
    assert result["tls_version"] in ("TLSv1.2", "TLSv1.3")
    certificate = result["certificate"]
    assert (certificate["subject_cn"], certificate["issuer_cn"]) == (DOMAIN, "meetops test CA")
    assert certificate["subject_alt_names"] == [DOMAIN]
    assert certificate["not_after"].endswith("GMT")
    assert len(certificate["sha256"]) == 64
    assert [occupant["nick"] for occupant in result["occupants"]] == ["jvb-1", "focus", "jvb-2"]
    jvb1, focus, _jvb2 = result["occupants"]
    assert jvb1["elements"] == [MUC_USER_X, COLIBRI_STATS, "{http://jabber.org/protocol/caps}c"]
    assert (focus["role"], focus["affiliation"], focus["jid"]) == ("moderator", "owner", f"focus@{DOMAIN}/x")
    assert focus["elements"] == [MUC_USER_X]
    assert result["room_created"] is False
    assert "failed_step" not in result
    seen = server.wait()
    assert seen.errors == []
    assert seen.stream_to == [DOMAIN, DOMAIN, DOMAIN]
    assert seen.resource == "meetops-verify"
    assert seen.session is False  # offered as optional
    assert seen.joined_as.startswith("meetops-verify-")
    assert seen.join_payload == ["{http://jabber.org/protocol/muc}x"]
    assert (seen.left_room, seen.closed_stream) == (True, True)


def test_login_without_room_in_check_mode(capsys, pki: Pki, start_server):
    server = start_server(session="required")
    result = login(capsys, server, pki, resource="probe", _ansible_check_mode=True)
    assert (result["authenticated"], result["jid"]) == (True, f"{USERNAME}@{DOMAIN}/probe")
    assert "occupants" not in result
    seen = server.wait()
    assert (seen.session, seen.joined_as, seen.closed_stream) == (True, None, True)


def test_scram_sha256_is_preferred(capsys, pki: Pki, start_server):
    server = start_server(mechanisms=("PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"))
    result = login(capsys, server, pki)
    assert (result["authenticated"], result["mechanism"]) == (True, "SCRAM-SHA-256")
    assert server.wait().auth == ["SCRAM-SHA-256"]


def test_plain_only_when_nothing_else_is_offered(capsys, pki: Pki, start_server):
    server = start_server(mechanisms=("PLAIN",))
    result = login(capsys, server, pki)
    assert (result["authenticated"], result["mechanism"]) == (True, "PLAIN")


def test_wrong_password(capsys, pki: Pki, start_server):
    server = start_server(password="another password")
    result = login(capsys, server, pki, muc_room=ROOM)
    assert result["failed"] is True
    assert result["authenticated"] is False
    assert result["failed_step"] == "authenticate"
    assert result["msg"] == (
        f"authentication failed for username={USERNAME} on domain={DOMAIN}: "
        "not-authorized (Invalid username or password) (check the password)."
    )
    assert result["tls_version"] in ("TLSv1.2", "TLSv1.3")  # what was found before the failure
    seen = server.wait()
    assert (seen.auth, seen.closed_stream) == (["SCRAM-SHA-1"], True)


def test_server_that_does_not_know_the_password_is_caught(capsys, pki: Pki, start_server):
    server = start_server(bad_signature=True)
    result = login(capsys, server, pki)
    assert result["failed_step"] == "authenticate"
    assert "SCRAM signature (v=) does not verify" in result["msg"]


def test_certificate_for_another_name_fails_verification(capsys, pki: Pki, start_server):
    server = start_server(certificate_name="other.example.test")
    result = login(capsys, server, pki)
    assert result["failed_step"] == "tls"
    assert result["msg"].startswith(f"TLS certificate verification failed for server_name={DOMAIN}: ")
    assert "Hostname mismatch" in result["msg"]
    assert result["msg"].endswith(
        "The server's certificate must be issued for that name by a CA in ca_file "
        "(or the system trust store)."
    )
    assert server.wait().auth == []


def test_server_name_selects_the_name_to_verify(capsys, pki: Pki, start_server):
    server = start_server(certificate_name="other.example.test")
    result = login(capsys, server, pki, server_name="other.example.test")
    assert result["authenticated"] is True
    assert result["certificate"]["subject_cn"] == "other.example.test"


def test_certificate_from_an_unknown_ca_fails_verification(capsys, pki: Pki, start_server):
    server = start_server()
    result = run_module(capsys, port=server.port)  # the system trust store does not hold the test CA
    assert result["failed_step"] == "tls"
    assert f"failed for server_name={DOMAIN}: " in result["msg"]
    assert "unable to get local issuer certificate" in result["msg"]


def test_unverified_tls_with_the_wrong_name_succeeds(capsys, monkeypatch, pki: Pki, start_server):
    # Recorded here: where module warnings end up depends on what else the test process imported.
    warnings: list[str] = []
    monkeypatch.setattr(mod.AnsibleModule, "warn", lambda _self, warning, **_kw: warnings.append(warning))
    server = start_server(certificate_name="other.example.test")
    result = run_module(capsys, port=server.port, verify_certificate=False)
    assert result["authenticated"] is True
    assert list(result["certificate"]) == ["sha256"]
    assert [w.split(":")[0] for w in warnings] == ["verify_certificate=false"]


def test_connection_refused(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_module(capsys, port=port)
    assert result["failed_step"] == "connect"
    assert result["msg"].startswith(f"could not connect to 127.0.0.1:{port}: Connection refused")
    assert result["authenticated"] is False


def test_server_without_starttls_is_refused(capsys, pki: Pki, start_server):
    server = start_server(starttls=False, mechanisms=("PLAIN",))
    result = login(capsys, server, pki)
    assert result["failed_step"] == "starttls"
    assert result["msg"].startswith("the server did not offer STARTTLS at 127.0.0.1:")
    assert "(stream features: mechanisms)" in result["msg"]
    seen = server.wait()
    assert (seen.auth, seen.closed_stream) == ([], True)  # the password never went out in plain text


def test_unknown_domain_is_named(capsys, pki: Pki, start_server):
    server = start_server()
    result = login(capsys, server, pki, domain="wrong.example.test", server_name=DOMAIN)
    assert result["failed_step"] == "stream"
    assert "stream error host-unknown" in result["msg"]
    assert "the server does not serve domain=wrong.example.test" in result["msg"]


def test_refused_room_join(capsys, pki: Pki, start_server):
    server = start_server(room_error="registration-required")
    result = login(capsys, server, pki, muc_room=ROOM, muc_nickname="checker")
    assert result["failed_step"] == "muc"
    assert result["msg"].startswith(
        f"joining muc_room={ROOM} as muc_nickname=checker was refused: registration-required"
    )
    assert result["jid"] == f"{USERNAME}@{DOMAIN}/meetops-verify"  # the login itself worked
    assert result["authenticated"] is True
    assert server.wait().joined_as == "checker"


def test_silent_server_times_out(capsys, pki: Pki, start_server):
    server = start_server(silent=True)
    started = time.monotonic()
    result = login(capsys, server, pki, timeout=0.3)
    assert time.monotonic() - started < 2
    assert result["failed_step"] == "stream"
    assert "sent no XMPP stream header and features within timeout=0.3s" in result["msg"]
