"""The supervisor's bookkeeping, against a small honest stand-in for the stack: a restart
that fails counts as a crash at once, the programs wait while the database is not back,
and a start that hangs leaves the other services watched."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.errors import ServiceFailed
from deploy.process import RestartPolicy
from deploy.supervisor import supervise


class Service:
    def __init__(self, name: str) -> None:
        self.name = name
        self.running = True
        self.pid = 1000
        self.logfile = Path(f"/nonexistent/{name}.log")

    def exit_status(self) -> str:
        return "exit code 1"


class FakeStack:
    """Services that exit when told; `restart` runs what `behaviour[name]` says."""

    def __init__(self, *names: str) -> None:
        self.services = {name: Service(name) for name in names}
        self.restarts: list[str] = []
        self.behaviour: dict[str, Callable[[Callable[[], bool]], None]] = {}

    def exited(self) -> list[str]:
        return [name for name, s in self.services.items() if not s.running]

    def service(self, name: str) -> Service:
        return self.services[name]

    def restart(self, name: str, abandon: Callable[[], bool] = lambda: False) -> None:
        self.restarts.append(name)
        self.behaviour.get(name, comes_back)(abandon)
        self.services[name].running = True


def comes_back(abandon: Callable[[], bool]) -> None:
    pass


def quick() -> RestartPolicy:
    return RestartPolicy(max_crashes=5, window_s=120, first_delay_s=0.01, max_delay_s=0.01)


def fails(abandon: Callable[[], bool]) -> None:
    raise ServiceFailed("ingest not ready after 60 s:")


async def test_a_service_whose_restarts_fail_stops_the_stack_at_its_fifth_crash() -> None:
    stack = FakeStack("database", "ingest")
    stack.behaviour["ingest"] = fails
    stack.services["ingest"].running = False
    started = time.monotonic()
    with pytest.raises(ServiceFailed, match="ingest given up after 5 crashes within 120 s"):
        await supervise(stack, asyncio.Event(), quick)  # type: ignore[arg-type]
    assert stack.restarts == ["ingest"] * 4  # the exit, then four failed restarts
    assert time.monotonic() - started < 5


async def test_programs_wait_while_the_database_restart_failed() -> None:
    stack = FakeStack("database", "broker", "ingest", "api")
    failures = iter([True, True])

    def database(abandon: Callable[[], bool]) -> None:
        if next(failures, False):
            raise ServiceFailed("database exited during start-up:")

    stack.behaviour["database"] = database
    for name in ("database", "ingest", "api"):
        stack.services[name].running = False
    stop = asyncio.Event()
    task = asyncio.create_task(supervise(stack, stop, quick))  # type: ignore[arg-type]
    await _until(lambda: {"ingest", "api"} <= set(stack.restarts))
    stop.set()
    await task
    assert stack.restarts[:3] == ["database"] * 3
    assert sorted(stack.restarts[3:]) == ["api", "ingest"]


async def test_a_start_that_hangs_leaves_the_others_watched_and_is_abandoned_at_stop(
) -> None:
    stack = FakeStack("database", "ingest", "api")
    abandoned = threading.Event()

    def hangs(abandon: Callable[[], bool]) -> None:
        while not abandon():
            time.sleep(0.01)
        abandoned.set()
        raise ServiceFailed("ingest's start abandoned: the stack stops")

    stack.behaviour["ingest"] = hangs
    stack.services["ingest"].running = False
    stop = asyncio.Event()
    task = asyncio.create_task(supervise(stack, stop, quick))  # type: ignore[arg-type]
    await _until(lambda: "ingest" in stack.restarts)
    stack.services["api"].running = False
    await _until(lambda: "api" in stack.restarts)  # while ingest's start still hangs
    assert not abandoned.is_set()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert abandoned.is_set()


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):  # 5 s
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")
