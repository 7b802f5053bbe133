"""Resource paths of SensorThings: `Things(1)/Datastreams(5)/Observations`, `/name`,
`/$value`, `/$ref`, parsed into steps."""

from __future__ import annotations

import re
from dataclasses import dataclass

from api.entities import ENTITY_SETS, EntityType
from api.errors import BadRequest, NotFound

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\(([^()]*)\))?$")
_ID = re.compile(r"[+-]?[0-9]+")  # OData's Int64 literal, to be checked for range
# Ids are bigint columns: a larger one names nothing and could not even be a parameter.
_ID_RANGE = range(-2**63, 2**63)


@dataclass(frozen=True)
class Step:
    """One entity-valued step: a set (or to-one navigation) and perhaps an id."""

    entity: EntityType
    entity_id: int | None
    via: str | None  # navigation property from the previous step
    to_one: bool = False


@dataclass(frozen=True)
class Resource:
    steps: list[Step]
    member: str | None = None  # a property of the last entity, as in Things(1)/name
    value: bool = False  # /$value
    ref: bool = False  # /$ref

    @property
    def single(self) -> bool:
        last = self.steps[-1]
        return last.entity_id is not None or last.to_one


def parse(path: str) -> Resource:
    """The steps of a resource path below /v1.1/.

    Raises:
        BadRequest: a segment is malformed or an id is not an integer.
        NotFound: an entity set, navigation or property does not exist.
    """
    segments = [s for s in path.strip("/").split("/") if s]
    if not segments:
        raise NotFound("no resource path")
    steps: list[Step] = []
    for i, segment in enumerate(segments):
        if segment in ("$value", "$ref"):
            return _finish(steps, segments, i)
        match = _SEGMENT.match(segment)
        if match is None:
            raise BadRequest(f"malformed path segment {segment!r}")
        name, raw_id = match.group(1), match.group(2)
        entity_id = _id(raw_id, segment) if raw_id is not None else None
        if not steps:
            if name not in ENTITY_SETS:
                raise NotFound(f"no entity set {name!r}")
            steps.append(Step(ENTITY_SETS[name], entity_id, None))
            continue
        previous = steps[-1]
        if previous.entity_id is None and not previous.to_one:
            raise BadRequest(f"{segment!r} follows a collection; address one entity first")
        nav = previous.entity.navs.get(name)
        if nav is None:
            if name in previous.entity.props and raw_id is None:
                return _property(steps, name, segments[i + 1:])
            raise NotFound(f"{previous.entity.name} has no property or navigation {name!r}")
        steps.append(Step(ENTITY_SETS[nav.target], entity_id, name, nav.to_one))
    return Resource(steps)


def text(steps: list[Step]) -> str:
    """The path of `steps` as a request names it: `Things(1)/Datastreams(5)/Sensor`."""
    return "/".join(_segment(step) for step in steps)


def _segment(step: Step) -> str:
    name = step.via or step.entity.set_name
    return name if step.entity_id is None else f"{name}({step.entity_id})"


def _id(raw: str, segment: str) -> int:
    if _ID.fullmatch(raw) is None:
        raise BadRequest(f"the id in {segment!r} is not an integer")
    # Length first: int() refuses strings of thousands of digits with a ValueError.
    if len(raw.lstrip("+-").lstrip("0")) > 19 or int(raw) not in _ID_RANGE:
        raise BadRequest(f"the id in {segment!r} is out of the 64-bit range of ids")
    return int(raw)


def _property(steps: list[Step], name: str, rest: list[str]) -> Resource:
    if not rest:
        return Resource(steps, name)
    if rest == ["$value"]:
        return Resource(steps, name, value=True)
    raise NotFound(f"nothing below property {name!r} but $value")


def _finish(steps: list[Step], segments: list[str], i: int) -> Resource:
    if not steps or i != len(segments) - 1:
        raise BadRequest(f"{segments[i]} must end a path that addresses entities")
    if segments[i] == "$value":
        raise BadRequest("$value follows a property, as in Things(1)/name/$value")
    return Resource(steps, ref=True)
