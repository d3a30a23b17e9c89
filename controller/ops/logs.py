"""Log setup: text for people, one JSON object per line for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": f"{record.created:.3f}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call = getattr(record, "call", None)
        if call:
            out["call"] = call
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`%(asctime)s %(levelname)s %(name)s %(message)s` in UTC, as logging's own
    Formatter writes it, with the date text made once a second: the call's log
    line is a tenth of the controller's CPU per call on the real switch, and
    strftime and the %-style template were a third of that line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.converter = time.gmtime
        self._second = -1
        self._date = ""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.stack_info:
            return super().format(record)  # the traceback's text, as logging writes it
        second = int(record.created)
        if second != self._second:
            self._date = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._date},{int(record.msecs):03d} {record.levelname} {record.name} {record.getMessage()}"


def setup(level: str = "info", fmt: str = "text", stream=None) -> None:
    # Neither format shows the thread or the process. Under gevent every call is
    # a greenlet that logging takes for a new thread: each record built a
    # threading._DummyThread to name it, a seventh of the controller's CPU per
    # call on the real switch (py-spy, benchmarks.realfs at 10 calls/s).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Nor the source file and line: without _srcfile logging skips findCaller's
    # walk up the stack for every record.
    logging._srcfile = None
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
