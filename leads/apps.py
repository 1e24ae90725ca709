from django.apps import AppConfig


class LeadsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "leads"
    verbose_name = "Leads"

    def ready(self) -> None:
        # Receivers: the user_logged_in one that starts a session's absolute
        # lifetime (leads.middleware), and those that keep the cache's copies of
        # database rows in step with the database (leads.signals).
        from leads import middleware, signals  # noqa: F401

        signals.connect_permission_signals()
