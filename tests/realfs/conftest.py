"""The real-FreeSWITCH tier: runs where a FreeSWITCH 1.10 binary is found (PATH,
or TOLLGATE_FREESWITCH naming it; its stock configuration under
PREFIX/etc/freeswitch or TOLLGATE_FREESWITCH_CONF), skipped elsewhere with the
reason. Each test module gets one FreeSWITCH per mode, a real redis-server
(tests/conftest.py) and the real controller (`python -m controller run`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.store import Store
from policies.pin import hash_pin
from tests.realfs import bed
from tests.realfs.calls import Phones
from tests.rig import stop_processes

PEPPER = b"realfs-pepper-0123456789abcdef-01"
# 8 digits: a PIN that shows up in a CDR cannot be a coincidence of a timestamp.
PINS = {"1003": [("Anna", "24681357"), ("Ben", "13572468")], "1004": [("Hall", "86420975")]}
WRONG = ["11111111", "99999999", "12341234"]

_REASON = bed.why_not_runnable()


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.realfs)
            if _REASON:
                item.add_marker(pytest.mark.skip(reason=f"real-FreeSWITCH tier: {_REASON}"))


def pytest_report_header(config):
    if _REASON:
        return f"real-FreeSWITCH tier: skipped ({_REASON})"
    binary = bed.find_binary()
    return f"real-FreeSWITCH tier: {binary} {bed.version(binary)}"


def provision(store: Store) -> None:
    """The demo's tenant (controller.demo: the two seed documents), with longer PINs
    and the bed's carrier as the gateway."""
    a = store.admin
    a.create_tenant(bed.TENANT, {"country": "FR", "pin_feature": "on", "language": "fr", "gateway": "carrier"})
    for n, name in (("1001", "Élise Dupont"), ("1002", "Karl Weber"), ("1003", "Accueil (partagé)"),
                    ("1004", "Hall")):
        a.put_extension(bed.TENANT, n, create=True, display_name=name)
    a.create_list(bed.TENANT, "direction")
    a.create_list(bed.TENANT, "ventes")
    a.add_entry(bed.TENANT, "direction", "Élise", "Dupont", "1001")
    a.add_entry(bed.TENANT, "ventes", "Karl", "Weber", "1002")
    a.add_rule(bed.TENANT, "premium-international", "allow", classes=["premium", "international"],
               lists=["direction"])
    for ext, holders in PINS.items():
        a.put_extension(bed.TENANT, ext, pin_enabled=True)
        for holder, pin in holders:
            a.set_pin(bed.TENANT, ext, holder, hash_pin(pin, PEPPER))


class ControllerProcess:
    """`python -m controller run` against the bed, as an operator starts it."""

    def __init__(self, fs: bed.FreeSwitch, redis_url: str, workdir: Path, name: str = "realfs", *extra: str):
        self.fs, self.redis_url, self.name, self.extra = fs, redis_url, name, extra
        self.log_path = workdir / f"controller-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ControllerProcess":
        pepper = self.log_path.with_suffix(".pepper")
        pepper.write_bytes(PEPPER)
        env = {**os.environ, "TOLLGATE_REDIS_URL": self.redis_url, "TOLLGATE_PEPPER_FILE": str(pepper),
               # its audit spool file, kept across a restart under the same name
               "TOLLGATE_STATE_DIR": str(self.log_path.parent / "state"), "PYTHONUNBUFFERED": "1"}
        mode_args = (["--mode", "socket", "--listen", f"127.0.0.1:{self.fs.ports.socket}"]
                     if self.fs.mode == "socket" else
                     ["--esl-port", str(self.fs.ports.esl), "--esl-password", self.fs.esl_password])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "controller", "run", *mode_args, "--controller-id", self.name,
                 "--sound-root", str(bed.ROOT / "prompts"), "--log-level", "debug", *self.extra],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while "started in" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"controller did not start: {self.log()[-2000:]}")
            time.sleep(0.1)
        if self.fs.mode == "inbound":
            # Subscribed: the filter reply follows the connection.
            while "Event Socket connected to" not in self.log():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"controller did not connect: {self.log()[-2000:]}")
                time.sleep(0.1)
            time.sleep(0.3)  # its subscription and filter follow the connection

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc:
            stop_processes([self.proc])


@pytest.fixture(scope="module", params=["inbound", "socket"])
def freeswitch(request, tmp_path_factory):
    fs = bed.FreeSwitch(tmp_path_factory.mktemp(f"fs-{request.param}"), request.param)
    fs.configure()
    fs.start()
    yield fs
    fs.stop()


@pytest.fixture(scope="module")
def realfs_redis():
    from controller.testing import RedisServer

    server = RedisServer(durable=True)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def store(realfs_redis):
    if realfs_redis.proc.poll() is not None:
        realfs_redis.start()
    s = Store.open(realfs_redis.url, actor="realfs")
    s.r.flushall()
    provision(s)
    return s


@pytest.fixture
def phones(freeswitch):
    p = Phones(freeswitch, secrets=tuple(pin for holders in PINS.values() for _, pin in holders) + tuple(WRONG))
    yield p
    p.close()


@pytest.fixture
def controller(freeswitch, realfs_redis, store, tmp_path):
    ctl = ControllerProcess(freeswitch, realfs_redis.url, tmp_path).start()
    yield ctl
    ctl.stop()
