"""`/console/`: the account at a glance."""

from __future__ import annotations

from flask import g, render_template

from bot.console import bp, charts, stats
from bot.console.auth import login_required


@bp.get("/")
@login_required()
def dashboard() -> str:
    account = g.account
    rates = stats.delivery_rates(account)
    opt_outs = stats.opt_outs(account)
    final = sum(r.final for r in rates)
    delivered = sum(r.delivered for r in rates)
    return render_template(
        "console/dashboard.html",
        money=stats.money_to_date(account),
        today=stats.today_by_group(account),
        rate_chart=charts.rate_chart(
            [r.day for r in rates], [r.rate for r in rates], "Delivery rate per day, last 30 days"
        ),
        overall=delivered / final if final else None,
        final=final,
        keywords=stats.top_keywords(account),
        opt_out_chart=charts.count_chart([d for d, _ in opt_outs], [n for _, n in opt_outs], "Opt-outs per day"),
        opt_out_total=sum(n for _, n in opt_outs),
    )
