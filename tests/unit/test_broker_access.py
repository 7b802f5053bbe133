"""The broker's ACL lines and the stack's certificates, without a broker."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy.mosquitto import BrokerAuth, BrokerConfig
from deploy.tls import Authority, ensure_authority, issue_client_certificate
from devices.broker_access import key_acl, publisher_acl, write_atomically

RESTRICTED = [(5, 1), (6, 2)]  # (Datastream, agency)


def test_a_device_and_a_gateway_may_write_only_their_own_topic() -> None:
    assert publisher_acl("device", "aq-1") == ["topic write devices/aq-1/senml"]
    assert publisher_acl("gateway", "gw-1") == ["topic write gateways/gw-1/senml"]


def test_a_reader_key_reads_everything_but_other_agencies_restricted_datastreams() -> None:
    assert key_acl("reader", 1, RESTRICTED, [5, 7]) == [
        "topic read v1.1/#",
        "topic deny v1.1/Datastreams(6)", "topic deny v1.1/Datastreams(6)/#"]


def test_a_writer_key_may_also_publish_observations_of_its_agencys_datastreams() -> None:
    assert key_acl("writer", 2, RESTRICTED, [6]) == [
        "topic read v1.1/#", "topic deny v1.1/Datastreams(5)",
        "topic deny v1.1/Datastreams(5)/#", "topic write v1.1/Datastreams(6)/Observations",
        "topic write v1.1/Observations"]  # the API checks the Datastream it names


def test_an_admin_key_reads_and_writes_every_sensorthings_topic() -> None:
    assert key_acl("admin", 1, RESTRICTED, []) == ["topic readwrite v1.1/#"]


def test_access_files_are_replaced_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "acl"
    assert write_atomically(path, "user a\n", None)
    assert not write_atomically(path, "user a\n", None)  # unchanged: nothing written
    assert write_atomically(path, "user b\n", None)
    assert path.read_text() == "user b\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["acl"]  # no temporary file left


def test_with_auth_the_broker_refuses_anonymous_clients_and_listens_for_tls_too(
    tmp_path: Path,
) -> None:
    signing = tmp_path / "broker-publisher.secret"
    signing.write_text("s3cret\n")
    auth = BrokerAuth(Path("/s/passwords"), Path("/s/acl"), Path("/s/acl-certificates"),
                      8883, 8884, Authority(Path("/s/tls")), signing)
    text = BrokerConfig(port=1883, data_dir=Path("/d"), pid_file=Path("/p"), auth=auth).render()
    lines = text.splitlines()
    assert "per_listener_settings true" in lines
    plain, tls, mtls = (listener(lines, port) for port in (1883, 8883, 8884))
    for access in (plain, tls):
        assert {"allow_anonymous false", "password_file /s/passwords",
                "acl_file /s/acl"} <= access
    assert {"allow_anonymous false", "acl_file /s/acl-certificates",
            "require_certificate true", "use_identity_as_username true"} <= mtls
    for access in (plain, tls, mtls):  # the plugin that names each message's publisher
        assert {"plugin /s/stadspuls_publisher.so", "plugin_opt_secret s3cret"} <= access
    # The log, subscriptions included, on $SYS/broker/log/... for the API.
    assert {"log_dest topic", "log_type subscribe", "log_type unsubscribe",
            "log_type notice"} <= set(lines)
    assert not {line for line in mtls if line.startswith("password_file")}
    assert "allow_anonymous true" not in lines


def listener(lines: list[str], port: int) -> set[str]:
    """The lines of one listener's section: up to the next listener or blank line."""
    start = lines.index(f"listener {port} 127.0.0.1") + 1
    end = next((i for i in range(start, len(lines))
                if not lines[i] or lines[i].startswith("listener ")), len(lines))
    return set(lines[start:end])


def test_the_stack_makes_its_ca_once_and_signs_device_certificates_with_it(
    tmp_path: Path,
) -> None:
    authority = ensure_authority(tmp_path / "tls")
    first = authority.ca_cert.read_bytes()
    assert ensure_authority(tmp_path / "tls").ca_cert.read_bytes() == first  # kept
    cert_path, key_path = issue_client_certificate(authority, "aq-1", "aq-1.x7k2m9q4w0",
                                                   tmp_path / "out")
    assert (cert_path.name, key_path.name) == ("aq-1.crt", "aq-1.key")
    ca = x509.load_pem_x509_certificate(first)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    server = x509.load_pem_x509_certificate(authority.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "aq-1.x7k2m9q4w0"  # the account's certificate identity
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert authority.ca_key.stat().st_mode & 0o777 == 0o600
