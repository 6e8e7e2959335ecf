"""WSGI entry point (``gunicorn aptic.wsgi:application``); see :mod:`aptic.handlers`."""

import os

from django.core.wsgi import get_wsgi_application

from aptic.handlers import TokenApiHandler, split_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aptic.settings")

application = split_application(get_wsgi_application(), TokenApiHandler())
