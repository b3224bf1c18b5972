"""report.html: the demo's summary as one self-contained, accessible page.

Drawn from the summary dict alone (fidelio/report/summary.py), so summary.json can re-render it.
No external assets: the charts are inline SVG drawn here, the style is one small CSS block, and
every piece of text from the run is escaped. Each chart has a <title> and a <desc> that states
its data in words, and most have a table with the same numbers.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
POLICY_COLOURS = {"fidelio": "#0072B2", "blast": "#D55E00", "random": "#999999", "oracle": "#009E73"}
EXTRA_COLOURS = ("#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
CHANNEL_COLOURS = {"email": "#0072B2", "push": "#E69F00", "sms": "#CC79A7"}
ESTIMATOR_COLOURS = {"ips": "#D55E00", "snips": "#E69F00", "dr": "#0072B2"}
ESTIMATOR_NAMES = {"ips": "IPS", "snips": "SNIPS", "dr": "DR"}
METRIC_NAMES = {"purchases": "purchases per member", "revenue": "revenue per member",
                "conversions": "offer redemptions per member"}
DIMENSION_NAMES = {"tier": "tier", "age_band": "age band", "new_member": "new vs existing"}
WIDTH = 720

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#fff;
 line-height:1.45;margin:0}
main{max-width:62rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.7rem;margin:.2rem 0}h2{font-size:1.3rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
p.read{background:#f4f6f8;border-left:4px solid #0072B2;padding:.5rem .8rem;font-size:.93rem}
.meta{color:#555}.kpis{display:flex;flex-wrap:wrap;gap:.8rem;padding:0;list-style:none}
.kpis li{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:12rem}
.kpis strong{display:block;font-size:1.25rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border-bottom:1px solid #e2e2e2;padding:.3rem .6rem;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
td.text{text-align:left;max-width:28rem;overflow-wrap:anywhere}
figure{margin:1rem 0}figcaption{font-size:.9rem;color:#444}
svg{max-width:100%;height:auto;font-size:12px}svg text{fill:#333}
"""


# --- formatting --------------------------------------------------------------------------------


def esc(value: Any) -> str:
    """Text from the run, safe inside HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if math.isfinite(value) else "n/a"
    return str(value)


def pct(value: float | None, digits: int = 1, signed: bool = True) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:{'+' if signed else ''}.{digits}f} %"


def _colour(name: str, names: Sequence[str]) -> str:
    if name in POLICY_COLOURS:
        return POLICY_COLOURS[name]
    extras = [n for n in names if n not in POLICY_COLOURS]
    return EXTRA_COLOURS[extras.index(name) % len(EXTRA_COLOURS)] if name in extras else "#555555"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _percent_tick(value: float, ticks: Sequence[float]) -> str:
    step = abs(ticks[1] - ticks[0]) * 100 if len(ticks) > 1 else 1.0
    digits = 0 if step >= 1 else (1 if step >= 0.1 else 2)
    return f"{value * 100:,.{digits}f} %"


def _short(label: Any, limit: int = 30) -> str:
    """A chart label that fits its margin (the full text is in the table and the desc)."""
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tick_label(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.3g}"


# --- SVG building blocks -----------------------------------------------------------------------


def svg(chart_id: str, height: int, title: str, description: str, body: Iterable[str]) -> str:
    """An accessible inline SVG: role img, labelled by its <title> and described by its <desc>."""
    return (
        f'<svg role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{esc(title)}</title><desc id="{chart_id}-desc">{esc(description)}</desc>'
        + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, content: Any, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(content)}</text>'


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for label, colour in items:
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        out.append(_text(x + 14, y, label))
        x += 24 + 7 * len(label)
    return out


def _y_axis(ticks: Sequence[float], y_of, left: float, right: float, label: str) -> list[str]:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(_text(left - 6, y + 4, _tick_label(t), "end"))
    out.append(_text(12, (y_of(ticks[0]) + y_of(ticks[-1])) / 2, label, "middle",
                     f' transform="rotate(-90 12 {(y_of(ticks[0]) + y_of(ticks[-1])) / 2:.1f})"'))
    return out


def line_chart(chart_id: str, title: str, series: Mapping[str, Sequence[float]], x_label: str,
               y_label: str, description: str) -> str:
    """Lines over x = 1..n, one per series, with a legend."""
    height, left, right, top, bottom = 320, 64, WIDTH - 20, 34, 270
    n = max((len(v) for v in series.values()), default=0)
    highest = max((max(v) for v in series.values() if v), default=0.0)
    ticks = nice_ticks(0.0, max(highest, 1.0))

    def x_of(i: float) -> float:
        return left + (i - 1) / max(n - 1, 1) * (right - left)

    def y_of(v: float) -> float:
        return bottom - (v - ticks[0]) / (ticks[-1] - ticks[0]) * (bottom - top)

    body = _y_axis(ticks, y_of, left, right, y_label)
    step = max(1, math.ceil(n / 10))
    for day in range(1, n + 1, step):
        body.append(_text(x_of(day), bottom + 16, day, "middle"))
    body.append(_text((left + right) / 2, bottom + 36, x_label, "middle"))
    names = list(series)
    for name, values in series.items():
        if not values:
            continue
        points = " ".join(f"{x_of(i + 1):.1f},{y_of(v):.1f}" for i, v in enumerate(values))
        body.append(f'<g><title>{esc(name)}: {esc(fmt(values[-1], 0))} at day {len(values)}</title>'
                    f'<polyline points="{points}" fill="none" stroke="{_colour(name, names)}" stroke-width="2.5"/>'
                    "</g>")
    body += _legend([(n_, _colour(n_, names)) for n_ in names], left, 18)
    return svg(chart_id, height, title, description, body)


def bar_chart(chart_id: str, title: str, groups: Sequence[str], series: Mapping[str, Sequence[float | None]],
              y_label: str, description: str, colours: Mapping[str, str] | None = None,
              value_digits: int = 2) -> str:
    """Vertical bars: one cluster per group, one bar per series, with a legend when several."""
    height, left, right, top, bottom = 330, 64, WIDTH - 20, 34, 260
    values = [v for vs in series.values() for v in vs if v is not None]
    ticks = nice_ticks(0.0, max(max(values, default=0.0), 1e-9))

    def y_of(v: float) -> float:
        return bottom - (v - ticks[0]) / (ticks[-1] - ticks[0]) * (bottom - top)

    body = _y_axis(ticks, y_of, left, right, y_label)
    names = list(series)
    slot = (right - left) / max(len(groups), 1)
    bar = min(36.0, slot * 0.8 / max(len(names), 1))
    rotate = len(groups) > 8 or max((len(g) for g in groups), default=0) * 7 > slot
    for g, group in enumerate(groups):
        x0 = left + g * slot + (slot - bar * len(names)) / 2
        for s, name in enumerate(names):
            value = series[name][g]
            colour = (colours or {}).get(name) or _colour(name, names)
            if value is None:
                continue
            y = y_of(value)
            body.append(f'<rect x="{x0 + s * bar:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" '
                        f'height="{max(bottom - y, 0):.1f}" fill="{colour}">'
                        f'<title>{esc(group)} · {esc(name)}: {esc(fmt(value, value_digits))}</title></rect>')
        cx = left + (g + 0.5) * slot
        if rotate:
            body.append(_text(cx, bottom + 14, _short(group, 18), "end", f' transform="rotate(-35 {cx:.1f} {bottom + 14})"'))
        else:
            body.append(_text(cx, bottom + 16, _short(group, 18), "middle"))
    if len(names) > 1:
        body += _legend([(n, (colours or {}).get(n) or _colour(n, names)) for n in names], left, 18)
    return svg(chart_id, height, title, description, body)


def hbar_chart(chart_id: str, title: str, rows: Sequence[Mapping[str, Any]], colour: str, x_label: str,
               description: str, value_digits: int = 2) -> str:
    """Horizontal bars, one per row ({"group", "label", "value"}), with a heading row per group."""
    left, right, top, band = 200, WIDTH - 60, 16, 20
    lines: list[tuple[str, Mapping[str, Any] | None]] = []
    for row in rows:
        if not lines or row.get("group") != _last_group(lines):
            lines.append((str(row.get("group", "")), None))
        lines.append((str(row.get("group", "")), row))
    bottom = top + band * len(lines)
    height = bottom + 50
    values = [r["value"] for r in rows if r.get("value") is not None]
    ticks = nice_ticks(0.0, max(max(values, default=0.0), 1e-9))

    def x_of(v: float) -> float:
        return left + (v - ticks[0]) / (ticks[-1] - ticks[0]) * (right - left)

    body = []
    for t in ticks:
        body.append(f'<line x1="{x_of(t):.1f}" x2="{x_of(t):.1f}" y1="{top}" y2="{bottom}" stroke="#e5e5e5"/>')
        body.append(_text(x_of(t), bottom + 16, _tick_label(t), "middle"))
    body.append(_text((left + right) / 2, bottom + 36, x_label, "middle"))
    for i, (group, entry) in enumerate(lines):
        y = top + i * band
        if entry is None:
            body.append(_text(8, y + 14, _short(group, 40), extra=' style="font-weight:600"'))
            continue
        body.append(_text(left - 8, y + 14, _short(entry["label"]), "end"))
        value = entry.get("value")
        if value is None:
            body.append(_text(left + 4, y + 14, "n/a"))
            continue
        body.append(f'<rect x="{left}" y="{y + 3}" width="{max(x_of(value) - left, 0):.1f}" height="{band - 6}" '
                    f'fill="{colour}"><title>{esc(group)} · {esc(entry["label"])}: {esc(fmt(value, value_digits))}'
                    "</title></rect>")
        body.append(_text(x_of(value) + 4, y + 14, fmt(value, value_digits)))
    return svg(chart_id, height, title, description, body)


def _last_group(lines: Sequence[tuple[str, Mapping[str, Any] | None]]) -> str:
    return lines[-1][0]


def stacked_share_chart(chart_id: str, title: str, rows: Mapping[str, Mapping[str, int]],
                        parts: Sequence[str], description: str) -> str:
    """One horizontal 100 % bar per row, split into parts (labelled when wide enough)."""
    left, right, top, band = 90, WIDTH - 20, 40, 34
    height = top + band * len(rows) + 20
    body = _legend([(p, CHANNEL_COLOURS.get(p, "#555555")) for p in parts], left, 20)
    for r, (name, counts) in enumerate(rows.items()):
        y = top + r * band
        total = sum(counts.values())
        body.append(_text(left - 8, y + 18, name, "end"))
        x = float(left)
        for part in parts:
            count = counts.get(part, 0)
            if not total or not count:
                continue
            width = count / total * (right - left)
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{band - 8}" '
                        f'fill="{CHANNEL_COLOURS.get(part, "#555555")}"><title>{esc(name)} · {esc(part)}: '
                        f'{count:,} sends ({count / total:.0%})</title></rect>')
            if width > 44:
                body.append(_text(x + width / 2, y + 18, f"{count / total:.0%}", "middle",
                                  ' style="fill:#fff;font-weight:600"'))
            x += width
        if not total:
            body.append(_text(left + 4, y + 18, "no sends"))
    return svg(chart_id, height, title, description, body)


def interval_chart(chart_id: str, title: str, rows: Sequence[Mapping[str, Any]],
                   references: Sequence[Mapping[str, Any]], x_label: str, description: str,
                   as_percent: bool = False) -> str:
    """Horizontal point estimates with interval whiskers; `references` are vertical lines
    (value, label, first_row, last_row) such as zero or the true value."""
    left, right, top, band = 220, WIDTH - 30, 20, 26
    height = top + band * len(rows) + 70
    values = [v for r in rows for v in (r.get("estimate"), r.get("low"), r.get("high")) if v is not None]
    values += [ref["value"] for ref in references if ref.get("value") is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or 0.1
    ticks = nice_ticks(low - pad, high + pad, 6)

    def x_of(v: float) -> float:
        return left + (v - ticks[0]) / (ticks[-1] - ticks[0]) * (right - left)

    bottom = top + band * len(rows)
    body = []
    for t in ticks:
        body.append(f'<line x1="{x_of(t):.1f}" x2="{x_of(t):.1f}" y1="{top - 6}" y2="{bottom}" stroke="#e5e5e5"/>')
        body.append(_text(x_of(t), bottom + 16, _percent_tick(t, ticks) if as_percent else _tick_label(t), "middle"))
    body.append(_text((left + right) / 2, bottom + 36, x_label, "middle"))
    if any(ref.get("value") is not None for ref in references):
        body.append(f'<line x1="{left}" x2="{left + 18}" y1="{bottom + 52}" y2="{bottom + 52}" stroke="#1a1a1a" '
                    'stroke-dasharray="4 3" stroke-width="1.5"/>')
        body.append(_text(left + 24, bottom + 56, "dashed line: " + ", ".join(
            dict.fromkeys(ref.get("kind", ref["label"]) for ref in references))))
    for ref in references:
        if ref.get("value") is None:
            continue
        x = x_of(ref["value"])
        y1, y2 = top + ref["first_row"] * band - 4, top + (ref["last_row"] + 1) * band - 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1}" y2="{y2}" stroke="#1a1a1a" '
                    f'stroke-dasharray="4 3" stroke-width="1.5"><title>{esc(ref["label"])}: '
                    f'{esc(fmt(ref["value"], 3))}</title></line>')
    for r, row in enumerate(rows):
        y = top + r * band + band / 2
        body.append(_text(left - 8, y + 4, _short(row["label"]), "end"))
        estimate = row.get("estimate")
        if estimate is None:
            body.append(_text(left + 4, y + 4, "not estimable"))
            continue
        colour = row.get("colour", "#0072B2")
        shown = (lambda v: pct(v)) if as_percent else (lambda v: fmt(v, 3))
        tip = f'{row["label"]}: {shown(estimate)} (95 % CI {shown(row.get("low"))} to {shown(row.get("high"))})'
        group = [f"<g><title>{esc(tip)}</title>"]
        if row.get("low") is not None and row.get("high") is not None:
            x1, x2 = x_of(row["low"]), x_of(row["high"])
            group.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>')
            for xe in (x1, x2):
                group.append(f'<line x1="{xe:.1f}" x2="{xe:.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}" stroke="{colour}" stroke-width="2"/>')
        group.append(f'<circle cx="{x_of(estimate):.1f}" cy="{y:.1f}" r="5" fill="{colour}"/></g>')
        body += group
    return svg(chart_id, height, title, description, body)


# --- tables ------------------------------------------------------------------------------------


def table(caption: str, header: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: Iterable[int] = ()) -> str:
    text = set(text_columns)
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i == 0:
                cells.append(f'<th scope="row">{esc(cell)}</th>')
            else:
                cells.append(f'<td{" class=text" if i in text else ""}>{esc(cell)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _figure(chart: str, caption: str) -> str:
    return f"<figure>{chart}<figcaption>{esc(caption)}</figcaption></figure>"


def _section(section_id: str, heading: str, how_to_read: str, *parts: str) -> str:
    return (f'<section id="{section_id}" aria-labelledby="{section_id}-h"><h2 id="{section_id}-h">{esc(heading)}</h2>'
            f'<p class="read"><strong>How to read this.</strong> {esc(how_to_read)}</p>{"".join(parts)}</section>')


def _ci(figure: Mapping[str, Any], as_percent: bool = False, digits: int = 3) -> str:
    shown = pct if as_percent else (lambda v: fmt(v, digits))
    return f"{shown(figure.get('ci_low'))} to {shown(figure.get('ci_high'))}"


# --- sections ----------------------------------------------------------------------------------


def _headline(s: Mapping[str, Any]) -> str:
    policies = s["policies"]
    lift = s["lift"]
    ratios = s["ratios"]
    fidelio = policies.get("fidelio", {})
    blast = policies.get("blast", {})
    kpis = [
        ("Incremental conversions from the messages",
         fmt(lift.get("incremental"), 1),
         f"{fmt(lift.get('treated_redeemed'))} of {fmt(lift.get('treated_exposures'))} offer messages redeemed "
         f"within {fmt(lift.get('window_days'), 0)} days vs {fmt(lift.get('holdout_redeemed'))} of "
         f"{fmt(lift.get('holdout_exposures'))} withheld from the holdout; per message "
         f"{fmt(lift.get('absolute'), 4)}, 95 % CI {fmt(lift.get('absolute_ci_low'), 4)} to "
         f"{fmt(lift.get('absolute_ci_high'), 4)}; relative {pct(lift.get('relative'))} "
         f"({pct(lift.get('ci_low'))} to "
         f"{'unbounded' if lift.get('ci_high') is None and lift.get('ci_low') is not None else pct(lift.get('ci_high'))})"),
        ("Fidelio net value", fmt(fidelio.get("net_value")),
         f"blast {fmt(blast.get('net_value'))}; Fidelio ÷ blast {fmt(ratios.get('net_value_vs_blast'))}; "
         f"Fidelio ÷ oracle {fmt(ratios.get('net_value_vs_oracle'))}"),
        ("Expected net value (simulator truth at each send)", fmt(fidelio.get("expected_net_value")),
         f"blast {fmt(blast.get('expected_net_value'))}; Fidelio ÷ blast "
         f"{fmt(ratios.get('expected_net_value_vs_blast'))}; Fidelio ÷ oracle "
         f"{fmt(ratios.get('expected_net_value_vs_oracle'))}"),
        ("Unsubscribes per member", fmt(fidelio.get("unsubscribes_per_member"), 4),
         f"blast {fmt(blast.get('unsubscribes_per_member'), 4)}; Fidelio ÷ blast "
         f"{fmt(ratios.get('unsubscribes_per_member_vs_blast'))} (exact 95 % CI "
         f"{fmt(ratios.get('unsubscribes_per_member_vs_blast_ci_low'))} to "
         f"{fmt(ratios.get('unsubscribes_per_member_vs_blast_ci_high'))}); expected "
         f"{fmt(ratios.get('expected_unsubscribes_per_member_vs_blast'))}"),
    ]
    items = "".join(f"<li>{esc(name)}<strong>{esc(value)}</strong>{esc(note)}</li>" for name, value, note in kpis)
    rows = [(name, fmt(p["sends"]), fmt(p["conversions"]), fmt(p["revenue"]), fmt(p["send_cost"]),
             fmt(p["unsubscribes"]), fmt(p["unsubscribe_cost"]), fmt(p["net_value"]),
             fmt(p["unsubscribes_per_member"], 4), fmt(p["complaints"]), fmt(p.get("expected_net_value")),
             fmt(p.get("expected_unsubscribes_per_member"), 4), fmt(p["through_stack"]))
            for name, p in policies.items()]
    net = table("Net value per policy over the run (revenue − send costs − unsubscribes × unsubscribe cost)",
                ["policy", "sends", "conversions", "revenue", "send cost", "unsubscribes", "unsubscribe cost",
                 "net value", "unsubscribes / member", "complaints", "expected net value",
                 "expected unsubscribes / member", "through the stack"], rows)
    e = s["events"]
    d = s["decisions"]
    meta = (f"Seed {fmt(s['seed'])} · {fmt(s['members'])} members · {fmt(s['days'])} days · "
            f"{fmt(d['total'])} decisions ({fmt(d['holdout'])} holdout) · events published "
            f"{fmt(e.get('published'))}, processed {fmt(e.get('processed'))}, dead-lettered "
            f"{fmt(e.get('dead_lettered'))}")
    return (f'<p class="meta">{esc(meta)}</p>'
            + _section("headline", "Headline",
                       "Net value is the revenue attributed to messages minus what sending cost and what the "
                       "unsubscribes cost (parameters at the end). The incremental conversions compare the offer "
                       "messages sent with the same decisions withheld from the stable holdout at send time: "
                       "what the messages caused, not a click count (the lift section has the member-level "
                       "comparison too). A ratio is n/a when its denominator is zero or negative.",
                       f'<ul class="kpis">{items}</ul>', net))


def _lift(s: Mapping[str, Any]) -> str:
    metrics = s["lift_by_metric"]
    message = s["lift"]
    rows = [{"label": f"offer messages redeemed within {fmt(message.get('window_days'), 0)} days",
             "estimate": message.get("relative"), "low": message.get("ci_low"),
             "high": message.get("ci_high"), "colour": "#D55E00"}]
    rows += [{"label": METRIC_NAMES.get(m, m), "estimate": f.get("relative"), "low": f.get("ci_low"),
              "high": f.get("ci_high"), "colour": "#0072B2"} for m, f in metrics.items()]
    description = "; ".join(f"{r['label']}: {pct(r['estimate'])}, 95 % CI {pct(r['low'])} to {pct(r['high'])}"
                            for r in rows)
    chart = interval_chart("lift-chart", "Relative lift over the holdout, with 95 % intervals", rows,
                           [{"value": 0.0, "label": "no effect", "kind": "no effect", "first_row": 0,
                             "last_row": len(rows) - 1}],
                           "relative lift (treated ÷ holdout − 1)", description, as_percent=True)
    data = table("Lift against the holdout (bootstrap over members, groups resampled independently)",
                 ["metric", "treated mean", "holdout mean", "relative lift", "95 % CI", "difference",
                  "difference 95 % CI", "treated", "holdout"],
                 [(METRIC_NAMES.get(m, m), fmt(f.get("treated_mean"), 3), fmt(f.get("holdout_mean"), 3),
                   pct(f.get("relative")), _ci(f, as_percent=True), fmt(f.get("absolute"), 3),
                   f"{fmt(f.get('absolute_ci_low'), 3)} to {fmt(f.get('absolute_ci_high'), 3)}",
                   fmt(f.get("treated_n")), fmt(f.get("holdout_n"))) for m, f in metrics.items()])
    messages = table(
        "Lift of the messages: offer messages sent to treated members vs the same decisions withheld from "
        "the holdout at send time (bootstrap over members)",
        ["messages", "count", "redeemed within the window", "rate", "95 % CI of the difference",
         "incremental conversions", "members"],
        [("sent (treated)", fmt(message.get("treated_exposures")), fmt(message.get("treated_redeemed")),
          fmt(message.get("treated_mean"), 4),
          f"{fmt(message.get('absolute_ci_low'), 4)} to {fmt(message.get('absolute_ci_high'), 4)}",
          fmt(message.get("incremental"), 1), fmt(message.get("treated_n"))),
         ("withheld (holdout)", fmt(message.get("holdout_exposures")), fmt(message.get("holdout_redeemed")),
          fmt(message.get("holdout_mean"), 4), "", "", fmt(message.get("holdout_n")))])
    return _section("lift", "Lift against the holdout",
                    "Each dot is how much more the treated members did than the holdout; the whisker is the "
                    "95 % bootstrap interval (an open end means unbounded: the holdout had almost no such "
                    "redemptions). An interval that crosses the dashed zero line means the run cannot tell "
                    "the effect from chance. The first row compares like with like: the holdout's decisions "
                    "go through dispatch like sends and are withheld at the last step, so a withheld message "
                    "is what a sent one would have been, and the row counts only redemptions of the "
                    "message's offer in the window after it. The member-level rows count every redemption "
                    "(organic ones too: the holdout can only redeem organically) and every purchase of the "
                    "run, so most of what they measure is noise no message could change, and they need far "
                    "more members.",
                    _figure(chart, "Lift per metric: point estimate and 95 % interval; dashed line: no effect."),
                    messages, data)


def _conversions(s: Mapping[str, Any]) -> str:
    daily = s["series"]["daily_conversions"]
    cumulative = {name: _cumsum(values) for name, values in daily.items()}
    description = "; ".join(f"{name}: {fmt(v[-1] if v else 0, 0)} attributed conversions by day {len(v)}"
                            for name, v in cumulative.items())
    chart = line_chart("conversions-chart", "Cumulative attributed conversions per policy", cumulative,
                       "day of the run", "conversions (cumulative)", description)
    return _section("conversions", "Attributed conversions over the run",
                    "Each line adds up, day by day, the offer redemptions attributed to a policy's messages, "
                    "in the same simulated world. A steeper line converts more; the oracle (which knows the "
                    "members' hidden preferences) is the ceiling. Attributed conversions are only part of "
                    "the story: see net value and unsubscribes.",
                    _figure(chart, description))


def _cumsum(values: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


def _timing(s: Mapping[str, Any]) -> str:
    gaps = s["series"]["send_hour_gap"]
    bins = [f"{h}–{h + 1} h" for h in range(12)] + ["12 h +"]
    shares = {name: [c / g["sends"] if g["sends"] else None for c in g["counts"]] for name, g in gaps.items()}
    description = "; ".join(f"{name}: {pct(g['within_2h_share'], 0, False)} of {fmt(g['sends'])} sends within "
                            f"2 h of the member's active hour, mean gap {fmt(g['mean'], 1)} h"
                            for name, g in gaps.items())
    chart = bar_chart("timing-chart", "Share of sends by hours between send time and the member's active hour",
                      bins, shares, "share of the policy's sends", description, value_digits=3)
    data = table("Send time against the member's active hour",
                 ["policy", "sends", "mean gap (h)", "within 2 h"],
                 [(name, fmt(g["sends"]), fmt(g["mean"], 2), pct(g["within_2h_share"], 1, False))
                  for name, g in gaps.items()])
    return _section("timing", "Send time vs the member's active hour",
                    "For every send, the gap in hours between its local send time and the hour the member is "
                    "most active (known to the simulator, hidden from the engine). Bars on the left mean "
                    "messages arrive when members are around.",
                    _figure(chart, description), data)


def _channels(s: Mapping[str, Any]) -> str:
    mixes = {name: p["channel_mix"] for name, p in s["policies"].items()}
    parts = [c for c in CHANNEL_COLOURS if any(c in m for m in mixes.values())]
    parts += sorted({c for m in mixes.values() for c in m} - set(parts))
    description = "; ".join(f"{name}: " + ", ".join(f"{c} {n:,}" for c, n in mix.items()) for name, mix in mixes.items())
    chart = stacked_share_chart("channels-chart", "Channel mix per policy (share of sends)", mixes, parts,
                                description or "no sends")
    data = table("Sends per channel", ["policy", *parts, "total"],
                 [(name, *(fmt(mix.get(c, 0)) for c in parts), fmt(sum(mix.values()))) for name, mix in mixes.items()])
    return _section("channels", "Channel mix",
                    "How each policy split its sends between email, push and SMS. SMS costs far more per "
                    "message than email or push, so a policy that shifts to SMS must earn it back.",
                    _figure(chart, description or "no sends"), data)


def _unsubscribes(s: Mapping[str, Any]) -> str:
    policies = s["policies"]
    names = list(policies)

    def per_thousand(p: Mapping[str, Any], key: str) -> float | None:
        return p[key] * 1000 if p[key] is not None else None

    series = {"unsubscribes": [per_thousand(policies[n], "unsubscribes_per_member") for n in names],
              "complaints": [per_thousand(policies[n], "complaints_per_member") for n in names]}
    description = "; ".join(f"{n}: {fmt(policies[n]['unsubscribes'])} unsubscribes, "
                            f"{fmt(policies[n]['complaints'])} complaints" for n in names)
    chart = bar_chart("unsubscribes-chart", "Unsubscribes and complaints per 1,000 members", names, series,
                      "per 1,000 members", description, colours={"unsubscribes": "#D55E00", "complaints": "#999999"})
    return _section("unsubscribes", "Unsubscribes and complaints",
                    "Every unsubscribe is a member the programme can no longer reach on that channel; a "
                    "complaint (spam report) hurts deliverability for everyone. Lower is better.",
                    _figure(chart, description))


def _ope(s: Mapping[str, Any]) -> str:
    rows: list[dict[str, Any]] = []
    references = []
    table_rows = []
    for target, result in s["ope_by_target"].items():
        first = len(rows)
        for key in ("ips", "snips", "dr"):
            figure = result[key]
            rows.append({"label": f"{target} · {ESTIMATOR_NAMES[key]}", "estimate": figure["estimate"],
                         "low": figure["ci_low"], "high": figure["ci_high"], "colour": ESTIMATOR_COLOURS[key]})
            table_rows.append((target, ESTIMATOR_NAMES[key], fmt(figure["estimate"], 4), _ci(figure, digits=4),
                               fmt(result["truth"], 4), fmt(result["n"]), fmt(result["matched"]),
                               fmt(result["ess"], 0)))
        references.append({"value": result["truth"], "label": f"truth of {target}", "kind": "true value",
                           "first_row": first, "last_row": len(rows) - 1})
    if not rows:
        return _section("ope", "Off-policy estimates", "The decision log names no target policy: nothing to estimate.")
    description = "; ".join(f"{r['label']}: {fmt(r['estimate'], 4)} (95 % CI {fmt(r['low'], 4)} to "
                            f"{fmt(r['high'], 4)})" for r in rows)
    truths = "; ".join(f"{ref['label']}: {fmt(ref['value'], 4)}" for ref in references)
    chart = interval_chart("ope-chart", "Off-policy estimates of each target policy's value, against the truth",
                           rows, references, "reward per decision", f"{description}. {truths}.")
    data = table("Off-policy estimates (reward per decision; holdout decisions excluded)",
                 ["target", "estimator", "estimate", "95 % CI", "truth", "decisions", "matched", "ESS"], table_rows)
    return _section("ope", "Off-policy estimates vs the truth",
                    "From the logged decisions and their propensities alone, each estimator says what a "
                    "target policy would have earned per decision; the dashed line is the truth, which "
                    "only the simulator knows. A trustworthy estimator's interval contains the dashed line. "
                    "This is the gate a challenger model passes before it gets traffic. IPS reweights the "
                    "decisions where the logged action is the target's; SNIPS normalises the weights; DR "
                    "adds the model's prediction and corrects it with the reweighted residuals. ESS is the "
                    "effective number of decisions behind the estimate.",
                    _figure(chart, "Dots: estimates; whiskers: 95 % bootstrap intervals; dashed lines: truth."),
                    data)


def _fairness(s: Mapping[str, Any]) -> str:
    f = s["fairness"]
    bars, rows = [], []
    for dimension, segments in f["by"].items():
        for seg in segments:
            group = DIMENSION_NAMES.get(dimension, dimension)
            bars.append({"group": group, "label": seg["segment"], "value": seg["offer_value_per_member"],
                         "sends": seg["marketing_sends_per_member"]})
            rows.append((f"{group}: {seg['segment']}", fmt(seg["members"]), fmt(seg["offer_value_per_member"], 2),
                         fmt(seg["marketing_sends_per_member"], 2), pct(seg["reached_share"], 0, False),
                         fmt(seg["decisions_per_member"], 2), pct(seg["send_rate"], 0, False),
                         fmt(seg["in_disparity"])))
    if not bars:
        return _section("fairness", "Fairness of offer allocation", "No treated members: nothing to compare.")
    value_desc = "; ".join(f"{b['group']}: {b['label']}: {fmt(b['value'], 2)}" for b in bars)
    sends_desc = "; ".join(f"{b['group']}: {b['label']}: {fmt(b['sends'], 2)}" for b in bars)
    value_chart = hbar_chart("fairness-value-chart", "Mean offer value received per member, by segment", bars,
                             "#009E73", "offer value per member", value_desc)
    sends_chart = hbar_chart("fairness-sends-chart", "Marketing sends per member, by segment",
                             [{**b, "value": b["sends"]} for b in bars], "#0072B2", "marketing sends per member",
                             sends_desc)
    disparity = table(
        f"Disparity: largest ÷ smallest segment mean, segments with at least {f['min_members']} members",
        ["dimension", "segments compared", "offer value ratio", "marketing sends ratio"],
        [(DIMENSION_NAMES.get(k, k), fmt(v["segments_compared"]), fmt(v["offer_value_ratio"]),
          fmt(v["marketing_sends_ratio"])) for k, v in f["disparity"].items()])
    data = table("Offer allocation by segment (treated members; holdout excluded)",
                 ["segment", "members", "offer value / member", "marketing sends / member", "reached",
                  "decisions / member", "send rate", "in disparity"], rows)
    return _section("fairness", "Fairness of offer allocation",
                    "Who gets the offers. Bars compare the mean value of the offers sent to a member, and the "
                    "number of marketing messages, across tiers, age bands and new vs existing members. "
                    "Differences are not unfair by themselves (a gold member shops more), but a large ratio "
                    "deserves a look; small segments are shown but left out of the ratio.",
                    _figure(value_chart, value_desc), _figure(sends_chart, sends_desc), disparity, data)


def _json_cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _models(s: Mapping[str, Any]) -> str:
    versions = s["model_versions"]
    if not versions:
        return _section("models", "Model versions", "No retraining happened during the run.")
    keys: list[str] = []
    for v in versions:
        keys += [k for k in v if k not in keys]
    rows = [[_json_cell(v.get(k, "")) for k in keys] for v in versions]
    return _section("models", "Model versions",
                    "Each retraining during the run, with the gate's decision (promote or keep the champion).",
                    table("Retraining history", keys, rows, text_columns=range(1, len(keys))))


def _parameters(s: Mapping[str, Any]) -> str:
    rows = [(key, _json_cell(value)) for key, value in s["parameters"].items()]
    return _section("parameters", "Parameters",
                    "The costs and settings behind the figures above. Send costs are per message; the "
                    "unsubscribe cost is an assumed lost future value of a member (see docs/report.md).",
                    table("Parameters of the run and of the report", ["parameter", "value"], rows, text_columns=[1]))


def render_report(summary: Mapping[str, Any]) -> str:
    """The whole page, from a summary built by fidelio.report.summary.build_summary."""
    sections = [_headline(summary), _lift(summary), _conversions(summary), _timing(summary), _channels(summary),
                _unsubscribes(summary), _ope(summary), _fairness(summary), _models(summary), _parameters(summary)]
    title = f"Fidelio demo report — seed {summary['seed']}"
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{esc(title)}</h1>" + "".join(sections) + "</main></body></html>\n")
