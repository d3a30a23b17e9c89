"""Checks of operator input shared by the store's writers (Admin, its bulk
import, the web accounts): one-line InvalidInput errors, before anything is written."""

from __future__ import annotations

from controller.errors import InvalidInput
from policies.model import check_flag, check_name, check_strings, check_text


def checked(check, *args):
    """One of policies.model's checks, its ValueError as InvalidInput."""
    try:
        return check(*args)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def valid_name(kind: str, value: str) -> str:
    """A tenant, list, rule or account name (they end up in Redis keys)."""
    return checked(check_name, kind, value)


def valid_text(kind: str, value: str, longest: int = 80) -> str:
    """A person's words: one line, no control or bidi characters, trimmed."""
    return checked(check_text, kind, value, longest)


def valid_flag(kind: str, value) -> bool:
    return checked(check_flag, kind, value)


def valid_strings(kind: str, value) -> tuple[str, ...]:
    return checked(check_strings, kind, value)


def entry_row(name: str, first: str, last: str, phone: str, state: str, valid_from: str = "",
              valid_until: str = "") -> dict[str, str]:
    """An authorized entry's fields, trimmed and checked (the phone is already
    E.164, the window already in its stored form: Admin.window)."""
    first, last = valid_text("first name", first or ""), valid_text("last name", last or "")
    if not isinstance(state, str):
        raise InvalidInput(f"state {state!r} is not enabled or disabled")
    state = state.strip().lower()
    if not first and not last:
        raise InvalidInput("an authorized entry needs a first or last name")
    if state not in ("enabled", "disabled"):
        raise InvalidInput(f"state {state!r} is not enabled or disabled")
    return {"list": name, "first_name": first, "last_name": last, "phone": phone, "state": state,
            "valid_from": valid_from, "valid_until": valid_until}
