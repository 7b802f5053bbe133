"""Claims: the API takes a key only in the Authorization header, as `Bearer <key>` or as
HTTP Basic (key id and key), refuses a malformed, unknown, wrong, expired or revoked one
with 401 and a challenge, never shows or logs a key, limits each key's (or address's)
rate, and each address's refused keys, with 429 and Retry-After; its OpenAPI description
says which operations take a key, in which schemes."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest
from openapi_spec_validator import validate

from api.auth import KeyChecker
from api.errors import Unauthorized
from api.keys import revoke_key
from api.ratelimit import Buckets, Limit
from tests.access import bearer
from tests.security.api_fixtures import World, WorldFactory, access, access_with

__all__ = ["access", "access_with"]  # fixtures


async def status_and_body(world: World, headers: dict[str, str],
                          url: str = "/v1.1/Things") -> tuple[int, str]:
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                 headers=headers) as client:
        response = await client.get(url)
    return response.status_code, response.text


def key_id(text: str) -> str:
    return text.split("_")[1]


def basic(username: str, password: str) -> dict[str, str]:
    """The header that sends `username` and `password` as HTTP Basic."""
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def test_a_good_key_is_accepted(access: World) -> None:
    assert (await status_and_body(access, bearer(access.keys["env_reader"])))[0] == 200


async def test_malformed_unknown_and_wrong_keys_are_401_without_echoing_them(
    access: World,
) -> None:
    good = access.keys["env_reader"]
    wrong = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    unknown = "sp_kzzzzzzzzzzz_" + good.split("_", 2)[2]
    tries = {"Bearer not-a-key": "not an API key", f"Basic {good}": "Bearer <API key>",
             "Bearer": "Bearer <API key>", f"Bearer {wrong}": "not valid",
             f"Bearer {unknown}": "not valid"}
    for header, reason in tries.items():
        status, body = await status_and_body(access, {"Authorization": header})
        assert status == 401, header
        assert reason in body
        assert good not in body and wrong not in body and good.split("_", 2)[2] not in body


async def test_an_expired_key_is_401_and_says_it_expired(access: World) -> None:
    text = access.keys["env_reader"]
    await access.db.execute("UPDATE api_keys SET expires_at = now() - interval '1 minute' "
                            "WHERE key_id = $1", key_id(text))
    status, body = await status_and_body(access, bearer(text))
    assert status == 401
    assert f"API key {key_id(text)} expired at" in body


async def test_a_revoked_key_is_refused_once_the_cache_time_is_past(
    access_with: WorldFactory,
) -> None:
    async with access_with(key_cache_s=0) as w:
        text = w.keys["traffic_reader"]
        assert (await status_and_body(w, bearer(text)))[0] == 200
        await revoke_key(w.db, key_id(text))
        status, body = await status_and_body(w, bearer(text))
    assert status == 401
    assert f"API key {key_id(text)} was revoked" in body


async def test_a_checked_key_is_remembered_for_the_cache_time(access: World) -> None:
    checker = KeyChecker(ttl=3600, refusals=Limit(per_s=1, burst=100))
    pool = access.app.state.store.pool
    text = access.keys["env_writer"]
    who = await checker.principal(pool, f"Bearer {text}")
    await revoke_key(access.db, key_id(text))
    assert await checker.principal(pool, f"Bearer {text}") == who  # no database round trip
    checker.ttl = 0
    with pytest.raises(Unauthorized, match="revoked"):
        await checker.principal(pool, f"Bearer {text}")


async def test_the_least_recently_used_key_is_forgotten_first(access: World) -> None:
    checker = KeyChecker(ttl=3600, refusals=Limit(per_s=1, burst=100), max_cached=2)
    pool = access.app.state.store.pool
    first, second, third = (f"Bearer {access.keys[k]}"
                            for k in ("env_reader", "env_writer", "traffic_reader"))
    await checker.principal(pool, first)
    await checker.principal(pool, second)
    for text in (first, second):  # from now on, only a remembered key is accepted
        await revoke_key(access.db, key_id(text.split()[1]))
    await checker.principal(pool, first)  # used again: now the most recent
    await checker.principal(pool, third)  # makes room by forgetting `second`
    assert (await checker.principal(pool, first)).key_id == key_id(first.split()[1])
    with pytest.raises(Unauthorized, match="revoked"):
        await checker.principal(pool, second)


async def test_a_flood_of_refused_keys_turns_into_429_while_a_known_key_is_served(
    access_with: WorldFactory,
) -> None:
    async with access_with(refused_key_limit_burst=3, refused_key_limit_per_s=0.01,
                           key_cache_s=3600) as w:
        good = bearer(w.keys["env_reader"])
        first = await status_and_body(w, good)
        guesses = [await status_and_body(w, bearer(f"sp_kguess{n:06d}_{'s' * 43}"))
                   for n in range(6)]
        transport = httpx.ASGITransport(app=w.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as client:
            limited = await client.get("/v1.1/Things", headers=bearer(w.keys["env_writer"]))
        again = await status_and_body(w, good)
        transport = httpx.ASGITransport(app=w.app, client=("10.0.0.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as client:
            elsewhere = await client.get("/v1.1/Things", headers=bearer(w.keys["env_writer"]))
    assert first[0] == 200
    assert [status for status, _ in guesses] == [401] * 3 + [429] * 3
    assert "too many refused API keys" in guesses[-1][1]
    # A key not checked before costs a look at the database: not from this address now.
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert again[0] == 200  # remembered as valid
    assert elsewhere.status_code == 200  # another address is not limited


async def test_keys_are_never_taken_from_the_url(access: World) -> None:
    text = access.keys["traffic_reader"]
    status, body = await status_and_body(access, {}, f"/v1.1/Things?access_token={text}")
    assert status == 400
    assert "Authorization header (Bearer" in body and text not in body


async def test_no_key_reaches_the_logs(access: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = access.keys["env_writer"]
    bad = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    for header in (bearer(good), bearer(bad), {"Authorization": f"Basic {good}"}):
        await status_and_body(access, header)
        await status_and_body(access, header, f"/v1.1/Things?api_key={good}")
    assert "api_key_refused" in [getattr(r, "action", None) for r in caplog.records]
    # What the service logs; httpx's lines are the test client's own.
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records
                       if not r.name.startswith(("httpx", "httpcore")))
    assert good not in logged and bad not in logged
    assert good.split("_", 2)[2] not in logged


async def test_a_flood_from_one_key_gets_429_while_another_key_is_served(
    access_with: WorldFactory,
) -> None:
    async with access_with(rate_limit_per_s=0.01, rate_limit_burst=5) as w:
        flooding = [(await status_and_body(w, bearer(w.keys["env_reader"])))[0]
                    for _ in range(6)]
        transport = httpx.ASGITransport(app=w.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as client:
            refused = await client.get("/v1.1/Things", headers=bearer(w.keys["env_reader"]))
        other = await status_and_body(w, bearer(w.keys["traffic_reader"]))
    assert flooding == [200] * 5 + [429]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["code"] == "too_many_requests"
    assert other[0] == 200


async def test_anonymous_requests_are_limited_per_client_address(
    access_with: WorldFactory,
) -> None:
    async with access_with(anonymous_rate_limit_per_s=0.01, anonymous_rate_limit_burst=2) as w:
        answers = []
        for address in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"):
            transport = httpx.ASGITransport(app=w.app, client=(address, 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://city") as c:
                answers.append((await c.get("/v1.1/Things")).status_code)
    assert answers == [200, 200, 429, 200]


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    buckets, limit = Buckets(clock=lambda: now[0]), Limit(per_s=2, burst=3)
    assert [buckets.take("k", limit) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("k", limit) == pytest.approx(0.5)
    now[0] = 0.5  # one token back
    assert buckets.take("k", limit) == 0
    now[0] = 100.0  # never more than the burst
    assert [buckets.take("k", limit) for _ in range(4)][-1] > 0
    assert buckets.take("other", limit) == 0


def test_each_bucket_is_pruned_by_its_own_limit() -> None:
    now = [0.0]
    buckets = Buckets(clock=lambda: now[0], max_buckets=2)
    slow, fast = Limit(per_s=0.001, burst=2), Limit(per_s=100, burst=2)
    assert [buckets.take("slow", slow) for _ in range(2)] == [0, 0]
    buckets.take("fast", fast)
    now[0] = 1.0  # the fast bucket is full again, the slow one still empty
    buckets.take("new", fast)  # a third bucket: the full ones are dropped
    assert buckets.take("slow", slow) > 0  # still remembered as spent


async def test_the_openapi_description_asks_a_key_for_writes_and_takes_one_for_reads(
    access: World,
) -> None:
    status, text = await status_and_body(access, {}, "/openapi.json")
    doc = json.loads(text)
    validate(doc)
    assert status == 200
    schemes = doc["components"]["securitySchemes"]
    assert {name: (s["type"], s["scheme"]) for name, s in schemes.items()} == {
        "bearer": ("http", "bearer"), "basic": ("http", "basic")}
    required: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]
    optional = [{}, *required]
    paths = doc["paths"]
    assert paths["/v1.1/Things"]["get"]["security"] == optional
    assert paths["/v1.1/Things"]["post"]["security"] == required
    assert {m: paths["/v1.1/Observations({id})"][m]["security"]
            for m in ("get", "patch", "put", "delete")} == {
        "get": optional, "patch": required, "put": required, "delete": required}
    assert paths["/v1.1/CreateObservations"]["post"]["security"] == required
    assert paths["/v1.1/$batch"]["post"]["security"] == optional  # its GETs need none
    assert paths["/admin/usage"]["get"]["security"] == required
    assert "403" in paths["/v1.1/Things"]["post"]["responses"]


async def test_a_key_sent_as_basic_with_its_id_as_username_reads_and_writes(
    access: World,
) -> None:
    reader, writer = access.keys["traffic_reader"], access.keys["traffic_writer"]
    secret = f"/v1.1/Datastreams({access.ids['secret']})"
    assert (await status_and_body(access, basic(key_id(reader), reader), secret))[0] == 200
    assert (await status_and_body(access, {}, secret))[0] == 404  # hidden without the key
    transport = httpx.ASGITransport(app=access.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://city",
                                 auth=(key_id(writer), writer)) as client:
        made = await client.post("/v1.1/Things", json={"name": "Kiosk", "description": "d"})
    assert made.status_code == 201, made.text
    owner = await access.db.fetchval("SELECT agency_id FROM things WHERE id = $1",
                                     made.json()["@iot.id"])
    assert owner == access.ids["traffic"]


async def test_basic_is_refused_like_bearer_and_the_answer_never_holds_the_key(
    access: World,
) -> None:
    good, other = access.keys["env_reader"], access.keys["env_writer"]
    wrong = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    tries = {
        "another key's id": (basic(key_id(other), good), "Basic username is not the id"),
        "no username": (basic("", good), "Basic username is not the id"),
        "a wrong secret": (basic(key_id(good), wrong), "not valid"),
        "no key": (basic(key_id(good), "hunter2"), "not an API key"),
        "no colon": ({"Authorization": "Basic " + base64.b64encode(good.encode()).decode()},
                     "HTTP Basic with the key id as username"),
        "not base64": ({"Authorization": "Basic %%%"}, "HTTP Basic with the key id"),
        "not ASCII": ({"Authorization": "Basic é".encode("latin-1")},
                      "HTTP Basic with the key id"),
        "not UTF-8": ({"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
                      "HTTP Basic with the key id"),
    }
    for what, (header, reason) in tries.items():
        transport = httpx.ASGITransport(app=access.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as client:
            response = await client.get("/v1.1/Things", headers=header)
        assert response.status_code == 401, what
        assert reason in response.json()["message"], what
        assert response.headers["WWW-Authenticate"] == (
            'Bearer realm="stadspuls", Basic realm="stadspuls"'), what
        for secret in (good, wrong, good.split("_", 2)[2]):
            assert secret not in response.text, what


async def test_basic_refuses_an_expired_or_revoked_key_as_bearer_does(
    access_with: WorldFactory,
) -> None:
    async with access_with(key_cache_s=0) as w:
        expiring, revoked = w.keys["env_reader"], w.keys["traffic_reader"]
        await w.db.execute("UPDATE api_keys SET expires_at = now() - interval '1 minute' "
                           "WHERE key_id = $1", key_id(expiring))
        await revoke_key(w.db, key_id(revoked))
        expired = await status_and_body(w, basic(key_id(expiring), expiring))
        gone = await status_and_body(w, basic(key_id(revoked), revoked))
    assert expired[0] == 401 and f"API key {key_id(expiring)} expired at" in expired[1]
    assert gone[0] == 401 and f"API key {key_id(revoked)} was revoked" in gone[1]


async def test_refused_basic_credentials_count_towards_the_addresss_refused_keys(
    access_with: WorldFactory,
) -> None:
    async with access_with(refused_key_limit_burst=2, refused_key_limit_per_s=0.01,
                           key_cache_s=3600) as w:
        good = w.keys["env_reader"]
        guesses = [(await status_and_body(w, basic(key_id(good), f"sp_{key_id(good)}_{n}"
                                                   + "s" * 43)))[0] for n in range(2)]
        bearer_after = await status_and_body(w, bearer(w.keys["env_writer"]))
    assert guesses == [401, 401]
    assert bearer_after[0] == 429  # one bucket of refusals per address, whatever the scheme
