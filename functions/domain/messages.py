"""Rendering a decision into a message for its channel and the member's locale.

Member-supplied text (names) is escaped in HTML; placeholders are filled from a fixed set."""

from __future__ import annotations

import html
import string
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import make_msgid

from functions.domain.decision_record import Decision
from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile

_POLICY = email_policy.SMTP.clone(max_line_length=998)
DEFAULT_SUBJECT = "{offer_title}"
DEFAULT_BODY = "Hi {first_name}, {offer_title}. Because {reason}."


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(offer: Offer, profile: MemberProfile, decision: Decision, channel: str) -> RenderedMessage:
    from functions.domain.events import Channel

    template = offer.template(profile.locale, Channel(channel))
    subject_t = template.subject if template and template.subject else DEFAULT_SUBJECT
    body_t = template.body if template else DEFAULT_BODY
    days = ""
    if profile.points_expire_at and decision.decided_at:
        days = str(max(1, round((profile.points_expire_at - decision.decided_at) / 86400)))
    values = {
        "first_name": profile.first_name or "there",
        "points": str(profile.points_balance),
        "offer_title": offer.title,
        "reason": decision.reasons[0] if decision.reasons else "",
        "expires_in_days": days,
    }
    fields = _Fields(values)
    escaped = _Fields({k: html.escape(v) for k, v in values.items()})
    formatter = string.Formatter()
    text = formatter.vformat(body_t, (), fields)
    body_html = formatter.vformat(html.escape(body_t), (), escaped)
    subject = formatter.vformat(subject_t, (), fields).replace("\n", " ").strip()
    return RenderedMessage(subject=subject, text=text, html=f"<html><body><p>{body_html}</p></body></html>")


def build_email(message: RenderedMessage, sender: str, recipient: str, unsubscribe_url: str,
                unsubscribe_mailto: str | None = None) -> bytes:
    """Raw MIME with RFC 8058 one-click unsubscribe headers."""
    # Long header lines (the signed unsubscribe URL) must stay plain ASCII, never RFC 2047
    # encoded words, or mailbox providers cannot read List-Unsubscribe.
    mail = EmailMessage(policy=_POLICY)
    mail["From"] = sender
    mail["To"] = recipient
    mail["Subject"] = message.subject
    mail["Message-ID"] = make_msgid(domain=sender.split("@")[-1])
    targets = [f"<{unsubscribe_url}>"] + ([f"<mailto:{unsubscribe_mailto}>"] if unsubscribe_mailto else [])
    mail["List-Unsubscribe"] = ", ".join(targets)
    mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return bytes(mail)
