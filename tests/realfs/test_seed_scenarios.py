"""The demo's 15 seed scenarios on a real FreeSWITCH 1.10, in both modes.

Judged only on what FreeSWITCH reports: the carrier received the right number
(or nothing), the PBX leg's hangup cause, the prompts it played, no PIN in any
leg's CDR, and no channel left a second after the last call."""

from __future__ import annotations


from tests.realfs.calls import Script
from tests.realfs.conftest import PINS, WRONG

ANNA, BEN = PINS["1003"][0][1], PINS["1003"][1][1]
BARRED = "OUTGOING_CALL_BARRED"

# (phone, dialed, script, presented caller ID, carrier_got or None, PBX cause, prompts, what it shows)
SCENARIOS = [
    ("1001", "0899123456", Script(), None, "+33899123456", "NORMAL_CLEARING", [],
     "authorized person reaches a premium number"),
    ("1002", "0899123456", Script(), None, None, BARRED, ["not_authorized"], "person on another list is refused"),
    ("1001", "00442079460000", Script(), None, "+442079460000", "NORMAL_CLEARING", [],
     "authorized international call"),
    ("1002", "+442079460000", Script(), None, None, BARRED, ["not_authorized"], "international refused"),
    ("1002", "0140000000", Script(), None, "+33140000000", "NORMAL_CLEARING", [], "national call, no restriction"),
    ("1003", "0140000000", Script(keys=[ANNA]), None, "+33140000000", "NORMAL_CLEARING",
     ["enter_pin", "pin_accepted"], "IVR authentication: right PIN"),
    ("1003", "0612345678", Script(keys=[WRONG[0], BEN]), None, "+33612345678", "NORMAL_CLEARING",
     ["enter_pin", "invalid_pin", "enter_pin", "pin_accepted"], "second person's PIN after a wrong one"),
    ("1003", "0800123456", Script(), None, "+33800123456", "NORMAL_CLEARING", [], "toll-free: no PIN"),
    ("1004", "0140000000", Script(keys=WRONG), None, None, BARRED,
     ["enter_pin", "invalid_pin", "enter_pin", "invalid_pin", "enter_pin", "not_authorized"], "three wrong PINs"),
    ("1004", "112", Script(), None, "112", "NORMAL_CLEARING", [], "emergency: always, no PIN"),
    ("1004", "0612345678", Script(hangup_at_prompt=True), None, None, None, ["enter_pin"],
     "caller hangs up during the prompt"),
    ("1001", "3949", Script(), None, "3949", "NORMAL_CLEARING", [], "premium short code, authorized"),
    ("1005", "0899123456", Script(), "1001", None, BARRED, ["not_authorized"],
     "unlisted phone presents Élise's 1001 as caller ID: refused"),
]


def test_every_seed_scenario_on_a_real_switch(freeswitch, controller, phones, store):
    placed = [(s, phones.place(s[0], s[1], s[2], caller_id=s[3])) for s in SCENARIOS]
    assert phones.wait_all([c for _, c in placed], timeout=90), \
        [s[7] for s, c in placed if not c.ended()]
    report = []
    for (phone, dialed, _script, _cid, got, cause, prompts, what), call in placed:
        seen = (call.carrier_got, call.cause if cause is not None else None, call.prompts_played())
        report.append((what, seen))
        assert seen == (got, cause, prompts), (what, seen, call.applications())
    # The caller who hung up in the prompt: the phone's own hangup, no bridge.
    quitter = placed[10][1]
    assert quitter.cause in ("NORMAL_CLEARING", "ORIGINATOR_CANCEL") and quitter.carrier_got is None
    assert phones.cdrs >= 2 * len(SCENARIOS) and phones.leaks == []  # no PIN in any leg's CDR
    # Socket mode too: nothing FreeSWITCH holds for us once the calls are over.
    assert phones.wait_no_channels(1.0) is not None, phones.channel_count()
    print(f"\n[{freeswitch.mode}] {len(SCENARIOS)} seed scenarios on FreeSWITCH: every one as expected")
    for what, seen in report:
        print(f"  {what}: carrier={seen[0]} cause={seen[1]} prompts={','.join(seen[2]) or '-'}")
