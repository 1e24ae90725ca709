"""`python manage.py pollybot check` and `python manage.py pollybot get LEAD_ID`.

Both use the active connection (the admin's saved workspace, else the
environment) exactly as the pages do. Neither ever prints the key.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads import pollybot, services


class Command(BaseCommand):
    help = "Check the PollyBot connection, or print one lead as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("check", help="one real call (List Leads, limit=1); exit 1 on failure")
        get = actions.add_parser("get", help="print a lead as JSON; exit 1 on failure")
        get.add_argument("lead_id")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "check":
            result = services.check_connection()
            if not result.ok:
                raise CommandError(result.message, returncode=1)
            self.stdout.write(self.style.SUCCESS(result.message))
            return
        lead_id = options["lead_id"]
        try:
            connection = services.get_connection()
            data = services.get_client(connection).get_lead(pollybot.validate_lead_id(lead_id))
        except pollybot.PollyBotError as error:
            raise CommandError(str(error), returncode=1) from error
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
