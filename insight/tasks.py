"""Celery tasks of the dashboards: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_kwargs": {"max_retries": 3}}


@shared_task(acks_late=True, **RETRY)
def refresh_insight() -> None:
    """Rebuild the dashboards' tallies (every 10 minutes, and when a dashboard finds them stale)."""
    from .services import insight_refresh

    insight_refresh()
