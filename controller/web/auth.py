"""Who is asking: a browser session (Flask-Login over a server-side session
id from the store) or an API token (`Authorization: Bearer ...`), and what
they may see. A tenant an account may not see does not exist for it (404), so
that nobody learns another customer's names by probing."""

from __future__ import annotations

from flask import abort, current_app, g, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from controller.store.accounts import User


class Person(UserMixin):
    """Flask-Login's view of an account; its id is the session id, so that
    ending the session in Redis ends it everywhere at once."""

    def __init__(self, user: User, sid: str = "", token_id: str = ""):
        self.user, self.sid, self.token_id = user, sid, token_id

    def get_id(self) -> str:
        return self.sid


def init(app, store) -> LoginManager:
    lm = LoginManager(app)
    lm.login_view = "pages.login"
    lm.session_protection = "strong"  # a session cookie carried to another browser/address is dropped

    @lm.user_loader
    def load_session(sid: str):
        if request.path.startswith("/api/"):
            return None  # the API takes tokens only: a cookie there could be another site's doing
        user = store.accounts.session_user(sid)
        return Person(user, sid=sid) if user else None

    @lm.request_loader
    def load_token(req):
        header = req.headers.get("Authorization", "")
        if not req.path.startswith("/api/") or not header.startswith("Bearer "):
            return None
        found = store.accounts.token_user(header[7:].strip())
        return Person(found[0], token_id=found[1]) if found else None

    return lm


def sign_in(store, user: User) -> None:
    # A fresh Flask session (and CSRF secret) and a fresh session id: whatever
    # the browser carried before the login is worth nothing after it.
    session.clear()
    sid = store.accounts.open_session(user, ip=client_ip())
    login_user(Person(user, sid=sid))


def sign_out(store) -> None:
    if current_user.is_authenticated and current_user.sid:
        store.accounts.close_session(current_user.sid)
    logout_user()
    session.clear()


def me() -> User:
    return current_user.user


def actor() -> str:
    """How the audit names the person: web:<name>, or api:<name>/<token id>."""
    p = current_user
    return f"api:{p.user.name}/{p.token_id}" if p.token_id else f"web:{p.user.name}"


def tenant_or_404(tenant: str) -> str:
    if not me().may_see(tenant) or not current_app.config["STORE"].admin.tenant_exists(tenant):
        abort(404)
    return tenant


def provider_only() -> None:
    if not me().provider:
        abort(403, "only the service provider's staff may do this")


def client_ip() -> str:
    # With --trust-proxy, werkzeug's ProxyFix has already put the proxy's
    # X-Forwarded-For here; otherwise a client-set header is ignored.
    return request.remote_addr or "-"


def store_as_me():
    """The store whose changes the audit attributes to this person."""
    if "store" not in g:
        g.store = current_app.config["STORE"].acting(actor())
    return g.store
