"""Settings of the API process, read once in main() and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.broker_login import read_login


class ApiSettings(BaseSettings):
    """Where the API listens and which database it reads."""

    model_config = SettingsConfigDict(env_prefix="STADSPULS_", frozen=True)

    database_url: str = "postgresql://stadspuls@127.0.0.1:15432/stadspuls"
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    page_size: int = 100
    max_page_size: int = 10_000
    statement_timeout_s: float = 30.0
    # Big writes (docs/api.md, "Large writes"): Observations in one CreateObservations or
    # $batch, and chunks (weeks) they fall in, past which it is a 413; how long a write
    # waits for a lock before it is a 503.
    max_observations_per_request: int = 10_000
    max_chunks_per_request: int = 100
    write_lock_timeout_s: float = 2.0
    # $count=true counts exactly up to this many rows; past it the answer is the planner's
    # estimate (docs/api.md).
    count_estimate_threshold: int = 100_000
    # The broker for the SensorThings MQTT extension: notifications of committed changes and
    # Observations created by clients. topic_prefix goes before every topic ("" in
    # production; tests give each its own).
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 11883
    mqtt_client_id: str = "stadspuls-api"
    # The broker account the API logs in with (notifications and the creation listener);
    # its password is read from the file. None: connect anonymously.
    mqtt_username: str | None = None
    mqtt_password_file: Path | None = None
    # The secret with which the broker signs the publisher it names on each message
    # (deploy/mosquitto_publisher.c). Set, a message is created only for a publisher the
    # broker signed; None: the broker names nobody, and its ACL alone decides.
    mqtt_publisher_secret_file: Path | None = None
    topic_prefix: str = ""
    mqtt_enabled: bool = True
    # How often usage per agency (requests, bytes, notifications) is written to the
    # database; what is metered since is lost if the process is killed (docs/costs.md).
    usage_flush_s: float = 5.0
    # Access (docs/api.md, "Access"): the database role the API's queries run as, under
    # which row-level security holds; API keys; rate limits per key (per client address
    # without a key), a token bucket refilled at *_per_s up to *_burst requests.
    database_role: str = "stadspuls_api"
    key_cache_s: float = 5.0
    rate_limit_per_s: float = 50.0
    rate_limit_burst: int = 200
    anonymous_rate_limit_per_s: float = 10.0
    anonymous_rate_limit_burst: int = 100
    # Keys refused per client address, before its requests with a key not known to be
    # valid are answered 429 without a look at the database.
    refused_key_limit_per_s: float = 0.2
    refused_key_limit_burst: int = 20
    # Client addresses (comma-separated; "*" for any) of the proxies whose X-Forwarded-For
    # and X-Forwarded-Proto are believed; "" believes none, so every limit per address
    # applies to the address that connected (docs/api.md, "Limits of one request").
    forwarded_allow_ips: str = ""
    # One request's share of the service (docs/api.md, "Limits of one request"): rows that
    # $expand may read below a page, bytes of a request body, and of one text property
    # and one JSON object (properties, parameters, a structured result) of a written entity.
    max_expanded_rows: int = 20_000
    max_body_bytes: int = 4 * 1024 * 1024
    max_text_bytes: int = 16 * 1024
    max_json_bytes: int = 64 * 1024
    # The largest answer of one GET, past which it is a 400 (entities stored before the
    # limits above, or many large ones on a page).
    max_response_bytes: int = 64 * 1024 * 1024
    # How long opening a connection to the database, and waiting for one of the pool, may
    # take before the request is answered 503.
    database_connect_timeout_s: float = 5.0
    database_acquire_timeout_s: float = 10.0

    def server_options(self) -> dict[str, Any]:
        """The options of uvicorn that serve these settings: where to listen, and whose
        forwarded headers to believe (none unless `forwarded_allow_ips` names them)."""
        return {"host": self.api_host, "port": self.api_port,
                "proxy_headers": bool(self.forwarded_allow_ips),
                "forwarded_allow_ips": self.forwarded_allow_ips or None}

    def mqtt_login(self) -> tuple[str, str] | None:
        """(username, password) for the broker, or None to connect anonymously."""
        return read_login(self.mqtt_username, self.mqtt_password_file)

    def publisher_secret(self) -> bytes | None:
        """The secret the broker signs publishers with, or None when it names none.

        Raises:
            OSError: the file cannot be read.
        """
        if self.mqtt_publisher_secret_file is None:
            return None
        return self.mqtt_publisher_secret_file.read_text().strip().encode()
