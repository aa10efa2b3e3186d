"""TLS verification follows ServerConfig.verify: a private CA is rejected by default, trusted
when given as a CA bundle path, and ignored with verify=False (the emulator over HTTPS)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import ClearMLUnavailable
from tray_app.demo import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, create_app, seeded_state


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """(CA bundle, server cert, server key) for 127.0.0.1, written as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("clearml-tray test CA"))
        .issuer_name(_name("clearml-tray test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
def https_emulator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(seeded_state(sessions=1)),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_config=None,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "HTTPS emulator did not start"
        time.sleep(0.01)
    yield f"https://127.0.0.1:{port}", ca
    server.should_exit = True
    thread.join(timeout=10)


def config(url: str, verify: bool | str) -> ServerConfig:
    return ServerConfig(url, url, "", DEMO_ACCESS_KEY, DEMO_SECRET_KEY, verify=verify)


async def test_untrusted_certificate_is_refused_with_a_clear_message(https_emulator):
    url, _ = https_emulator
    async with ClearMLClient(config(url, True), max_retries=3) as client:
        with pytest.raises(ClearMLUnavailable, match="TLS certificate") as info:
            await client.call("queues.get_default", {})
    assert url in str(info.value)
    assert client.requests_sent == 1  # not retried: retrying cannot fix trust


async def test_ca_bundle_path_makes_the_certificate_trusted(https_emulator):
    url, ca = https_emulator
    async with ClearMLClient(config(url, str(ca))) as client:
        data = await client.call("queues.get_default", {})
    assert data["name"] == "default"


async def test_verify_false_skips_verification(https_emulator):
    url, _ = https_emulator
    async with ClearMLClient(config(url, False)) as client:
        data = await client.call("queues.get_default", {})
    assert data["name"] == "default"
