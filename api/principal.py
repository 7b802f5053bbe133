"""Who a request acts for: an API key's agency and role, or an anonymous reader.

The authentication middleware resolves it before routing and sets both `current` (for the
code that reaches the database) and `scope[SCOPE_KEY]` (for the middlewares around it, such
as usage metering, which read it after the response).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

ROLES = ("reader", "writer", "admin")
SCOPE_KEY = "stadspuls.principal"


@dataclass(frozen=True)
class Principal:
    key_id: str | None
    agency_id: int | None
    agency_code: str
    role: str  # "anonymous" or one of ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_write(self) -> bool:
        return self.role in ("writer", "admin")


ANONYMOUS = Principal(key_id=None, agency_id=None, agency_code="public", role="anonymous")
# The platform acting on its own behalf: creating Observations published over MQTT (whose
# publishers the broker's ACL has checked) and writing usage.
PLATFORM = Principal(key_id=None, agency_id=None, agency_code="city", role="admin")

current: ContextVar[Principal] = ContextVar("principal", default=ANONYMOUS)
