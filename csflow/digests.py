"""CSM digests and the leadership KPI report, queued in the outbox.

A CSM digest (daily, one per owner_email) gathers what that CSM should act
on: overdue renewals apart from those coming up, today's alerts, red or
declining accounts, open tasks by due date and account, and recent survey
comments, each linked to its page in the workspace, in the team's language
(internal_locale) with codes in words. A CSM with nothing to act on gets no
email. The KPI report (weekly) charts the last 12 months of kpi_monthly
as inline PNG images and is also written as a standalone HTML file.
Both are queued once per period (dedupe keys carry the date or ISO week).
"""

from __future__ import annotations

import base64
import functools
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from csflow.churn import latest_model
from csflow.config import Settings
from csflow.dbt import dbt_var
from csflow.links import account_url, task_url
from csflow.outbox import InlineImage, Message, queue_messages
from csflow.render import Renderer

# One query per digest section, each returning owner_email first.
SECTIONS: dict[str, str] = {
    "overdue_renewals": """
        select a.owner_email, a.account_id, a.account_name, r.end_date, -r.days_to_renewal as days_overdue
        from marts.renewal_windows r join marts.account_directory a using (account_id)
        where r.renewal_window = 'overdue'
        order by r.end_date""",
    "renewals": """
        select a.owner_email, a.account_id, a.account_name, r.end_date, r.days_to_renewal, r.renewal_window
        from marts.renewal_windows r join marts.account_directory a using (account_id)
        where r.renewal_window in ('0-2m', '2-4m')
        order by r.end_date""",
    "alerts": """
        select a.owner_email, a.account_id, a.account_name, p.playbook, p.status
        from ops.playbook_actions p join marts.account_directory a using (account_id)
        where p.as_of_date = :as_of and p.channel = 'csm_alert'
        order by p.playbook, a.account_name""",
    "at_risk": """
        select a.owner_email, a.account_id, a.account_name, round(h.health_score, 1) as health_score, h.health_band,
               round(h.score_change_30d, 1) as score_change_30d, h.is_declining
        from marts.account_health h join marts.account_directory a using (account_id)
        where h.as_of_date = :as_of and (h.health_band = 'red' or h.is_declining)
        order by h.health_score""",
    "tasks": """
        select lower(t.owner_email) as owner_email, t.task_id, a.account_id, a.account_name, t.title, t.due_date, t.due_date < :as_of as is_overdue
        from ops.tasks t join marts.account_directory a using (account_id)
        where t.status = 'open' and (t.snoozed_until is null or t.snoozed_until <= :as_of)
        order by t.due_date, a.account_name, t.task_id""",
    "comments": """
        select a.owner_email, a.account_id, a.account_name, s.survey_type, s.score, s.comment
        from marts.survey_comments s join marts.account_directory a using (account_id)
        where s.responded_date between :since and :as_of
        order by s.responded_date desc, s.response_id""",
}
COMMENT_DAYS = 7
EFFECTIVENESS_MONTHS = 3  # months of playbook effectiveness in the KPI report


@dataclass
class DigestReport:
    csm_digests: int = 0
    csms_with_nothing: int = 0
    kpi_report: bool = False
    kpi_report_file: Path | None = None
    queued: int = 0


def _csm_sections(conn: sa.Connection, as_of: date, settings: Settings) -> dict[str, dict[str, list[dict]]]:
    params = {"as_of": as_of, "since": as_of - timedelta(days=COMMENT_DAYS - 1)}
    by_owner: dict[str, dict[str, list[dict]]] = defaultdict(lambda: {name: [] for name in SECTIONS})
    for name, sql in SECTIONS.items():
        for row in conn.execute(sa.text(sql), params).mappings():
            by_owner[row["owner_email"]][name].append(dict(row))
    return by_owner


def csm_digests(conn: sa.Connection, settings: Settings, as_of: date, renderer: Renderer) -> tuple[list[Message], int]:
    """One digest per CSM with something to act on; also returns how many had nothing."""
    owners = conn.execute(sa.text("select distinct owner_email from marts.account_directory")).scalars().all()
    sections = _csm_sections(conn, as_of, settings)
    # Each item links to its page in the workspace.
    page_links = {"account_url": functools.partial(account_url, settings), "task_url": functools.partial(task_url, settings)}
    messages = []
    for owner in sorted(owners):
        found = sections.get(owner)
        if not found or not any(found.values()):
            continue
        rendered = renderer.render(
            "csm_digest",
            settings.internal_locale,
            {"owner_email": owner, "as_of_date": as_of, "comment_days": COMMENT_DAYS, **found, **page_links},
        )
        messages.append(
            Message(
                dedupe_key=f"digest:{owner.lower()}:{as_of}",
                kind="digest",
                to_email=owner,
                subject=rendered.subject,
                html_body=rendered.html,
                text_body=rendered.text,
            )
        )
    return messages, len(owners) - len(messages)


def _chart(months: list[date], series: dict[str, list[float | None]], title: str, percent: bool) -> str:
    """A small line chart as base64 PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
    for label, values in series.items():
        ax.plot(months, [v * 100 if (v is not None and percent) else v for v in values], marker="o", label=label)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.tick_params(labelsize=8)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def playbook_effectiveness(conn: sa.Connection, as_of: date, months: int = EFFECTIVENESS_MONTHS) -> list[dict]:
    """marts.playbook_effectiveness summed per play over the last `months` months up to as_of."""
    if conn.execute(sa.text("select to_regclass('marts.playbook_effectiveness')")).scalar() is None:
        return []
    return [
        dict(r)
        for r in conn.execute(
            sa.text(
                """select playbook, sum(fired) as fired, sum(sent) as sent, sum(won) as won,
                          sum(converted) as converted,
                          cast(sum(converted) as numeric) / sum(fired) as conversion_rate,
                          sum(attributed_revenue_base) as attributed_revenue_base
                   from marts.playbook_effectiveness
                   where month >= date_trunc('month', cast(:as_of as date)) - make_interval(months => :months - 1)
                     and month <= :as_of
                   group by playbook order by playbook"""
            ),
            {"as_of": as_of, "months": months},
        ).mappings()
    ]


def headlines(conn: sa.Connection, as_of: date) -> dict[str, object]:
    """What the KPI report opens with, in base currency: ARR today, ARR churned this quarter
    (to as_of), and ARR at risk this quarter: red or declining accounts with a renewal
    between as_of and the quarter's end."""
    quarter_start = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    quarter_end = (quarter_start + timedelta(days=92)).replace(day=1) - timedelta(days=1)
    row = conn.execute(
        sa.text(
            """select
                 (select sum(arr_base) from marts.account_directory) as arr,
                 (select coalesce(sum(churned_arr_base), 0) from marts.kpi_monthly
                   where month between :quarter_start and :as_of) as churned_arr,
                 (select coalesce(sum(d.arr_base), 0) from marts.account_directory d
                    join marts.account_health h on h.account_id = d.account_id and h.as_of_date = :as_of
                   where (h.health_band = 'red' or h.is_declining)
                     and exists (select 1 from marts.renewal_windows r where r.account_id = d.account_id
                                 and r.end_date between :as_of and :quarter_end)) as arr_at_risk"""
        ),
        {"as_of": as_of, "quarter_start": quarter_start, "quarter_end": quarter_end},
    ).mappings().one()
    quarter = f"{as_of.year}-Q{(as_of.month - 1) // 3 + 1}"
    return {**row, "quarter": quarter, "quarter_end": quarter_end}


def kpi_report(conn: sa.Connection, settings: Settings, as_of: date, renderer: Renderer) -> Message:
    """The leadership KPI report for the ISO week of as_of. Its charts plot complete months
    only (as_of's month would plot a few days as a month); the table marks it partial."""
    rows = [
        dict(r)
        for r in conn.execute(
            sa.text("select * from marts.kpi_monthly where month <= :as_of order by month desc limit 12"), {"as_of": as_of}
        ).mappings()
    ][::-1]
    complete = [r for r in rows if r["is_complete_month"]]
    months = [r["month"] for r in complete]

    def col(name: str) -> list[float | None]:
        return [None if r[name] is None else float(r[name]) for r in complete]

    images = [
        InlineImage("retention", "retention.png", "image/png", _chart(
            months,
            {"logo retention": col("logo_retention_rate"), "GRR": col("gross_revenue_retention"), "NRR": col("net_revenue_retention")},
            "Retention (%)", percent=True)),
        InlineImage("satisfaction", "satisfaction.png", "image/png", _chart(
            months, {"NPS": col("nps")}, "NPS", percent=False)),
        InlineImage("expansion", "expansion.png", "image/png", _chart(
            months, {"upsell rate": col("upsell_rate"), "cross-sell rate": col("cross_sell_rate")},
            "Expansion (%)", percent=True)),
    ]
    effectiveness = playbook_effectiveness(conn, as_of)
    year, week, _ = as_of.isocalendar()
    rendered = renderer.render(
        "kpi_report",
        settings.internal_locale,
        {
            "as_of_date": as_of,
            "week": f"{year}-W{week:02d}",
            "kpis": rows,
            "headlines": headlines(conn, as_of),
            "effectiveness": effectiveness,
            "model": latest_model(conn),
            "base_currency": dbt_var("base_currency"),
        },
    )
    return Message(
        dedupe_key=f"kpi-report:{year}-W{week:02d}",
        kind="report",
        to_email=settings.leadership_email,
        subject=rendered.subject,
        html_body=rendered.html,
        text_body=rendered.text,
        inline_images=images,
    )


def build_digests(
    engine: sa.Engine,
    settings: Settings,
    as_of: date,
    include_kpi_report: bool = True,
    include_csm_digests: bool = True,
) -> DigestReport:
    """Build and queue the CSM digests and/or the KPI report for as_of."""
    from csflow.mailers import standalone_html

    renderer = Renderer()
    report = DigestReport()
    with engine.begin() as conn:
        messages: list[Message] = []
        if include_csm_digests:
            digests, report.csms_with_nothing = csm_digests(conn, settings, as_of, renderer)
            report.csm_digests = len(digests)
            messages += digests
        if include_kpi_report:
            kpi = kpi_report(conn, settings, as_of, renderer)
            messages.append(kpi)
            report.kpi_report = True
            out = settings.state_dir.resolve() / "reports" / f"kpi-report-{as_of}.html"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(standalone_html(kpi), encoding="utf-8")
            report.kpi_report_file = out
        report.queued = len(queue_messages(conn, messages))
    return report
