"""TLS and mutual TLS, with certificates made here (cryptography)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from policy_engine.client import PolicyClient
from server_harness import ServerThread


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer.subject if issuer else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


class Pki:
    def __init__(self, folder: Path) -> None:
        ca_key = _key()
        self.ca = _cert("test-ca", ca_key, None, ca_key, ca=True)
        server_key, client_key = _key(), _key()
        server = _cert("localhost", server_key, self.ca, ca_key, server=True)
        client = _cert("gateway-1", client_key, self.ca, ca_key)
        other_ca_key = _key()
        other_ca = _cert("other-ca", other_ca_key, None, other_ca_key, ca=True)
        stranger_key = _key()
        stranger = _cert("stranger", stranger_key, other_ca, other_ca_key)
        pem = serialization.Encoding.PEM
        self.ca_pem = self.ca.public_bytes(pem)
        self.client = (_pem_key(client_key), client.public_bytes(pem))
        self.stranger = (_pem_key(stranger_key), stranger.public_bytes(pem))
        self.files = {
            "tls_cert": folder / "server.pem",
            "tls_key": folder / "server.key",
            "tls_client_ca": folder / "ca.pem",
        }
        self.files["tls_cert"].write_bytes(server.public_bytes(pem))
        self.files["tls_key"].write_bytes(_pem_key(server_key))
        self.files["tls_client_ca"].write_bytes(self.ca_pem)


def _check(target: str, creds: grpc.ChannelCredentials) -> str:
    with grpc.secure_channel(target, creds) as ch:
        with PolicyClient(target, channel=ch, timeout=5) as pe:
            return pe.check({"account": {"id": "a", "age_days": 9, "verification": "kyc"}}).effect


def test_tls_server(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    st = start_server(tls_cert=pki.files["tls_cert"], tls_key=pki.files["tls_key"])
    assert _check(f"localhost:{st.port}", grpc.ssl_channel_credentials(pki.ca_pem)) == "allow"
    with grpc.insecure_channel(st.target) as ch:  # plaintext to a TLS port fails
        with pytest.raises(grpc.RpcError):
            PolicyClient(st.target, channel=ch, timeout=2).get_policy()


def test_mutual_tls_accepts_a_client_cert_and_refuses_without(
    start_server: Callable[..., ServerThread], tmp_path: Path
) -> None:
    pki = Pki(tmp_path)
    st = start_server(**pki.files)
    target = f"localhost:{st.port}"
    key, cert = pki.client
    assert _check(target, grpc.ssl_channel_credentials(pki.ca_pem, key, cert)) == "allow"
    with pytest.raises(grpc.RpcError) as info:
        _check(target, grpc.ssl_channel_credentials(pki.ca_pem))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    key, cert = pki.stranger  # a certificate from another CA
    with pytest.raises(grpc.RpcError) as info:
        _check(target, grpc.ssl_channel_credentials(pki.ca_pem, key, cert))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_must_be_complete(policy_dir: Path, tmp_path: Path) -> None:
    from policy_engine.server.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="TLS needs both --tls-cert and --tls-key"):
        load_settings(policies=policy_dir, tls_cert=tmp_path / "x.pem")
    with pytest.raises(SettingsError, match="mutual TLS"):
        load_settings(policies=policy_dir, tls_client_ca=tmp_path / "ca.pem")
