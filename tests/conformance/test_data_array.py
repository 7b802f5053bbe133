"""Conformance class Data array: Observations read as dataArray, and created in bulk with
CreateObservations, each row on its own."""

from __future__ import annotations

import httpx

from tests.conformance.conftest import BASE, get
from tests.conformance.dataset import STATIONS, Dataset

CONFORMANCE_CLASS = "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array"


async def test_observations_read_as_a_data_array_per_datastream(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    stream = STATIONS[1].streams[0]
    ds = dataset.datastreams[stream.name]
    body = await get(api, f"/v1.1/Datastreams({ds})/Observations?$resultFormat=dataArray"
                          "&$select=phenomenonTime,result&$orderby=phenomenonTime&$top=100")
    assert body["value"] == [{
        "Datastream@iot.navigationLink": f"{BASE}/v1.1/Datastreams({ds})",
        "components": ["phenomenonTime", "result"],
        "dataArray@iot.count": len(stream.values),
        "dataArray": [list(p) for p in zip(stream.times(), stream.values, strict=True)],
    }]


async def test_create_observations_stores_good_rows_and_reports_bad_ones(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    ds = dataset.datastreams[STATIONS[2].streams[0].name]
    response = await api.post("/v1.1/CreateObservations", json=[{
        "Datastream": {"@iot.id": ds},
        "components": ["phenomenonTime", "result"],
        "dataArray@iot.count": 3,
        "dataArray": [
            ["2026-10-02T08:00:00Z", 311],
            ["not a time", 312],
            ["2026-10-02T08:05:00Z", 313],
        ],
    }])
    assert response.status_code == 201, response.text
    links = response.json()
    assert len(links) == 3 and links[1] == "error"
    for link, value in ((links[0], 311), (links[2], 313)):
        assert link.startswith(f"{BASE}/v1.1/Observations(")
        assert (await get(api, link.removeprefix(BASE)))["result"] == value


async def test_create_observations_refuses_a_malformed_request_as_a_whole(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    response = await api.post("/v1.1/CreateObservations", json=[{
        "components": ["phenomenonTime", "result"], "dataArray": [["x", 1]]}])
    assert response.status_code == 400 and "Datastream" in response.json()["message"]
