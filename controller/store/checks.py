"""Checks of operator input shared by the store's writers (Admin, its bulk
import, the web accounts): one-line InvalidInput errors, before anything is written."""

from __future__ import annotations

from controller.errors import InvalidInput
from policies.model import check_name


def valid_name(kind: str, value: str) -> str:
    """A tenant, list, rule or account name (they end up in Redis keys)."""
    try:
        return check_name(kind, value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def entry_row(name: str, first: str, last: str, phone: str, state: str, valid_from: str = "",
              valid_until: str = "") -> dict[str, str]:
    """An authorized entry's fields, trimmed and checked (the phone is already
    E.164, the window already in its stored form: Admin.window)."""
    first, last, state = (first or "").strip(), (last or "").strip(), (state or "").strip().lower()
    if not first and not last:
        raise InvalidInput("an authorized entry needs a first or last name")
    if len(first) > 80 or len(last) > 80 or any(c in first + last for c in "\r\n"):
        raise InvalidInput("names are at most 80 characters on one line")
    if state not in ("enabled", "disabled"):
        raise InvalidInput(f"state {state!r} is not enabled or disabled")
    return {"list": name, "first_name": first, "last_name": last, "phone": phone, "state": state,
            "valid_from": valid_from, "valid_until": valid_until}
