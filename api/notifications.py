"""The API's side of the SensorThings MQTT extension's notifications: the notifier the
write path hands its committed changes to (`app.state.notifier`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api.settings import ApiSettings
from core.notify import Notifier, NullNotifier, mqtt_notifier


@asynccontextmanager
async def notifier(settings: ApiSettings) -> AsyncIterator[Notifier]:
    """A notifier publishing on the settings' broker while the context lasts; one that
    publishes nothing when the MQTT extension is off."""
    if not settings.mqtt_enabled:
        yield NullNotifier()
        return
    async with mqtt_notifier(settings.mqtt_host, settings.mqtt_port,
                             f"{settings.mqtt_client_id}-notify",
                             settings.topic_prefix) as published:
        yield published
