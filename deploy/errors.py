"""Errors raised while preparing and running the local stack.

DeployError
 ├── SystemSetupError   a system package or the TimescaleDB build could not be ensured
 ├── PortBusy           a port the stack needs is taken
 ├── ServiceFailed      a service did not start, or died
 └── BrokerNotUpdated   an access change is in the database, but the broker did not get it
"""


class DeployError(Exception):
    """The local stack could not be prepared or run."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class SystemSetupError(DeployError):
    """A system package or the TimescaleDB extension could not be installed."""


class PortBusy(DeployError):
    """A port the stack needs is already in use."""

    def __init__(self, port: int, setting: str) -> None:
        self.port = port
        self.setting = setting
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use; choose another with {setting}"
        )


class ServiceFailed(DeployError):
    """A service of the local stack did not start or stopped unexpectedly."""


class BrokerNotUpdated(DeployError):
    """The change is in the database, but the broker's access files could not be updated:
    the broker may still admit what the change took away."""
