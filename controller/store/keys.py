"""The Redis key schema (SPEC §5). No other module spells a key.

Every key of a tenant carries the tenant in a hash tag, `tg:{acme}:...`, so
Redis Cluster keeps a tenant on one slot and one pipeline can read all of it.
`tg:schema` holds the schema version. Values are hashes, sets, lists of JSON
objects and streams: all readable with redis-cli.
"""

from __future__ import annotations

SCHEMA_VERSION = "1"
SCHEMA_KEY = "tg:schema"
TENANTS = "tg:tenants"  # set of tenant names (global index for listing)


def _t(tenant: str) -> str:
    return f"tg:{{{tenant}}}"


def tenant(t: str) -> str:
    return f"{_t(t)}:tenant"  # hash: settings


def exts(t: str) -> str:
    return f"{_t(t)}:exts"  # set: extension numbers


def ext(t: str, n: str) -> str:
    return f"{_t(t)}:ext:{n}"  # hash: pin_enabled, language, caller_ids, display_name


def pins(t: str, n: str) -> str:
    return f"{_t(t)}:ext:{n}:pins"  # hash: holder -> salted, peppered hash


def fails(t: str, n: str) -> str:
    return f"{_t(t)}:ext:{n}:fails"  # counter of consecutive failed PINs, with TTL


def locked(t: str, n: str) -> str:
    return f"{_t(t)}:ext:{n}:locked"  # present (with TTL) while locked out


def ext_auth(t: str, n: str) -> str:
    # hash: list -> phone. Derived: the lists this extension is enabled on
    # through its own number or its caller IDs, kept current on every write so
    # that a call reads it in the same round trip as everything else.
    return f"{_t(t)}:ext:{n}:auth"


def lists(t: str) -> str:
    return f"{_t(t)}:lists"  # set: list names


def list_members(t: str, name: str) -> str:
    return f"{_t(t)}:list:{name}"  # set: phones on the list


def entry(t: str, name: str, phone: str) -> str:
    return f"{_t(t)}:entry:{name}:{phone}"  # hash: first_name, last_name, phone, state, ...


def phone_auth(t: str, phone: str) -> str:
    return f"{_t(t)}:auth:{phone}"  # set: lists on which this phone is enabled


def phone_claims(t: str, phone: str) -> str:
    return f"{_t(t)}:claims:{phone}"  # set: extensions identified by this phone


def rules(t: str) -> str:
    return f"{_t(t)}:rules"  # list of JSON rule objects, in evaluation order


def limits(t: str) -> str:
    return f"{_t(t)}:limits"  # list of JSON limit objects (velocity, duration)


def rate(t: str, limit: str, subject: str) -> str:
    # hash: calls of a velocity or alert limit per time bucket (bucket index ->
    # calls), with `n` their sum, `lo` the oldest bucket and `hi` the newest
    # (store.counting)
    return f"{_t(t)}:rate:{limit}:{subject}"


def concurrency(t: str, limit: str, subject: str) -> str:
    # hash: call uuid -> when its place lapses (epoch seconds); `conc:` held
    # a sorted set before (a listpack one cost Redis 15 us per ZADD, ZCOUNT)
    return f"{_t(t)}:place:{limit}:{subject}"


def budget_prefix(t: str) -> str:
    # + "<limit>:<subject>:<YYYY-MM-DD>": billed seconds of that day (tenant's zone)
    return f"{_t(t)}:budget:"


def budget(t: str, limit: str, subject: str, day: str) -> str:
    return f"{budget_prefix(t)}{limit}:{subject}:{day}"


def suspended(t: str) -> str:
    return f"{_t(t)}:suspended"  # hash while the tenant's chargeable calls are suspended: reason, since, alert


def alerts(t: str) -> str:
    return f"{_t(t)}:alerts"  # stream: alerts raised (threshold crossed, lockouts), capped


def alert_raised(t: str, name: str) -> str:
    return f"{_t(t)}:alert:{name}"  # string with TTL: raised once per window


def lockouts(t: str) -> str:
    return f"{_t(t)}:lockouts"  # sorted set: extension lockouts scored by time


def overrides(t: str) -> str:
    return f"{_t(t)}:overrides"  # hash: E.164 prefix -> class


def audit(t: str) -> str:
    return f"{_t(t)}:audit"  # stream


def call(t: str, uuid: str) -> str:
    return f"{_t(t)}:call:{uuid}"  # hash with TTL: a call in progress


def claim(t: str, uuid: str) -> str:
    return f"{_t(t)}:claim:{uuid}"  # string with TTL: which controller owns the call


def verdict(t: str, uuid: str) -> str:
    # hash with TTL: the verdict a controller recorded and is carrying out. A
    # survivor that takes the call over carries out this one instead of
    # deciding (and auditing) again.
    return f"{_t(t)}:verdict:{uuid}"


CALL_PATTERN = "tg:{*}:call:*"


def controller(controller_id: str) -> str:
    return f"tg:controller:{controller_id}"  # string with a short TTL: the controller is alive


def tenant_pattern(t: str) -> str:
    return f"{_t(t)}:*"


def call_uuid_of(key: str) -> str:
    """The uuid of a call-in-progress key (`call(t, uuid)`)."""
    return key.rsplit(":call:", 1)[1]


def tenant_of(key: str) -> str:
    start, end = key.index("{") + 1, key.index("}")
    return key[start:end]


# -- web administration: people, their sessions and tokens (global, not per tenant)
WEB_USERS = "tg:web:users"  # set: account names
WEB_LOG = "tg:web:log"  # stream: logins, sessions, tokens, accounts; capped
WEB_REFUSED = "tg:web:refused"  # stream: failed and throttled logins (anyone can cause them); capped apart


def web_user(name: str) -> str:
    return f"tg:web:user:{name}"  # hash: role, tenant, password (argon2), created


def web_tokens(name: str) -> str:
    return f"tg:web:user:{name}:tokens"  # hash: token id -> digest


def web_token(digest: str) -> str:
    return f"tg:web:token:{digest}"  # hash: user, id, label, created (the token itself is never stored)


def web_session(digest: str) -> str:
    return f"tg:web:session:{digest}"  # hash with TTL: user, created, ip


def web_sessions(name: str) -> str:
    return f"tg:web:user:{name}:sessions"  # set: session digests (to end them all at once)


def web_once(digest: str) -> str:
    return f"tg:web:once:{digest}"  # string with TTL: a one-time login link's account


def web_throttle(kind: str, subject: str) -> str:
    return f"tg:web:throttle:{kind}:{subject}"  # counter with TTL: login attempts (or refusals) in the window
