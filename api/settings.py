"""Settings of the API process, read once in main() and passed down."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where the API listens and which database it reads."""

    model_config = SettingsConfigDict(env_prefix="STADSPULS_", frozen=True)

    database_url: str = "postgresql://stadspuls@127.0.0.1:15432/stadspuls"
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    page_size: int = 100
    max_page_size: int = 10_000
    statement_timeout_s: float = 30.0
    # $count=true counts exactly up to this many rows; past it the answer is the planner's
    # estimate (docs/api.md).
    count_estimate_threshold: int = 100_000
    # The broker for the SensorThings MQTT extension: notifications of committed changes and
    # Observations created by clients. topic_prefix goes before every topic ("" in
    # production; tests give each its own).
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 11883
    mqtt_client_id: str = "stadspuls-api"
    topic_prefix: str = ""
    mqtt_enabled: bool = True
