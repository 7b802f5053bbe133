import socket
from pathlib import Path

import pytest

from deploy.errors import PortBusy
from deploy.mosquitto import BrokerConfig
from deploy.ports import ensure_free, free_port
from deploy.system import _uri_from_deb822, _uri_from_one_line


def _settings(text: str) -> dict[str, str]:
    lines = [line.split(" ", 1) for line in text.splitlines() if line and line[0] != "#"]
    return {pair[0]: pair[1] for pair in lines if len(pair) == 2}


def test_broker_config_keeps_sessions_and_room_for_unacknowledged_backlog() -> None:
    config = BrokerConfig(port=18831, data_dir=Path("/srv/mq/data"), pid_file=Path("/srv/p"))
    settings = _settings(config.render())
    assert settings["listener"] == "18831 127.0.0.1"
    assert settings["persistence"] == "true"
    assert settings["persistence_location"] == "/srv/mq/data/"
    assert settings["autosave_on_changes"] == "true"  # a count of changes, not seconds
    assert int(settings["autosave_interval"]) <= 1000
    assert int(settings["max_inflight_messages"]) >= 50 * 20
    assert int(settings["max_queued_messages"]) >= 100 * 1000


def test_busy_port_names_the_port_and_the_setting_to_change() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortBusy) as caught:
            ensure_free(port, "STADSPULS_DB_PORT or --db-port")
    assert str(port) in str(caught.value)
    assert "STADSPULS_DB_PORT" in str(caught.value)


def test_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ensure_free(port, "X")


def test_free_ports_asked_for_one_after_another_are_all_different() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_debian_archive_is_read_from_deb822_sources_skipping_security() -> None:
    text = (
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert _uri_from_deb822(text) == "http://mirror.example/debian"


def test_debian_archive_is_read_from_one_line_sources() -> None:
    text = (
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64] http://mirror.example/debian bookworm main contrib\n"
    )
    assert _uri_from_one_line(text) == "http://mirror.example/debian"
    assert _uri_from_one_line("deb http://ppa.example/ubuntu jammy main\n") is None
