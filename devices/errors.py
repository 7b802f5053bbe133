"""Errors of the device catalogue and provisioning.

DeviceError
 ├── UnknownFleet   no fleet of that name
 └── UnknownModel   no device model of that name
"""


class DeviceError(Exception):
    """A device could not be described or provisioned."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class UnknownFleet(DeviceError):
    """No fleet of that name exists."""


class UnknownModel(DeviceError):
    """No device model of that name exists."""
