"""Errors of the simulator.

SimulatorError
 ├── BadFaultSpec       a --faults specification could not be read
 ├── BadTimeRange       the period to simulate is empty or reversed
 └── BrokerUnavailable  the MQTT broker refused or did not answer
"""


class SimulatorError(Exception):
    """The simulator failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class BadFaultSpec(SimulatorError):
    """The fault specification could not be read."""


class BadTimeRange(SimulatorError):
    """The period to simulate is empty or reversed."""


class BrokerUnavailable(SimulatorError):
    """The MQTT broker refused the connection or did not answer."""
