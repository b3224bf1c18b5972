"""Signed unsubscribe links and message rendering."""

from __future__ import annotations

import email

import pytest

from functions.domain.messages import RenderedMessage, build_email
from functions.domain.tokens import InvalidToken, LinkClaims, parse_keys, sign, verify

KEYS = parse_keys("k2:new-secret,k1:old-secret")
CLAIMS = LinkClaims("m-1", "unsubscribe", "email", "offers", expires_at=2_000)


def test_a_signed_link_verifies_and_carries_its_claims():
    assert verify(sign(CLAIMS, KEYS), KEYS, now=1_000) == CLAIMS


def test_links_signed_with_the_previous_key_still_work_after_rotation():
    old_link = sign(CLAIMS, parse_keys("k1:old-secret"))
    assert verify(old_link, KEYS, now=1_000).member_id == "m-1"


@pytest.mark.parametrize("tamper", ["forged", "altered", "expired", "retired"])
def test_forged_altered_expired_or_retired_links_are_refused(tamper):
    token = sign(CLAIMS, KEYS)
    now = 1_000
    if tamper == "forged":
        token = sign(CLAIMS, parse_keys("k2:attacker"))
    elif tamper == "altered":
        payload, mac = token.split(".")
        token = f"{payload[:-2]}AA.{mac}"
    elif tamper == "expired":
        now = 3_000
    else:
        token = sign(CLAIMS, parse_keys("k0:retired"))
    with pytest.raises(InvalidToken):
        verify(token, KEYS, now=now)


def test_emails_carry_rfc8058_headers_readable_by_a_mail_parser():
    raw = build_email(RenderedMessage("Hi", "text", "<p>html</p>"), "rewards@example.com", "ann@example.com",
                      "https://example.com/u?token=" + "x" * 300)
    parsed = email.message_from_bytes(raw)
    assert parsed["List-Unsubscribe"] == "<https://example.com/u?token=" + "x" * 300 + ">"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_member_supplied_text_is_escaped_in_html():
    from datetime import UTC, datetime

    from functions.domain.decision import ChosenAction, Decision
    from functions.domain.messages import render
    from functions.domain.offers import Offer
    from functions.domain.profile import MemberProfile

    offer = Offer(offer_id="o", title="Coffee", templates={"en": {"email": {"subject": "Hi {first_name}",
                                                                          "body": "Hello {first_name}!"},
                                                                "push": {"body": "{first_name}"}}})
    profile = MemberProfile(member_id="m", first_name="<script>alert(1)</script>")
    nothing = ChosenAction(kind="none")
    decision = Decision(decision_id="d", member_id="m", trigger="t", cause_id="c",
                        decided_at=datetime(2026, 1, 1, tzinfo=UTC).timestamp(), model_version="x",
                        action=nothing, intended=nothing, propensity=1.0)
    message = render(offer, profile, decision, "email")
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
