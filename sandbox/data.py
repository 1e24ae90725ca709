"""Demo data of the stand-in PollyBot API: the seed's lead and a deterministic demo workspace.

Everything here is made up. Dates are computed from a given ``today`` so that the
follow-up states (overdue, due today, upcoming, none) stay meaningful whatever the
day the demo runs; nothing reads the clock.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
from typing import Any

# The lead on the seed page (seed/get-lead.txt), field for field and in the same key order.
SEED_LEAD: dict[str, Any] = {
    "id": "lead_1234567890abcdef",
    "name": "John Doe",
    "email": "john.doe@example.com",
    "phone": "+1-555-123-4567",
    "source": "website",
    "status": "contacted",
    "metadata": {
        "utm_source": "google",
        "utm_campaign": "spring_2024",
        "interests": ["product_a", "product_b"],
        "company": "Tech Corp",
        "job_title": "Marketing Manager",
        "last_interaction": "2024-01-16T14:30:00.000Z",
        "notes": "Interested in premium package",
        "follow_up_date": "2024-01-20",
    },
    "createdAt": "2024-01-15T10:30:00.000Z",
    "updatedAt": "2024-01-16T14:30:00.000Z",
    "workspaceId": "ws_your_workspace_id",
}

# Real keys are "sk-workspace_" + 51 random characters (64 in all); this one says what it is.
_KEY_PREFIX = "sk-workspace_"
_KEY_BODY_LENGTH = 51
DEMO_API_KEY = _KEY_PREFIX + "demo_key_for_the_sandbox_only_not_a_real_secret_".ljust(
    _KEY_BODY_LENGTH, "0"
)

DEMO_WORKSPACE_ID = "ws_demo_workspace"

STATUSES = ("new", "contacted", "qualified", "converted", "lost", "follow_up")

# Length of the hex part of generated lead IDs, like the seed's "lead_1234567890abcdef".
_ID_HEX_LENGTH = 16

_LONG_NOTES = (
    "Call 1 (discovery): runs a 40-person inside sales team, currently on spreadsheets.\n"
    "Pain points:\n"
    "  - leads arrive from three chat widgets and nobody owns the follow-up\n"
    "  - managers cannot see which conversations went cold\n"
    "Call 2 (demo): liked the lead pages, asked about SSO and data retention.\n"
    "\n"
    "Next: send the security questionnaire, then a pricing proposal for 40 seats "
    "with an annual commitment. Procurement needs two weeks after legal review."
)


def _iso_timestamp(moment: datetime.datetime) -> str:
    """Format like the seed: ``2024-01-15T10:30:00.000Z`` (UTC, milliseconds, Z)."""
    millis = moment.microsecond // 1000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def _lead_id(email: str) -> str:
    # Derived from the email so that IDs are stable across runs and days.
    return "lead_" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:_ID_HEX_LENGTH]


def _lead(
    *,
    today: datetime.date,
    name: str,
    email: str,
    phone: str | None,
    source: str,
    status: str,
    created_days_ago: int,
    hour: int,
    follow_up_in_days: int | None,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    created = datetime.datetime.combine(
        today - datetime.timedelta(days=created_days_ago),
        datetime.time(hour, (hour * 7) % 60, (hour * 13) % 60, (hour * 37) % 1000 * 1000),
        tzinfo=datetime.UTC,
    )
    # The last touch is a few hours after creation; a lead created today (at midnight UTC)
    # is untouched, so that no timestamp lies in the future whatever the hour of the demo.
    touched_hours_later = 3 + created_days_ago % 5 if created_days_ago else 0
    updated = created + datetime.timedelta(hours=touched_hours_later)
    meta = dict(metadata)
    meta.setdefault("last_interaction", _iso_timestamp(updated))
    if follow_up_in_days is not None:
        meta["follow_up_date"] = (today + datetime.timedelta(days=follow_up_in_days)).isoformat()
    return {
        "id": _lead_id(email),
        "name": name,
        "email": email,
        "phone": phone,
        "source": source,
        "status": status,
        "metadata": meta,
        "createdAt": _iso_timestamp(created),
        "updatedAt": _iso_timestamp(updated),
        "workspaceId": DEMO_WORKSPACE_ID,
    }


# name, email, phone, source, status, created_days_ago, hour, follow_up_in_days, metadata
_Row = tuple[str, str, str | None, str, str, int, int, int | None, dict[str, Any]]

_ROWS: list[_Row] = [
    # --- new ---
    (
        "Priya Raman",
        "priya.raman@northwind.example",
        "+44 20 7946 0321",
        "website",
        "new",
        0,
        0,
        None,
        {
            "utm_source": "google",
            "utm_campaign": "autumn_webinar",
            "interests": ["lead_pages"],
            "company": "Northwind Traders",
            "job_title": "Head of Sales Operations",
            "lead_score": 42,
        },
    ),
    (
        "山田 太郎",
        "taro.yamada@sakura-denki.example",
        "+81 3-1234-5678",
        "chatbot",
        "new",
        1,
        11,
        2,
        {
            "company": "さくら電機株式会社",
            "job_title": "営業部長",
            "interests": ["api", "crm_sync"],
            "notes": "日本語でのサポートを希望しています。",
            "preferred_language": "ja",
            "lead_score": 58,
        },
    ),
    (
        "Lucas Almeida",
        "lucas.almeida@verdemar.example",
        "+55 11 91234-5678",
        "facebook",
        "new",
        1,
        15,
        None,
        {
            "utm_source": "facebook",
            "utm_campaign": "br_launch",
            "company": "Verdemar",
            "interests": [],
        },
    ),
    (
        "Hannah Becker",
        "h.becker@kraftwerk-logistik.example",
        None,
        "website",
        "new",
        2,
        8,
        7,
        {
            "company": "Kraftwerk Logistik GmbH",
            "job_title": "Einkauf",
            "notes": "No phone number given; prefers email.",
            "gdpr_consent": True,
            "consent_recorded_at": "2024-01-02T08:15:00.000Z",
        },
    ),
    (
        "Omar Haddad",
        "omar.haddad@desertbloom.example",
        "+971 4 555 0199",
        "linkedin",
        "new",
        3,
        13,
        None,
        {
            "linkedin": "https://www.linkedin.com/in/omar-haddad-demo",
            "company": "Desert Bloom",
            "job_title": "Founder",
            "budget": "$5,000 - $10,000",
            "timeline": "Q3",
        },
    ),
    (
        "Chloé Dubois",
        "chloe.dubois@atelier-lumiere.example",
        "+33 1 44 55 66 77",
        "referral",
        "new",
        4,
        10,
        1,
        {
            "referred_by": {"name": "Marc Petit", "lead_id": None},
            "company": "Atelier Lumière",
            "interests": ["lead_pages", "mobile"],
        },
    ),
    (
        "Ethan Clarke",
        "ethan.clarke@brightpath.example",
        "+1-555-010-2233",
        "google_ads",
        "new",
        5,
        16,
        None,
        {
            "utm_source": "google",
            "utm_campaign": "search_brand",
            "lead_score": 12.5,
            "gclid": "demo-click-id-0001",
        },
    ),
    (
        "Fatima Zahra",
        "fatima.zahra@atlas-retail.example",
        "+212 522 123 456",
        "chatbot",
        "new",
        6,
        12,
        -1,
        {
            "company": "Atlas Retail",
            "chat_transcript_length": 14,
            "interests": ["whatsapp", "lead_routing"],
        },
    ),
    # --- contacted ---
    (
        "محمد العلي",
        "mohammed.alali@nakheel-trading.example",
        "+966 11 234 5678",
        "website",
        "contacted",
        7,
        9,
        0,
        {
            "company": "شركة النخيل للتجارة",
            "job_title": "مدير المبيعات",
            "notes": "يفضّل التواصل عبر البريد الإلكتروني.",
            "utm_source": "bing",
            "utm_campaign": "mena_2024",
        },
    ),
    (
        "Sarah Kim",
        "sarah.kim@lumen-analytics.example",
        "+1-555-014-8890",
        "linkedin",
        "contacted",
        8,
        14,
        3,
        {
            "company": "Lumen Analytics",
            "job_title": "VP Marketing",
            "linkedin": "https://www.linkedin.com/in/sarah-kim-demo",
            "lead_score": 71,
            "interests": ["analytics", "lead_scoring"],
        },
    ),
    (
        "Giorgos Nikolaou",
        "g.nikolaou@aegean-ferries.example",
        "+30 21 0123 4567",
        "trade_show",
        "contacted",
        9,
        10,
        -3,
        {
            "company": "Aegean Ferries",
            "event": "Travel Tech Expo",
            "badge_scanned": True,
            "booth_visits": 2,
        },
    ),
    (
        "Анна Смирнова",
        "anna.smirnova@volga-soft.example",
        "+7 495 123-45-67",
        "website",
        "contacted",
        10,
        11,
        5,
        {
            "company": "Волга Софт",
            "job_title": "Руководитель отдела продаж",
            "notes": "Просила презентацию на русском языке.",
            "interests": ["api"],
        },
    ),
    (
        "Daniel O'Connor",
        "daniel.oconnor@emerald-isle.example",
        "+353 1 555 0144",
        "referral",
        "contacted",
        11,
        15,
        None,
        {
            "company": "Emerald Isle Insurance",
            "job_title": "Sales Director",
            "budget": 12000,
            "timeline": "next quarter",
        },
    ),
    (
        "Mei Lin",
        "mei.lin@jade-garden.example",
        "+86 21 5555 0188",
        "chatbot",
        "contacted",
        12,
        8,
        -7,
        {
            "company": "翡翠花园餐饮",
            "interests": ["chatbot", "reservations"],
            "lead_score": 33,
            "tags": ["restaurant", "multi-site"],
        },
    ),
    (
        "Noah Fischer",
        "noah.fischer@alpenblick.example",
        "+41 44 555 01 23",
        "email_campaign",
        "contacted",
        13,
        17,
        1,
        {
            "utm_source": "newsletter",
            "utm_campaign": "feature_digest_march",
            "company": "Alpenblick Hotels",
            "opened_emails": 4,
            "clicked_links": ["https://example.com/pricing", "https://example.com/case-studies"],
        },
    ),
    (
        "Isabella Rossi",
        "isabella.rossi@trattoria-group.example",
        "+39 06 5555 0101",
        "facebook",
        "contacted",
        14,
        12,
        None,
        {
            "company": "Trattoria Group",
            "job_title": "Marketing Lead",
            "utm_source": "facebook",
            "utm_campaign": "it_restaurants",
        },
    ),
    # --- qualified ---
    (
        "Jonas Lindqvist",
        "jonas.lindqvist@nordljus.example",
        "+46 8 555 012 34",
        "website",
        "qualified",
        15,
        9,
        4,
        {
            "company": "Nordljus AB",
            "job_title": "CRO",
            "lead_score": 88,
            "budget": "€20k",
            "timeline": "this quarter",
            "interests": ["sso", "api", "lead_pages"],
        },
    ),
    (
        "Aisha Bello",
        "aisha.bello@savanna-pay.example",
        "+234 1 555 0177",
        "referral",
        "qualified",
        17,
        10,
        -2,
        {
            "company": "Savanna Pay",
            "job_title": "Head of Partnerships",
            "decision_makers": [
                {"name": "Tunde Okafor", "role": "CFO"},
                {"name": "Ngozi Eze", "role": "CTO"},
            ],
            "lead_score": 79,
        },
    ),
    (
        "Raj Patel",
        "raj.patel@ganges-logistics.example",
        "+91 22 5555 0123",
        "linkedin",
        "qualified",
        19,
        13,
        14,
        {
            "company": "Ganges Logistics",
            "linkedin": "https://www.linkedin.com/in/raj-patel-demo",
            "notes": _LONG_NOTES,
            "budget": 45000,
            "timeline": "6 months",
        },
    ),
    (
        "Emily Watson",
        "emily.watson@harbourlight.example",
        "+44 131 496 0555",
        "google_ads",
        "qualified",
        21,
        16,
        0,
        {
            "utm_source": "google",
            "utm_campaign": "competitor_terms",
            "company": "Harbourlight Media",
            "job_title": "COO",
            "requirements": {"seats": 25, "sso": True, "regions": ["uk", "ie"]},
        },
    ),
    (
        "Kenji Watanabe",
        "kenji.watanabe@fuji-works.example",
        "+81 6 5555 0123",
        "trade_show",
        "qualified",
        23,
        11,
        None,
        {
            "company": "富士ワークス",
            "job_title": "CTO",
            "lead_score": 66.5,
            "event": "Osaka SaaS Summit",
        },
    ),
    (
        "Sofía Martínez",
        "sofia.martinez@solymar.example",
        "+34 91 555 0123",
        "chatbot",
        "qualified",
        25,
        12,
        10,
        {
            "company": "Sol y Mar Viajes",
            "interests": ["whatsapp", "spanish_nlp"],
            "pilot_requested": True,
            "trial_ends": None,
        },
    ),
    (
        "Thomas Müller",
        "thomas.mueller@bergwerk.example",
        "+49 89 5555 0123",
        "website",
        "qualified",
        27,
        15,
        -14,
        {
            "company": "Bergwerk Maschinenbau",
            "job_title": "Vertriebsleiter",
            "budget": "unknown",
            "timeline": "after trade fair",
        },
    ),
    # --- converted ---
    (
        "Olivia Brown",
        "olivia.brown@maple-dental.example",
        "+1-555-019-7766",
        "referral",
        "converted",
        30,
        10,
        None,
        {
            "company": "Maple Dental Clinics",
            "job_title": "Practice Manager",
            "contract_value": 18000,
            "plan": "business",
            "converted_at": "2024-02-01T12:00:00.000Z",
        },
    ),
    (
        "Ahmed Hassan",
        "ahmed.hassan@nile-tours.example",
        "+20 2 5555 0123",
        "chatbot",
        "converted",
        33,
        9,
        None,
        {
            "company": "Nile Tours",
            "plan": "starter",
            "seats": 3,
            "onboarding": {"kickoff_done": True, "checklist": ["widget", "crm", "team"]},
        },
    ),
    (
        "Eleni Papadopoulou",
        "eleni.papadopoulou@olive-press.example",
        "+30 231 055 5012",
        "website",
        "converted",
        36,
        14,
        30,
        {
            "company": "Ελαιοτριβείο Παπαδόπουλος",
            "job_title": "Διευθύντρια",
            "notes": "Quarterly check-in booked.",
            "interests": ["exports"],
        },
    ),
    (
        "William Chen",
        "william.chen@pacific-rim.example",
        "+1-555-017-3344",
        "linkedin",
        "converted",
        40,
        16,
        None,
        {
            "company": "Pacific Rim Foods",
            "job_title": "CEO",
            "linkedin": "https://www.linkedin.com/in/william-chen-demo",
            "contract_value": 54000.75,
            "renewal": "annual",
        },
    ),
    (
        "Zanele Dlamini",
        "zanele.dlamini@ubuntu-finance.example",
        "+27 21 555 0123",
        "email_campaign",
        "converted",
        44,
        11,
        None,
        {
            "utm_source": "newsletter",
            "utm_campaign": "za_fintech",
            "company": "Ubuntu Finance",
            "plan": "enterprise",
        },
    ),
    (
        "Lars Eriksen",
        "lars.eriksen@fjord-energy.example",
        "+47 22 55 50 12",
        "trade_show",
        "converted",
        48,
        13,
        6,
        {
            "company": "Fjord Energy",
            "event": "Nordic Energy Week",
            "account_manager": "Ingrid",
            "nps": 9,
        },
    ),
    # --- lost ---
    (
        "Grace Thompson",
        "grace.thompson@willow-spa.example",
        "+1-555-012-9988",
        "facebook",
        "lost",
        52,
        10,
        None,
        {
            "company": "Willow Spa",
            "lost_reason": "budget",
            "competitor": None,
            "utm_source": "facebook",
            "utm_campaign": "wellness_q1",
        },
    ),
    (
        "Mateusz Kowalski",
        "mateusz.kowalski@wisla-dev.example",
        "+48 22 555 01 23",
        "website",
        "lost",
        55,
        12,
        None,
        {
            "company": "Wisła Dev",
            "lost_reason": "went with a competitor",
            "competitor": "OtherBot",
            "lead_score": 0,
        },
    ),
    (
        "Yuki Tanaka",
        "yuki.tanaka@hoshi-cosmetics.example",
        "+81 45 555 0123",
        "chatbot",
        "lost",
        58,
        15,
        None,
        {"company": "星コスメ", "lost_reason": "no response", "attempts": 5},
    ),
    (
        "Carlos Ruiz",
        "carlos.ruiz@andes-coffee.example",
        "+57 1 555 0123",
        "google_ads",
        "lost",
        61,
        9,
        -30,
        {
            "company": "Andes Coffee",
            "utm_source": "google",
            "utm_campaign": "latam_generic",
            "reopen": False,
        },
    ),
    (
        "Nadia Petrova",
        "nadia.petrova@baltic-shipping.example",
        "+370 5 255 0123",
        "referral",
        "lost",
        65,
        14,
        None,
        {
            "company": "Baltic Shipping",
            "lost_reason": "timing",
            "notes": "Asked us to try again next year.\nBudget frozen until then.",
        },
    ),
    (
        "Ben Carter",
        "ben.carter@ironbridge.example",
        "+44 121 496 0123",
        "linkedin",
        "lost",
        70,
        11,
        None,
        {
            "company": "Ironbridge Recruitment",
            "job_title": "Director",
            "linkedin": "https://www.linkedin.com/in/ben-carter-demo",
        },
    ),
    # --- follow_up ---
    (
        "Amara Okafor",
        "amara.okafor@lagos-fashion.example",
        "+234 1 555 0190",
        "chatbot",
        "follow_up",
        16,
        10,
        -1,
        {
            "company": "Lagos Fashion House",
            "job_title": "Creative Director",
            "interests": ["instagram", "catalogue_bot"],
            "lead_score": 64,
        },
    ),
    (
        "Hiroshi Sato",
        "hiroshi.sato@kyoto-crafts.example",
        "+81 75 555 0123",
        "website",
        "follow_up",
        18,
        13,
        -5,
        {"company": "京都クラフト", "notes": "Wants a call after Golden Week.", "timeline": "May"},
    ),
    (
        "Layla Nasser",
        "layla.nasser@cedar-clinics.example",
        "+961 1 555 012",
        "referral",
        "follow_up",
        20,
        9,
        0,
        {
            "company": "Cedar Clinics",
            "job_title": "Operations Manager",
            "budget": "$2,000/month",
            "callback_window": {"from": "09:00", "to": "12:00", "tz": "Asia/Beirut"},
        },
    ),
    (
        "Peter Novak",
        "peter.novak@vltava-bikes.example",
        "+420 2 5555 0123",
        "email_campaign",
        "follow_up",
        22,
        15,
        2,
        {
            "utm_source": "newsletter",
            "utm_campaign": "cz_spring",
            "company": "Vltava Bikes",
            "interests": ["rental_bot"],
        },
    ),
    (
        "Δημήτρης Κωνσταντίνου",
        "dimitris.k@meltemi-sailing.example",
        "+30 22890 55501",
        "chatbot",
        "follow_up",
        24,
        11,
        7,
        {
            "company": "Meltemi Sailing",
            "notes": "Σεζόν από Μάιο· θέλει προσφορά μέχρι τότε.",
            "boats": 12,
        },
    ),
    (
        "Rachel Green",
        "rachel.green@central-perk.example",
        "+1-555-011-4455",
        "website",
        "follow_up",
        26,
        16,
        -10,
        {
            "company": "Central Perk Cafés",
            "job_title": "Owner",
            "lead_score": 47,
            "interests": ["loyalty", "chatbot"],
        },
    ),
    (
        "Ivan Petrov",
        "ivan.petrov@taiga-timber.example",
        "+7 812 555-01-23",
        "trade_show",
        "follow_up",
        28,
        12,
        21,
        {"company": "Тайга Тимбер", "event": "WoodTech Moscow", "brochure_sent": True},
    ),
]


def demo_leads(*, today: datetime.date) -> list[dict[str, Any]]:
    """The demo workspace: the seed's lead first, then realistic leads of every status.

    Follow-up dates are relative to ``today``: some overdue by various days, some due
    today, some upcoming, some with none. Every call returns fresh, independent dicts.
    """
    leads = [copy.deepcopy(SEED_LEAD)]
    for name, email, phone, source, status, days_ago, hour, follow_up, metadata in _ROWS:
        leads.append(
            _lead(
                today=today,
                name=name,
                email=email,
                phone=phone,
                source=source,
                status=status,
                created_days_ago=days_ago,
                hour=hour,
                follow_up_in_days=follow_up,
                metadata=copy.deepcopy(metadata),
            )
        )
    return leads
