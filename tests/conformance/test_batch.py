"""Conformance class Batch requests (the JSON form): requests run in order; the requests
of one atomicity group commit together or not at all."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conformance.conftest import get
from tests.conformance.dataset import STATIONS, Dataset

CONFORMANCE_CLASS = "http://www.opengis.net/spec/iot_sensing/1.1/req/batch-request/batch-request"

SENSOR = {"name": "Batch sensor", "description": "Made in a batch",
          "encodingType": "application/pdf", "metadata": "urn:batch"}


async def batch(api: httpx.AsyncClient, requests: list[dict[str, Any]]) -> dict[str, Any]:
    response = await api.post("/v1.1/$batch", json={"requests": requests})
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["responses"]}


async def sensors(api: httpx.AsyncClient) -> int:
    return int((await get(api, "/v1.1/Sensors?$count=true&$top=0"))["@iot.count"])


async def test_requests_without_a_group_succeed_or_fail_on_their_own(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    thing = dataset.things[STATIONS[0].name]
    before = await sensors(api)
    out = await batch(api, [
        {"id": "read", "method": "get", "url": f"Things({thing})"},
        {"id": "make", "method": "post", "url": "Sensors", "body": SENSOR},
        {"id": "bad", "method": "post", "url": "Sensors", "body": {"name": "no more"}},
        {"id": "missing", "method": "get", "url": "Things(987654321)"},
    ])
    assert out["read"]["status"] == 200 and out["read"]["body"]["name"] == STATIONS[0].name
    assert out["make"]["status"] == 201 and out["make"]["body"]["name"] == "Batch sensor"
    assert out["bad"]["status"] == 400
    assert out["missing"]["status"] == 404
    assert await sensors(api) == before + 1


async def test_an_atomicity_group_commits_together_or_not_at_all(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    before = await sensors(api)
    failed = await batch(api, [
        {"id": "a", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": SENSOR},
        {"id": "b", "atomicityGroup": "g", "method": "post", "url": "Sensors",
         "body": {"name": "incomplete"}},
    ])
    assert failed["b"]["status"] == 400
    assert failed["a"]["status"] >= 400
    assert await sensors(api) == before
    done = await batch(api, [
        {"id": "a", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": SENSOR},
        {"id": "b", "atomicityGroup": "g", "method": "post", "url": "Sensors", "body": SENSOR},
    ])
    assert [done[k]["status"] for k in "ab"] == [201, 201]
    assert await sensors(api) == before + 2


async def test_a_malformed_batch_is_400(api: httpx.AsyncClient, dataset: Dataset) -> None:
    response = await api.post("/v1.1/$batch", json={"requests": [{"method": "get"}]})
    assert response.status_code == 400 and response.json()["message"]
