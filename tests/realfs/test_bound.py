"""A controller that stops answering, or dies: FreeSWITCH itself ends its calls
within the dialplan's bound, in both modes (issue 31: socket mode had none):
park_timeout in inbound mode, a scheduled uuid_kill before the static socket
application in socket mode (issue 32: no park there)."""

from __future__ import annotations

import signal
import time

import gevent
import pytest

from tests.realfs import bed
from tests.realfs.calls import Script
from tests.realfs.conftest import ControllerProcess
from tests.rig import wait

# The dialplan's last-resort bound, shortened in this module's FreeSWITCH (the
# same park_timeout, 180 s in freeswitch-conf/) so that a test can wait for it.
BOUND = 12


@pytest.fixture(scope="module", params=["inbound", "socket"])
def freeswitch(request, tmp_path_factory):
    fs = bed.FreeSwitch(tmp_path_factory.mktemp(f"fs-faults-{request.param}"), request.param)
    fs.configure()
    path = fs.conf / "dialplan" / "default" / "90_tollgate.xml"
    text = path.read_text()
    # inbound: park_timeout; socket (a static session, no park): a scheduled uuid_kill
    bound = "park_timeout=180:" if request.param == "inbound" else "sched_api(+180 "
    assert text.count(bound) == 1
    path.write_text(text.replace(bound, bound.replace("180", str(BOUND))))
    fs.start()
    yield fs
    fs.stop()



@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_controller_that_stops_answering_leaves_freeswitch_its_bound(
        freeswitch, realfs_redis, store, phones, tmp_path, how):
    """Stopped (SIGSTOP: it accepts nothing more, answers nothing) or killed mid-call:
    FreeSWITCH ends the calls within the dialplan's bound, in both modes."""
    ctl = ControllerProcess(freeswitch, realfs_redis.url, tmp_path, f"ctl-{how}").start()
    try:
        prompted = phones.place("1003", "0140000000", Script(keys=[]))  # never keys: stays in the prompt
        wait(lambda: prompted.prompts >= 1, timeout=15, message="the prompt")
        ctl.signal(signal.SIGSTOP)
        t0 = time.monotonic()
        late = phones.place("1002", "0140000000")  # parks, or its socket connects to a stopped process
        gevent.sleep(1.0)
        if how == "killed":
            ctl.signal(signal.SIGKILL)
        calls = [prompted, late]
        # The socket's wait for `connect` (25 s in mod_event_socket) and then the bound.
        assert phones.wait_all(calls, timeout=BOUND + 25 + 20), [c.cause for c in calls]
        took = time.monotonic() - t0
    finally:
        ctl.signal(signal.SIGCONT)
        ctl.stop()
    print(f"\n[{freeswitch.mode}] controller {how}: prompt call -> {prompted.cause}, new call -> {late.cause} "
          f"after {took:.1f}s (bound {BOUND}s)")
    assert late.carrier_got is None and late.cause in ("RECOVERY_ON_TIMER_EXPIRE", "NORMAL_TEMPORARY_FAILURE")
    assert prompted.carrier_got is None
    assert phones.wait_no_channels(2.0) is not None
