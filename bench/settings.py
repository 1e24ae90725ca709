"""The product's settings, plus the two comparison views' routes (bench/urls.py).

Everything else (middleware, login, templates, caches, the environment-driven
production switches) is the product's, so the comparison views run behind
exactly what the lead page runs behind.
"""

from leadsite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
