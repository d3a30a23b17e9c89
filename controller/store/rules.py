"""A tenant's ordered outbound rules and its class overrides: the part of
`Admin` (operator changes, audited) that says what the policy applies."""

from __future__ import annotations

from typing import Sequence

from controller.errors import AlreadyExists, InvalidInput, NotFound
from controller.store import codec, keys
from policies.classes import ALWAYS_PASS, parse_class
from policies.model import Rule, check_prefix
from policies.schedule import parse as parse_schedule, zone_for


class RulesAdmin:
    """Mixed into `Admin`: uses its Redis client, its audit log and its tenant checks."""

    # -- rules -----------------------------------------------------------------
    def rules(self, t: str) -> tuple[Rule, ...]:
        self.require_tenant(t)
        return codec.rules(keys.rules(t), self.r.lrange(keys.rules(t), 0, -1))

    def add_rule(self, t: str, name: str, action: str, classes: Sequence[str] = (),
                 prefixes: Sequence[str] = (), lists: Sequence[str] = (), pin: bool = False,
                 position: int | None = None, enabled: bool = True, unattended: bool = False,
                 schedule: dict | None = None, regions: Sequence[str] = (),
                 except_regions: Sequence[str] = ()) -> Rule:
        current = list(self.rules(t))
        # As given: the rule's typed reading refuses a string where a list or a
        # boolean belongs (list("international") would be eleven letters).
        rule = self._checked_rule(t, {"name": name, "action": action, "classes": classes,
                                      "prefixes": prefixes, "lists": lists, "pin": pin,
                                      "enabled": enabled, "unattended": unattended, "schedule": schedule,
                                      "regions": regions, "except_regions": except_regions})
        if any(r.name == rule.name for r in current):
            raise AlreadyExists(f"rule {rule.name!r} already exists in tenant {t!r}")
        pos = len(current) if position is None else _position(position, len(current) + 1)
        current.insert(pos, rule)
        self._save_rules(t, current)
        self._log(t, "rule.add", rule.name, after={**rule.to_json(), "position": pos + 1})
        return rule

    def update_rule(self, t: str, name: str, changes: dict) -> Rule:
        """Change a rule in place (its position stays); `changes` uses the rule's JSON fields."""
        current = list(self.rules(t))
        old = _find_rule(current, name)
        if not isinstance(changes, dict):
            raise InvalidInput("a rule's changes must be a JSON object")
        unknown = set(changes) - set(RULE_FIELDS)
        if unknown:
            raise InvalidInput(f"a rule has no field {sorted(unknown)[0]!r} (fields: {', '.join(RULE_FIELDS)})")
        merged = {**old.to_json(), **changes}
        rule = self._checked_rule(t, merged)
        if rule.name != old.name and any(r.name == rule.name for r in current):
            raise AlreadyExists(f"rule {rule.name!r} already exists in tenant {t!r}")
        current[current.index(old)] = rule
        self._save_rules(t, current)
        self._log(t, "rule.update", old.name, before=old.to_json(), after=rule.to_json())
        return rule

    def _checked_rule(self, t: str, data: dict) -> Rule:
        settings = self.get_tenant(t)
        try:
            rule = Rule.from_json(data)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if rule.schedule and zone_for(settings.timezone, settings.country) is None:
            raise InvalidInput(f"{settings.country} has several time zones: set the tenant's timezone "
                               f"(tollgate tenant set {t} timezone=...) before a scheduled rule")
        if rule.lists and rule.action == "deny":
            raise InvalidInput("a deny rule cannot name lists (lists say who may pass an allow rule)")
        if rule.pin and not settings.pin_feature:
            raise InvalidInput(f"tenant {t!r} does not have the PIN feature; a PIN rule could never pass")
        known = self.r.smembers(keys.lists(t))
        missing = [x for x in rule.lists if x not in known]
        if missing:
            raise InvalidInput(f"no list {missing[0]!r} in tenant {t!r}")
        return rule

    def remove_rule(self, t: str, name: str) -> None:
        current = list(self.rules(t))
        rule = _find_rule(current, name)
        current.remove(rule)
        self._save_rules(t, current)
        self._log(t, "rule.remove", name, before=rule.to_json())

    def move_rule(self, t: str, name: str, position: int) -> None:
        current = list(self.rules(t))
        rule = _find_rule(current, name)
        old = current.index(rule)
        current.remove(rule)
        pos = _position(position, len(current) + 1)
        current.insert(pos, rule)
        self._save_rules(t, current)
        self._log(t, "rule.move", name, before={"position": old + 1}, after={"position": pos + 1})

    def set_rule_enabled(self, t: str, name: str, enabled: bool) -> None:
        current = list(self.rules(t))
        rule = _find_rule(current, name)
        current[current.index(rule)] = rule.with_enabled(enabled)
        self._save_rules(t, current)
        self._log(t, "rule.enable" if enabled else "rule.disable", name)

    def _save_rules(self, t: str, rules: list[Rule]) -> None:
        tx = self.r.pipeline()
        tx.delete(keys.rules(t))
        if rules:
            tx.rpush(keys.rules(t), *[codec.rule_json(r) for r in rules])
        tx.execute()

    # -- class overrides -----------------------------------------------------
    def overrides(self, t: str) -> dict:
        self.require_tenant(t)
        return codec.overrides(keys.overrides(t), self.r.hgetall(keys.overrides(t)))

    def set_override(self, t: str, prefix: str, cls: str) -> None:
        self.require_tenant(t)
        try:
            p, c = check_prefix(prefix), parse_class(cls)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if c in ALWAYS_PASS:
            raise InvalidInput(f"an override cannot make numbers {c.value}")
        before = self.r.hget(keys.overrides(t), p)
        self.r.hset(keys.overrides(t), p, c.value)
        self._log(t, "override.set", p, before=before, after=c.value)

    def remove_override(self, t: str, prefix: str) -> None:
        self.require_tenant(t)
        before = self.r.hget(keys.overrides(t), prefix)
        if before is None:
            raise NotFound(f"no override for {prefix!r} in tenant {t!r}")
        self.r.hdel(keys.overrides(t), prefix)
        self._log(t, "override.remove", prefix, before=before)


RULE_FIELDS = ("name", "action", "classes", "prefixes", "lists", "pin", "enabled", "unattended", "schedule",
               "regions", "except_regions")


def schedule_from(days: str = "", hours: str = "", holidays: str = "") -> dict | None:
    """A rule's schedule from the operator's words (mon-fri, 08:00-18:00, dates); None: always."""
    if not all(isinstance(x, str) for x in (days, hours, holidays)):
        raise InvalidInput("days, hours and holidays must be strings (mon-fri, 08:00-18:00, 2026-12-25)")
    if not (days or hours or holidays):
        return None
    try:
        return parse_schedule(days, hours, holidays).to_json()
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def regions_text(rule: Rule) -> str:
    """A rule's destination regions for people: "EU,CH", "all except CU", "*"."""
    out = ",".join(rule.regions) or ("all" if rule.except_regions else "*")
    return f"{out} except {','.join(rule.except_regions)}" if rule.except_regions else out


def _position(position: int, limit: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int):
        raise InvalidInput(f"position must be a whole number, got {position!r}")
    if not 1 <= position <= limit:
        raise InvalidInput(f"position {position} is outside 1..{limit}")
    return position - 1


def _find_rule(rules: list[Rule], name: str) -> Rule:
    for rule in rules:
        if rule.name == name:
            return rule
    raise NotFound(f"no rule {name!r}" + (f" (rules: {', '.join(r.name for r in rules)})" if rules else ""))
