"""Operator changes: tenants, extensions, PINs, lists, entries, rules, overrides.

Every change goes to the audit stream with its before and after (PINs as
holder names only). Input is validated here, before anything is written, with
one-line InvalidInput / NotFound / AlreadyExists errors.
"""

from __future__ import annotations

import json
import time
from typing import Iterable

import redis

from controller.errors import AlreadyExists, InvalidInput, NotFound
from controller.store import codec, keys
from controller.store.audit import Audit
from controller.store.checks import entry_row, valid_flag, valid_name, valid_strings, valid_text
from controller.store.entries_io import EntriesIO
from controller.store.rules import RulesAdmin
from policies.model import LANGUAGES, TENANT_PARSERS, TenantSettings
from policies.numbers import normalize_phone
from policies.pin import PinFormatError, hash_pin, validate_pin
from policies.schedule import zone_for
from policies.validity import decode_grant, encode_grant, epoch, iso, parse_instant


def _ext_number(value: str) -> str:
    v = value.strip() if isinstance(value, str) else ""
    if not (v.isascii() and v.isdigit() and 2 <= len(v) <= 8):
        raise InvalidInput(f"invalid extension {value!r}: use 2 to 8 digits")
    return v


def _now() -> str:
    return f"{time.time():.0f}"


class Admin(RulesAdmin, EntriesIO):
    def __init__(self, r: redis.Redis, audit: Audit, actor: str = "cli"):
        self.r = r
        self.audit = audit
        self.actor = actor

    def _log(self, tenant: str, action: str, obj: str, before=None, after=None) -> None:
        self.audit.append("change", tenant, actor=self.actor, action=action, object=obj,
                          before=before, after=after)

    # -- tenants -------------------------------------------------------------
    def tenants(self) -> list[str]:
        return sorted(self.r.smembers(keys.TENANTS))

    def tenant_exists(self, t: str) -> bool:
        return bool(self.r.exists(keys.tenant(t)))

    def require_tenant(self, t: str) -> None:
        valid_name("tenant", t)
        if not self.tenant_exists(t):
            raise NotFound(f"no tenant {t!r} (create it with: tollgate tenant create {t})")

    def get_tenant(self, t: str) -> TenantSettings:
        self.require_tenant(t)
        return codec.tenant_settings(keys.tenant(t), self.r.hgetall(keys.tenant(t)))

    def create_tenant(self, t: str, changes: dict[str, str]) -> TenantSettings:
        valid_name("tenant", t)
        if self.tenant_exists(t):
            raise AlreadyExists(f"tenant {t!r} already exists")
        settings = self._apply(TenantSettings(), changes)
        self.r.hset(keys.tenant(t), mapping=settings.to_mapping())
        self.r.sadd(keys.TENANTS, t)
        self._log(t, "tenant.create", t, after=settings.to_mapping())
        return settings

    def update_tenant(self, t: str, changes: dict[str, str]) -> TenantSettings:
        self.require_tenant(t)
        # Applied to the stored strings, not to the parsed settings: a value
        # stored before a check became stricter (a pattern RE2 cannot run) makes
        # the settings unreadable, and setting it again must still be possible.
        stored = {k: v for k, v in self.r.hgetall(keys.tenant(t)).items() if k in TENANT_PARSERS}
        after = self._apply(TenantSettings(), {**stored, **changes})
        self.r.hset(keys.tenant(t), mapping=after.to_mapping())
        diff_b = {k: stored.get(k) for k in changes}
        self._log(t, "tenant.update", t, before=diff_b, after={k: after.to_mapping()[k] for k in changes})
        return after

    @staticmethod
    def _apply(base: TenantSettings, changes: dict[str, str]) -> TenantSettings:
        try:
            return base.with_changes(changes)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None

    def delete_tenant(self, t: str) -> int:
        self.require_tenant(t)
        # The audit stream stays: what happened must outlive the tenant.
        doomed = [k for k in self.r.scan_iter(match=keys.tenant_pattern(t), count=500) if k != keys.audit(t)]
        for i in range(0, len(doomed), 500):
            self.r.delete(*doomed[i:i + 500])
        self.r.srem(keys.TENANTS, t)
        self._log(t, "tenant.delete", t, before={"keys": len(doomed)})
        return len(doomed)

    # -- extensions ----------------------------------------------------------
    def extensions(self, t: str) -> list[str]:
        self.require_tenant(t)
        return sorted(self.r.smembers(keys.exts(t)), key=lambda n: (len(n), n))

    def get_extension(self, t: str, n: str):
        self.require_tenant(t)
        n = _ext_number(n)
        raw = self.r.hgetall(keys.ext(t, n))
        if not raw:
            raise NotFound(f"no extension {n} in tenant {t!r}")
        return codec.extension(keys.ext(t, n), n, raw, self.r.hgetall(keys.pins(t, n)))

    def put_extension(self, t: str, n: str, *, create: bool = False, pin_enabled: bool | None = None,
                      language: str | None = None, caller_ids: Iterable[str] | None = None,
                      display_name: str | None = None):
        settings = self.get_tenant(t)
        n = _ext_number(n)
        exists = bool(self.r.exists(keys.ext(t, n)))
        if create and exists:
            raise AlreadyExists(f"extension {n} already exists in tenant {t!r}")
        if not create and not exists:
            raise NotFound(f"no extension {n} in tenant {t!r} (add it with: tollgate ext add {t} {n})")
        before = self.r.hgetall(keys.ext(t, n))
        after = dict(before) or {"pin_enabled": "off", "language": "", "caller_ids": "", "display_name": ""}
        if pin_enabled is not None:
            if valid_flag("pin_enabled", pin_enabled) and not settings.pin_feature:
                raise InvalidInput(
                    f"tenant {t!r} does not have the PIN feature (the provider enables it: "
                    f"tollgate tenant set {t} pin_feature=on)")
            after["pin_enabled"] = "on" if pin_enabled else "off"
        if language is not None:
            if not isinstance(language, str) or language not in ("",) + LANGUAGES:
                raise InvalidInput(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
            after["language"] = language
        if display_name is not None:
            after["display_name"] = valid_text("name", display_name)
        old_ids = set(x for x in before.get("caller_ids", "").split(",") if x)
        if caller_ids is not None:
            try:
                new_ids = sorted({normalize_phone(x, settings.country)
                                  for x in valid_strings("caller_ids", caller_ids) if x.strip()})
            except ValueError as exc:
                raise InvalidInput(f"caller id: {exc}") from None
            after["caller_ids"] = ",".join(new_ids)
        new_ids_set = set(x for x in after["caller_ids"].split(",") if x)
        pipe = self.r.pipeline()
        pipe.hset(keys.ext(t, n), mapping=after)
        pipe.sadd(keys.exts(t), n)
        pipe.sadd(keys.phone_claims(t, n), n)
        for gone in old_ids - new_ids_set:
            pipe.srem(keys.phone_claims(t, gone), n)
        for added in new_ids_set - old_ids:
            pipe.sadd(keys.phone_claims(t, added), n)
        pipe.execute()
        self._refresh_ext_auth(t, n)
        self._log(t, "ext.create" if create else "ext.update", n, before=before or None, after=after)
        return self.get_extension(t, n)

    def delete_extension(self, t: str, n: str) -> None:
        ext = self.get_extension(t, n)
        pipe = self.r.pipeline()
        for cid in ext.caller_ids:
            pipe.srem(keys.phone_claims(t, cid), ext.number)
        pipe.srem(keys.phone_claims(t, ext.number), ext.number)
        for key in (keys.ext(t, ext.number), keys.pins(t, ext.number), keys.fails(t, ext.number),
                    keys.locked(t, ext.number), keys.ext_auth(t, ext.number)):
            pipe.delete(key)  # one key per DEL: Redis Cluster's pipelines take no more
        pipe.srem(keys.exts(t), ext.number)
        pipe.execute()
        self._log(t, "ext.delete", ext.number, before={"pin_holders": sorted(ext.pins)})

    def set_pin(self, t: str, n: str, holder: str, pin_hash: str) -> None:
        ext = self.get_extension(t, n)
        holder = _holder(holder)
        existed = holder in ext.pins
        self.r.hset(keys.pins(t, ext.number), holder, pin_hash)
        # A new PIN is the operator's answer to a lockout; the old failures no longer count.
        self.r.delete(keys.fails(t, ext.number))
        self._log(t, "pin.change" if existed else "pin.set", f"{ext.number}/{holder}")

    def set_pin_value(self, t: str, n: str, holder: str, pin: str, pepper: bytes) -> None:
        """Check a PIN against the tenant's lengths, hash it (salted, peppered) and set it.
        The digits go no further than the hash: not in the audit, not in an error."""
        settings = self.get_tenant(t)
        self.get_extension(t, n)
        try:
            validate_pin(pin, settings.pin_min_length, settings.pin_max_length)
        except PinFormatError as exc:
            raise InvalidInput(str(exc)) from None
        self.set_pin(t, n, holder, hash_pin(pin, pepper, min_length=settings.pin_min_length,
                                            max_length=settings.pin_max_length))

    def remove_pin(self, t: str, n: str, holder: str) -> None:
        ext = self.get_extension(t, n)
        if holder not in ext.pins:
            raise NotFound(f"extension {ext.number} has no PIN holder {holder!r}")
        self.r.hdel(keys.pins(t, ext.number), holder)
        self._log(t, "pin.remove", f"{ext.number}/{holder}")

    def unlock(self, t: str, n: str) -> bool:
        ext = self.get_extension(t, n)
        was = self.r.delete(keys.locked(t, ext.number), keys.fails(t, ext.number))
        self._log(t, "ext.unlock", ext.number, before={"locked_or_failures": bool(was)})
        return bool(was)

    # -- lists and entries ---------------------------------------------------
    def lists(self, t: str) -> dict[str, int]:
        self.require_tenant(t)
        names = sorted(self.r.smembers(keys.lists(t)))
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.scard(keys.list_members(t, name))
        return dict(zip(names, pipe.execute()))

    def create_list(self, t: str, name: str) -> None:
        self.require_tenant(t)
        valid_name("list", name)
        if not self.r.sadd(keys.lists(t), name):
            raise AlreadyExists(f"list {name!r} already exists in tenant {t!r}")
        self._log(t, "list.create", name)

    def delete_list(self, t: str, name: str, force: bool = False) -> None:
        self._require_list(t, name)
        phones = self.r.smembers(keys.list_members(t, name))
        if phones and not force:
            raise InvalidInput(f"list {name!r} has {len(phones)} entries (use --force to remove them too)")
        for phone in phones:
            self.remove_entry(t, name, phone)
        self.r.srem(keys.lists(t), name)
        self._log(t, "list.delete", name)

    def _require_list(self, t: str, name: str) -> None:
        self.require_tenant(t)
        valid_name("list", name)
        if not self.r.sismember(keys.lists(t), name):
            raise NotFound(f"no list {name!r} in tenant {t!r} (create it with: tollgate lists create {t} {name})")

    def normalize_entry_phone(self, t: str, phone: str) -> str:
        try:
            return normalize_phone(phone, self.get_tenant(t).country)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None

    def entries(self, t: str, name: str | None = None) -> list[dict[str, str]]:
        names = [name] if name else sorted(self.r.smembers(keys.lists(t)))
        if name:
            self._require_list(t, name)
        else:
            self.require_tenant(t)
        pipe = self.r.pipeline(transaction=False)
        for lst in names:
            for phone in sorted(self.r.smembers(keys.list_members(t, lst))):
                pipe.hgetall(keys.entry(t, lst, phone))
        return [row for row in pipe.execute() if row]

    def window(self, t: str, valid_from: str | None, valid_until: str | None) -> tuple[str, str]:
        """An entry's window from what an operator typed ('' or None: no bound),
        as entries keep it: ISO 8601 with the offset, in the tenant's zone."""
        settings = self.get_tenant(t)
        zone = zone_for(settings.timezone, settings.country)
        try:
            start = parse_instant(valid_from or "", zone)
            end = parse_instant(valid_until or "", zone, end=True)
        except ValueError as exc:
            raise InvalidInput(f"validity: {exc}") from None
        if start and end and start >= end:
            raise InvalidInput("validity: valid_from must come before valid_until")
        return iso(start, zone), iso(end, zone)

    def add_entry(self, t: str, name: str, first_name: str, last_name: str, phone: str,
                  state: str = "enabled", *, create_list: bool = False, valid_from: str = "",
                  valid_until: str = "") -> dict[str, str]:
        if create_list:
            self.require_tenant(t)
            valid_name("list", name)
            if self.r.sadd(keys.lists(t), name):
                self._log(t, "list.create", name)
        self._require_list(t, name)
        row = entry_row(name, first_name, last_name, self.normalize_entry_phone(t, phone), state,
                        *self.window(t, valid_from, valid_until))
        if self.r.exists(keys.entry(t, name, row["phone"])):
            raise AlreadyExists(f"{row['phone']} is already on list {name!r}")
        row["created"] = row["updated"] = _now()
        row["last_used"] = ""
        self._write_entry(t, row)
        self._log(t, "entry.add", f"{name}/{row['phone']}", after=row)
        return row

    def get_entry(self, t: str, name: str, phone: str) -> dict[str, str]:
        self._require_list(t, name)
        p = self.normalize_entry_phone(t, phone)
        row = self.r.hgetall(keys.entry(t, name, p))
        if not row:
            raise NotFound(f"{p} is not on list {name!r}")
        return row

    def update_entry(self, t: str, name: str, phone: str, **changes: str) -> dict[str, str]:
        before = self.get_entry(t, name, phone)
        merged = {**before, **{k: v for k, v in changes.items() if v is not None}}
        row = entry_row(name, merged["first_name"], merged["last_name"], before["phone"], merged["state"],
                        *self.window(t, merged.get("valid_from"), merged.get("valid_until")))
        row.update(created=before.get("created", ""), last_used=before.get("last_used", ""), updated=_now())
        self._write_entry(t, row)
        self._log(t, "entry.update", f"{name}/{row['phone']}", before=before, after=row)
        return row

    def remove_entry(self, t: str, name: str, phone: str) -> None:
        before = self.get_entry(t, name, phone)
        p = before["phone"]
        pipe = self.r.pipeline()
        stale = self._grants_of(t, p, name)
        pipe.delete(keys.entry(t, name, p))
        pipe.srem(keys.list_members(t, name), p)
        if stale:
            pipe.srem(keys.phone_auth(t, p), *stale)
        pipe.execute()
        self._refresh_claimants(t, p)
        self._log(t, "entry.remove", f"{name}/{p}", before=before)

    def _write_entry(self, t: str, row: dict[str, str]) -> None:
        name, p = row["list"], row["phone"]
        stale = self._grants_of(t, p, name)
        pipe = self.r.pipeline()
        pipe.hset(keys.entry(t, name, p), mapping=row)
        pipe.sadd(keys.list_members(t, name), p)
        if stale:
            pipe.srem(keys.phone_auth(t, p), *stale)
        if row["state"] == "enabled":
            # The window goes with the grant: a call reads it in its one round trip.
            grant = encode_grant(name, epoch(row.get("valid_from", "")), epoch(row.get("valid_until", "")))
            pipe.sadd(keys.phone_auth(t, p), grant)
        pipe.execute()
        self._refresh_claimants(t, p)

    def _grants_of(self, t: str, phone: str, name: str) -> list[str]:
        """The members of a phone's index that grant list `name` (with or without a window)."""
        return [m for m in self.r.smembers(keys.phone_auth(t, phone)) if decode_grant(m)[0] == name]

    def _refresh_claimants(self, t: str, phone: str) -> None:
        for n in self.r.smembers(keys.phone_claims(t, phone)):
            self._refresh_ext_auth(t, n)

    def _refresh_ext_auth(self, t: str, n: str) -> None:
        """Recompute `ext:<n>:auth` (list -> phone) from the extension's identities."""
        raw = self.r.hgetall(keys.ext(t, n))
        identities = [n] + [x for x in raw.get("caller_ids", "").split(",") if x]
        pipe = self.r.pipeline(transaction=False)
        for ident in identities:
            pipe.smembers(keys.phone_auth(t, ident))
        grants: dict[str, list[str]] = {}
        for ident, found in zip(identities, pipe.execute()):
            for lst, start, end in sorted(map(decode_grant, found)):
                grants.setdefault(lst, []).append(encode_grant(ident, start, end))
        # A grant without a window is all a call needs (the first identity's, as
        # before windows); else every timed one: the call picks one that holds.
        granted = {lst: next((g for g in found if "|" not in g), None) or ",".join(found)
                   for lst, found in grants.items()}
        tx = self.r.pipeline()
        tx.delete(keys.ext_auth(t, n))
        if granted:
            tx.hset(keys.ext_auth(t, n), mapping=granted)
        tx.execute()


def _holder(name: str) -> str:
    v = valid_text("PIN holder name", name, 64)
    if not v or any(ch in v for ch in "|$"):
        raise InvalidInput(f"invalid PIN holder name {name!r}: 1-64 characters, no '|' or '$'")
    return v


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
