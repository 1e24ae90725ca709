"""`python manage.py demo`: the whole product on one laptop (what `make run` calls).

Starts the stand-in PollyBot API (sandbox) in this process, migrates the
SQLite database, (re)creates a demo login and serves the site. Ctrl-C stops
both: the sandbox runs on a daemon thread of this one process, so nothing is
left behind.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from sandbox.data import SEED_LEAD
from sandbox.server import serve

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Run the site against the stand-in PollyBot API with demo data and a demo login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=8000, help="port of the site (default 8000)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("The demo runs with DEBUG on only: use `make run`.")
        sandbox_url = urlsplit(settings.POLLYBOT_BASE_URL)
        if sandbox_url.hostname not in {"127.0.0.1", "localhost"} or not sandbox_url.port:
            raise CommandError(
                "POLLYBOT_BASE_URL must be http://127.0.0.1:PORT for the demo "
                "(the sandbox is started on that port): use `make run`."
            )
        from sandbox.app import SandboxApp

        sandbox = serve(
            SandboxApp(api_key=settings.POLLYBOT_API_KEY),
            host="127.0.0.1",
            port=sandbox_url.port,
        )
        call_command("migrate", interactive=False, verbosity=0)
        password = secrets.token_urlsafe(12)
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()

        port = options["port"]
        lead_path = reverse("leads:detail", kwargs={"lead_id": SEED_LEAD["id"]})
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Stand-in PollyBot API: {sandbox.base_url}",
                    f"  Demo login:            {DEMO_USERNAME} / {password}",
                    f"  The seed lead:         http://127.0.0.1:{port}{lead_path}",
                    "  Press Ctrl-C to stop.",
                    "",
                ]
            )
        )
        try:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
        finally:
            sandbox.stop()
