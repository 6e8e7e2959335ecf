"""The Celery application.

Without ``REDIS_URL`` the settings make tasks run in-process (``task_always_eager``), so the
embedded development set-up needs no broker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aptic.settings")

app = Celery("aptic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
