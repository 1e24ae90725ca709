from django.apps import AppConfig


class LeadsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "leads"
    verbose_name = "Leads"

    def ready(self) -> None:
        # Connects the user_logged_in receiver that starts a session's absolute lifetime.
        # Receivers that keep the cache's copies of rows in step with the database.
        from leads import (
            middleware,  # noqa: F401
            signals,
        )

        signals.connect_permission_signals()
