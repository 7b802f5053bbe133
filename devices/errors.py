"""Errors of the device catalogue and provisioning.

DeviceError
 ├── UnknownFleet       no fleet of that name
 ├── UnknownModel       no device model of that name
 ├── UnknownPublisher   no device or gateway of that id (credentials)
 ├── AccountExists      the publisher has active broker credentials already
 ├── NoAccount          the publisher has no active broker credentials
 ├── CertificateNameTooLong  its id leaves no room for a certificate identity
 └── BrokerAccessError  the broker's access files could not be written or reloaded
"""


class DeviceError(Exception):
    """A device could not be described or provisioned."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class UnknownFleet(DeviceError):
    """No fleet of that name exists."""


class UnknownModel(DeviceError):
    """No device model of that name exists."""


class UnknownPublisher(DeviceError):
    """No field device or gateway of that id is registered."""


class AccountExists(DeviceError):
    """The device or gateway has active broker credentials already; rotate them instead."""


class NoAccount(DeviceError):
    """The device or gateway has no active broker credentials."""


class CertificateNameTooLong(DeviceError):
    """The publisher's id is too long for the common name of a client certificate."""


class BrokerAccessError(DeviceError):
    """The broker's password and ACL files could not be written or reloaded."""
