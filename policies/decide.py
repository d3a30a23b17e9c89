"""The verdict (SPEC §1.3, §3, §4): ALLOW, DENY(reason) or CHALLENGE.

Order of reasoning, top to bottom:
1. emergency numbers pass, always (before anything that could fail);
2. an unknown tenant is refused (fail closed), internal and service pass;
3. the first enabled rule that matches decides, else the tenant's default;
4. a caller FreeSWITCH did not authenticate (and not from a trusted source) is
   refused every chargeable class: it has no list entry and no PIN of its own;
5. an allow that names lists needs the caller enabled on one of them;
6. a PIN is needed when the rule says so or when the provider's switch and the
   extension's switch are both on for a chargeable class; a locked extension is
   refused without a prompt; an extension with no PIN set cannot pass a PIN step.
"""

from __future__ import annotations

from policies.classes import ALWAYS_PASS, CHARGEABLE, CallClass
from policies.identity import IdentityKind
from policies.model import Decision, Rule, Snapshot, Verdict
from policies.numbers import Classification, classify


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


def decide(snap: Snapshot) -> Decision:
    c = classify_snapshot(snap)

    ident = snap.identity

    def verdict(v: Verdict, reason: str, detail: str, **kw) -> Decision:
        return Decision(v, c.call_class, c.e164, reason, detail, identity=ident.kind.value, region=c.region, **kw)

    if c.call_class is CallClass.EMERGENCY:
        return verdict(Verdict.ALLOW, "emergency", f"{c.note}: always allowed")
    if not snap.tenant_exists:
        return verdict(Verdict.DENY, "unknown_tenant", f"tenant {snap.tenant!r} is not configured")
    if not c.dialable:
        return verdict(Verdict.DENY, "invalid_number", f"{c.note}: refused")
    if c.call_class in ALWAYS_PASS:
        return verdict(Verdict.ALLOW, c.call_class.value, f"{c.note}: not restricted")

    rule = _first_match(snap.rules, c)
    if rule is None:
        if snap.settings.default_action == "deny":
            return verdict(Verdict.DENY, "default_deny", f"{c.note}: no rule matches and the tenant's default is deny")
        granted = dict(rule=None)
        pin_by_rule = False
        why = f"{c.note}: no rule matches, tenant default allows"
    elif rule.action == "deny":
        return verdict(Verdict.DENY, "rule_deny", f"{c.note}: rule {rule.name!r} denies", rule=rule.name)
    else:
        granted = dict(rule=rule.name)
        pin_by_rule = rule.pin
        why = f"{c.note}: allowed by rule {rule.name!r}"
    if ident.kind is IdentityKind.NONE and c.call_class in CHARGEABLE:
        # Only a caller ID the caller chose speaks for this call: nothing to
        # match a list with, no PIN of its own to ask for (a rule's `pin` too).
        return verdict(Verdict.DENY, "unknown_caller",
                       f"{c.note}: refused for {ident.describe()}", **granted)
    if rule is not None and rule.lists:
        hit = next((lst for lst in rule.lists if lst in snap.caller_auth.lists), None)
        if hit is None:
            return verdict(
                Verdict.DENY, "not_authorized",
                f"{c.note}: {ident.describe()} is not enabled on {', '.join(rule.lists)} (rule {rule.name!r})",
                rule=rule.name,
            )
        granted.update(authorized_list=hit, authorized_phone=snap.caller_auth.lists[hit])
        why += f", caller on list {hit!r}"

    pin_by_extension = (
        snap.settings.pin_feature
        and snap.extension is not None
        and snap.extension.pin_enabled
        and c.call_class in CHARGEABLE
    )
    if not (pin_by_rule or pin_by_extension):
        return verdict(Verdict.ALLOW, "allowed", why, **granted)
    if not snap.settings.pin_feature:
        # The provider has not enabled PINs for this customer: a rule that asks
        # for one cannot be satisfied, and passing it silently would defeat it.
        return verdict(Verdict.DENY, "pin_unavailable",
                       f"{why}, but the rule needs a PIN and the tenant's PIN feature is off", **granted)
    if snap.locked_seconds > 0:
        return verdict(Verdict.DENY, "locked",
                       f"{why}, but the extension is locked for {snap.locked_seconds}s after failed PINs", **granted)
    holders = tuple(sorted(snap.extension.pins)) if snap.extension else ()
    if not holders:
        return verdict(Verdict.DENY, "no_pin_set", f"{why}, but a PIN is required and none is set", **granted)
    return verdict(Verdict.CHALLENGE, "pin_required", f"{why}; PIN required", pin_holders=holders, **granted)


def _first_match(rules: tuple[Rule, ...], c: Classification) -> Rule | None:
    for rule in rules:
        if rule.matches(c.call_class, c.e164):
            return rule
    return None
