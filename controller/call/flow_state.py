"""What a step of the call flow (flow_actions, flow_degraded, flow_pin,
flow_record) reads and sets on the call: a Protocol that `CallFlow` satisfies.
The steps import this, never the flow that calls them, so the call's modules
import in one direction: callflow -> steps -> flow_state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Protocol

if TYPE_CHECKING:
    from controller.call.services import CallLog, Services
    from controller.call.session import CallSession
    from controller.freeswitch.events import ChannelPark
    from policies.model import Decision, TenantSettings


class Plan(NamedTuple):
    action: str  # bridge | transfer | refuse
    route: str  # dial string or transfer target ('' for refuse)
    outcome: str  # what the audit says once FreeSWITCH accepted it


class FlowState(Protocol):
    """One call as its steps see it (attributes documented on `CallFlow`)."""

    s: CallSession
    park: ChannelPark
    svc: Services
    log: CallLog
    decision: Decision | None
    settings: TenantSettings | None
    snapshot: Any
    language: str
    outcome: str
    pin_tries: int
    pin_holder: str
    used_entry: tuple[str, str] | None
    degraded: bool
    state_written: bool
    final_sent: bool
    plan: Plan | None
    recorded_outcome: str | None
    day: str
    talked: int
    followed: bool

    def counted_spec(self) -> str: ...

    def write_state(self, state: str) -> None: ...

    def store_quietly(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def settle(self, decision: Decision) -> None: ...

    def fields(self, outcome: str) -> dict[str, str]: ...

    def audit_tenant(self) -> str: ...
