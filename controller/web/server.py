"""`tollgate web`: the Flask app under gevent's WSGI server.

The access log names method, path, status, size and time; never a body (PINs
and passwords travel only in POST bodies) and never a one-time login token
(its path is cut)."""

from __future__ import annotations

import logging
import re
import signal

import gevent
import gevent.signal
from gevent.event import Event
from gevent.pywsgi import WSGIHandler, WSGIServer

log = logging.getLogger("tollgate.web")
_SECRET_PATH = re.compile(r"(/login/once/)[^ ?]+")


class _Handler(WSGIHandler):
    def format_request(self):
        line = super().format_request()
        return _SECRET_PATH.sub(r"\1…", line)


class _AccessLog:
    def write(self, line: str) -> None:
        line = line.rstrip()
        if line:
            logging.getLogger("tollgate.web.access").info("%s", line)


def offload(fn, *args):
    """argon2 and the PIN hash on gevent's thread pool: the loop keeps serving."""
    return gevent.get_hub().threadpool.apply(fn, args)


def serve(app, host: str, port: int) -> WSGIServer:
    """Start serving in the background; returns the server (its .server_port is bound)."""
    app.config["STORE"].accounts.offload = offload
    server = WSGIServer((host, port), app, handler_class=_Handler, log=_AccessLog(), error_log=_AccessLog())
    server.start()
    log.info("web administration on http://%s:%d/", host, server.server_port)
    return server


def serve_until_signalled(server: WSGIServer, grace: float) -> None:
    """Block until SIGTERM or SIGINT, then let requests in flight finish (up to `grace` s)."""
    done = Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop(timeout=grace)
