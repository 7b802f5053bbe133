"""The stack's own certificate authority: a CA and the broker's server certificate, made
once into `<state>/tls`, and client certificates for devices signed by that CA.

A device that holds a client certificate of this CA may connect to the mutual-TLS listener
with no password: the broker takes the username from the certificate's common name
(`use_identity_as_username`). That name is the certificate identity its account was given
at issue, "<id>.<suffix>" (devices/credentials.py); the ACL grants only the account's
current one, so a certificate issued before the last rotation or revocation gets nothing.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825


@dataclass(frozen=True)
class Authority:
    """The files of the stack's CA and of the broker's server certificate."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def exists(self) -> bool:
        return all(p.exists() for p in (self.ca_cert, self.ca_key, self.server_cert,
                                        self.server_key))


def ensure_authority(directory: Path, broker_user: str | None = None) -> Authority:
    """The CA and the server certificate of `directory`, made now if missing.

    Args:
        directory: where they live (`<state>/tls`).
        broker_user: the account the broker runs as; it gets to read the server key.
    """
    authority = Authority(directory)
    if authority.exists():
        return authority
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stadspuls"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "Stadspuls local CA")])
    ca = (_builder(ca_name, ca_name, ca_key.public_key(), CA_DAYS)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (_builder(_leaf_name("localhost"), ca_name, server_key.public_key(), LEAF_DAYS)
              .add_extension(x509.SubjectAlternativeName([
                  x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                  critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    _write_key(authority.ca_key, ca_key, None)
    _write_key(authority.server_key, server_key, broker_user)
    authority.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    authority.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return authority


def issue_client_certificate(authority: Authority, name: str, identity: str,
                             out_dir: Path) -> tuple[Path, Path]:
    """A client certificate for device or gateway `name`, signed by the stack's CA.

    Args:
        authority: the stack's CA.
        name: the device or gateway id; it names the files.
        identity: the certificate's common name, the account's `cert_identity`.
        out_dir: where the files go.

    Returns:
        The paths of `<name>.crt` and `<name>.key` (mode 0600) in `out_dir`.
    """
    ca_cert = x509.load_pem_x509_certificate(authority.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(authority.ca_key.read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the stack's CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_leaf_name(identity), ca_cert.subject, key.public_key(), LEAF_DAYS)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / f"{name}.crt", out_dir / f"{name}.key"
    _write_key(key_path, key, None)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _leaf_name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stadspuls"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, owner: str | None) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    if owner is not None:
        account = pwd.getpwnam(owner)
        os.chown(path, account.pw_uid, account.pw_gid)
