"""Observations created over MQTT (the SensorThings MQTT extension), in the API process.

A client publishes an Observation on `v1.1/Observations` (the payload names its Datastream)
or on `v1.1/Datastreams({id})/Observations` (ApiSettings.topic_prefix before either); it is
created exactly as a POST to that path would create it, and notified the same way. The
listener subscribes at QoS 1 with a persistent MQTT 5 session and acknowledges a message
only after its Observation is committed (or its reject stored), so a restart loses none.

Messages that carry the user property `stadspuls-notification` (whatever its value: the
platform's notifications carry it, and a client that sends it says its message is none) and
payloads that carry an `@iot.id` are not requests and are passed over. A payload that
cannot be created is stored in `rejected_messages` with a code (`invalid_json`, or the API's
error code such as `bad_request`) and the reason.

Who published a message, the stack's broker says in the user property
`stadspuls-publisher`, signed with the stack's publisher secret
(deploy/mosquitto_publisher.c, core.mqtt_publish.publisher_stamp). A name is believed only
with a valid signature: a Will message passes the broker unnamed and may carry any
property, so a claimed publisher without one is refused (`forged_publisher`), and so,
when the API has the secret (the broker names every publisher), is a message naming
nobody (`unnamed_publisher`). A message of an API key is created with that key's rights,
as a POST with it would be: a writer only in its agency's Datastreams (on
`v1.1/Observations` the broker's ACL cannot check that: the Datastream is in the payload),
and only in those it may see; a key revoked or expired since it logged in is refused. A
message of one of the stack's service accounts is created by the platform; so is one
without the property when the API has no secret (a broker without the plugin, whose ACL
alone must then decide). Each request is audited with its key, refusals too; a write the
database aborts to break a deadlock is run again, as over HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiomqtt
import asyncpg
from fastapi import FastAPI
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from api import audit, principal
from api.auth import key_principal
from api.bodies import parse_json
from api.errors import ApiError, TooSlow, Unauthorized
from api.keys import is_key_id
from api.operations import Outcome, execute, in_transaction
from api.principal import Principal
from api.settings import ApiSettings
from api.writer import Writer
from core.mqtt_publish import PUBLISHER_PROPERTY, USER_PROPERTY, publisher_stamp
from core.notify import VERSION
from core.pacing import jittered, reconnecting
from core.queries import query

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
RECEIVE_MAXIMUM = 100
# Failures that say nothing about the message: wait and try it again.
_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.CannotConnectNowError)
TOO_SLOW_ATTEMPTS = 3
NOTIFICATION_PROPERTY = USER_PROPERTY[0]


class ForgedPublisher(Unauthorized):
    """The message claims a publisher the broker did not sign: nothing is created."""

    code = "forged_publisher"


class UnnamedPublisher(Unauthorized):
    """The broker names the publisher of every message it passes on and named none for
    this one (a Will message, which it passes unnamed): nothing is created."""

    code = "unnamed_publisher"


class ObservationListener:
    """Creates the Observations published on the MQTT creation topics."""

    def __init__(self, app: FastAPI, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings
        self.secret = settings.publisher_secret()
        self.prefix = settings.topic_prefix
        self.base = f"http://{settings.api_host}:{settings.api_port}/{VERSION}"
        self.ready = asyncio.Event()  # subscribed; tests wait for it

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with jittered exponential backoff."""
        await reconnecting(self._session, log, "MQTT creation listener", "mqtt_create",
                           self.ready.clear)

    async def _session(self) -> None:
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = SESSION_EXPIRY_S
        connect.ReceiveMaximum = RECEIVE_MAXIMUM
        login = self.settings.mqtt_login()
        client = aiomqtt.Client(
            self.settings.mqtt_host, self.settings.mqtt_port,
            identifier=f"{self.settings.mqtt_client_id}-create",
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=connect,
            username=login[0] if login else None, password=login[1] if login else None)
        # aiomqtt acknowledges on receipt; the paho client under it can wait for the
        # commit. Set before connecting: a persistent session delivers at once.
        client._client.manual_ack_set(True)
        async with client:
            for topic in (f"{self.prefix}{VERSION}/Observations",
                          f"{self.prefix}{VERSION}/+/Observations"):
                # A retained message would come again at every subscription: not asked for.
                await client.subscribe(topic, options=SubscribeOptions(
                    qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))
            self.ready.set()
            log.info("MQTT creation listener subscribed", extra={"action": "mqtt_create_ready"})
            async for message in client.messages:
                topic, payload = str(message.topic), bytes(message.payload)
                try:
                    if message.retain:  # a broker that keeps them sends them on resubscribe
                        await self._reject(topic, payload, "retained", "published with the "
                                           "retain flag, which would create it again at "
                                           "every subscription")
                    else:
                        await self.handle(topic, payload, message.properties)
                except Exception:  # one message never stops the rest
                    log.exception("MQTT Observation could not be handled",
                                  extra={"action": "mqtt_create_internal"})
                    await self._reject(topic, payload, "internal", "the message could not "
                                       "be handled; the reason is in the API's log")
                client._client.ack(message.mid, message.qos)

    async def handle(self, topic: str, payload: bytes, properties: Any) -> None:
        """Create the Observation of one message, or store why not; retries while the
        database is away."""
        names = getattr(properties, "UserProperty", None) or []
        if any(name == NOTIFICATION_PROPERTY for name, _ in names):
            return
        claimed = [value for name, value in names if name == PUBLISHER_PROPERTY]
        # Rejects and key look-ups are the platform's own; the creation, the publisher's.
        token = principal.current.set(principal.PLATFORM)
        try:
            await self._attempts(topic, payload, claimed)
        finally:
            principal.current.reset(token)

    async def _attempts(self, topic: str, payload: bytes, claimed: list[str]) -> None:
        delay = 0.5
        for attempt in itertools.count(1):
            try:
                await self._create(topic, payload, claimed)
                return
            except TooSlow as exc:
                # A message that is too slow every time would hold up the rest forever.
                if attempt == TOO_SLOW_ATTEMPTS:
                    await self._reject(topic, payload, exc.code, str(exc))
                    return
                await asyncio.sleep(jittered(delay))
                delay = min(delay * 2, 30.0)
            except _UNAVAILABLE as exc:
                log.warning("cannot store an MQTT Observation now (%s); retrying in %.1f s",
                            exc, delay, extra={"action": "mqtt_create_retry"})
                await asyncio.sleep(jittered(delay))
                delay = min(delay * 2, 30.0)

    async def _create(self, topic: str, payload: bytes, claimed: list[str]) -> None:
        try:
            body = parse_json(payload)
        except ApiError as exc:
            await self._reject(topic, payload, "invalid_json", str(exc))
            return
        if isinstance(body, dict) and "@iot.id" in body:
            return  # an entity as published, not a request to create one
        path = topic[len(self.prefix):].removeprefix(f"{VERSION}/")
        target = f"{VERSION}/{path}"
        pool = self.app.state.store.pool
        publisher = None
        try:
            publisher = self._named(topic, payload, claimed)
            who = await self._publisher(publisher)
        except Unauthorized as exc:
            await self._reject(topic, payload, exc.code, str(exc))
            await audit.record_refusal(pool, _refused(publisher), "mqtt", "create", target,
                                       exc.status)
            return

        async def create(conn: Any) -> Outcome:
            writer = Writer(conn, self.base)
            outcome = await execute(writer, "POST", path, body)
            await self._audit(conn, writer, target, who)
            return outcome

        token = principal.current.set(who)  # for the database's row-level security too
        try:
            outcome = await in_transaction(pool, create)
        except TooSlow:
            raise
        except ApiError as exc:
            await self._reject(topic, payload, exc.code, str(exc))
            await audit.record_refusal(pool, who, "mqtt", "create", target, exc.status)
            return
        finally:
            principal.current.reset(token)
        log.debug("created %s over MQTT", outcome.location,
                  extra={"action": "mqtt_observation_created"})
        await self.app.state.notifier.notify(outcome.changes)

    def _named(self, topic: str, payload: bytes, claimed: list[str]) -> str | None:
        """The account the broker names as the message's publisher; None when it names
        none and the API has no secret (a broker that names nobody).

        Raises:
            ForgedPublisher: a publisher is claimed without the broker's signature (or
                the API has no secret to check one by).
            UnnamedPublisher: none is named, and the broker names every publisher.
        """
        if not claimed:
            if self.secret is not None:
                raise UnnamedPublisher()
            return None
        username = claimed[-1].rpartition(";")[0]
        if self.secret is None or len(claimed) > 1 or not hmac.compare_digest(
                claimed[-1].encode(),
                publisher_stamp(self.secret, username, topic, payload).encode()):
            raise ForgedPublisher()
        return username

    async def _publisher(self, publisher: str | None) -> Principal:
        """Who a message acts for: the key the broker names, else the platform (a
        service account, or a broker that names nobody, whose ACL alone decides)."""
        if publisher is None or not is_key_id(publisher):
            return principal.PLATFORM
        async with self.app.state.store.pool.acquire() as conn:
            return await key_principal(conn, publisher)

    async def _audit(self, conn: Any, writer: Writer, target: str, who: Principal) -> None:
        touched = audit.entities(writer.touched)
        observation = touched.get("Observations", [None])[0]
        owner = await conn.fetchval(query("api_access", "owner_observations"), observation)
        await audit.record(conn, who, "mqtt", "create", target, touched, 201, agency_id=owner)

    async def _reject(self, topic: str, payload: bytes, code: str, reason: str) -> None:
        log.info("MQTT Observation rejected (%s): %s", code, reason,
                 extra={"action": "mqtt_create_rejected"})
        async with self.app.state.store.pool.acquire() as conn:
            await conn.execute(query("api_write", "insert_rejected_message"), topic, payload,
                               code, reason)


def _refused(publisher: str | None) -> Principal:
    """A key that was refused, for its audit row: its id only."""
    return dataclasses.replace(principal.ANONYMOUS, key_id=publisher)


@asynccontextmanager
async def listening(app: FastAPI) -> AsyncIterator[None]:
    """Run the creation listener while the API runs (when MQTT is enabled); it connects in
    the background, so a broker that is away never holds up the HTTP API."""
    settings: ApiSettings = app.state.settings
    if not settings.mqtt_enabled:
        yield
        return
    listener = ObservationListener(app, settings)
    app.state.observation_listener = listener
    task = asyncio.create_task(listener.run(), name="api.mqtt_create")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
