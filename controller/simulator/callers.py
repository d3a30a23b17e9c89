"""Scripted callers: what a person on the phone does while Tollgate handles the call."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Caller:
    """keys: what the caller keys at each PIN prompt, in order ('' = stays silent).

    hangup_at: None, "park" (right after the call is parked), "prompt" (during
    prompt number `hangup_prompt`), "keyed" (right after keying at that prompt,
    as the prompt ends), "announcement" (during a refusal), or "ringing" (while
    the bridge rings).
    bridge: what the far end does: "answer", "busy" or "no_answer".
    """

    keys: list[str] = field(default_factory=list)
    hangup_at: str | None = None
    hangup_prompt: int = 1
    bridge: str = "answer"
    talk_seconds: float = 0.05
    hangup_delay: float = 0.0

    def next_keys(self, index: int) -> str:
        return self.keys[index] if index < len(self.keys) else ""
