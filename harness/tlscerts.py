"""Test certificates, made on the spot with `cryptography`: a CA and leaf
certificates it signs (EC P-256, valid for a day)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Pki:
    ca: Path          # the CA certificate (PEM)
    server_cert: Path  # for "server.test", "localhost" and 127.0.0.1
    server_key: Path
    client_cert: Path  # CN "client.test", for client authentication
    client_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, cn: str,
          sans: list[x509.GeneralName], usage: x509.ObjectIdentifier
          ) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def make_pki(directory: Path) -> Pki:
    """Write a CA, a server and a client certificate into ``directory``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("lkl test CA")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_sans: list[x509.GeneralName] = [
        x509.DNSName("server.test"), x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = _leaf(ca_key, ca_name, "server.test", server_sans, ExtendedKeyUsageOID.SERVER_AUTH)
    client = _leaf(ca_key, ca_name, "client.test", [x509.DNSName("client.test")],
                   ExtendedKeyUsageOID.CLIENT_AUTH)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key",
              directory / "client.pem", directory / "client.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server[0])
    pki.server_key.write_bytes(server[1])
    pki.client_cert.write_bytes(client[0])
    pki.client_key.write_bytes(client[1])
    return pki
