"""Claims about API keys: their text, their expiry, and the commands that make, list and
revoke them."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from api.keys import KeyRefused, NewKey, expiry, key_id_of, new_key_text
from core.database import connect
from core.secrets import verify_secret
from deploy.cli import cli

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_a_new_key_reads_sp_key_id_secret_and_parses_back_to_its_key_id() -> None:
    key_id, text = new_key_text()
    assert re.fullmatch(r"k[a-z0-9]{11}", key_id)
    assert text.startswith(f"sp_{key_id}_") and len(text) > 50
    assert key_id_of(text) == key_id
    assert new_key_text() != (key_id, text)


@pytest.mark.parametrize("text", [
    "", "sp_", "sp_kabc_secret", "sp_KABCDEFGHIJK_" + "s" * 43, "xx_kabcdefghijk_" + "s" * 43,
    "sp_kabcdefghijk_", "sp_kabcdefghijk_short", "sp_kabcdefghijk_" + "s" * 43 + " ",
    "sp_kabcdefghijk_" + "s!" * 20, "Bearer sp_kabcdefghijk_" + "s" * 43,
])
def test_text_not_shaped_like_a_key_has_no_key_id(text: str) -> None:
    assert key_id_of(text) is None


def test_a_new_keys_repr_does_not_show_its_text() -> None:
    key_id, text = new_key_text()
    key = NewKey(key_id, text, "city", "writer", "label", NOW)
    assert key_id in repr(key) and text not in repr(key)
    assert text.split("_", 2)[2] not in repr(key)


def test_a_secret_holding_underscores_still_parses() -> None:
    assert key_id_of("sp_kabcdefghijk_" + "a_b-" * 11) == "kabcdefghijk"


def test_keys_expire_after_90_days_unless_told_otherwise() -> None:
    assert expiry(now=NOW) == NOW + timedelta(days=90)
    assert expiry(days=7, now=NOW) == NOW + timedelta(days=7)
    assert expiry(until=datetime(2027, 3, 1), now=NOW) == datetime(2027, 3, 1, tzinfo=UTC)
    with pytest.raises(KeyRefused, match="not in the future"):
        expiry(until=datetime(2026, 1, 1), now=NOW)
    with pytest.raises(KeyRefused, match="at least one day"):
        expiry(days=0, now=NOW)


def sql(db_url: str, text: str, *args: Any) -> Any:
    """The first row of a query (the command line tests run outside the event loop)."""

    async def fetch() -> Any:
        conn = await connect(db_url)
        try:
            return await conn.fetchrow(text, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_shows_the_key_once_and_stores_only_its_hash(db_url: str) -> None:
    out = run("keys", "create", "--database-url", db_url, "--agency", "city", "--role",
              "writer", "--label", "signal timing", "--days", "30")
    text = re.search(r"sp_k[a-z0-9]{11}_\S+", out)
    assert text is not None
    key_id = key_id_of(text[0])
    assert f"username {key_id}" in out and "Authorization: Bearer" in out
    row = sql(db_url, "SELECT * FROM api_keys WHERE key_id = $1", key_id)
    assert text[0] not in str(dict(row))
    assert verify_secret(text[0], row["secret_hash"])
    assert (row["role"], row["label"]) == ("writer", "signal timing")
    assert timedelta(days=29) < row["expires_at"] - datetime.now(UTC) <= timedelta(days=30)


def test_keys_list_and_revoke_never_show_a_secret(db_url: str) -> None:
    out = run("keys", "create", "--database-url", db_url, "--agency", "city", "--role",
              "reader", "--label", "dashboard", "--expires", "2099-03-01")
    text = re.search(r"sp_k[a-z0-9]{11}_\S+", out)
    assert text is not None
    key_id = key_id_of(text[0])
    listed = json.loads(run("keys", "list", "--database-url", db_url, "--json"))
    assert [(k["key_id"], k["agency"], k["role"], k["label"], k["revoked_at"], k["expired"])
            for k in listed] == [(key_id, "city", "reader", "dashboard", None, False)]
    assert listed[0]["expires_at"].startswith("2099-03-01")
    assert "revoked" in run("keys", "revoke", "--database-url", db_url, str(key_id))
    table = run("keys", "list", "--database-url", db_url, "--agency", "city")
    assert "revoked" in table and "dashboard" in table
    assert text[0] not in table and text[0].split("_", 2)[2] not in table


def test_keys_create_refuses_an_unknown_agency_clearly(db_url: str) -> None:
    result = CliRunner().invoke(cli, ["keys", "create", "--database-url", db_url,
                                      "--agency", "nowhere", "--role", "reader",
                                      "--label", "x"])
    assert result.exit_code != 0
    assert "no agency 'nowhere'" in result.output


def test_agencies_and_datastream_access_commands(db_url: str) -> None:
    stream = sql(db_url, """
        WITH a AS (SELECT id FROM agencies WHERE code = 'city'),
             t AS (INSERT INTO things (agency_id, name) SELECT id, 't' FROM a RETURNING id),
             s AS (INSERT INTO sensors (name) VALUES ('s') RETURNING id),
             p AS (INSERT INTO observed_properties (name, definition) VALUES ('p', 'd')
                   RETURNING id)
        INSERT INTO datastreams (agency_id, thing_id, sensor_id, observed_property_id, name,
                                 observation_type)
        SELECT a.id, t.id, s.id, p.id, 'd', 'm' FROM a, t, s, p RETURNING id""")["id"]
    assert run("datastreams", "restrict", "--database-url", db_url, str(stream)) \
        == f"restricted: {stream}\n"
    overview = json.loads(run("agencies", "--database-url", db_url, "--json"))
    city = next(a for a in overview if a["code"] == "city")
    assert (city["open_datastreams"], city["restricted_datastreams"]) == (0, 1)
    run("datastreams", "open", "--database-url", db_url, str(stream))
    assert sql(db_url, "SELECT access FROM datastreams WHERE id = $1", stream)["access"] \
        == "open"
