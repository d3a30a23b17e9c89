"""A real FreeSWITCH 1.10 test bed on loopback (shared/REALFS.md's design).

FreeSWITCH's own stock configuration (the `conf/vanilla` its `make install`
puts under PREFIX/etc/freeswitch) is copied, its module list cut to the
modules this build has, and Tollgate's files from freeswitch-conf/ installed
into it exactly as freeswitch-conf/README.md tells an operator. Test-only
parts are added beside them, never in place of them:
- vars.xml: everything on 127.0.0.1 (no STUN lookup, no host address), the
  directory domain `acme` (the tenant), a non-default password, free ports;
- a `phones` SIP profile with one gateway per extension: a call sent through
  it is challenged by the stock `internal` profile and answers with digest
  auth, so the PBX leg carries sip_authorized/user_name as a real phone's;
- a `carrier` SIP profile and context: sets carrier_got, answers, hangs up;
  the stock `external` profile holds the gateway `carrier` that points at it;
- the operator's own routing for users outside the stock 1000-1019
  (default/95_tenant_users.xml) and two such users, 4101 and 4102.

Nothing here builds FreeSWITCH: the binary is found on PATH or named by
TOLLGATE_FREESWITCH.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import gevent

from controller.freeswitch.esl import InboundConnection
from tests.conftest import free_port
from tests.rig import stop_processes

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "freeswitch-conf"
TENANT = "acme"
# What Tollgate's tier needs, and what the stock configuration may load besides.
NEEDED = {"mod_sofia", "mod_event_socket", "mod_dptools", "mod_commands", "mod_dialplan_xml", "mod_hash", "mod_voicemail",
          "mod_sndfile", "mod_tone_stream", "mod_loopback"}
WATCHED = ("CHANNEL_CREATE", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_BRIDGE", "CHANNEL_HANGUP",
           "CHANNEL_HANGUP_COMPLETE", "CHANNEL_PARK", "CHANNEL_ANSWER")


def find_binary() -> str | None:
    named = os.environ.get("TOLLGATE_FREESWITCH")
    if named:
        return named if os.access(named, os.X_OK) else None
    return shutil.which("freeswitch")


def version(binary: str) -> str:
    out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=20).stdout
    m = re.search(r"version:\s*(\S+)", out)
    return m.group(1) if m else out.strip()[:60]


def prefix_of(binary: str) -> Path:
    return Path(os.path.realpath(binary)).parent.parent


def stock_conf(binary: str) -> Path:
    return Path(os.environ.get("TOLLGATE_FREESWITCH_CONF") or prefix_of(binary) / "etc" / "freeswitch")


def mod_dir(binary: str) -> Path:
    return Path(os.environ.get("TOLLGATE_FREESWITCH_MODDIR") or prefix_of(binary) / "lib" / "freeswitch" / "mod")


def why_not_runnable() -> str | None:
    """None when the tier can run here, else the reason it is skipped."""
    binary = find_binary()
    if not binary:
        return "no FreeSWITCH binary (PATH or TOLLGATE_FREESWITCH)"
    if not version(binary).startswith("1.10"):
        return f"FreeSWITCH {version(binary)} is not 1.10"
    if not (stock_conf(binary) / "vars.xml").is_file():
        return f"no stock configuration at {stock_conf(binary)} (TOLLGATE_FREESWITCH_CONF)"
    missing = sorted(m for m in NEEDED if not (mod_dir(binary) / f"{m}.so").is_file())
    if missing:
        return f"FreeSWITCH lacks {', '.join(missing)} in {mod_dir(binary)}"
    return None


@dataclass
class Ports:
    esl: int = field(default_factory=free_port)
    internal: int = field(default_factory=free_port)
    external: int = field(default_factory=free_port)
    phones: int = field(default_factory=free_port)
    carrier: int = field(default_factory=free_port)
    socket: int = field(default_factory=free_port)


PHONES = ("1001", "1002", "1003", "1004", "1005", "4101")


def _include(path: Path, body: str) -> None:
    """A file FreeSWITCH's X-PRE-PROCESS include takes: its preprocessor reads
    line by line and drops every line that holds <include> or </include>, so
    they stand on lines of their own."""
    path.write_text(f"<include>\n{body}\n</include>\n")


class FreeSwitch:
    """One FreeSWITCH process with the stock configuration plus Tollgate's files."""

    def __init__(self, workdir: Path, mode: str):
        self.binary = find_binary()
        self.mode = mode
        self.dir = workdir
        self.conf = workdir / "conf"
        self.ports = Ports()
        self.esl_password = "tg-" + secrets.token_hex(8)
        self.user_password = "pw-" + secrets.token_hex(6)
        self.proc: subprocess.Popen | None = None
        self.modules: list[str] = []

    # -- configuration ------------------------------------------------------------
    def configure(self) -> None:
        shutil.copytree(stock_conf(self.binary), self.conf)
        for sub in ("log", "db", "run", "recordings", "storage", "sounds"):
            (self.dir / sub).mkdir(exist_ok=True)
        self._vars()
        self._modules()
        self._switch_conf()
        self._tollgate_files()
        self._sip_profiles()
        self._test_dialplan()
        self._users()

    def _vars(self) -> None:
        path = self.conf / "vars.xml"
        s = path.read_text()
        p = self.ports
        s = re.sub(r'<X-PRE-PROCESS cmd="stun-set" data="(external_(?:rtp|sip)_ip)=[^"]*"/>',
                   r'<X-PRE-PROCESS cmd="set" data="\1=127.0.0.1"/>', s)
        for name, value in (("default_password", self.user_password), ("domain", TENANT),
                            ("internal_sip_port", p.internal), ("external_sip_port", p.external),
                            ("global_codec_prefs", "PCMU,PCMA"), ("outbound_codec_prefs", "PCMU,PCMA")):
            s, n = re.subn(rf'data="{name}=[^"]*"', f'data="{name}={value}"', s)
            assert n == 1, f"vars.xml: {name} not found once"
        # Before everything that reads it: nothing binds to (or looks up) anything
        # but the loopback address.
        s = s.replace("<include>", '<include>\n  <X-PRE-PROCESS cmd="set" data="local_ip_v4=127.0.0.1"/>', 1)
        path.write_text(s)

    def _modules(self) -> None:
        path = self.conf / "autoload_configs" / "modules.conf.xml"
        have = {p.stem for p in mod_dir(self.binary).glob("mod_*.so")}

        def keep(m: re.Match) -> str:
            if m.group(1) in have:
                self.modules.append(m.group(1))
                return m.group(0)
            return ""

        path.write_text(re.sub(r'<load module="(mod_\w+)"/>', keep, path.read_text()))

    def _switch_conf(self) -> None:
        path = self.conf / "autoload_configs" / "switch.conf.xml"
        s = path.read_text()
        # Four sessions a call (phone, PBX leg, its bridge, the carrier): the stock
        # 30 a second would throttle the soak, not Tollgate.
        s = s.replace('name="sessions-per-second" value="30"', 'name="sessions-per-second" value="1000"')
        s = s.replace('name="max-sessions" value="1000"', 'name="max-sessions" value="4000"')
        s = s.replace("<!-- <param name=\"rtp-start-port\" value=\"16384\"/> -->",
                      '<param name="rtp-start-port" value="20000"/>')
        s = s.replace("<!-- <param name=\"rtp-end-port\" value=\"32768\"/> -->",
                      '<param name="rtp-end-port" value="29999"/>')
        path.write_text(s)
        es = (CONF / "autoload_configs" / "event_socket.conf.xml").read_text()
        es = es.replace("CHANGE_ME_tollgate_esl_secret", self.esl_password)
        es = es.replace('name="listen-port" value="8021"', f'name="listen-port" value="{self.ports.esl}"')
        (self.conf / "autoload_configs" / "event_socket.conf.xml").write_text(es)

    def _tollgate_files(self) -> None:
        """freeswitch-conf/ as its README says: the mode's dialplan file into
        dialplan/default/, the allowed context beside the others."""
        source = CONF / ("socket-mode/dialplan/default/90_tollgate.xml" if self.mode == "socket"
                         else "dialplan/default/90_tollgate.xml")
        text = source.read_text().replace("tollgate_socket=127.0.0.1:8084",
                                          f"tollgate_socket=127.0.0.1:{self.ports.socket}")
        (self.conf / "dialplan" / "default" / "90_tollgate.xml").write_text(text)
        shutil.copy(CONF / "dialplan" / "tollgate_allowed.xml", self.conf / "dialplan" / "tollgate_allowed.xml")

    def _sip_profiles(self) -> None:
        profiles = self.conf / "sip_profiles"
        for name in ("internal-ipv6.xml", "external-ipv6.xml"):
            (profiles / name).unlink(missing_ok=True)  # no IPv6 address on a loopback-only bed
        p = self.ports
        common = ('<param name="sip-ip" value="127.0.0.1"/><param name="rtp-ip" value="127.0.0.1"/>'
                  '<param name="ext-sip-ip" value="127.0.0.1"/><param name="ext-rtp-ip" value="127.0.0.1"/>'
                  '<param name="dialplan" value="XML"/><param name="inbound-codec-prefs" value="PCMU,PCMA"/>'
                  '<param name="outbound-codec-prefs" value="PCMU,PCMA"/><param name="dtmf-type" value="rfc2833"/>'
                  '<param name="rfc2833-pt" value="101"/><param name="rtp-timer-name" value="soft"/>'
                  '<param name="auth-calls" value="false"/><param name="manage-presence" value="false"/>')
        gateways = "".join(
            f'<gateway name="ext{u}"><param name="username" value="{u}"/>'
            f'<param name="password" value="{self.user_password}"/><param name="realm" value="{TENANT}"/>'
            f'<param name="from-user" value="{u}"/><param name="from-domain" value="{TENANT}"/>'
            f'<param name="proxy" value="127.0.0.1:{p.internal}"/><param name="register" value="false"/>'
            # 1005 presents whatever caller ID the test gives it (a phone lying in its From)
            f'<param name="caller-id-in-from" value="{"true" if u == "1005" else "false"}"/></gateway>'
            for u in PHONES)
        (profiles / "phones.xml").write_text(
            f'<profile name="phones"><gateways>{gateways}</gateways><settings>{common}'
            f'<param name="sip-port" value="{p.phones}"/><param name="context" value="phones"/>'
            '</settings></profile>\n')
        (profiles / "world.xml").write_text(
            f'<profile name="world"><settings>{common}<param name="sip-port" value="{p.carrier}"/>'
            '<param name="context" value="carrier"/></settings></profile>\n')
        _include(profiles / "external" / "carrier.xml",
                 '<gateway name="carrier"><param name="register" value="false"/>'
                 f'<param name="proxy" value="127.0.0.1:{p.carrier}"/>'
                 '<param name="caller-id-in-from" value="true"/></gateway>')

    def _test_dialplan(self) -> None:
        _include(self.conf / "dialplan" / "carrier.xml",
            '<context name="carrier"><extension name="carrier-answers">'
            '<condition field="destination_number" expression="^(.*)$">'
            '<action application="set" data="carrier_got=$1"/><action application="answer"/>'
            '<action application="sleep" data="1500"/><action application="hangup"/>'
            '</condition></extension></context>'
            '<context name="phones"><extension name="nothing"><condition field="destination_number"'
            ' expression="^"><action application="hangup" data="CALL_REJECTED"/></condition></extension>'
            '</context>')
        # The operator's own routing for the domain's users the stock dialplan does
        # not know (it bridges only 1000-1019): after Tollgate's file, as an
        # operator would add it. Tollgate's file must pass these calls on to it.
        _include(self.conf / "dialplan" / "default" / "95_tenant_users.xml",
            '<extension name="tenant-users">'
            '<condition field="${user_exists(id ${destination_number} ${domain_name})}" expression="^true$"/>'
            '<condition field="destination_number" expression="^(\\d+)$">'
            '<action application="set" data="hangup_after_bridge=true"/>'
            '<action application="bridge" data="user/$1@${domain_name}"/></condition></extension>')

    def _users(self) -> None:
        stock = (self.conf / "directory" / "default" / "1001.xml").read_text()
        for user in ("4101", "4102"):
            (self.conf / "directory" / "default" / f"{user}.xml").write_text(stock.replace("1001", user))

    # -- process ------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        d = self.dir
        self.log_file = open(d / "stdout.log", "wb")
        self.proc = subprocess.Popen(
            [self.binary, "-nf", "-nc", "-nonat", "-conf", str(self.conf), "-log", str(d / "log"),
             "-db", str(d / "db"), "-run", str(d / "run"), "-recordings", str(d / "recordings"),
             "-storage", str(d / "storage"), "-sounds", str(d / "sounds")],
            stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"FreeSWITCH exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                conn = self.connect(lambda _h: None)
                status = conn.api("api sofia status")
                conn.close()
                if all(f"{name}" in status and "RUNNING" in status for name in ("phones", "world", "internal")):
                    if status.count("RUNNING") >= 3:
                        return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"FreeSWITCH not ready in {timeout}s: {self.log_tail()}")
            gevent.sleep(0.3)

    def connect(self, on_event, events: tuple[str, ...] = ("CHANNEL_HANGUP_COMPLETE",)) -> InboundConnection:
        conn = InboundConnection("127.0.0.1", self.ports.esl, self.esl_password, on_event, timeout=10,
                                 subscribe_filter=False, events=events)
        conn.open()
        return conn

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc])
            self.log_file.close()

    def log_tail(self, n: int = 30) -> str:
        path = self.dir / "log" / "freeswitch.log"
        text = path.read_text(errors="replace") if path.exists() else (self.dir / "stdout.log").read_text(
            errors="replace")
        return "\n".join(text.splitlines()[-n:])
