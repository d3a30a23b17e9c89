"""The verdict (SPEC §1.3, §3, §4): ALLOW, DENY(reason) or CHALLENGE.

Order of reasoning, top to bottom:
1. emergency numbers pass, always (before anything that could fail);
2. an unknown tenant is refused (fail closed), internal and service pass;
3. the first enabled rule that matches (classes, prefixes, destination
   regions) and holds now (its schedule, in the tenant's time zone) decides,
   else the tenant's default; a destination on the tenant's high-risk list is
   then refused, or needs a PIN (`high_risk_action`), whatever allowed it;
4. a caller FreeSWITCH did not authenticate (and not from a trusted source) is
   refused every chargeable class: it has no list entry and no PIN of its own;
5. an allow that names lists needs the caller enabled on one of them, now
   (an entry may hold only from / until an instant);
6. velocity, concurrency and budget limits: a call past one is refused (when
   the snapshot carries no counts, the store's admission is that check: see
   `needs_counts`);
7. a PIN is needed when the rule says so or when the provider's switch and the
   extension's switch are both on for a chargeable class; nobody can key one
   on a call nobody at the phone placed (forward, transfer, PBX-originated):
   refused unless the rule allows unattended calls; a locked extension is
   refused without a prompt; an extension with no PIN set cannot pass a PIN step.
Duration limits ride along with an ALLOW (or CHALLENGE) as `max_seconds`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from policies.classes import ALWAYS_PASS, CHARGEABLE, CallClass
from policies.identity import IdentityKind
from policies.limits import Limit, count_key, ordinal, window_text
from policies.model import Decision, Rule, Snapshot, Verdict
from policies.numbers import Classification, classify
from policies.schedule import local_minute, zone_for
from policies.validity import describe, find_grant


def classify_snapshot(snap: Snapshot) -> Classification:
    s = snap.settings
    return classify(
        snap.dialed,
        s.country,
        outside_line_prefix=s.outside_line_prefix,
        service_pattern=s.service_pattern,
        internal_pattern=s.internal_pattern,
        is_known_extension=snap.destination_is_extension,
        overrides=snap.class_overrides,
    )


def local_time(snap: Snapshot) -> tuple[dt.datetime, str]:
    """Now in the tenant's zone (UTC where the tenant's country has several and
    none is set: `tollgate tenant set … timezone=` says which), to the minute:
    what a schedule looks at (weekday, HH:MM, date)."""
    return local_minute(int(snap.now or 0) // 60, snap.settings.timezone, snap.settings.country)


def decide(snap: Snapshot) -> Decision:
    c = classify_snapshot(snap)
    ident = snap.identity

    def verdict(v: Verdict, reason: str, detail: str, **kw) -> Decision:
        return Decision(v, c.call_class, c.e164, reason, detail, identity=ident.kind.value, region=c.region,
                        unattended=snap.unattended, **kw)

    if c.call_class is CallClass.EMERGENCY:
        return verdict(Verdict.ALLOW, "emergency", f"{c.note}: always allowed")
    if not snap.tenant_exists:
        return verdict(Verdict.DENY, "unknown_tenant", f"tenant {snap.tenant!r} is not configured")
    if not c.dialable:
        return verdict(Verdict.DENY, "invalid_number", f"{c.note}: refused")
    if c.call_class in ALWAYS_PASS:
        return verdict(Verdict.ALLOW, c.call_class.value, f"{c.note}: not restricted")
    if snap.suspended and c.call_class in CHARGEABLE:
        return verdict(Verdict.DENY, "tenant_suspended",
                       f"{c.note}: the tenant's chargeable calls are suspended ({snap.suspended}); "
                       f"an operator lifts it with `tollgate alerts {snap.tenant} --lift`")

    rule, off_hours = _first_match(snap, c)
    if rule is None:
        if snap.settings.default_action == "deny":
            return verdict(Verdict.DENY, "default_deny",
                           f"{c.note}: no rule matches{off_hours} and the tenant's default is deny")
        granted = dict(rule=None)
        pin_by_rule = False
        why = f"{c.note}: no rule matches{off_hours}, tenant default allows"
    elif rule.action == "deny":
        return verdict(Verdict.DENY, "rule_deny", f"{c.note}: rule {rule.name!r} denies{off_hours}", rule=rule.name)
    else:
        granted = dict(rule=rule.name)
        pin_by_rule = rule.pin
        why = f"{c.note}: allowed by rule {rule.name!r}{off_hours}"
    risky = snap.settings.high_risk_list.match(c.e164, c.region) if c.call_class in CHARGEABLE else None
    if risky is not None:
        if snap.settings.high_risk_action == "deny":
            return verdict(Verdict.DENY, "high_risk_destination",
                           f"{why}, but {risky} is on the tenant's high-risk list (high_risk_action=deny)",
                           **granted)
        why += f", high-risk destination ({risky})"
    if ident.kind is IdentityKind.NONE and c.call_class in CHARGEABLE:
        # Only a caller ID the caller chose speaks for this call: nothing to
        # match a list with, no PIN of its own to ask for (a rule's `pin` too).
        return verdict(Verdict.DENY, "unknown_caller",
                       f"{c.note}: refused for {ident.describe()}", **granted)
    if rule is not None and rule.lists:
        auth = snap.caller_auth
        hit, phone, lapsed = find_grant(auth.lists, auth.timed, rule.lists, snap.now)
        if hit is None:
            if lapsed is not None:
                return verdict(Verdict.DENY, *_lapsed(snap, lapsed, f"{c.note}: {ident.describe()}"),
                               rule=rule.name)
            return verdict(
                Verdict.DENY, "not_authorized",
                f"{c.note}: {ident.describe()} is not enabled on {', '.join(rule.lists)} (rule {rule.name!r})",
                rule=rule.name,
            )
        granted.update(authorized_list=hit, authorized_phone=phone)
        why += f", caller on list {hit!r}"

    admit, max_seconds, alert = [], 0, None
    for lim in snap.limits:
        if not lim.applies(c.call_class):
            continue
        if lim.kind == "duration":
            max_seconds = min(max_seconds or lim.seconds, lim.seconds)
            continue
        subject = lim.subject(ident)
        if subject is None:
            continue
        n = snap.counts.get(count_key(lim, subject), 0) if snap.counts is not None else 0
        if lim.kind == "alert":
            if snap.counts is not None and n + 1 >= lim.max and alert is None:
                alert = (lim.name, n + 1)
            admit.append(("alert", lim.name, subject, lim.max, lim.window))
            continue
        full = _full(lim, subject, n, c.call_class.value)
        if full:
            return verdict(Verdict.DENY, full[0], full[1], count=full[2], **granted)
        most = lim.minutes * 60 if lim.kind == "budget" else lim.max
        admit.append((lim.kind, lim.name, subject, most, lim.window if lim.kind == "velocity" else 0))
    if max_seconds:
        why += f", at most {max_seconds}s"
    granted.update(admit=tuple(admit), max_seconds=max_seconds, alert=alert)

    pin_by_extension = (
        snap.settings.pin_feature
        and snap.extension is not None
        and snap.extension.pin_enabled
        and c.call_class in CHARGEABLE
    )
    if not (pin_by_rule or pin_by_extension or risky):
        return verdict(Verdict.ALLOW, "allowed", why, **granted)
    if snap.unattended:
        # A forward, a transfer, a call the PBX placed: nobody can key a PIN.
        # A rule may let such calls through; the tenant's high-risk list it cannot.
        if rule is not None and rule.unattended and not risky:
            return verdict(Verdict.ALLOW, "allowed_unattended",
                           f"{why}; {snap.unattended} allowed without a PIN by the rule", **granted)
        return verdict(Verdict.DENY, "unattended_chargeable",
                       f"{why}, but it needs a PIN and nobody at the phone placed it ({snap.unattended})",
                       **granted)
    if not snap.settings.pin_feature:
        # The provider has not enabled PINs for this customer: a rule (or the
        # high-risk list) that asks for one cannot be satisfied, and passing it
        # silently would defeat it.
        return verdict(Verdict.DENY, "pin_unavailable",
                       f"{why}, but the {'rule' if pin_by_rule else 'high-risk list'} needs a PIN and the "
                       f"tenant's PIN feature is off", **granted)
    if snap.locked_seconds > 0:
        return verdict(Verdict.DENY, "locked",
                       f"{why}, but the extension is locked for {snap.locked_seconds}s after failed PINs", **granted)
    holders = tuple(sorted(snap.extension.pins)) if snap.extension else ()
    if not holders:
        return verdict(Verdict.DENY, "no_pin_set", f"{why}, but a PIN is required and none is set", **granted)
    return verdict(Verdict.CHALLENGE, "pin_required", f"{why}; PIN required", pin_holders=holders, **granted)


def _lapsed(snap: Snapshot, lapsed, who: str) -> tuple[str, str]:
    """(reason, explanation) of a refusal because the caller's entry is outside its window."""
    lst, grant = lapsed
    zone = zone_for(snap.settings.timezone, snap.settings.country)
    if grant.valid_until and snap.now >= grant.valid_until:
        return ("authorization_expired", f"{who} was authorized on list {lst!r} ({grant.phone}) only until "
                f"{describe(grant.valid_until, zone)}")
    return ("authorization_not_yet_valid", f"{who} is authorized on list {lst!r} ({grant.phone}) only from "
            f"{describe(grant.valid_from, zone)}")


def _first_match(snap: Snapshot, c: Classification) -> tuple[Rule | None, str]:
    """The first enabled rule that matches and holds now, and a note on the ones
    skipped because of their schedule (for the explanation)."""
    local, zone, skipped, found = None, "", [], None
    for rule in snap.rules:
        if not rule.matches(c.call_class, c.e164, c.region):
            continue
        if rule.schedule is not None:
            if local is None:
                local, zone = local_time(snap)
            if not rule.schedule.holds(local):
                skipped.append(f"rule {rule.name!r} holds only {rule.schedule.describe()}")
                continue
        found = rule
        break
    return found, (f" ({'; '.join(skipped)}; now {local:%a %H:%M} {zone})" if skipped else "")


def _full(lim, subject: str, n: int, what: str) -> tuple[str, str, int] | None:
    """(reason, explanation, count) when a limit leaves no room for this call."""
    if lim.kind == "velocity" and n >= lim.max:
        return ("velocity_exceeded", f"refused: {ordinal(n + 1)} {what} call in {window_text(lim.window)}"
                f" ({subject}), limit {lim.max} (limit {lim.name!r})", n + 1)
    if lim.kind == "concurrency" and n >= lim.max:
        return ("concurrency_exceeded", f"refused: {n} {what} calls already in progress ({subject}), "
                f"limit {lim.max} at once (limit {lim.name!r})", n + 1)
    if lim.kind == "budget" and n >= lim.minutes * 60:
        return ("budget_exhausted", f"refused: {n // 60} of {lim.minutes} minutes of {what} calls used today "
                f"({subject}), until midnight in the tenant's time zone (limit {lim.name!r})", n)
    return None


def needs_counts(snap: Snapshot, d: Decision) -> bool:
    """Whether `d`, decided without the counts, must be decided again with them.

    An ALLOW leaves them to the admission: the store checks each limit as it
    takes its place, in the same script as the verdict's write, and refuses a
    full one the way this module would (`full_at_admission`). Anything else
    that went past the limits step (a PIN to ask for, a refusal that comes
    after it) needs them now: nobody keys a PIN to be refused after it, and a
    call over its limit is refused for that first, as `decide` orders it."""
    return snap.counts is None and bool(d.admit) and d.verdict is not Verdict.ALLOW


def alert_at_admission(d: Decision, counts: tuple[int, ...]) -> tuple[str, int] | None:
    """(alert limit, count with this call) when the counts the admission found
    (one per d.admit, before this call) bring an alert limit to its threshold."""
    for (kind, name, _, most, _), n in zip(d.admit, counts):
        if kind == "alert" and n + 1 >= most:
            return name, n + 1
    return None


def full_at_admission(d: Decision, index: int, count: int) -> Decision:
    """The decision once the store found admission `index` (1-based in d.admit)
    full when it came to take it: another call took the last place."""
    kind, name, subject, most, window = d.admit[index - 1]
    lim = Limit(name, kind=kind, max=most, window=window or 3600, minutes=most // 60)
    reason, detail, n = _full(lim, subject, count, d.call_class.value)
    return replace(d, verdict=Verdict.DENY, reason=reason, count=n, admit=(), pin_holders=(), detail=detail)
