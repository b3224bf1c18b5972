"""The unsubscribe link and the preference center on moto: Function URL requests in; the
profile, the consent history, the privacy-request record and the bus events out."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from fidelio.local.runner import LocalRunner
from functions.dal import signing_keys
from functions.dal.consent import consent_history
from functions.dal.members import import_history, load_profile
from functions.dal.privacy_requests import privacy_requests
from functions.domain import events as ev
from functions.domain.tokens import LinkClaims, parse_keys, sign
from functions.handlers import deps
from tests.conftest import canonical_event
from tests.integration.helpers import drain

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # the local_stack fixture's clock
MEMBER = "m-pref"
HOSTILE_NAME = '<script>alert("x")</script>&"\'<img src=x onerror=alert(1)>'


def url_event(method: str, path: str, token: str | None = None, body: str | None = None,
              content_type: str = "application/x-www-form-urlencoded") -> dict[str, Any]:
    """The canonical one-click Function URL event with another method, path, token or body."""
    event = copy.deepcopy(canonical_event("function_url/post_one_click_unsubscribe"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = "" if token is None else f"token={quote(token, safe='')}"
    event["queryStringParameters"] = None if token is None else {"token": token}
    event["headers"]["content-type"] = content_type
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = body
    return event


@pytest.fixture
def site(local_stack: Any) -> dict[str, Any]:
    """A member who gave consent for offers and points by email, the keys of the stand-in's
    secret, and a queue capturing what the preferences function puts on the bus."""
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["preferences"])
    signing_keys.clear_cache()
    enrolled = NOW - timedelta(days=30)
    import_history([
        ev.MemberEnrolled(event_id="e-1", member_id=MEMBER, occurred_at=enrolled, email="ann@example.com",
                          first_name=HOSTILE_NAME),
        ev.ConsentChanged(event_id="c-1", member_id=MEMBER, occurred_at=enrolled, channel=ev.Channel.EMAIL,
                          topic=ev.Topic.OFFERS, granted=True, source="signup_form"),
        ev.ConsentChanged(event_id="c-2", member_id=MEMBER, occurred_at=enrolled, channel=ev.Channel.EMAIL,
                          topic=ev.Topic.POINTS, granted=True, source="signup_form"),
    ])
    sqs, events = local_stack.client("sqs"), local_stack.client("events")
    capture = sqs.create_queue(QueueName=f"{local_stack.names.prefix}-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{local_stack.names.prefix}-capture", EventBusName=local_stack.names.bus,
                    EventPattern=json.dumps({"source": ["fidelio.preferences"]}), State="ENABLED")
    events.put_targets(Rule=f"{local_stack.names.prefix}-capture", EventBusName=local_stack.names.bus,
                       Targets=[{"Id": "capture", "Arn": capture_arn}])
    secret = local_stack.client("secretsmanager").get_secret_value(
        SecretId=local_stack.link_signing_secret)["SecretString"]
    return {"runner": runner, "keys": parse_keys(secret), "sqs": sqs, "capture": capture, "stack": local_stack}


def token(site: dict[str, Any], purpose: str = "unsubscribe", topic: str | None = "offers",
          expires_at: datetime = NOW + timedelta(days=60), keys: Any = None) -> str:
    return sign(LinkClaims(MEMBER, purpose, "email" if purpose == "unsubscribe" else None,
                           topic if purpose == "unsubscribe" else None, int(expires_at.timestamp())),
                keys or site["keys"])


def call(site: dict[str, Any], event: dict[str, Any]) -> tuple[int, str]:
    response = site["runner"].invoke("preferences", event)
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert response["headers"]["Cache-Control"] == "private, no-store"
    return response["statusCode"], response["body"]


def published(site: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain(site["sqs"], site["capture"])]


def email_consent() -> dict[str, tuple[bool, str]]:
    profile = load_profile(MEMBER)
    assert profile is not None
    return {k: (v.granted, v.source) for k, v in profile.consent.items() if k.startswith("email:")}


SEEDED = {"email:offers": (True, "signup_form"), "email:points": (True, "signup_form")}


def test_one_click_post_unsubscribes_at_once_and_records_proof(site: dict[str, Any]) -> None:
    # Given a member who consented to offers by email
    # When the mailbox provider posts the one-click unsubscribe of the offers link (RFC 8058)
    status, body = call(site, url_event("POST", "/unsubscribe", token(site), "List-Unsubscribe=One-Click"))
    # Then it answers 200 and the profile no longer allows offers by email, points untouched
    assert status == 200
    assert "You are unsubscribed" in body
    assert email_consent() == {"email:offers": (False, "one_click_unsubscribe"),
                               "email:points": (True, "signup_form")}
    # and the history holds one record: what, withdrawn, where, when, which event
    (entry,) = consent_history(MEMBER)
    assert (entry.channel, entry.topic, entry.granted, entry.source, entry.at) == (
        "email", "offers", False, "one_click_unsubscribe", NOW)
    # and consent.changed went on the bus for everything downstream, with the same event id
    (envelope,) = published(site)
    assert envelope["detail-type"] == "consent.changed"
    assert envelope["detail"]["event_id"] == entry.event_id
    assert envelope["detail"]["granted"] is False


def test_the_bus_copy_of_a_change_adds_nothing_when_ingest_applies_it(site: dict[str, Any]) -> None:
    # Given a one-click unsubscribe already applied by the preferences function
    call(site, url_event("POST", "/unsubscribe", token(site), "List-Unsubscribe=One-Click"))
    before = load_profile(MEMBER)
    # When ingest receives the consent.changed it published (the bus → ingest rule), twice
    ingest_queue = site["stack"].queue_urls["ingest"]
    messages = drain(site["sqs"], ingest_queue)
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == ["consent.changed"]
    for _ in range(2):
        site["sqs"].send_message(QueueUrl=ingest_queue, MessageBody=messages[0]["Body"])
    site["runner"].pump()
    # Then the profile and the history are as the function left them: one record, no duplicate
    assert load_profile(MEMBER) == before
    assert len(consent_history(MEMBER)) == 1
    assert not any(site["runner"].dead_letters().values())


def test_a_redelivered_consent_event_adds_one_history_record(site: dict[str, Any]) -> None:
    # Given a consent.changed event from the retailer, delivered three times to ingest
    event = ev.ConsentChanged(event_id="crm-77", member_id=MEMBER, occurred_at=NOW, channel=ev.Channel.SMS,
                              topic=ev.Topic.TIER, granted=True, source="store_kiosk")
    body = json.dumps({"version": "0", "id": "x", "detail-type": "consent.changed", "source": "crm",
                       "account": "123456789012", "time": NOW.isoformat(), "region": "eu-west-1",
                       "resources": [], "detail": ev.to_detail(event)})
    for _ in range(3):
        site["sqs"].send_message(QueueUrl=site["stack"].queue_urls["ingest"], MessageBody=body)
    # When ingest processes them
    site["runner"].pump()
    # Then the history holds exactly one record of it, and the profile grants sms:tier
    history = consent_history(MEMBER)
    assert [(e.event_id, e.channel, e.topic, e.granted, e.source) for e in history] == [
        ("crm-77", "sms", "tier", True, "store_kiosk")]
    profile = load_profile(MEMBER)
    assert profile is not None and profile.consent["sms:tier"].granted


def test_get_shows_a_confirmation_form_and_changes_nothing(site: dict[str, Any]) -> None:
    # When a mail scanner (or the member) opens the unsubscribe link
    status, body = call(site, url_event("GET", "/unsubscribe", token(site)))
    # Then the page asks, with a POST form carrying the one-click field, and nothing changed
    assert status == 200
    assert '<form method="post" action="/unsubscribe?token=' in body
    assert 'name="List-Unsubscribe" value="One-Click"' in body
    assert email_consent() == SEEDED
    assert consent_history(MEMBER) == []
    assert published(site) == []


def _altered(text: str) -> str:
    payload, mac = text.split(".")
    return payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac


@pytest.mark.parametrize(("case", "status"), [
    ("forged", 403), ("altered", 403), ("expired", 410), ("retired_key", 403), ("wrong_purpose", 403),
    ("missing", 400),
])
def test_a_bad_token_gets_a_4xx_page_and_changes_nothing(site: dict[str, Any], case: str, status: int) -> None:
    # Given a link token that is forged, altered, expired, signed by a retired key, meant for
    # another page, or missing
    bad = {
        "forged": lambda: token(site, keys=[("local", b"attacker-guess")]),
        "altered": lambda: _altered(token(site)),
        "expired": lambda: token(site, expires_at=NOW - timedelta(seconds=1)),
        "retired_key": lambda: token(site, keys=[("k0", b"retired-secret")]),
        "wrong_purpose": lambda: token(site, purpose="preferences"),
        "missing": lambda: None,
    }[case]()
    # When it is used for a one-click unsubscribe
    got, body = call(site, url_event("POST", "/unsubscribe", bad, "List-Unsubscribe=One-Click"))
    # Then a clear 4xx page says so, and nothing changed anywhere
    assert got == status
    assert "Nothing was changed" in body
    assert email_consent() == SEEDED
    assert consent_history(MEMBER) == []
    assert published(site) == []


def test_rotating_the_secret_keeps_links_already_sent_working(site: dict[str, Any]) -> None:
    # Given a link signed with the current key, then a rotation: a new key first, the old kept
    old_link = token(site)
    old_kid, old_secret = site["keys"][0]
    site["stack"].client("secretsmanager").put_secret_value(
        SecretId=site["stack"].link_signing_secret, SecretString=f"k2:new-secret,{old_kid}:{old_secret.decode()}")
    signing_keys.clear_cache()  # what the cache's TTL does within minutes
    # When the old link is used
    status, _ = call(site, url_event("POST", "/unsubscribe", old_link, "List-Unsubscribe=One-Click"))
    # Then it still works, and the pages now sign new links with the new key
    assert status == 200
    _, page = call(site, url_event("GET", "/unsubscribe", token(site, topic="points")))
    assert "k2" in json.dumps(_claims_of_preferences_link(page))


def _claims_of_preferences_link(page: str) -> dict[str, Any]:
    import base64

    start = page.index("/preferences?token=") + len("/preferences?token=")
    payload = page[start:page.index('"', start)].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_preference_center_saves_changes_and_records_each(site: dict[str, Any]) -> None:
    pref = token(site, purpose="preferences")
    # Given the preference center, showing the member's consent and escaping their name
    status, page = call(site, url_event("GET", "/preferences", pref))
    assert status == 200
    assert HOSTILE_NAME not in page and "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'value="email:offers" checked' in page and 'value="sms:offers">' in page
    # When the member keeps offers, drops points, adds push reminders, and saves
    form = urlencode([("token", pref), ("consent", "email:offers"), ("consent", "push:reminders"),
                      ("action", "save")])
    status, page = call(site, url_event("POST", "/preferences", None, form))
    # Then the page confirms, and the profile and the history hold exactly the two changes
    assert status == 200 and "Your preferences are saved." in page
    consent = email_consent()
    assert consent == {"email:offers": (True, "signup_form"), "email:points": (False, "preference_center")}
    profile = load_profile(MEMBER)
    assert profile is not None and profile.consent["push:reminders"].granted
    assert sorted((e.channel, e.topic, e.granted) for e in consent_history(MEMBER)) == [
        ("email", "points", False), ("push", "reminders", True)]
    assert sorted(e["detail"]["topic"] for e in published(site)) == ["points", "reminders"]


def test_a_post_without_the_signed_token_in_the_form_changes_nothing(site: dict[str, Any]) -> None:
    # Given a cross-site form that knows the page but not the member's token (CSRF)
    form = urlencode([("consent", "sms:offers"), ("action", "save")])
    # When it posts, even with a valid token in the URL
    status, body = call(site, url_event("POST", "/preferences", token(site, purpose="preferences"), form))
    # Then it is refused and nothing changed
    assert status == 400
    assert "Nothing was changed" in body
    assert email_consent() == SEEDED and consent_history(MEMBER) == [] and published(site) == []


@pytest.mark.parametrize("action", ["export", "erase_confirmed"])
def test_a_privacy_request_is_recorded_and_published(site: dict[str, Any], action: str) -> None:
    kind = "export" if action == "export" else "erase"
    # When the member asks for their data (or confirms erasure) in the preference center
    form = urlencode([("token", token(site, purpose="preferences")), ("action", action)])
    status, page = call(site, url_event("POST", "/preferences", None, form))
    # Then the page acknowledges it, the request is recorded, and privacy.requested is on the bus
    assert status == 202 and 'role="status"' in page
    (record,) = privacy_requests(MEMBER)
    assert (record["kind"], record["source"], record["status"]) == (kind, "preference_center", "received")
    (envelope,) = published(site)
    assert envelope["detail-type"] == "privacy.requested"
    assert envelope["detail"] | {"event_id": None} == {
        "event_id": None, "member_id": MEMBER, "occurred_at": "2026-03-02T14:00:00Z", "schema_version": 1,
        "kind": kind, "source": "preference_center"}
    assert envelope["detail"]["event_id"] == record["event_id"]


def test_erase_asks_for_confirmation_first(site: dict[str, Any]) -> None:
    form = urlencode([("token", token(site, purpose="preferences")), ("action", "erase")])
    status, page = call(site, url_event("POST", "/preferences", None, form))
    assert status == 200 and 'value="erase_confirmed"' in page
    assert privacy_requests(MEMBER) == [] and published(site) == []


def test_an_oversized_form_is_refused_before_anything_changes(site: dict[str, Any]) -> None:
    form = urlencode([("token", token(site, purpose="preferences")), ("action", "save"),
                      ("consent", "x" * 20_000)])
    status, _ = call(site, url_event("POST", "/preferences", None, form))
    assert status == 413
    assert email_consent() == SEEDED and consent_history(MEMBER) == []


def test_an_old_link_of_an_unknown_member_creates_no_profile(site: dict[str, Any]) -> None:
    # Given a valid link for a member Fidelio holds nothing about (never enrolled, or erased)
    stranger = sign(LinkClaims("m-gone", "unsubscribe", "email", "offers", int((NOW + timedelta(days=1)).timestamp())),
                    site["keys"])
    # When it is used
    status, _ = call(site, url_event("POST", "/unsubscribe", stranger, "List-Unsubscribe=One-Click"))
    # Then the answer is the same, and no profile nor record about them appears
    assert status == 200
    assert load_profile("m-gone") is None and consent_history("m-gone") == [] and published(site) == []


def test_the_unsubscribe_link_of_a_sent_email_works_in_one_click(local_stack: Any) -> None:
    import email as email_parser
    from urllib.parse import parse_qs, urlsplit

    from functions.dal.bus import publish
    from functions.dal.offers import replace_catalog
    from functions.domain.offers import Offer
    from tests.integration.helpers import raw_emails_to

    # Given an email sent by dispatch to a consenting member (signed with the stand-in's secret;
    # the member id of the walking-skeleton test, whom the policy sends this offer; another
    # address, as moto's sent mail is shared by every test on the server)
    runner = LocalRunner(local_stack)
    runner.update_settings("decide", send_window_hours=1)  # sent now, not at the member's hour
    signing_keys.clear_cache()
    deps.use(runner._deps["decide"])
    replace_catalog([Offer(offer_id="coffee-10", title="10% off coffee", categories=["coffee"], value=4,
                           channels=[ev.Channel.EMAIL])])
    publish(local_stack.client("events"), local_stack.names.bus, [
        ev.MemberEnrolled(event_id="w-e", member_id="m-walk", occurred_at=NOW - timedelta(days=40),
                          time_zone="Europe/Paris", email="ann.unsubscribes@example.com", first_name="Ann"),
        ev.ConsentChanged(event_id="w-c", member_id="m-walk", occurred_at=NOW - timedelta(days=40),
                          channel=ev.Channel.EMAIL, topic=ev.Topic.OFFERS, granted=True, source="signup_form"),
        ev.PurchaseCompleted(event_id="w-p", member_id="m-walk", occurred_at=NOW, order_id="o-1", amount=12.0,
                             line_items=[ev.LineItem(product_id="p", category="coffee", unit_price=12)]),
    ], "test")
    runner.pump()
    (raw,) = raw_emails_to(local_stack.endpoint, "ann.unsubscribes@example.com")
    link = "".join(email_parser.message_from_string(raw)["List-Unsubscribe"].split()).strip("<>").split(">")[0]
    (link_token,) = parse_qs(urlsplit(link).query)["token"]
    # When the mailbox provider posts the one-click unsubscribe to that link
    status, _ = call({"runner": runner}, url_event("POST", "/unsubscribe", link_token, "List-Unsubscribe=One-Click"))
    # Then the member no longer consents to offers by email, and the history says how
    assert status == 200
    profile = load_profile("m-walk")
    assert profile is not None
    assert (profile.consent["email:offers"].granted, profile.consent["email:offers"].source) == (
        False, "one_click_unsubscribe")
    # (newest first: the withdrawal, then the sign-up consent ingest recorded from the bus)
    assert [(e.topic, e.granted, e.source) for e in consent_history("m-walk")] == [
        ("offers", False, "one_click_unsubscribe"), ("offers", True, "signup_form")]
