"""The `simulate` command: publish a simulated fleet over MQTT."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from devices.fleet import FLEETS, fleet
from simulators.errors import BrokerUnavailable, SimulatorError
from simulators.faults import FaultRates
from simulators.publisher import Publisher
from simulators.runner import Period, Summary, run
from simulators.settings import SimulatorSettings
from simulators.simulation import Message, Simulation
from simulators.timeparse import parse_time

log = logging.getLogger(__name__)

FAULT_HELP = (
    "Faults to inject, as KIND=RATE[,KIND=RATE...]; repeatable. Kinds: "
    + ", ".join(FaultRates.kinds())
    + "; 'all=RATE' sets every kind. Rates are probabilities per opportunity "
    "(see docs/simulators.md), for example offline=0.0005,duplicate=0.01,malformed=0.002."
)


@click.command("simulate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--fleet", "fleet_name", default="stockholm", show_default=True,
              type=click.Choice(sorted(FLEETS)), help="The fleet to simulate.")
@click.option("--scale", default=0, show_default=True, type=click.IntRange(0),
              help="Synthetic air-quality sensors to add, behind gateways of 100.")
@click.option("--seed", default=0, show_default=True,
              help="Fixes every reading and fault: the same seed gives the same bytes.")
@click.option("--from", "start", metavar="TIME",
              help="First simulated minute: 2026-10-01, 2026-10-01T08:00 (Stockholm time), "
                   "now or -30d / -6h.  [default: now]")
@click.option("--to", "end", metavar="TIME",
              help="End of the period, same forms; without it the run goes on until Ctrl-C.")
@click.option("--speed", type=click.FloatRange(min=0.0, min_open=True),
              help="Simulated seconds per real second (60: an hour a minute). Without it, "
                   "a run with --to backfills as fast as the broker takes it, and a run "
                   "without --to goes in real time.")
@click.option("--faults", "fault_specs", multiple=True, metavar="SPEC", help=FAULT_HELP)
@click.option("--mqtt-host", help="MQTT broker host [STADSPULS_MQTT_HOST; 127.0.0.1]")
@click.option("--mqtt-port", type=int, help="MQTT broker port [STADSPULS_MQTT_PORT; 11883]")
@click.option("--topic-prefix",
              help="Put before every topic, as PREFIX/devices/... [STADSPULS_TOPIC_PREFIX; none]")
@click.option("--window", type=click.IntRange(1),
              help="Most messages awaiting PUBACK at once [STADSPULS_PUBLISH_WINDOW; 1000]")
@click.option("--credentials", "credentials_file", type=click.Path(path_type=Path),
              help="JSON file of publisher id -> secret: each gateway and self-publishing "
              "device connects as itself [STADSPULS_CREDENTIALS_FILE; anonymous]")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar [default: when stderr is a terminal].")
def simulate(fleet_name: str, scale: int, seed: int, start: str | None, end: str | None,
             speed: float | None, fault_specs: tuple[str, ...], mqtt_host: str | None,
             mqtt_port: int | None, topic_prefix: str | None, window: int | None,
             credentials_file: Path | None, progress: bool | None) -> None:
    """Publish a simulated fleet over MQTT: air-quality stations and traffic counters,
    through their gateways, one reading per datastream and minute, at QoS 1.

    \b
    Examples:
      stadspuls simulate                                   # the city now, in real time
      stadspuls simulate --speed 60                        # an hour a minute
      stadspuls simulate --from 2026-10-01 --to 2026-11-01 # backfill October
      stadspuls simulate --scale 10000 --faults all=0.001
    """
    given: dict[str, Any] = {"mqtt_host": mqtt_host, "mqtt_port": mqtt_port,
                             "topic_prefix": topic_prefix, "publish_window": window,
                             "credentials_file": credentials_file}
    settings = SimulatorSettings(**{k: v for k, v in given.items() if v is not None})
    try:
        rates = FaultRates.parse(fault_specs)
        period = _period(start, end, speed)
        simulation = Simulation(fleet(fleet_name, scale, seed), seed, rates,
                                settings.topic_prefix)
        click.echo(_opening(fleet_name, simulation, settings, period, rates), err=True)
        summary = _publish(simulation, settings, period,
                           sys.stderr.isatty() if progress is None else progress)
    except SimulatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.describe())


def _period(start: str | None, end: str | None, speed: float | None) -> Period:
    first = parse_time(start or "now")
    last = parse_time(end) if end else None
    if speed is None and last is None:
        speed = 1.0
    return Period(first, last, speed)


def _publish(simulation: Simulation, settings: SimulatorSettings, period: Period,
             progress: bool) -> Summary:
    stop = threading.Event()
    with ExitStack() as publishers, _stopped_by_signals(stop):
        by_topic = _connect(publishers, simulation, settings)

        def sink(message: Message) -> None:
            publisher = by_topic[message.topic]
            if publisher is not None:
                publisher.publish(message.topic, message.payload)

        return run(simulation, period, sink, progress=progress, stop=stop)


def _connect(publishers: ExitStack, simulation: Simulation,
             settings: SimulatorSettings) -> dict[str, Publisher | None]:
    """The connection each link's topic is published on: one per gateway and per device
    that publishes for itself, logged in with its own secret; or one anonymous connection
    for all without a credentials file. None for a publisher whose credentials were revoked
    (null in the file): nothing is published for it."""
    host, port, window = settings.mqtt_host, settings.mqtt_port, settings.publish_window
    if settings.credentials_file is None:
        try:
            shared = publishers.enter_context(Publisher(host, port, window))
        except BrokerUnavailable as exc:
            raise BrokerUnavailable(
                f"{exc}; a broker with authentication on takes the fleet's credentials: "
                "--credentials <state dir>/secrets/fleet.json (written by `stadspuls up`)"
            ) from None
        everyone: defaultdict[str, Publisher | None] = defaultdict(lambda: shared)
        return everyone
    secrets = _secrets(settings.credentials_file)
    by_topic: dict[str, Publisher | None] = {}
    revoked = sorted({link.publisher_id for link in simulation.links
                      if link.publisher_id in secrets and secrets[link.publisher_id] is None})
    if revoked:
        log.warning("not publishing for %s: broker credentials revoked", ", ".join(revoked),
                    extra={"action": "publishers_revoked"})
    for link in simulation.links:
        secret = secrets.get(link.publisher_id)
        if link.publisher_id in revoked:
            by_topic[link.topic] = None
            continue
        if secret is None:
            raise SimulatorError(f"{settings.credentials_file} holds no secret for "
                                 f"{link.publisher_id}; `stadspuls up` writes it, or give "
                                 f"one with `stadspuls devices credentials {link.publisher_id}`")
        login = (link.publisher_id, secret)
        by_topic[link.topic] = publishers.enter_context(Publisher(host, port, window,
                                                                  login=login))
    return by_topic


def _secrets(path: Path) -> dict[str, str | None]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SimulatorError(f"cannot read the credentials file {path}: "
                             f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    if not isinstance(found, dict):
        raise SimulatorError(f"{path} is not a JSON object of publisher id -> secret")
    return {str(k): None if v is None else str(v) for k, v in found.items()}


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM end the run after the current minute, so it can still flush."""

    def handle(signum: int, frame: Any) -> None:
        log.info("stopping after this minute", extra={"action": "simulation_stopping"})
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _opening(fleet_name: str, simulation: Simulation, settings: SimulatorSettings,
             period: Period, rates: FaultRates) -> str:
    pace = ("as fast as the broker takes it" if not period.speed
            else "in real time" if period.speed == 1.0 else f"at {period.speed:g}x")
    return (
        f"simulating fleet {fleet_name}: {len(simulation.devices):,} devices, "
        f"{simulation.streams:,} datastreams, {len(simulation.links):,} publishers; "
        f"to mqtt://{settings.mqtt_host}:{settings.mqtt_port} {pace}; "
        f"faults: {rates.describe()}"
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s  %(message)s",
                        datefmt="%H:%M:%S")
    simulate()
