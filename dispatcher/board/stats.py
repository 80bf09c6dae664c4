"""Per-warning statistics: acknowledgement rate within 5/15/30 minutes by town and by role, and a
server-rendered SVG of the share acknowledged over time (no JavaScript, prints as it shows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from ..domain.callouts import ACK_WINDOWS

WINDOWS = ACK_WINDOWS  # minutes


def _within(rows: list[dict[str, Any]], minutes: int) -> int:
    return sum(1 for r in rows if r["seconds"] is not None and r["seconds"] <= minutes * 60)


def table(rows_in: list[dict[str, Any]], key: Callable[[dict[str, Any]], Iterable[str]]) -> list[dict[str, Any]]:
    """Board rows grouped: a call-out counts in every group ``key`` gives it; cancelled ones are left out."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in rows_in:
        if c["state"] == "cancelled":
            continue
        for name in key(c) or ["—"]:
            groups.setdefault(name, []).append(c)
    out = []
    for name in sorted(groups):
        rows = groups[name]
        total = len(rows)
        acked = sum(1 for r in rows if r["state"] == "acknowledged")
        out.append({"name": name, "total": total, "acknowledged": acked,
                    "rates": [round(100 * _within(rows, m) / total) for m in WINDOWS]})
    return out


class Chart(str):
    """The chart's SVG (in Chinese, as a str), able to draw itself again in the board's language:
    ``chart.in_lang("en")`` (templates/board/_stats.html)."""

    rows: list[dict[str, Any]]
    size: tuple[int, int, int]

    def in_lang(self, lang: str) -> str:
        return str(self) if lang != "en" else _svg(self.rows, *self.size, lang="en")


def chart_svg(callouts: list[dict[str, Any]], width: int = 720, height: int = 260, horizon: int = 30,
              lang: str = "zh") -> Chart:
    """Cumulative share of call-outs acknowledged, minute 0 to ``horizon``, with the 5/15/30 marks;
    the axis and the label in the board's language (分钟, 已确认)."""
    chart = Chart(_svg(callouts, width, height, horizon, lang))
    chart.rows, chart.size = callouts, (width, height, horizon)
    return chart


def _svg(callouts: list[dict[str, Any]], width: int, height: int, horizon: int, lang: str) -> str:
    live = [c for c in callouts if c["state"] != "cancelled"]
    total = len(live) or 1
    times = sorted(c["seconds"] / 60 for c in live if c["seconds"] is not None)
    left, right, top, bottom = 56, 16, 16, 40
    w, h = width - left - right, height - top - bottom

    def x(minute: float) -> float:
        return left + w * min(minute, horizon) / horizon

    def y(share: float) -> float:
        return top + h * (1 - share)

    points = [(x(0), y(0))]
    for i, t in enumerate(times, start=1):
        if t > horizon:
            break
        points.append((x(t), points[-1][1]))
        points.append((x(t), y(i / total)))
    points.append((x(horizon), points[-1][1]))
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    grid = "".join(
        f'<line x1="{left}" x2="{left + w}" y1="{y(s):.1f}" y2="{y(s):.1f}" class="grid"/>'
        f'<text x="{left - 8}" y="{y(s) + 5:.1f}" text-anchor="end">{int(s * 100)}%</text>'
        for s in (0, 0.25, 0.5, 0.75, 1))
    unit = " min" if lang == "en" else "分钟"
    marks = "".join(
        f'<line x1="{x(m):.1f}" x2="{x(m):.1f}" y1="{top}" y2="{top + h}" class="mark"/>'
        f'<text x="{x(m):.1f}" y="{top + h + 24}" text-anchor="middle">{m}{unit}</text>' for m in (0, *WINDOWS))
    label = escape(f"{len(times)}/{len(live)} acknowledged" if lang == "en" else f"已确认 {len(times)}/{len(live)}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{label}" class="chart">{grid}{marks}'
            f'<polyline points="{path}" class="curve" fill="none"/></svg>')
