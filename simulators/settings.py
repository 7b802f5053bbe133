"""Settings of the simulator, read once by its command and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class SimulatorSettings(BaseSettings):
    """Where the simulator publishes.

    Each field falls back to its ``STADSPULS_*`` environment variable.
    """

    model_config = SettingsConfigDict(env_prefix="STADSPULS_", frozen=True)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 11883
    topic_prefix: str = ""
    publish_window: int = 1_000
    # JSON object of publisher id -> secret (gateways and self-publishing devices): each
    # publishes on a connection of its own, logged in as itself. None: one anonymous
    # connection for the whole fleet.
    credentials_file: Path | None = None
