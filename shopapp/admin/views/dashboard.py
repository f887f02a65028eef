"""The admin landing page: the owner's dashboard with its server-drawn revenue chart."""

from __future__ import annotations

from dataclasses import dataclass

from flask_admin import AdminIndexView, expose

from shopapp.admin.views.base import (
    StaffOnly,
)
from shopapp.models import OrderStatus
from shopapp.services import audit, books, disputes, staff
from shopapp.services.catalog import format_money


@dataclass(frozen=True)
class ChartBar:
    """One day's bar in SVG user units (y grows downwards), with its label for tooltips and the table."""

    x: float
    y: float
    width: float
    height: float
    negative: bool
    label: str


@dataclass(frozen=True)
class RevenueChart:
    """A server-drawn bar chart of net revenue per day: plain SVG attributes, no script or inline style (CSP)."""

    currency: str
    width: int
    height: int
    baseline: float
    bars: list[ChartBar]
    ticks: list[tuple[float, str]]  # x position, day label
    top_label: str
    bottom_label: str
    total: str
    days: list[staff.DayRevenue]


CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_TOP, CHART_BOTTOM = 640, 220, 72, 12, 28


def revenue_chart(currency: str, days: list[staff.DayRevenue]) -> RevenueChart:
    """Lay out one currency's daily net revenue as bars scaled between the lowest (or 0) and highest value."""
    values = [d.net for d in days]
    high, low = max(0, *values), min(0, *values)
    span = (high - low) or 1
    plot_width = CHART_WIDTH - CHART_LEFT - 8
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    step = plot_width / max(1, len(days))

    def y(value: int) -> float:
        return round(CHART_TOP + (high - value) / span * plot_height, 1)

    bars = []
    for n, d in enumerate(days):
        top, bottom = sorted((y(d.net), y(0)))
        bars.append(ChartBar(
            x=round(CHART_LEFT + n * step + step * 0.15, 1), y=top, width=round(step * 0.7, 1),
            height=max(round(bottom - top, 1), 0.5 if d.net else 0), negative=d.net < 0,
            label=f"{d.day.isoformat()}: {format_money(d.net, currency)} net "
                  f"({format_money(d.paid, currency)} paid, {format_money(d.refunded, currency)} refunded)",
        ))  # fmt: skip
    # A label every 7 days counted back from today, so the last bar is always labelled and none collide.
    ticks = [(round(CHART_LEFT + n * step + step / 2, 1), d.day.strftime("%b %d")) for n, d in enumerate(days)
             if (len(days) - 1 - n) % 7 == 0]  # fmt: skip
    return RevenueChart(
        currency=currency, width=CHART_WIDTH, height=CHART_HEIGHT, baseline=y(0), bars=bars, ticks=ticks,
        top_label=format_money(high, currency), bottom_label=format_money(low, currency),
        total=format_money(sum(values), currency), days=days,
    )  # fmt: skip


class StaffIndexView(StaffOnly, AdminIndexView):
    """The admin landing page: the owner's dashboard (figures, 30-day revenue chart, what needs attention)."""

    @expose("/")
    def index(self) -> str:
        dashboard = staff.dashboard()
        charts = [revenue_chart(currency, days) for currency, days in dashboard.revenue_by_day.items()]
        return self.render(
            "admin/index.html",
            dashboard=dashboard,
            charts=charts,
            money=format_money,
            statuses=list(OrderStatus),
            last_audit=audit.last_audit(),
            plain_amount=books.plain_amount,
            open_disputes=disputes.open_disputes(),  # first on the page: soonest due first
        )
