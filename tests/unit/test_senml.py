import pytest

from core.senml import Invalid, PackError, Resolved, decode

NOW = 1_800_000_000.0


def resolved(payload: bytes) -> list[Resolved]:
    out = decode(payload, NOW)
    assert all(isinstance(r, Resolved) for r in out), out
    return [r for r in out if isinstance(r, Resolved)]


def test_base_fields_apply_to_following_records_until_changed() -> None:
    out = resolved(
        b'[{"bn":"urn:dev:a:","bt":1.8e9,"bu":"ug/m3","n":"no2","v":23.4},'
        b'{"n":"no","t":60,"v":5},'
        b'{"bn":"urn:dev:b:","n":"temp","u":"Cel","v":-3.5}]'
    )
    assert [(r.name, r.time, r.unit, r.value) for r in out] == [
        ("urn:dev:a:no2", 1.8e9, "ug/m3", 23.4),
        ("urn:dev:a:no", 1.8e9 + 60, "ug/m3", 5),
        ("urn:dev:b:temp", 1.8e9, "Cel", -3.5),
    ]


def test_times_below_two_to_the_28_are_relative_to_reception() -> None:
    out = resolved(b'[{"n":"x","t":-5,"v":1},{"n":"y","v":2}]')
    assert [r.time for r in out] == [NOW - 5, NOW]


def test_base_value_is_added() -> None:
    assert resolved(b'[{"n":"x","bv":100,"v":2.5}]')[0].value == 102.5


@pytest.mark.parametrize(("payload", "field", "value"), [
    (b'[{"n":"x","vb":false}]', "vb", False),
    (b'[{"n":"x","vs":"ok"}]', "vs", "ok"),
    ('[{"n":"x","vs":"Södermalm"}]'.encode(), "vs", "Södermalm"),
    (b'[{"n":"x","v":9223372036854775807}]', "v", 2**63 - 1),
])
def test_each_value_kind_resolves_unchanged(payload: bytes, field: str, value: object) -> None:
    got = resolved(payload)[0].value
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("payload", "code"), [
    (b"", "empty"),
    (b"{not json", "invalid_json"),
    (b"\xff\xfe[]", "not_utf8"),
    (b'[{"n":"caf\xff","v":1}]', "not_utf8"),
    (b'[{"n":"x","v":1,"vs":"\xc3\x28"}]', "not_utf8"),
    ("[{\"n\":\"x\",\"vs\":\"café\"}".encode(), "invalid_json"),
    (b'{"n":"x","v":1}', "not_array"),
    (b"[1, 2]", None),
    (b'[{"n":"x","v":NaN}]', "invalid_json"),
])
def test_a_payload_that_is_no_pack_is_refused_whole(payload: bytes, code: str | None) -> None:
    if code is None:
        out = decode(payload, NOW)
        assert [isinstance(r, Invalid) and r.code for r in out] == ["bad_field", "bad_field"]
        return
    with pytest.raises(PackError) as caught:
        decode(payload, NOW)
    assert caught.value.code == code


@pytest.mark.parametrize(("record", "code"), [
    (b'{"n":"x"}', "no_value"),
    (b'{"n":"x","v":1,"vs":"one"}', "several_values"),
    (b'{"n":"x","v":1e400}', "not_finite"),
    (b'{"n":"x","v":"12"}', "bad_field"),
    (b'{"n":"x!","v":1}', "bad_name"),
    (b'{"n":"x y","v":1}', "bad_name"),
    (b'{"n":"x","v":99999999999999999999}', "int_range"),
    (b'{"n":"x","s":10}', "sum"),
])
def test_a_bad_record_is_refused_and_its_neighbours_kept(record: bytes, code: str) -> None:
    out = decode(b'[{"bn":"urn:dev:a:","n":"ok1","v":1},' + record + b',{"n":"ok2","v":2}]', NOW)
    assert isinstance(out[1], Invalid) and out[1].code == code, out[1]
    assert out[1].position == 1
    assert [r.name for r in out if isinstance(r, Resolved)] == ["urn:dev:a:ok1", "urn:dev:a:ok2"]


def test_a_base_value_sum_that_overflows_is_refused() -> None:
    out = decode(b'[{"n":"x","bv":1e308,"v":1e308}]', NOW)
    assert isinstance(out[0], Invalid) and out[0].code == "not_finite"


def test_a_name_must_start_with_a_letter_or_digit() -> None:
    out = decode(b'[{"n":"-x","v":1}]', NOW)
    assert isinstance(out[0], Invalid) and out[0].code == "bad_name"


def test_a_newer_version_refuses_its_record_and_every_one_after_it() -> None:
    out = decode(b'[{"n":"a","v":1},{"n":"b","bver":11,"v":2},{"n":"c","v":3}]', NOW)
    assert [r.code if isinstance(r, Invalid) else "ok" for r in out] == [
        "ok", "version", "version"]


@pytest.mark.parametrize("t", [-1e12, 1.7e12, 1e300])
def test_a_time_no_timestamp_can_hold_is_refused(t: float) -> None:
    out = decode(f'[{{"n":"x","v":1,"bt":{t}}}]'.encode(), NOW)
    assert isinstance(out[0], Invalid) and out[0].code == "bad_time"
