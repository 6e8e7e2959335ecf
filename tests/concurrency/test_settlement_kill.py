"""A batch computation killed halfway in a real Celery worker (SIGKILL) is finished by a re-run.

The test process publishes ``compute_batch`` to Redis; a ``celery worker`` subprocess on the test
database computes it, slowed down by the test-only ``SETTLEMENT_TEST_PAUSE_SECONDS`` so that it
can be killed once some providers' parts are committed and not all. The batch is then computed
again in-process: same payouts, totals equal to an uninterrupted computation (a GROUP BY taken
before anything ran), every redemption in exactly one payout, its provider's.

(The exception injected after a provider is covered in tests/redemption/test_settlement.py.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone
from kombu import pools as kombu_pools

from aptic.celery import app as celery_app
from redemption.models import (
    BatchStatus,
    HeldProvider,
    Payout,
    Redemption,
    RedemptionLine,
    SettlementBatch,
)
from redemption.services.redeem import cheques_redeem
from redemption.services.settlement import batch_compute, batch_create
from redemption.tasks import compute_batch, render_statement
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import actor_for, operator_membership

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/13"
PROVIDERS = 30
PAUSE_SECONDS = 0.3  # after each provider, in the worker only
KILL_AFTER_PAYOUTS = PROVIDERS // 4


def _redis():
    """A client of the test broker's database, or a skip saying why."""
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1).close()
        import redis

        client = redis.Redis.from_url(BROKER_URL, socket_timeout=2)
        client.ping()
    except Exception as error:  # any failure means: no usable Redis
        pytest.skip(f"needs Redis on {REDIS_HOST}:{REDIS_PORT} for a real worker ({error})")
    return client


def _drop_broker_pools() -> None:
    # The app and kombu's global registries cache broker connection pools; they must follow
    # ``broker_url``, and no closed pool may stay registered for later tests (even eager
    # ``delay`` acquires a producer).
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker():
    """The app publishes to Redis db 13 for this test (not in-process); purged before and after."""
    client = _redis()
    client.flushdb()
    saved = {
        "broker_url": celery_app.conf.broker_url,
        "task_always_eager": celery_app.conf.task_always_eager,
    }
    celery_app.conf.broker_url = BROKER_URL
    celery_app.conf.task_always_eager = False
    _drop_broker_pools()
    yield client
    celery_app.conf.update(saved)
    _drop_broker_pools()
    client.flushdb()
    client.close()


def _database_url() -> str:
    db = connection.settings_dict  # the test database pytest-django created
    credentials = quote(db["USER"] or "postgres", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    port = db["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def worker(broker, tmp_path):
    """Start a real worker on the test database; it is always killed and reaped afterwards."""
    started: list[subprocess.Popen] = []
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")

    def start() -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "aptic.settings",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "SETTLEMENT_TEST_PAUSE_SECONDS": str(PAUSE_SECONDS),
        }
        process = subprocess.Popen(  # our own worker, fixed arguments
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "aptic",
                "worker",
                "-P",
                "solo",
                "-c",
                "1",
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"settlement-kill-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    start.log = lambda: log_path.read_text(errors="replace")[-3000:]
    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    log.close()


def _world() -> tuple[dict[int, tuple[int, int]], object]:
    """30 accredited providers with redemptions of 1 to 3 cheques, all made yesterday."""
    world = handed_out_cheques(booklets=10, size=10)
    codes = iter(world.codes)
    for index in range(PROVIDERS):
        member, site = accredited_provider_member(services=[world.service])
        for size in (1, 1 + index % 3):
            cheques_redeem(
                actor=actor_for(member),
                codes=[next(codes) for _ in range(size)],
                service=world.service,
                site=site,
            )
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    # What an uninterrupted computation pays each provider, computed on its own.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT provider_id, sum(amount_cents), count(*) FROM redemption_redemption "
            "WHERE status = 'active' AND payout_id IS NULL GROUP BY provider_id"
        )
        expected = {provider: (amount, count) for provider, amount, count in cursor.fetchall()}
    assert len(expected) == PROVIDERS
    return expected, operator_membership()


def _payouts(batch: SettlementBatch) -> dict[int, tuple[int, int, int]]:
    return {
        provider: (pk, amount, count)
        for pk, provider, amount, count in Payout.objects.filter(batch=batch).values_list(
            "pk", "provider_id", "amount_cents", "redemption_count"
        )
    }


def _wait_for_partial_payouts(batch: SettlementBatch, process, worker) -> int:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}):\n{worker.log()}")
        done = Payout.objects.filter(batch=batch).count()
        if done >= KILL_AFTER_PAYOUTS:
            assert done < PROVIDERS, "the computation finished before it could be killed"
            return done
        time.sleep(0.05)
    pytest.fail(f"no payouts from the worker in 90 s:\n{worker.log()}")


def test_a_worker_killed_mid_batch_leaves_a_partial_batch_that_a_rerun_finishes_exactly(
    worker, broker, monkeypatch
):
    expected, operator = _world()

    queued: list[int] = []
    with monkeypatch.context() as patch:
        patch.setattr(compute_batch, "delay", queued.append)
        batch = batch_create(
            actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
        )
    assert queued == [batch.pk]  # batch_create queues the computation on commit

    process = worker()
    compute_batch.delay(batch.pk)  # published to Redis, computed by the worker
    _wait_for_partial_payouts(batch, process, worker)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL

    # Killed halfway: still computing, some providers' parts committed, each one complete.
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPUTING
    partial = _payouts(batch)
    assert 0 < len(partial) < PROVIDERS, len(partial)
    for provider, (_pk, amount, count) in partial.items():
        assert (amount, count) == expected[provider]
    assert Redemption.objects.filter(payout__isnull=False).count() == sum(
        count for _pk, _amount, count in partial.values()
    )
    assert not HeldProvider.objects.exists()

    # The same computation again, in-process (a retried task does exactly this).
    statements: list[int] = []
    monkeypatch.setattr(render_statement, "delay", statements.append)
    batch = batch_compute(batch_id=batch.pk)

    assert batch.status == BatchStatus.PENDING_APPROVAL
    payouts = _payouts(batch)
    assert sorted(payouts) == sorted(expected)  # one payout per provider
    assert {p: (amount, count) for p, (_pk, amount, count) in payouts.items()} == expected
    assert {p: payouts[p] for p in partial} == partial  # the killed run's payouts are kept
    assert batch.payout_count == PROVIDERS
    assert batch.total_cents == sum(amount for amount, _count in expected.values())
    assert batch.redemption_count == sum(count for _amount, count in expected.values())
    assert sorted(statements) == sorted(pk for pk, _amount, _count in payouts.values())

    # Every redemption in exactly one payout (one column), its provider's; each cheque paid once.
    assert not Redemption.objects.filter(payout__isnull=True).exists()
    assert not Redemption.objects.exclude(payout__provider=F("provider")).exists()
    assert Redemption.objects.count() == batch.redemption_count
    paid_lines = RedemptionLine.objects.filter(redemption__payout__batch=batch)
    assert paid_lines.count() == paid_lines.values("cheque").distinct().count()
    assert batch_compute(batch_id=batch.pk).total_cents == batch.total_cents  # late retry: no-op
