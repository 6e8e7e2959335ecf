"""Redemption races with real concurrent HTTP requests against a live server, on PostgreSQL."""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest
from django.db import connections

from orgs.audit import Actor
from orgs.services import api_token_create
from redemption.models import Redemption, RedemptionLine
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from vouchers.models import Cheque

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    # The race sends hundreds of requests from one IP; limits are tested elsewhere.
    settings.REDEEM_RATE_PER_MEMBERSHIP = 10_000
    settings.REDEEM_RATE_PER_IP = 10_000
    settings.LOCKOUT_FAILURES = 10_000


def _post(base: str, key: str, body: dict, idempotency_key: str | None = None):
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    request = urllib.request.Request(  # noqa: S310 - the local live server
        f"{base}/api/v1/redemptions/", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, {"raw": raw[:200].decode(errors="replace")}


def _providers(world, count: int) -> list[str]:
    keys = []
    for _ in range(count):
        member, _site = accredited_provider_member(services=[world.service])
        keys.append(api_token_create(actor=Actor.system(), membership=member, name="race")[1])
    return keys


def _run_at_once(jobs) -> list:
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        barrier.wait(timeout=30)
        results[index] = job()
        connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def _race_single_cheques(base, world, keys):
    # Every provider scans the same cheques in the same order: each cheque is contested by all
    # of them at the same moment, the hardest case for the guard (and the surest race without).
    order = list(world.codes)
    random.Random(0).shuffle(order)

    def provider_job(key):
        return [
            _post(base, key, {"codes": [code], "service": world.service.slug}) for code in order
        ]

    return [
        answer
        for answers in _run_at_once([lambda k=k: provider_job(k) for k in keys])
        for answer in answers
    ]


def test_four_providers_redeeming_the_same_50_cheques_at_once_redeem_each_once(live_server):
    world = handed_out_cheques(booklets=5, size=10)
    keys = _providers(world, 4)
    answers = _race_single_cheques(live_server.url, world, keys)
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 50, 409: 150}, statuses
    assert all(
        body["errors"][0]["reason"] == "already_redeemed"
        for status, body in answers
        if status == 409
    )
    assert RedemptionLine.objects.filter(live=True).count() == 50
    assert Cheque.objects.filter(status="redeemed").count() == 50
    redeemed_codes = [body["codes"][0] for status, body in answers if status == 201]
    assert sorted(redeemed_codes) == sorted(world.codes)


def test_the_race_happens_without_the_compare_and_set_guard(live_server, settings):
    """Control: with the lock and the conditional UPDATE off, the same race goes wrong."""
    settings.REDEEM_UNSAFE_WITHOUT_GUARD = True
    world = handed_out_cheques(booklets=5, size=10)
    keys = _providers(world, 4)
    answers = _race_single_cheques(live_server.url, world, keys)
    statuses = Counter(status for status, _ in answers)
    # Several requests passed the check for the same cheque: only the last line of defence,
    # the partial unique index, stops the double payment — with errors, not clean answers.
    assert statuses != {201: 50, 409: 150}, statuses
    assert statuses[500] > 0 or statuses[201] > 50, statuses
    assert RedemptionLine.objects.filter(live=True).count() <= 50


def test_overlapping_baskets_race_without_deadlock_and_none_is_half_redeemed(live_server):
    world = handed_out_cheques(booklets=4, size=10)
    keys = _providers(world, 4)
    codes = world.codes
    baskets = [[codes[(start + i) % len(codes)] for i in range(5)] for start in range(0, 40, 3)]

    def job(key, seed):
        order = list(baskets)
        random.Random(seed).shuffle(order)
        return [
            (basket, _post(live_server.url, key, {"codes": basket, "service": world.service.slug}))
            for basket in order
        ]

    results = [
        item
        for items in _run_at_once([lambda k=k, i=i: job(k, i) for i, k in enumerate(keys)])
        for item in items
    ]
    assert all(status in (201, 409) for _basket, (status, _body) in results)
    won = [basket for basket, (status, _body) in results if status == 201]
    redeemed = set(Cheque.objects.filter(status="redeemed").values_list("code", flat=True))
    assert redeemed == {code for basket in won for code in basket}
    assert sum(len(b) for b in won) == len(redeemed)  # no cheque in two winning baskets
    for redemption in Redemption.objects.all():
        assert redemption.lines.count() == 5  # all or nothing


def test_the_same_idempotency_key_sent_twice_at_once_redeems_once(live_server):
    world = handed_out_cheques(booklets=1, size=5)
    [key] = _providers(world, 1)
    body = {"codes": world.codes[:3], "service": world.service.slug}
    answers = _run_at_once(
        [lambda: _post(live_server.url, key, body, idempotency_key="double-tap")] * 2
    )
    assert [status for status, _ in answers] == [201, 201], answers
    assert answers[0][1]["id"] == answers[1][1]["id"]
    assert Redemption.objects.count() == 1
    assert Cheque.objects.filter(status="redeemed").count() == 3
