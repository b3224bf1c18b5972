"""preferences: the member-facing pages behind a Lambda Function URL (auth NONE: members click
from their inbox, and the signed link token is the authentication).

    GET  /unsubscribe?token=T   confirmation page with a POST form (no change: scanners prefetch)
    POST /unsubscribe?token=T   body List-Unsubscribe=One-Click (RFC 8058): unsubscribes at once
    GET  /preferences?token=T   the preference center
    POST /preferences           token in the form (CSRF): save consent, or request export/erasure

A consent change is recorded in the consent history, applied to the profile now (not after a
queue round-trip) and published as consent.changed for everything downstream; ingest then
sees the same event id and changes nothing twice. A forged, altered, expired or retired-key
token gets a 4xx page and changes nothing."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from typing import Any, Literal
from urllib.parse import parse_qs

from functions import clock
from functions.dal.bus import publish
from functions.dal.consent import record_consent
from functions.dal.members import apply_to_stored_profile, load_profile
from functions.dal.privacy_requests import record_privacy_request
from functions.dal.signing_keys import link_signing_keys
from functions.domain import preference_page as pages
from functions.domain.consent import (
    CHANNELS,
    MARKETING_TOPICS,
    ONE_CLICK_SOURCE,
    PREFERENCE_CENTER_SOURCE,
    changes_to,
    entries_of,
    withdrawal,
)
from functions.domain.events import ConsentChanged, PrivacyRequested
from functions.domain.tokens import InvalidToken, LinkClaims, sign, verify
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.observability import count, logger, metrics, tracer

EVENT_SOURCE = "fidelio.preferences"
MAX_BODY_BYTES = 8 * 1024  # a full preference form is under 1 KB
MAX_TOKEN_CHARS = 2048
MAX_FORM_FIELDS = 64
_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "private, no-store",
    # No script at all; forms post only back here; never framed (clickjacking on the buttons).
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
}
_ROUTES = {"/unsubscribe": ("GET", "POST"), "/preferences": ("GET", "POST")}


class PageError(Exception):
    """A request answered with an error page (4xx): nothing was changed."""

    def __init__(self, status: int, title: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.title, self.message, self.headers = status, title, message, headers or {}


@dataclass(frozen=True)
class PageRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]] = field(default_factory=dict)


def _form(content_type: str, body: bytes) -> dict[str, list[str]]:
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        if kind in ("", "application/x-www-form-urlencoded"):
            return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        if kind == "multipart/form-data":  # RFC 8058 senders should use it
            message = message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body,
                                         policy=email_policy.HTTP)
            found: dict[str, list[str]] = {}
            for part in list(message.iter_parts())[:MAX_FORM_FIELDS]:
                name = part.get_param("name", header="content-disposition")
                if isinstance(name, str):
                    found.setdefault(name, []).append(str(part.get_content()).strip())
            return found
    except (UnicodeDecodeError, ValueError, LookupError):
        raise PageError(400, "Bad request", "The form could not be read.") from None
    raise PageError(415, "Unsupported form", f"Forms must be sent as application/x-www-form-urlencoded "
                                              f"or multipart/form-data, not {kind[:60]!r}.")


def parse_request(event: dict[str, Any]) -> PageRequest:
    try:
        method = str(event["requestContext"]["http"]["method"]).upper()
        path = str(event.get("rawPath") or "/")
    except (KeyError, TypeError):
        raise PageError(400, "Bad request", "Not a Function URL request (payload format 2.0).") from None
    path = path.rstrip("/") or "/"
    if path not in _ROUTES:
        raise PageError(404, "Page not found", "There is no such page.")
    if method not in _ROUTES[path]:
        raise PageError(405, "Method not allowed", f"{method[:10]} is not allowed here.",
                        {"Allow": ", ".join(_ROUTES[path])})
    raw_query = str(event.get("rawQueryString") or "")
    if len(raw_query) > MAX_TOKEN_CHARS + 64:
        raise PageError(414, "Link too long", "The link is longer than any link we send.")
    query = parse_qs(raw_query, max_num_fields=8)
    if method == "GET":
        return PageRequest(method, path, query)
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise PageError(413, "Form too large", f"Forms are limited to {MAX_BODY_BYTES} bytes.")
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
    except (binascii.Error, ValueError):
        raise PageError(400, "Bad request", "The form could not be read.") from None
    if len(raw) > MAX_BODY_BYTES:
        raise PageError(413, "Form too large", f"Forms are limited to {MAX_BODY_BYTES} bytes.")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return PageRequest(method, path, query, _form(headers.get("content-type", ""), raw))


def _one(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name)
    return found[0] if found else None


def _claims(token: str | None, purpose: str) -> LinkClaims:
    if not token:
        raise PageError(400, "Link incomplete", "This link is missing its security token; it may have been "
                                                "cut when copied.")
    if len(token) > MAX_TOKEN_CHARS:
        raise PageError(400, "Link not valid", "This link is not one we sent.")
    try:
        claims = verify(token, _keys(), now=clock.now().timestamp())
    except InvalidToken as error:
        count("InvalidLinkTokens")
        logger.info("refused a link token", extra={"reason": str(error)})
        expired = "expired" in str(error)
        raise PageError(410 if expired else 403, "Link expired" if expired else "Link not valid",
                        "This link has expired." if expired else
                        "This link is not valid: it was changed, or is not one we sent.") from None
    if claims.purpose != purpose:
        raise PageError(403, "Link not valid", f"This link is not a {purpose} link.")
    return claims


def _keys() -> list[tuple[str, bytes]]:
    d = deps()
    return link_signing_keys(d.settings, lambda: d.clients.client("secretsmanager"))


def _event_id_prefix(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def apply_consent_changes(changes: list[ConsentChanged]) -> None:
    """History first (the proof), then the profile (what the guardrails read), then the bus.
    The caller checked the member has a profile (none is created for an unknown member)."""
    if not changes:
        return
    d = deps()
    record_consent(entry for change in changes for entry in entries_of(change))
    for change in changes:
        apply_to_stored_profile(change)
    try:
        publish(d.clients.events, d.settings.bus_name, changes, EVENT_SOURCE)
    except Exception:
        # The member's choice is already in force and proven; downstream copies miss it.
        logger.exception("consent change applied but not published", extra={
            "member_id": changes[0].member_id, "event_ids": [c.event_id for c in changes]})
        count("ConsentPublishFailures")


def _preferences_token(claims: LinkClaims) -> str:
    return sign(LinkClaims(claims.member_id, "preferences", None, None, claims.expires_at), _keys())


def _current_consent(member_id: str) -> tuple[str | None, dict[str, pages.ConsentView]]:
    """The member's first name and consent; 404 when no profile is held (never enrolled, or
    erased: an old link must not re-create a profile)."""
    profile = load_profile(member_id)
    if profile is None:
        raise PageError(404, "No preferences found", "We hold no data about you, so there is nothing "
                                                     "to manage.")
    return profile.first_name, {key: pages.ConsentView(record.granted, record.source, record.at)
                                for key, record in profile.consent.items()}


def unsubscribe(request: PageRequest) -> dict[str, Any]:
    claims = _claims(_one(request.query, "token"), "unsubscribe")
    if request.method == "GET":
        return page(200, pages.unsubscribe_confirm_page(_one(request.query, "token") or "", claims.channel,
                                                        claims.topic, _preferences_token(claims)))
    if _one(request.form, "List-Unsubscribe") != "One-Click":
        raise PageError(400, "Bad request", "A one-click unsubscribe must post List-Unsubscribe=One-Click.")
    channel = claims.channel or "email"
    # From an order email (transactional), "unsubscribe" means from all marketing on the channel.
    topic = None if claims.topic in (None, "transactional") else claims.topic
    if channel not in {c.value for c in CHANNELS} or (
            topic is not None and topic not in {t.value for t in MARKETING_TOPICS}):
        raise PageError(400, "Link not valid", "This link names no list you can unsubscribe from.")
    if load_profile(claims.member_id) is not None:  # nothing held (e.g. erased): nothing to withdraw
        apply_consent_changes(withdrawal(claims.member_id, channel, topic, ONE_CLICK_SOURCE,
                                         clock.now(), _event_id_prefix("unsub")))
    count("OneClickUnsubscribes")
    logger.info("unsubscribed", extra={"member_id": claims.member_id, "channel": channel,
                                       "topic": topic or "all_marketing"})
    return page(200, pages.unsubscribed_page(channel, topic, _preferences_token(claims)))


def preferences(request: PageRequest) -> dict[str, Any]:
    if request.method == "GET":
        token = _one(request.query, "token")
        claims = _claims(token, "preferences")
        return _center(claims, token or "")
    token = _one(request.form, "token")  # from the form only: the CSRF check
    claims = _claims(token, "preferences")
    assert token is not None
    action = _one(request.form, "action") or "save"
    if action == "save":
        _, current = _current_consent(claims.member_id)
        try:
            changes = changes_to({k: v.granted for k, v in current.items()}, request.form.get("consent", []),
                                 claims.member_id, PREFERENCE_CENTER_SOURCE, clock.now(),
                                 _event_id_prefix("pref"))
        except ValueError:
            raise PageError(400, "Bad request", "The form holds a choice we do not offer.") from None
        apply_consent_changes(changes)
        count("PreferenceSaves")
        logger.info("preferences saved", extra={"member_id": claims.member_id, "changes": len(changes)})
        return _center(claims, token, "Your preferences are saved." if changes else "Nothing changed.")
    if action == "erase":
        return page(200, pages.erase_confirm_page(token))
    if action == "cancel":
        return _center(claims, token)
    if action in ("export", "erase_confirmed"):
        kind: Literal["export", "erase"] = "export" if action == "export" else "erase"
        request_event = PrivacyRequested(event_id=_event_id_prefix(f"privacy-{kind}"), member_id=claims.member_id,
                                         occurred_at=clock.now(), kind=kind, source=PREFERENCE_CENTER_SOURCE)
        record_privacy_request(request_event)
        d = deps()
        publish(d.clients.events, d.settings.bus_name, [request_event], EVENT_SOURCE)
        count("PrivacyRequests")
        logger.info("privacy request received", extra={"member_id": claims.member_id, "kind": kind,
                                                       "event_id": request_event.event_id})
        return page(202, pages.privacy_request_page(kind))
    raise PageError(400, "Bad request", "The form asked for an action we do not offer.")


def _center(claims: LinkClaims, token: str, notice: str | None = None) -> dict[str, Any]:
    first_name, current = _current_consent(claims.member_id)
    return page(200, pages.preference_center_page(token, first_name, current, notice))


def page(status: int, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {**_HEADERS, **(headers or {})}, "body": body}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        request = parse_request(event)
        return unsubscribe(request) if request.path == "/unsubscribe" else preferences(request)
    except PageError as error:
        return page(error.status, pages.error_page(error.title, error.message), error.headers)
    except Exception:
        logger.exception("could not serve the page")
        count("PageFailures")
        return page(500, pages.error_page("Something went wrong", "We could not complete this now; "
                                          "please try again in a few minutes.", unchanged=False))


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
