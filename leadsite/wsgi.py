"""WSGI entry point (gunicorn: `leadsite.wsgi:application`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")

application = get_wsgi_application()
