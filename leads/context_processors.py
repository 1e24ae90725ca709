"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, str]:
    # Pages name the time zone their times are shown in.
    return {"TIME_ZONE_NAME": settings.TIME_ZONE}
