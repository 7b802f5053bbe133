"""Settings of an ingest process, read once in main() and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.broker_login import read_login

# What each stored reading is announced on: the standard's collection topics, only its
# Datastream's (v1.1/Datastreams({id})/Observations), or nothing.
NotifyTopics = Literal["all", "datastream", "off"]


class IngestSettings(BaseSettings):
    """How ingest reaches the broker and the database, how it batches, and what it
    announces on the SensorThings MQTT topics."""

    model_config = SettingsConfigDict(env_prefix="STADSPULS_", frozen=True)

    database_url: str = "postgresql://stadspuls@127.0.0.1:15432/stadspuls"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 11883
    mqtt_client_id: str = "stadspuls-ingest"
    # The broker account ingest logs in with; its password is read from the file (never
    # given on the command line). None: connect anonymously.
    mqtt_username: str | None = None
    mqtt_password_file: Path | None = None
    topic_prefix: str = ""
    topics: list[str] = Field(default_factory=lambda: ["devices/+/senml", "gateways/+/senml"])
    batch_max_rows: int = 5_000
    batch_max_age_s: float = 0.1
    receive_maximum: int = 10_000
    session_expiry_s: int = 7 * 24 * 3600
    max_payload_bytes: int = 64 * 1024
    max_future_s: float = 300.0
    write_method: str = "copy"
    ingest_metrics_port: int = 9108
    drain_timeout_s: float = 10.0
    # Notifications of stored readings (docs/mqtt.md).
    notify_topics: NotifyTopics = "all"
    # The API that serves the announced Observations: their @iot.selfLink starts with it.
    api_url: str = "http://127.0.0.1:8080/v1.1"
    # The broker notifications go to, when not the one readings come from.
    notify_mqtt_host: str | None = None
    notify_mqtt_port: int | None = None

    def command(self) -> list[str]:
        """The `python -m deploy ingest …` arguments that run ingest with these settings."""
        return [
            "ingest", "--database-url", self.database_url,
            "--mqtt-host", self.mqtt_host, "--mqtt-port", str(self.mqtt_port),
            "--client-id", self.mqtt_client_id, "--topic-prefix", self.topic_prefix,
            "--batch-rows", str(self.batch_max_rows), "--batch-age", str(self.batch_max_age_s),
            "--receive-maximum", str(self.receive_maximum),
            "--write-method", self.write_method,
            "--metrics-port", str(self.ingest_metrics_port),
            "--notify", self.notify_topics, "--api-url", self.api_url,
            "--notify-mqtt-host", self.notify_host, "--notify-mqtt-port", str(self.notify_port),
        ] + ([] if self.mqtt_username is None else ["--mqtt-username", self.mqtt_username]) + (
            [] if self.mqtt_password_file is None
            else ["--mqtt-password-file", str(self.mqtt_password_file)])

    def mqtt_login(self) -> tuple[str, str] | None:
        """(username, password) for the broker, or None to connect anonymously."""
        return read_login(self.mqtt_username, self.mqtt_password_file)

    @property
    def subscriptions(self) -> list[str]:
        return [self.topic_prefix + t for t in self.topics]

    @property
    def notify_host(self) -> str:
        return self.notify_mqtt_host or self.mqtt_host

    @property
    def notify_port(self) -> int:
        return self.notify_mqtt_port or self.mqtt_port

