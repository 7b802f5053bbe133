"""Which `$select` notification topics clients are subscribed to, as the broker tells it.

The SensorThings MQTT extension lets a client subscribe to a collection topic with a
selection, `v1.1/Things?$select=name,description`, and receive each entity with only those
properties. A publisher cannot serve every possible selection, so it serves those that
someone is subscribed to. Mosquitto tells: with `log_dest topic` and `log_type subscribe`,
`unsubscribe` and `notice`, it publishes its log on `$SYS/broker/log/...` (measured on
Mosquitto 2.0.11, the `%Y-%m-%dT%H:%M:%S` timestamp being the stack's setting):

    $SYS/broker/log/M/subscribe    2026-12-05T19:46:20: sel1 0 v1.1/Things?$select=name
    $SYS/broker/log/M/unsubscribe  2026-12-05T19:46:21: sel1 v1.1/Things?$select=name
    $SYS/broker/log/N              2026-12-05T19:46:22: New client connected from
                                   127.0.0.1:47636 as sel2 (p2, c0, k60, u'reader').
    $SYS/broker/log/N              2026-12-05T19:46:23: Client sel2 disconnected.

`Subscriptions` follows these lines: a client's subscriptions end when it unsubscribes, when
it connects again with a clean session, or when a client with a clean session goes. Those
of a client with a session kept by the broker (`c0`) stay while it is away: the broker gives
them back when it returns, without a line in the log. Only `$select` topics are kept;
others need no bookkeeping, as they are published whoever listens.

What it cannot know: subscriptions made before it started listening, or while it was not.
What it will not serve: more than MAX_PER_CLIENT topics of one client, or MAX_TOPICS in all.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

LOG_TOPICS = ("$SYS/broker/log/M/subscribe", "$SYS/broker/log/M/unsubscribe",
              "$SYS/broker/log/N")
SELECT = "?$select="
# Clients away with their session kept, remembered at most; the oldest go first.
MAX_AWAY = 10_000
# Each distinct `$select` topic costs one more publish per change of its collection: a
# client is served this many, and all clients together this many (past them, a new one is
# not served). The broker logs a subscription before its ACL refuses it, so these also
# bound what a client without read rights can ask for.
MAX_PER_CLIENT = 20
MAX_TOPICS = 1_000

_TIMESTAMP = re.compile(r"^[0-9T:.\-]+: ")
_SUBSCRIBE = re.compile(r"^(?P<client>\S+) (?P<qos>[0-2]) (?P<topic>.+)$")
_UNSUBSCRIBE = re.compile(r"^(?P<client>\S+) (?P<topic>.+)$")
_CONNECTED = re.compile(r"^New client connected from \S+ as (?P<client>\S+) "
                        r"\(p\d+, c(?P<clean>[01]), k\d+(?:, u'.*')?\)\.$")
_GONE = re.compile(r"^(?:Client (?P<client>\S+) (?:disconnected|closed its connection|"
                   r"has exceeded timeout|has been disconnected)|"
                   r"Socket error on client (?P<socket>\S+), disconnecting)")


def selection(topic: str) -> tuple[str, tuple[str, ...]] | None:
    """(the plain topic, the selected properties) of a `$select` topic, e.g.
    `v1.1/Things?$select=name,description` → (`v1.1/Things`, ("name", "description"));
    None for any other topic, wildcards included."""
    base, found, names = topic.partition(SELECT)
    if not found or not base or "+" in topic or "#" in topic:
        return None
    props = tuple(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
    if not props or not all(n.isidentifier() for n in props):
        return None
    return base, props


@dataclass
class _Client:
    clean: bool
    topics: set[str] = field(default_factory=set)


class Subscriptions:
    """The `$select` topics clients are subscribed to; see the module docstring."""

    def __init__(self, max_away: int = MAX_AWAY, max_per_client: int = MAX_PER_CLIENT,
                 max_topics: int = MAX_TOPICS) -> None:
        self.max_away = max_away
        self.max_per_client = max_per_client
        self.max_topics = max_topics
        self._clients: dict[str, _Client] = {}
        self._away: OrderedDict[str, None] = OrderedDict()
        self._count: Counter[str] = Counter()  # subscribers per $select topic
        self._by_base: dict[str, dict[str, tuple[str, ...]]] = {}

    def selected(self, base: str) -> dict[str, tuple[str, ...]]:
        """The subscribed `$select` topics of plain topic `base`, with their properties."""
        return self._by_base.get(base, {})

    def topics(self) -> set[str]:
        """Every `$select` topic someone is subscribed to."""
        return set(self._count)

    def heard(self, log_topic: str, line: bytes | str) -> None:
        """Take one message of the broker's log: `log_topic` (one of LOG_TOPICS) and its
        payload."""
        text = line.decode(errors="replace") if isinstance(line, bytes) else line
        text = _TIMESTAMP.sub("", text.strip(), count=1)
        if log_topic.endswith("/M/subscribe"):
            match = _SUBSCRIBE.match(text)
            if match:
                self.subscribed(match["client"], match["topic"])
        elif log_topic.endswith("/M/unsubscribe"):
            match = _UNSUBSCRIBE.match(text)
            if match:
                self.unsubscribed(match["client"], match["topic"])
        elif (match := _CONNECTED.match(text)) is not None:
            self.connected(match["client"], clean=match["clean"] == "1")
        elif (match := _GONE.match(text)) is not None:
            self.gone(match["client"] or match["socket"])

    def subscribed(self, client: str, topic: str) -> None:
        if selection(topic) is None:
            return
        known = self._clients.setdefault(client, _Client(clean=False))
        if topic in known.topics or len(known.topics) >= self.max_per_client:
            return
        if topic not in self._count and len(self._count) >= self.max_topics:
            return
        known.topics.add(topic)
        self._add(topic)

    def unsubscribed(self, client: str, topic: str) -> None:
        known = self._clients.get(client)
        if known is not None and topic in known.topics:
            known.topics.discard(topic)
            self._remove(topic)

    def connected(self, client: str, clean: bool) -> None:
        """A client connected: with a clean session, whatever it had subscribed is gone."""
        self._away.pop(client, None)
        known = self._clients.get(client)
        if known is not None and clean:
            self._forget(client)
            known = None
        if known is None:
            self._clients[client] = _Client(clean=clean)
        else:
            known.clean = clean

    def gone(self, client: str) -> None:
        """A client's connection ended: its subscriptions end with a clean session, and stay
        for the broker to give back otherwise."""
        known = self._clients.get(client)
        if known is None:
            return
        if known.clean or not known.topics:
            self._forget(client)
            return
        self._away[client] = None
        while len(self._away) > self.max_away:
            oldest, _ = self._away.popitem(last=False)
            self._forget(oldest)

    def reconnected(self) -> None:
        """The log was not heard for a while (the broker restarted, or the listener lost it):
        clients with a clean session have lost their subscriptions, and will subscribe
        again in the log; the others keep theirs."""
        for client in [c for c, known in self._clients.items() if known.clean]:
            self._forget(client)

    def _forget(self, client: str) -> None:
        known = self._clients.pop(client, None)
        self._away.pop(client, None)
        for topic in known.topics if known else ():
            self._remove(topic)

    def _add(self, topic: str) -> None:
        self._count[topic] += 1
        if self._count[topic] == 1:
            found = selection(topic)
            assert found is not None
            base, props = found
            self._by_base.setdefault(base, {})[topic] = props

    def _remove(self, topic: str) -> None:
        self._count[topic] -= 1
        if self._count[topic] > 0:
            return
        del self._count[topic]
        base, _ = selection(topic) or ("", ())
        topics = self._by_base.get(base, {})
        topics.pop(topic, None)
        if not topics:
            self._by_base.pop(base, None)
