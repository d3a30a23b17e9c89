"""The text log format: the same line as logging's own Formatter, made cheaper."""

import logging
import sys
import time

from hypothesis import given, strategies as st

from controller.ops.logs import TextFormatter


def reference() -> logging.Formatter:
    f = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    f.converter = time.gmtime
    return f


def record(created: float, msg: str, args: tuple, exc_info=None) -> logging.LogRecord:
    r = logging.LogRecord("tollgate.call", logging.INFO, __file__, 1, msg, args, exc_info)
    r.created, r.msecs = created, (created - int(created)) * 1000
    return r


@given(st.lists(st.floats(min_value=0, max_value=4e9, allow_nan=False), min_size=1, max_size=5),
       st.text(max_size=40).map(lambda s: s.replace("%", "%%")), st.sampled_from([(), ("x",), (1, "é")]))
def test_a_line_reads_as_logging_formatter_writes_it(times, text, args):
    ours, theirs = TextFormatter(), reference()  # one formatter through several seconds: its cache too
    msg = text + " %s" * len(args)
    for t in times:
        assert ours.format(record(t, msg, args)) == theirs.format(record(t, msg, args))


def test_a_traceback_follows_its_line_as_logging_writes_it():
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    ours = TextFormatter().format(record(1796640202.5, "failed %s", ("x",), info))
    assert ours == reference().format(record(1796640202.5, "failed %s", ("x",), info))
    assert ours.splitlines()[0].endswith("INFO tollgate.call failed x") and "ValueError: boom" in ours
