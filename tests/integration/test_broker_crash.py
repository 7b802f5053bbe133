"""A broker killed with SIGKILL loses at most the changes since its last autosave: with the
stack's settings, fewer than `autosave_interval` (1,000) of the readings it acknowledged
to devices and held for an absent ingest."""

from __future__ import annotations

import asyncio
from pathlib import Path

from deploy.mosquitto import BrokerConfig
from tests.integration.broker_crash import crash


async def test_kill_9_of_the_broker_loses_at_most_one_autosave_interval_of_a_backlog(
    state_dir: Path
) -> None:
    config = BrokerConfig(port=0, data_dir=Path(), pid_file=Path())
    assert config.autosave_on_changes
    messages = 5 * config.autosave_interval + 777  # the kill falls between two saves
    outcome = await asyncio.to_thread(crash, state_dir, messages)
    assert outcome.acknowledged == messages
    assert outcome.survived <= messages
    assert outcome.lost <= config.autosave_interval
