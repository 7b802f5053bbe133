"""The simulated fleet minute by minute: readings from the models, packs from the device
encodings in `devices/`, messages for MQTT, with the faults switched on.

A device behind a gateway is published by that gateway, on the gateway's topic, in one
pack with every other device behind it; a device without a gateway publishes for itself.
Nothing here touches the network or the clock: `Simulation.minute` is a pure step from
one minute to its messages, which is what makes a run repeatable from its seed.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from devices import gateway
from devices.catalogue import device_topic, model
from devices.fleet import Fleet
from devices.models import Device, DeviceModel
from simulators.air import AirQualitySite
from simulators.calendar import Moment
from simulators.city import City, Conditions
from simulators.faults import OUTAGE_MINUTES, SKEW_SECONDS, FaultRates, LinkState, RecordFaults
from simulators.malformed import Pack, encode, malformed
from simulators.traffic import TrafficCounter

# Kinds of message; only "reading" and "late" carry readings that count.
READING, LATE, DUPLICATE, MALFORMED, FOREIGN = (
    "reading", "late", "duplicate", "malformed", "foreign")


class Behaviour(Protocol):
    def readings(self, moment: Moment, city: Conditions) -> dict[str, float]: ...


@dataclass(frozen=True)
class Message:
    """One MQTT publish."""

    topic: str
    payload: bytes
    kind: str = READING
    readings: int = 0  # SenML records with a valid reading


@dataclass
class SimulatedDevice:
    device: Device
    model: DeviceModel
    behaviour: Behaviour
    faults: RecordFaults


@dataclass
class Link:
    """One publisher on MQTT: a device that speaks for itself, or a gateway."""

    publisher_id: str
    topic: str
    devices: list[SimulatedDevice]
    is_gateway: bool
    rng: random.Random
    state: LinkState = field(default_factory=LinkState)


def behaviour(device: Device, seed: int) -> Behaviour:
    """The model that makes up `device`'s readings.

    Args:
        device: a device of the fleet.
        seed: the run's seed.

    Returns:
        An air-quality site or a traffic counter, with its own generator.
    """
    rng = random.Random(f"{seed}:device:{device.device_id}")
    if device.model == "traffic-counter":
        return TrafficCounter(device, rng, seed)
    return AirQualitySite(device, rng)


class Simulation:
    """A fleet turned into MQTT messages, one simulated minute at a time.

    Args:
        fleet: the devices and gateways to simulate.
        seed: fixes every reading and every fault.
        rates: the faults to inject.
        topic_prefix: put before every topic (``prefix/devices/...``); empty for none.
    """

    def __init__(self, fleet: Fleet, seed: int, rates: FaultRates | None = None,
                 topic_prefix: str = "") -> None:
        self.rates = rates or FaultRates()
        self.city = City(seed)
        self.faults: Counter[str] = Counter()
        self.devices = [
            SimulatedDevice(d, model(d.model), behaviour(d, seed), RecordFaults(
                self.rates, random.Random(f"{seed}:faults:{d.device_id}"), self.faults))
            for d in fleet.devices
        ]
        self.links = _links(self.devices, seed, topic_prefix)

    @property
    def streams(self) -> int:
        """How many datastreams the fleet has: readings per clean minute."""
        return sum(len(d.model.streams(d.device)) for d in self.devices)

    def minute(self, epoch: int) -> list[Message]:
        """Everything the fleet publishes for the minute starting at `epoch`.

        Args:
            epoch: the minute, seconds since the epoch (a multiple of 60).

        Returns:
            The messages, in the order they are published.
        """
        moment = Moment.at(epoch)
        city = self.city.conditions(moment)
        packs: dict[str, Pack] = {}
        for sim in self.devices:
            values = sim.faults.apply(epoch, sim.behaviour.readings(moment, city))
            packs[sim.device.device_id] = sim.model.encode(sim.device, epoch, values)
        messages: list[Message] = []
        for link in self.links:
            pack = gateway.combine([packs[d.device.device_id] for d in link.devices])
            messages.extend(self._send(link, epoch, pack, packs))
        return messages

    def flush(self) -> list[Message]:
        """What offline publishers still hold at the end of a run, as late messages."""
        late: list[Message] = []
        for link in self.links:
            late.extend(_message(link, p, LATE) for p in link.state.buffered)
            link.state.buffered = []
        return late

    def _send(self, link: Link, epoch: int, pack: Pack, packs: dict[str, Pack]) -> list[Message]:
        rates, rng, state = self.rates, link.rng, link.state
        if epoch < state.offline_until:
            state.buffered.append(pack)
            return []
        if rates.offline and rng.random() < rates.offline:
            state.offline_until = epoch + 60 * rng.randint(*OUTAGE_MINUTES)
            state.buffered.append(pack)
            self.faults["offline"] += 1
            return []
        out = [_message(link, p, LATE) for p in state.buffered]
        state.buffered = []
        if rates.skew and rng.random() < rates.skew:
            pack = skewed(pack, rng.choice((-1, 1)) * rng.randint(*SKEW_SECONDS))
            self.faults["skew"] += 1
        out.append(_message(link, pack, READING))
        out.extend(self._extras(link, pack, packs, out[-1]))
        return out

    def _extras(self, link: Link, pack: Pack, packs: dict[str, Pack],
                sent: Message) -> list[Message]:
        rates, rng = self.rates, link.rng
        extras = []
        if rates.duplicate and rng.random() < rates.duplicate:
            extras.append(Message(sent.topic, sent.payload, DUPLICATE))
            self.faults["duplicate"] += 1
        if rates.malformed and rng.random() < rates.malformed:
            kind, payload = malformed(pack, rng)
            extras.append(Message(link.topic, payload, MALFORMED))
            self.faults["malformed"] += 1
            self.faults[f"malformed/{kind}"] += 1
        if link.is_gateway and rates.foreign and rng.random() < rates.foreign:
            stranger = self._stranger(link, rng)
            if stranger is not None:
                extras.append(Message(link.topic, encode(packs[stranger]), FOREIGN))
                self.faults["foreign"] += 1
        return extras

    def _stranger(self, link: Link, rng: random.Random) -> str | None:
        for _ in range(20):
            other = rng.choice(self.devices).device
            if other.gateway != link.publisher_id:
                return other.device_id
        return None


def skewed(pack: Pack, seconds: int) -> Pack:
    """A copy of `pack` with every base time moved by `seconds`."""
    return [{**r, "bt": r["bt"] + seconds} if "bt" in r else r for r in pack]


def _message(link: Link, pack: Pack, kind: str) -> Message:
    return Message(link.topic, encode(pack), kind, len(pack))


def _links(devices: list[SimulatedDevice], seed: int, prefix: str) -> list[Link]:
    links: dict[str, Link] = {}
    for sim in devices:
        gateway_id = sim.device.gateway
        publisher = gateway_id or sim.device.device_id
        if publisher not in links:
            topic = gateway.topic(gateway_id) if gateway_id else device_topic(publisher)
            links[publisher] = Link(
                publisher, f"{prefix.rstrip('/')}/{topic}" if prefix else topic, [],
                gateway_id is not None, random.Random(f"{seed}:link:{publisher}"),
            )
        links[publisher].devices.append(sim)
    return list(links.values())


def records(payload: bytes) -> list[dict[str, Any]]:
    """The SenML records of a payload this simulator made (for tests and tools)."""
    decoded: list[dict[str, Any]] = msgspec.json.decode(payload)
    return decoded
