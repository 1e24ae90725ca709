"""The product's URLs unchanged, plus the benchmark's two comparison views."""

from django.urls import path

from bench import views
from leadsite.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    *product_urlpatterns,
    path("bench/floor/", views.floor, name="bench-floor"),
    path("bench/seed/<str:lead_id>/", views.seed_approach, name="bench-seed"),
]
