"""Errors of the ingest pipeline.

IngestError
 ├── TopicNotAccepted   a message arrived on a topic that is not a device or gateway topic
 └── WriteFailed        a batch could not be committed (the database is away)
"""


class IngestError(Exception):
    """Ingest failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class TopicNotAccepted(IngestError):
    """The topic is neither devices/{id}/senml nor gateways/{id}/senml."""


class WriteFailed(IngestError):
    """The batch could not be committed."""
