"""Consent changes as values, the preference pages as HTML, and the signing keys' cache: pure
code, no AWS."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from functions.dal.signing_keys import CachedKeys, SigningKeysUnavailable, keys_from_secret_value
from functions.domain import events as ev
from functions.domain import preference_page as pages
from functions.domain.consent import changes_to, entries_of, withdrawal
from functions.domain.decision import channel_guardrail
from functions.domain.profile import MemberProfile, apply_event
from functions.domain.tokens import LinkClaims, sign, verify
from functions.handlers.preferences import PageError, parse_request

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_absent_consent_means_no_marketing_but_transactional_goes() -> None:
    # Given a member with an email address who never said yes to anything
    profile = MemberProfile(member_id="m-1", email="a@example.com")
    # Then no marketing topic may go by email, while an order message may
    assert channel_guardrail(profile, "email", "offers", transactional=False) == "no_consent"
    assert channel_guardrail(profile, "email", "transactional", transactional=True) is None
    # and once they consent to offers, offers may go, and only offers
    apply_event(profile, ev.ConsentChanged(event_id="c", member_id="m-1", occurred_at=NOW,
                                           channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS, granted=True,
                                           source="signup_form"))
    assert channel_guardrail(profile, "email", "offers", transactional=False) is None
    assert channel_guardrail(profile, "email", "points", transactional=False) == "no_consent"


def test_an_unsubscribe_from_every_topic_is_one_entry_per_marketing_topic() -> None:
    event = ev.NotificationUnsubscribed(event_id="u-1", member_id="m-1", occurred_at=NOW, decision_id="d-1",
                                        channel=ev.Channel.EMAIL, all_topics=True)
    entries = entries_of(event)
    assert [(e.topic, e.granted, e.source, e.event_id) for e in entries] == [
        (t, False, "unsubscribe_link", "u-1") for t in ("offers", "points", "tier", "reminders")]
    assert entries_of(ev.AppOpened(event_id="a", member_id="m-1", occurred_at=NOW)) == []


def test_only_choices_that_change_become_events() -> None:
    current = {"email:offers": True, "email:points": True, "sms:offers": False}
    events = changes_to(current, ["email:offers", "push:tier"], "m-1", "preference_center", NOW, "p")
    assert [(e.channel.value, e.topic.value, e.granted) for e in events] == [
        ("email", "points", False), ("push", "tier", True)]
    assert len({e.event_id for e in events}) == 2


def test_transactional_and_unknown_choices_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown consent choices"):
        changes_to({}, ["email:transactional"], "m-1", "preference_center", NOW, "p")
    with pytest.raises(ValueError, match="unknown consent choices"):
        changes_to({}, ["fax:offers"], "m-1", "preference_center", NOW, "p")
    with pytest.raises(ValueError, match="transactional"):
        withdrawal("m-1", "email", "transactional", "one_click_unsubscribe", NOW, "u")


def test_member_text_is_escaped_everywhere_it_appears() -> None:
    hostile = '"><script>alert(1)</script>'
    page = pages.preference_center_page(token='t"><b>', first_name=hostile, consent={},
                                        notice="<i>saved</i>")
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;" in page and 'value="t&quot;&gt;&lt;b&gt;"' in page


def test_the_page_is_labelled_grouped_and_needs_no_script() -> None:
    page = pages.preference_center_page(
        token="tok", first_name="Ann",
        consent={"email:offers": pages.ConsentView(True, "signup_form", NOW.timestamp())})
    assert '<html lang="en">' in page and "<script" not in page
    # one fieldset with a legend per channel
    assert re.findall(r"<legend>([^<]+)</legend>", page) == ["Email", "Push notifications",
                                                              "Text messages (SMS)"]
    # every input but hidden ones has a label tied to its id
    ids = re.findall(r'<input type="checkbox" id="([^"]+)"', page)
    assert len(ids) == 15  # 3 channels x (4 marketing topics + transactional)
    assert all(f'<label for="{i}">' in page for i in ids)
    # transactional is shown as on and cannot be changed
    assert page.count("checked disabled") == 3
    # the consent shows since when and where it was given
    assert "on since 02 Mar 2026 (signup form)" in page
    assert ":focus-visible" in page


def test_a_bare_secret_is_one_key_and_rotation_reaches_a_warm_container() -> None:
    assert keys_from_secret_value(" abc ") == [("k1", b"abc")]
    with pytest.raises(SigningKeysUnavailable):
        keys_from_secret_value("  ")
    # Given keys cached for 300 s in a warm container
    secret = {"value": "k1:old"}
    clock = {"t": 1000.0}
    keys = CachedKeys(lambda: secret["value"], ttl_s=300, monotonic=lambda: clock["t"])
    link = sign(LinkClaims("m-1", "unsubscribe", "email", "offers", 5_000), keys.get())
    # When the secret is rotated (a new key first, the old kept)
    secret["value"] = "k2:new,k1:old"
    clock["t"] += 299
    assert keys.get()[0][0] == "k1"  # still cached
    clock["t"] += 1
    # Then new links are signed with the new key, and the old link still verifies
    assert keys.get()[0][0] == "k2"
    assert verify(link, keys.get(), now=2_000).member_id == "m-1"


def _post(body: str, content_type: str, base64_encoded: bool = False) -> dict:
    return {"rawPath": "/unsubscribe", "rawQueryString": "token=t", "body": body,
            "isBase64Encoded": base64_encoded, "headers": {"content-type": content_type},
            "requestContext": {"http": {"method": "POST"}}}


def test_one_click_bodies_in_both_rfc_8058_encodings_are_read() -> None:
    assert parse_request(_post("List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")).form == {
        "List-Unsubscribe": ["One-Click"]}
    multipart = ('--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n'
                 "--XyZ--\r\n")
    assert parse_request(_post(multipart, "multipart/form-data; boundary=XyZ")).form == {
        "List-Unsubscribe": ["One-Click"]}


@pytest.mark.parametrize(("event", "status"), [
    (_post("a=" + "x" * 9000, "application/x-www-form-urlencoded"), 413),
    (_post("x", "application/json"), 415),
    (_post("%%%", "application/x-www-form-urlencoded", base64_encoded=True), 400),
    ({**_post("", ""), "rawPath": "/admin"}, 404),
    ({**_post("", ""), "requestContext": {"http": {"method": "DELETE"}}}, 405),
    ({"rawPath": "/unsubscribe"}, 400),
])
def test_malformed_requests_get_a_clear_4xx(event: dict, status: int) -> None:
    with pytest.raises(PageError) as raised:
        parse_request(event)
    assert raised.value.status == status
