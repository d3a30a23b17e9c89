"""What the simulator's parts see of each other, as Protocols: the API commands
(api.py) and a client connection (connection.py) see the switch, an application
(apps.py) sees its channel. They import these, never server.py or channel.py,
so the simulator imports in one direction: server -> connection/api -> roles,
channel -> apps -> roles."""

from __future__ import annotations

from typing import Iterator, TYPE_CHECKING, Any, Iterable, Protocol

if TYPE_CHECKING:
    from controller.simulator.callers import Caller
    from controller.simulator.node import NodeConfig


class Switch(Protocol):
    """The simulated FreeSWITCH (server.Simulator) as its connections and API see it."""

    password: str
    node: NodeConfig
    record: bool
    channels: dict[str, Any]
    connections: set[Any]
    inbound: set[Any]  # event-socket clients (not socket-app sessions)
    commands: list[tuple[int, str]]
    hash_db: dict[tuple[str, str], str]
    sched_groups: dict[str, list]
    task_ids: Iterator[int]
    bytes_sent: int
    bytes_received: int
    event_pace: float

    def base_headers(self, name: str, f: str, fn: str, line: str) -> list[tuple[str, str]]: ...

    def live(self) -> list[Any]: ...

    def api(self, line: str) -> str: ...

    def sendmsg(self, conn: Any, target: str, headers: dict, body: str) -> str: ...


class AppChannel(Protocol):
    """A channel (channel.Channel) as the dialplan applications see it."""

    sim: Any
    uuid: str
    caller: Caller
    vars: dict[str, str]
    state: str
    parked: bool
    bridged: bool
    prompts: int
    outcome: str
    answered_at: float | None
    timers: list

    def emit(self, name: str, extra: Iterable = (), with_vars: bool = True) -> None: ...

    def pause(self, seconds: float) -> None: ...

    def hangup(self, cause: str) -> None: ...

    def key(self, digits: str) -> None: ...

    def prompt_length(self, path: str) -> float: ...
