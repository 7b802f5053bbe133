"""API keys for tests: made in the test's database as `stadspuls keys create` makes them."""

from __future__ import annotations

from api.keys import create_key, expiry
from core.database import connect


async def make_key(db_url: str, role: str = "admin", agency: str = "city",
                   label: str = "tests") -> str:
    """The text of a new key of `agency` with `role`, valid for a day."""
    conn = await connect(db_url)
    try:
        return (await create_key(conn, agency, role, label, expiry(days=1))).text
    finally:
        await conn.close()


def bearer(key: str) -> dict[str, str]:
    """The header that sends `key`."""
    return {"Authorization": f"Bearer {key}"}
