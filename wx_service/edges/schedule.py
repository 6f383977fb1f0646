"""What the store runs when: the daily jobs and the sweeps of payments, the desk and reservations
(`flask --app wsgi scheduler`).

Every job is idempotent, so two schedulers, or a rerun after an outage, do no harm. Times are
cron fields in store time (Asia/Shanghai).
"""
from __future__ import annotations

from typing import Any

from wx_service.ground.scheduler import CronJob, build_cron_scheduler, start_interval_thread

DAILY_JOBS: tuple[CronJob, ...] = (
    ("benefits", "0 9 * * *", "members.benefit_jobs.grant_birthday_and_anniversary"),
    ("levels", "0 3 * * *", "members.benefit_jobs.recompute_levels"),
    ("card-resync", "0 3 * * *", "members.benefit_jobs.resync_cards"),
    ("points-expiry", "30 0 1 1 *", "members.benefit_jobs.expire_points_for_year"),
    # WeChat's trade bill for day D is ready from 10:00 the next day (Beijing time).
    ("reconciliation", "30 10 * * *", "payments.reconciliation.reconcile_yesterday"),
)

# The payment sweeps, every minute: each claims a bounded batch and is safe to run twice at once.
SWEEP_JOBS: tuple[CronJob, ...] = (
    ("pay-close-expired", "* * * * *", "payments.jobs.close_expired_orders"),
    ("pay-query-stale", "* * * * *", "payments.jobs.query_stale_orders"),
    ("pay-resume-codepay", "* * * * *", "payments.cashier.resume_codepay_flows"),
    # Customer service: lapsed offers move on and the queue moves; the Redis marks come back;
    # answers WeChat never answered are marked failed for the agent.
    ("desk-offers", "* * * * *", "service_desk.jobs.sweep_offers"),
    ("desk-marks", "* * * * *", "service_desk.jobs.refresh_marks"),
    ("desk-stalled", "* * * * *", "service_desk.jobs.fail_stalled_messages"),
    # Reservations: reminders come due (one per kind per booking, however often this runs); holds
    # expire, waiting-list offers pass on, no-shows are marked; notices a lost or killed job left
    # are sent again (OA templates) or marked unknown (subscribe messages).
    ("rsv-reminders", "* * * * *", "reservations.jobs.queue_reminders"),
    ("rsv-sweep", "* * * * *", "reservations.jobs.sweep"),
    ("rsv-stalled-notices", "* * * * *", "reservations.jobs.resume_stalled_notices"),
    # Content: scheduled activities, new arrivals and discounts go live (each once, by a
    # compare-and-swap on status) and expired ones come down.
    ("content-publish", "* * * * *", "marketing.content_jobs.publish_due"),
    # Pictures WeChat has not yet taken as permanent material (a lost job) are sent again, hourly.
    ("content-images", "17 * * * *", "marketing.content_jobs.resend_unsent_images"),
    # Brand news: a chunk whose worker died (its lease lapsed) or whose job was lost goes again.
    ("brand-news-stalled", "* * * * *", "marketing.news_jobs.resume_stalled"),
)


def build_scheduler(redis: Any):
    """RQ's cron scheduler with the daily jobs and the sweeps registered."""
    return build_cron_scheduler(redis, DAILY_JOBS + SWEEP_JOBS)


def start_demo_sweeps(queue: Any, every: float = 60.0) -> None:
    """The demo's stand-in for the cron scheduler (which needs RQ): the sweeps on the in-process
    queue every minute, so expired QR codes close, stalled payment-code flows resume, and
    reservation reminders go out in `./dev demo` as they do in production."""
    start_interval_thread(queue, (path for _name, _cron, path in SWEEP_JOBS), every)
