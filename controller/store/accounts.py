"""People who administer Tollgate from the web: accounts, browser sessions,
API tokens, one-time login links, and the throttling of failed logins.

Two roles. `provider`: the service provider's staff, every tenant, and the only
ones who change the provider's settings (PROVIDER_SETTINGS: the PIN feature of
seed 001, and where calls are routed and whom they trust). `admin`: a
customer's administrator, their own tenant only.

Passwords are argon2id hashes (argon2-cffi). Session ids, tokens and login
links are 256-bit random strings handed to the person once; Redis keeps only
their SHA-256 (a stolen dump opens nothing). Every login and every account or
token change goes to the `tg:web:log` stream, and to the tenant's audit when
the account belongs to a tenant. Refused logins, which anyone can cause, go to
`tg:web:refused` only (capped on its own; throttled ones counted per address).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Callable

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from controller.errors import AlreadyExists, InvalidInput, NotFound
from controller.store import keys
from controller.store.checks import valid_name, valid_text

ROLES = ("provider", "admin")
PROVIDER_SETTINGS = frozenset({"pin_feature", "route", "internal_route", "gateway", "trusted_sources"})
PASSWORD_MIN = 10
SESSION_TTL = 8 * 3600  # idle seconds before a browser session ends
ONCE_TTL = 3600
LOG_MAXLEN = 100_000
REFUSED_MAXLEN = 20_000  # failed and throttled logins (tg:web:refused)
# Failed logins in THROTTLE_WINDOW seconds before refusing without checking the
# password: per account and address (a guesser), per address (a sprayer). No
# limit per account alone: a stranger could then lock the real person out.
THROTTLE_WINDOW = 900
THROTTLE_ACCOUNT_IP = 5
THROTTLE_IP = 50

_hasher = PasswordHasher()  # argon2id, the library's current parameters
# Checked when the account does not exist, so both cases cost the same time.
_DUMMY = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    tenant: str = ""

    @property
    def provider(self) -> bool:
        return self.role == "provider"

    def may_see(self, tenant: str) -> bool:
        return self.provider or tenant == self.tenant

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role, "tenant": self.tenant or None}


class LoginRefused(Exception):
    """`throttled` is true when the password was not even checked."""

    def __init__(self, message: str, throttled: bool = False):
        super().__init__(message)
        self.throttled = throttled


def _entry(event: str, actor: str, tenant: str, fields: dict) -> dict[str, str]:
    return {"ts": f"{time.time():.3f}", "event": event, "actor": actor, "tenant": tenant,
            **{k: str(v) for k, v in fields.items() if v is not None}}


def _verify(stored: str, password: str) -> bool:
    """Run on the thread pool, where an exception is printed with its traceback
    before it is handed back (a wrong password is one): a bool instead."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN or len(password) > 256:
        raise InvalidInput(f"a password needs {PASSWORD_MIN} to 256 characters")
    return password


class Accounts:
    def __init__(self, r: redis.Redis, audit, offload: Callable | None = None):
        self.r = r
        self.audit = audit
        # argon2 takes tens of milliseconds of CPU: the web server runs it on a
        # thread (argon2-cffi releases the GIL) so the event loop keeps serving.
        self.offload = offload or (lambda fn, *a: fn(*a))

    # -- the log ---------------------------------------------------------------
    def log(self, event: str, actor: str, tenant: str = "", **fields) -> None:
        """What someone signed in (or the CLI) did: the web log and the tenant's audit."""
        self.r.xadd(keys.WEB_LOG, _entry(event, actor, tenant, fields), maxlen=LOG_MAXLEN, approximate=True)
        if tenant and self.r.sismember(keys.TENANTS, tenant):
            self.audit.append("access", tenant, actor=actor, action=event,
                              object=fields.get("user", ""), detail=fields.get("detail"), ip=fields.get("ip"))

    def log_refusal(self, event: str, actor: str, tenant: str = "", **fields) -> None:
        """A refused login: anyone can cause one, so it goes to a stream of its
        own with its own cap, never to the tenant's audit, whose verdicts and
        changes a flood of them would otherwise push out."""
        self.r.xadd(keys.WEB_REFUSED, _entry(event, actor, tenant, fields), maxlen=REFUSED_MAXLEN,
                    approximate=True)

    def read_log(self, count: int = 200, tenant: str | None = None) -> list[dict]:
        """Both logs, newest first (of a tenant: its accounts' entries only)."""
        rows = []
        for stream in (keys.WEB_LOG, keys.WEB_REFUSED):
            for entry_id, f in self.r.xrevrange(stream, count=count * (5 if tenant else 1)):
                if tenant is None or f.get("tenant") == tenant:
                    rows.append({"id": entry_id, **f})
        rows.sort(key=lambda row: tuple(int(x) for x in row["id"].split("-")), reverse=True)
        return rows[:count]

    # -- accounts --------------------------------------------------------------
    def users(self) -> list[User]:
        return [u for u in (self.get(n) for n in sorted(self.r.smembers(keys.WEB_USERS))) if u]

    def get(self, name: str) -> User | None:
        raw = self.r.hgetall(keys.web_user(name)) if name else {}
        if not raw or raw.get("role") not in ROLES:
            return None
        return User(name=name, role=raw["role"], tenant=raw.get("tenant", ""))

    def add(self, name: str, role: str, tenant: str, password: str, *, actor: str) -> User:
        valid_name("user", name)
        if role not in ROLES:
            raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
        if role == "admin" and not self.r.sismember(keys.TENANTS, tenant or ""):
            raise InvalidInput(f"an admin needs an existing tenant (no tenant {tenant!r})")
        if role == "provider":
            tenant = ""
        check_password(password)
        if not self.r.hsetnx(keys.web_user(name), "role", role):
            raise AlreadyExists(f"user {name!r} already exists")
        self.r.hset(keys.web_user(name), mapping={"tenant": tenant, "password": self.offload(_hasher.hash, password),
                                                   "created": f"{time.time():.0f}"})
        self.r.sadd(keys.WEB_USERS, name)
        self.log("user.add", actor, tenant, user=name, detail=role)
        return User(name, role, tenant)

    def require(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    def set_password(self, name: str, password: str, *, actor: str, keep_tokens: bool = False) -> int:
        """A new password ends every browser session and, unless `keep_tokens`,
        revokes every API token: a password is changed when someone else may
        know it, and whoever knew it could have made tokens. A routine change
        keeps a script's tokens with keep_tokens. Returns the tokens revoked."""
        user = self.require(name)
        check_password(password)
        self.r.hset(keys.web_user(name), "password", self.offload(_hasher.hash, password))
        self.end_sessions(name)
        token_ids = [] if keep_tokens else sorted(self.r.hkeys(keys.web_tokens(name)))
        for token_id in token_ids:
            self.revoke_token(name, token_id, actor=actor)
        kept = self.r.hlen(keys.web_tokens(name))
        self.log("user.password", actor, user.tenant, user=name,
                 detail=f"{len(token_ids)} API tokens revoked, {kept} kept")
        return len(token_ids)

    def remove(self, name: str, *, actor: str) -> None:
        user = self.require(name)
        self.end_sessions(name)
        for token_id in list(self.r.hkeys(keys.web_tokens(name))):
            self.revoke_token(name, token_id, actor=actor)
        self.r.delete(keys.web_user(name), keys.web_tokens(name))
        self.r.srem(keys.WEB_USERS, name)
        self.log("user.remove", actor, user.tenant, user=name)

    # -- logins ----------------------------------------------------------------
    def authenticate(self, name: str, password: str, ip: str) -> User:
        """The account, or LoginRefused; every outcome is logged."""
        name = (name or "").strip()[:64]
        pair, addr = keys.web_throttle("pair", f"{name}|{ip}"), keys.web_throttle("ip", ip)
        # The attempt is counted before its password is checked, and given back
        # unless it failed: counted after argon2 (tens of ms on a thread), 100
        # parallel logins had 62 passwords checked before the first count landed.
        # So a count is of failures and of checks under way, never of refusals
        # (a flood must not shut out the other people behind the same address).
        n_pair, n_addr = self._take(pair, addr)
        raw = self.r.hgetall(keys.web_user(name)) if name else {}
        tenant = raw.get("tenant", "")
        if n_pair > THROTTLE_ACCOUNT_IP or n_addr > THROTTLE_IP:
            self._give_back(pair, addr)
            self._throttled(name, tenant, ip)
            raise LoginRefused("too many failed logins from this address: wait a few minutes", throttled=True)
        stored = raw.get("password") or _DUMMY
        ok = self.offload(_verify, stored, password or "") and raw.get("role") in ROLES
        if not ok:
            self.log_refusal("login.failed", name or "-", tenant, user=name, ip=ip)
            raise LoginRefused("wrong user name or password")
        self._give_back(addr)
        self.r.delete(pair)  # this person's earlier mistakes from this address are forgiven
        if _hasher.check_needs_rehash(stored):
            self.r.hset(keys.web_user(name), "password", self.offload(_hasher.hash, password))
        user = User(name, raw["role"], tenant)
        self.log("login.ok", name, tenant, user=name, ip=ip)
        return user

    def _take(self, *counters: str) -> list[int]:
        """Each counter one more, expiring THROTTLE_WINDOW after its first count.
        One INCR each (atomic), no transaction: on Redis Cluster they are on
        different slots."""
        pipe = self.r.pipeline(transaction=False)
        for key in counters:
            pipe.incr(key)
            pipe.expire(key, THROTTLE_WINDOW, nx=True)
        return pipe.execute()[::2]

    def _give_back(self, *counters: str) -> None:
        pipe = self.r.pipeline(transaction=False)
        for key in counters:
            pipe.decr(key)
        pipe.execute()

    def _throttled(self, name: str, tenant: str, ip: str) -> None:
        """Counted per address and window; logged at the 1st, 10th, 100th...
        refusal with the count so far, so that a flood leaves a few lines."""
        (n,) = self._take(keys.web_throttle("refused", ip))
        if str(n).rstrip("0") == "1":
            self.log_refusal("login.throttled", name or "-", tenant, user=name, ip=ip, count=n)

    def open_session(self, user: User, ip: str = "") -> str:
        """A new session id for a person who just proved who they are (never
        one the browser brought: that would let a planted id ride the login)."""
        sid = secrets.token_urlsafe(32)
        d = digest(sid)
        pipe = self.r.pipeline()
        pipe.hset(keys.web_session(d), mapping={"user": user.name, "created": f"{time.time():.0f}", "ip": ip})
        pipe.expire(keys.web_session(d), SESSION_TTL)
        pipe.sadd(keys.web_sessions(user.name), d)
        pipe.execute()
        return sid

    def session_user(self, sid: str) -> User | None:
        if not sid or len(sid) > 128:
            return None
        d = digest(sid)
        name = self.r.hget(keys.web_session(d), "user")
        user = self.get(name) if name else None
        if user is None:
            return None
        self.r.expire(keys.web_session(d), SESSION_TTL)  # idle timeout, renewed by use
        return user

    def close_session(self, sid: str) -> None:
        d = digest(sid or "")
        name = self.r.hget(keys.web_session(d), "user")
        self.r.delete(keys.web_session(d))
        if name:
            self.r.srem(keys.web_sessions(name), d)
            self.log("logout", name, (self.get(name) or User(name, "admin")).tenant, user=name)

    def end_sessions(self, name: str) -> None:
        for d in self.r.smembers(keys.web_sessions(name)):
            self.r.delete(keys.web_session(d))
        self.r.delete(keys.web_sessions(name))

    def once_link(self, name: str, *, actor: str, ttl: int = ONCE_TTL) -> str:
        user = self.require(name)
        token = secrets.token_urlsafe(32)
        self.r.set(keys.web_once(digest(token)), name, ex=ttl)
        self.log("once.create", actor, user.tenant, user=name)
        return token

    def redeem_once(self, token: str, ip: str) -> User | None:
        if not token or len(token) > 128:
            return None
        name = self.r.getdel(keys.web_once(digest(token)))
        user = self.get(name) if name else None
        if user:
            self.log("login.once", name, user.tenant, user=name, ip=ip)
        return user

    # -- API tokens ------------------------------------------------------------
    def create_token(self, name: str, label: str, *, actor: str) -> tuple[str, str]:
        """(token id, token): the token is shown once and never stored."""
        user = self.require(name)
        label = valid_text("label", label or "", 64) or "token"
        token_id, token = secrets.token_hex(4), "tg_" + secrets.token_urlsafe(32)
        d = digest(token)
        pipe = self.r.pipeline()
        pipe.hset(keys.web_token(d), mapping={"user": name, "id": token_id, "label": label,
                                              "created": f"{time.time():.0f}"})
        pipe.hset(keys.web_tokens(name), token_id, d)
        pipe.execute()
        self.log("token.create", actor, user.tenant, user=name, detail=f"{token_id} {label}")
        return token_id, token

    def tokens(self, name: str) -> list[dict]:
        self.require(name)
        out = []
        for token_id, d in sorted(self.r.hgetall(keys.web_tokens(name)).items()):
            raw = self.r.hgetall(keys.web_token(d))
            out.append({"id": token_id, "label": raw.get("label", ""), "created": raw.get("created", ""),
                        "last_used": raw.get("last_used", "")})
        return out

    def revoke_token(self, name: str, token_id: str, *, actor: str) -> None:
        user = self.require(name)
        d = self.r.hget(keys.web_tokens(name), token_id)
        if not d:
            raise NotFound(f"user {name!r} has no token {token_id!r}")
        self.r.delete(keys.web_token(d))
        self.r.hdel(keys.web_tokens(name), token_id)
        self.log("token.revoke", actor, user.tenant, user=name, detail=token_id)

    def token_user(self, token: str) -> tuple[User, str] | None:
        if not token or len(token) > 128:
            return None
        d = digest(token)
        raw = self.r.hgetall(keys.web_token(d))
        user = self.get(raw.get("user", "")) if raw else None
        if user is None:
            return None
        self.r.hset(keys.web_token(d), "last_used", f"{time.time():.0f}")
        return user, raw.get("id", "")


def check_settings_allowed(user: User, changes: dict) -> None:
    """A tenant's administrator may not touch the provider's settings."""
    if user.provider:
        return
    barred = sorted(set(changes) & PROVIDER_SETTINGS)
    if barred:
        raise PermissionError(f"only the service provider may change {', '.join(barred)}")
