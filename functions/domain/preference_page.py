"""The member-facing pages of the unsubscribe link and the preference center: small,
server-rendered, accessible HTML that works without JavaScript.

Accessibility: `lang` on the document, one fieldset with a legend per channel, every input
with a label tied by `for`/`id`, native controls only (keyboard-usable), a visible focus ring,
status messages in a `role="status"` region. Everything that comes from a member or a link is
escaped (`html.escape` with quotes); nothing is interpolated unescaped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from functions.domain.consent import CHANNELS, MARKETING_TOPICS

CHANNEL_LABELS = {"email": "Email", "push": "Push notifications", "sms": "Text messages (SMS)"}
TOPIC_LABELS = {
    "offers": "Offers and discounts",
    "points": "Points balance and expiry",
    "tier": "Tier status and benefits",
    "reminders": "Reminders (for example, items left in your cart)",
}
TRANSACTIONAL_LABEL = "Order and account messages (always on: they are not marketing)"

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}
fieldset{border:1px solid #767676;border-radius:.4rem;margin:0 0 1rem;padding:.5rem 1rem 1rem}
legend{font-weight:600;padding:0 .3rem}
.choice{display:flex;gap:.5rem;align-items:flex-start;margin:.4rem 0}
.choice input{width:1.2rem;height:1.2rem;margin-top:.2rem}
.since{color:#4a4a4a;font-size:.9rem}
button{font:inherit;padding:.5rem 1rem;border-radius:.4rem;border:2px solid #1b1b1b;background:#fff;cursor:pointer}
button.primary{background:#1b1b1b;color:#fff}
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.status{border-left:4px solid #0b57d0;padding:.5rem 1rem;background:#eef3fd}
.error{border-left:4px solid #b3261e;padding:.5rem 1rem;background:#fdeeee}
"""


@dataclass(frozen=True)
class ConsentView:
    granted: bool
    source: str | None = None
    at: float | None = None


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _hidden_token(token: str) -> str:
    return f'<input type="hidden" name="token" value="{escape(token, quote=True)}">'


def _preferences_link(preferences_token: str | None) -> str:
    if not preferences_token:
        return ""
    href = escape(f"/preferences?token={quote(preferences_token, safe='')}", quote=True)
    return f'<p><a href="{href}">Manage all your preferences</a></p>'


def _scope(channel: str | None, topic: str | None) -> str:
    what = TOPIC_LABELS.get(topic or "", "all marketing messages").split(" (")[0].lower()
    where = CHANNEL_LABELS.get(channel or "", "every channel").lower()
    return f"{what} by {where}"


def error_page(title: str, message: str, unchanged: bool = True) -> str:
    advice = ("<p>Nothing was changed. You can use the link in a more recent message, "
              "or contact us to manage your preferences.</p>") if unchanged else ""
    return _page(title, f'<p class="error" role="alert">{escape(message)}</p>\n{advice}')


def unsubscribe_confirm_page(token: str, channel: str | None, topic: str | None,
                             preferences_token: str | None) -> str:
    """GET of the unsubscribe link: a question, never a change (mail scanners prefetch links)."""
    action = escape(f"/unsubscribe?token={quote(token, safe='')}", quote=True)
    body = (
        f"<p>Stop receiving {escape(_scope(channel, topic))}?</p>\n"
        f'<form method="post" action="{action}">\n'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
        '<button type="submit" class="primary">Unsubscribe</button>\n</form>\n'
        + _preferences_link(preferences_token)
    )
    return _page("Unsubscribe", body)


def unsubscribed_page(channel: str | None, topic: str | None, preferences_token: str | None) -> str:
    body = (f'<p class="status" role="status">You will no longer receive '
            f"{escape(_scope(channel, topic))}. Messages about your orders and account still reach you.</p>\n"
            + _preferences_link(preferences_token))
    return _page("You are unsubscribed", body)


def _since(view: ConsentView) -> str:
    if view.at is None:
        return ""
    day = datetime.fromtimestamp(view.at, tz=UTC).strftime("%d %b %Y")
    state = "on" if view.granted else "off"
    source = (view.source or "").replace("_", " ")
    return f'<span class="since">{escape(state)} since {escape(day)}' + (
        f" ({escape(source)})" if source else "") + "</span>"


def preference_center_page(token: str, first_name: str | None, consent: Mapping[str, ConsentView],
                           notice: str | None = None) -> str:
    """The member's consent per channel and topic, as a form; `consent` maps "channel:topic"."""
    greeting = f"<p>Hello {escape(first_name)}, choose what we may send you.</p>" if first_name else \
        "<p>Choose what we may send you.</p>"
    parts = [greeting]
    if notice:
        parts.append(f'<p class="status" role="status">{escape(notice)}</p>')
    parts.append(f'<form method="post" action="/preferences">\n{_hidden_token(token)}')
    for channel in CHANNELS:
        c = channel.value
        parts.append(f"<fieldset>\n<legend>{escape(CHANNEL_LABELS[c])}</legend>")
        for topic in MARKETING_TOPICS:
            t = topic.value
            view = consent.get(f"{c}:{t}", ConsentView(granted=False))
            field_id = f"consent-{c}-{t}"
            checked = " checked" if view.granted else ""
            since = _since(view)
            described = f' aria-describedby="{field_id}-since"' if since else ""
            parts.append(
                f'<div class="choice"><input type="checkbox" id="{field_id}" name="consent" '
                f'value="{c}:{t}"{checked}{described}>'
                f'<label for="{field_id}">{escape(TOPIC_LABELS[t])}'
                + (f' <span id="{field_id}-since">{since}</span>' if since else "")
                + "</label></div>"
            )
        parts.append(
            f'<div class="choice"><input type="checkbox" id="consent-{c}-transactional" checked disabled>'
            f'<label for="consent-{c}-transactional">{escape(TRANSACTIONAL_LABEL)}</label></div>'
        )
        parts.append("</fieldset>")
    parts.append('<button type="submit" name="action" value="save" class="primary">Save preferences</button>\n'
                 "</form>")
    parts.append(
        "<h2>Your data</h2>\n"
        "<p>You can get a copy of everything we hold about you, or ask us to erase it.</p>\n"
        f'<form method="post" action="/preferences">\n{_hidden_token(token)}\n'
        '<button type="submit" name="action" value="export">Download my data</button>\n'
        '<button type="submit" name="action" value="erase">Erase my data</button>\n</form>'
    )
    return _page("Your communication preferences", "\n".join(parts))


def erase_confirm_page(token: str) -> str:
    body = (
        "<p>Erasing your data removes your profile, your history and your preferences from our "
        "systems. It cannot be undone, and you will stop receiving messages from us.</p>\n"
        f'<form method="post" action="/preferences">\n{_hidden_token(token)}\n'
        '<button type="submit" name="action" value="erase_confirmed" class="primary">Yes, erase my data</button>\n'
        '<button type="submit" name="action" value="cancel">No, go back</button>\n</form>'
    )
    return _page("Erase your data?", body)


def privacy_request_page(kind: str) -> str:
    if kind == "export":
        message = ("We have received your request for a copy of your data. We will send it to you "
                   "within one month, usually much sooner.")
        title = "Your data export is on its way"
    else:
        message = ("We have received your request to erase your data. We will complete it within "
                   "one month, usually much sooner.")
        title = "Your erasure request is received"
    return _page(title, f'<p class="status" role="status">{escape(message)}</p>')
