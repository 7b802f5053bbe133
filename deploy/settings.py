"""Settings of the local stack, read once by the command line and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    """Where the local stack keeps its state and which loopback ports it listens on."""

    model_config = SettingsConfigDict(env_prefix="STADSPULS_", frozen=True)

    state_dir: Path = Path(".stadspuls")
    db_port: int = 15432
    db_name: str = "stadspuls"
    mqtt_port: int = 11883
    # Authentication at the broker: passwords, ACLs and the TLS listeners (docs/mqtt.md).
    mqtt_auth: bool = True
    mqtt_tls_port: int = 8883
    mqtt_mtls_port: int = 8884
    ingest_metrics_port: int = 9108
    api_port: int = 8080
    debian_mirror: str | None = None

    @property
    def database_url(self) -> str:
        return database_url(self.db_port, self.db_name)

    @property
    def admin_database_url(self) -> str:
        return database_url(self.db_port, "postgres")

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def api_url(self) -> str:
        """The root of the SensorThings API, as links in its answers start."""
        return f"http://127.0.0.1:{self.api_port}/v1.1"


DB_USER = "stadspuls"


def database_url(port: int, name: str) -> str:
    """The URL of a database of the local cluster, reached over loopback."""
    return f"postgresql://{DB_USER}@127.0.0.1:{port}/{name}"
