from django.urls import path

from leads import views

app_name = "leads"
urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("leads/", views.lead_list, name="list"),
    path("leads/lookup/", views.lookup, name="lookup"),
    path("leads/<str:lead_id>/", views.lead_detail, name="detail"),
    path("leads/<str:lead_id>/refresh/", views.lead_refresh, name="refresh"),
    path("leads/<str:lead_id>/contact.vcf", views.lead_vcard, name="vcard"),
    path("leads/<str:lead_id>/follow-up.ics", views.lead_calendar, name="calendar"),
    path("leads/<str:lead_id>/status/", views.lead_set_status, name="set_status"),
    path("leads/<str:lead_id>/follow-up/", views.lead_set_follow_up, name="set_follow_up"),
    path("leads/<str:lead_id>/notes/", views.lead_add_note, name="add_note"),
]
