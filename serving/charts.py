"""The sales view's charts, as inline SVG: the explanation waterfall and the score trend.

Every text drawn is escaped here. ``probability_points`` turns an explanation's
log-odds contributions into percentage points that add up exactly to the served
probability minus the average account's.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd


def day_label(value: Any) -> str:
    """A moment as ``YYYY-MM-DD``, or ``-`` when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return "-"
    return f"{pd.Timestamp(value):%Y-%m-%d}"


def sigmoid(x: float) -> float:
    """The probability of log-odds ``x``."""
    return 1.0 / (1.0 + math.exp(-x))


def probability_points(explanation: Mapping[str, Any]) -> tuple[dict[str, float], float]:
    """Each listed factor's effect in percentage points, and the rest's.

    The factors are applied one after another from the average account (largest
    first, as in the waterfall); each one's points are the change of probability
    it makes at that step, so all of them plus the rest add up exactly to the
    account's probability minus the average account's.
    """
    factors = sorted(
        [*explanation["positive"], *explanation["negative"]], key=lambda f: -abs(f["contribution"])
    )
    running = float(explanation["base_value"])
    points: dict[str, float] = {}
    for f in factors:
        after = running + float(f["contribution"])
        points[f["code"]] = 100 * (sigmoid(after) - sigmoid(running))
        running = after
    other = 100 * (sigmoid(running + float(explanation["other"])) - sigmoid(running))
    return points, other


def render_trend(trend: pd.DataFrame | None, *, width: int = 760, height: int = 160) -> str:
    """The score's daily snapshots as a small line chart (inline SVG), or a note without any."""
    if trend is None or len(trend) == 0:
        return '<p class="muted" id="no-trend">No stored daily scores yet for this account.</p>'
    times = [int(t) for t in pd.to_datetime(trend["as_of"]).astype("int64")]
    probs = [float(p) for p in trend["p_convert"]]
    left, right, top, bottom = 50, 20, 10, 30
    span = max(max(times) - min(times), 1)

    def xy(t: int, p: float) -> tuple[float, float]:
        x = left + (t - min(times)) / span * (width - left - right) if len(times) > 1 else width / 2
        return x, top + (1 - p) * (height - top - bottom)

    coords = [xy(t, p) for t, p in zip(times, probs, strict=True)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Score trend">'
    ]
    for p in (0.0, 0.5, 1.0):
        _, y = xy(min(times), p)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e4e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#7b8794">{p:.0%}</text>'
        )
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#1f3a5f" stroke-width="2"/>')
    for (x, y), t, p in zip(coords, trend["as_of"], probs, strict=True):
        parts.append(
            f'<circle class="trend-point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f3a5f">'
            f"<title>{html.escape(day_label(t))}: {p:.0%}</title></circle>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="10" fill="#7b8794">'
        f"{html.escape(day_label(trend['as_of'].iloc[0]))}</text>"
        f'<text x="{width - right}" y="{height - 8}" font-size="10" fill="#7b8794" '
        f'text-anchor="end">{html.escape(day_label(trend["as_of"].iloc[-1]))}</text></svg>'
    )
    return "".join(parts)


def _prob(logit: float) -> str:
    return f"{100 / (1 + math.exp(-logit)):.0f}%"


def render_waterfall(explanation: dict[str, Any], *, width: int = 760) -> str:
    """An SVG waterfall: average account -> each listed factor -> the rest -> this account.

    Bars are in log-odds (the unit in which contributions add up exactly); the
    running total is also shown as a probability at the start and the end.
    """
    steps: list[tuple[str, float, str]] = []
    factors = sorted(
        explanation["positive"] + explanation["negative"],
        key=lambda f: -abs(f["contribution"]),
    )
    for f in factors:
        steps.append(
            (f["text"], float(f["contribution"]), "pos" if f["contribution"] > 0 else "neg")
        )
    steps.append(("All other factors", float(explanation["other"]), "other"))
    base = float(explanation["base_value"])
    totals = [base]
    for _, delta, _ in steps:
        totals.append(totals[-1] + delta)
    lo, hi = min(totals), max(totals)
    pad = max((hi - lo) * 0.05, 0.1)
    lo, hi = lo - pad, hi + pad
    label_w, row_h, top = 330, 24, 10
    plot_w = width - label_w - 70

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    rows = len(steps) + 2
    height = top + rows * row_h + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Score waterfall">'
    ]
    colours = {"pos": "#059669", "neg": "#dc2626", "other": "#9aa5b1"}

    def label(row: int, text: str, weight: str = "normal") -> None:
        y = top + row * row_h + row_h * 0.65
        short = text if len(text) <= 48 else text[:47] + "..."
        parts.append(
            f'<text x="{label_w - 8}" y="{y:.1f}" text-anchor="end" font-size="12" '
            f'font-weight="{weight}">{html.escape(short)}</text>'
        )

    def marker(row: int, value: float, text: str) -> None:
        y = top + row * row_h
        parts.append(
            f'<rect x="{x(value) - 2:.1f}" y="{y + 3}" width="4" height="{row_h - 6}" fill="#1f3a5f"/>'
        )
        parts.append(
            f'<text x="{x(value) + 6:.1f}" y="{y + row_h * 0.65:.1f}" font-size="11">'
            f"{html.escape(text)}</text>"
        )

    label(0, "Average account", "bold")
    marker(0, base, f"{base:+.2f} ({_prob(base)})")
    for i, (text, delta, kind) in enumerate(steps, start=1):
        start, end = totals[i - 1], totals[i]
        y = top + i * row_h
        left, right = min(start, end), max(start, end)
        label(i, text)
        parts.append(
            f'<rect class="bar {kind}" x="{x(left):.1f}" y="{y + 4}" '
            f'width="{max(x(right) - x(left), 1):.1f}" height="{row_h - 8}" fill="{colours[kind]}"/>'
        )
        pts = 100 * (1 / (1 + math.exp(-end)) - 1 / (1 + math.exp(-start)))
        parts.append(
            f'<text x="{x(right) + 4:.1f}" y="{y + row_h * 0.65:.1f}" font-size="11">'
            f"{pts:+.1f} pts<title>{delta:+.3f} log-odds</title></text>"
        )
    final = totals[-1]
    label(rows - 1, "This account", "bold")
    marker(rows - 1, final, f"{final:+.2f} ({_prob(final)})")
    axis_y = top + rows * row_h + 4
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#cbd2d9"/>'
    )
    parts.append(
        f'<text x="{label_w}" y="{axis_y + 14}" font-size="10" fill="#7b8794">'
        f"{lo:+.1f}</text>"
        f'<text x="{label_w + plot_w}" y="{axis_y + 14}" font-size="10" fill="#7b8794" '
        f'text-anchor="end">{hi:+.1f} log-odds</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
