"""End to end: who placed the call is what FreeSWITCH authenticated (issue 14).

The simulator's calls carry what sofia puts on a registered phone's channel
(`sip_authorized`, `user_name`, `domain_name`) and the caller ID the phone
chose; the dialplan's `tollgate_extension=${user_name}` and `tollgate_source`.
"""

import logging

import pytest

from tests.rig import Rig

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

LISTED_MOBILE = "+33612345678"


@pytest.fixture(params=["inbound", "socket"])
def rig(redis_url, request, caplog):
    caplog.set_level(logging.DEBUG)
    r = Rig(redis_url, mode=request.param)
    r.provision()  # 1001 listed on "direction" (premium/international); 1002 disabled
    r.store.admin.add_entry("acme", "direction", "Jean", "Martin", LISTED_MOBILE)
    r.controller("c1")
    yield r
    r.close()


@pytest.mark.parametrize("presented", ["1001", "0612345678", LISTED_MOBILE, "06 12 34 56 78"])
def test_a_registered_phone_spoofing_a_listed_caller_id_is_refused(rig, presented):
    ch = rig.call("0899123456", caller_id=presented, user="1005")  # 1005: registered, not listed
    rig.finish(ch)
    assert not ch.bridged and ch.hangup_cause == "OUTGOING_CALL_BARRED"
    v = rig.verdict_of(ch)
    assert (v["verdict"], v["reason"], v["identity"], v["extension"]) == ("DENY", "not_authorized", "extension", "1005")
    assert v["caller_id"] == presented  # recorded, never used
    rig.assert_clean()


def test_an_unauthenticated_channel_is_an_unknown_caller_but_emergency_passes(rig):
    spoof = rig.call("0899123456", caller_id="1001", user="")
    national = rig.call("0140000000", caller_id="1001", user="")
    sos = rig.call("112", caller_id="anonymous", user="")
    free = rig.call("0800123456", caller_id="1001", user="")
    rig.finish(spoof, national, sos, free)
    assert not spoof.bridged and not national.bridged and sos.bridged and free.bridged
    for ch, reason in ((spoof, "unknown_caller"), (national, "unknown_caller"), (sos, "emergency"), (free, "allowed")):
        v = rig.verdict_of(ch)
        assert (v["reason"], v["identity"], v["extension"]) == (reason, "none", "")
    rig.assert_clean()


def test_the_listed_owner_passes_and_a_trusted_trunk_speaks_for_its_callers(rig):
    own = rig.call("0899123456", caller_id="1001")  # registered as 1001, listed by extension
    untrusted = rig.call("0899123456", caller_id=LISTED_MOBILE, user="", source="mobile-gw")
    rig.finish(own, untrusted)
    assert own.bridged and not untrusted.bridged
    assert rig.verdict_of(untrusted)["reason"] == "unknown_caller"
    rig.store.admin.update_tenant("acme", {"trusted_sources": "mobile-gw"})
    trusted = rig.call("0899123456", caller_id="06 12 34 56 78", user="", source="mobile-gw")
    rig.finish(trusted)
    assert trusted.bridged
    v = rig.verdict_of(trusted)
    assert (v["identity"], v["source"], v["authorized_list"]) == ("trusted_caller_id", "mobile-gw", "direction")
    rig.assert_clean()


def test_a_shared_country_code_is_international_and_its_region_is_audited(rig):
    # +1 876: Jamaica, same calling code as the USA; for a French tenant every +1
    # is abroad, and a US tenant must not treat it as national either (test_numbers).
    ch = rig.call("0018765550123", caller_id="1002")  # 1002's entry is disabled
    rig.finish(ch)
    v = rig.verdict_of(ch)
    assert (v["class"], v["region"], v["reason"]) == ("international", "JM", "not_authorized")
    assert "JM (+1)" in v["detail"]
    rig.assert_clean()


def test_the_verdict_is_in_redis_before_freeswitch_is_told_to_act(rig, monkeypatch):
    """Issue 14, part 3: a controller killed between acting and writing cannot
    leave an action without its record, because the record comes first."""
    from controller.simulator import apps as simulated

    seen = {}

    def checking(app):
        real = simulated.APPS[app]

        def run(ch, arg):
            seen[(ch.uuid, app)] = [v["verdict"] for v in rig.verdicts() if v["uuid"] == ch.uuid]
            return real(ch, arg)
        return run

    for app in ("bridge", "playback"):
        monkeypatch.setitem(simulated.APPS, app, checking(app))
    allowed = rig.call("0140000000", caller_id="1001")
    refused = rig.call("0899123456", caller_id="1003")
    rig.finish(allowed, refused)
    assert seen[(allowed.uuid, "bridge")] == ["ALLOW"]
    assert seen[(refused.uuid, "playback")] == ["DENY"]  # the refusal's announcement
    rig.assert_clean()
