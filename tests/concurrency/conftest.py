"""Helpers for races on PostgreSQL: run callables at the same instant in separate connections."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connections


def race(*calls: Callable[[], object]) -> list[object]:
    """Run each call in its own thread and DB connection, released together by a barrier.

    Returns each call's result, or the exception it raised.
    """
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def racing():
    return race
