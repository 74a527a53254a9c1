"""What the demo data is made of: plans, products, pages, features, names, shares and rates."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import numpy as np

FORMATS = ("csv", "parquet")


CHUNK_ACCOUNTS = 2_000


HISTORY_DAYS = 396  # activity streams (usage, web, email, support, ...) cover ~13 months


DAY = 86_400


EPOCH = date(1970, 1, 1)


ACCOUNTS_PER_CSM = 40


# Usage events per account over the whole history window; accounts that are
# newer or churned fill only part of it, which brings the mean to ~500.
USAGE_EVENTS_PER_ACCOUNT = 580


WEB_VISITS_PER_ACCOUNT = 25


EMAILS_PER_ACCOUNT_YEAR = 10


JPY_PER_USD = 150


SITE = "https://www.example.com"


# Share of accounts planted in each cohort, per chunk (of the eligible accounts: e.g. only
# customers that are still active and old enough to show the signal).
COHORT_SHARE: dict[str, float] = {
    "usage_decline": 0.10,  # last 30 days of usage at 15-50% of the 30 before
    "single_feature": 0.08,  # uses exactly one feature
    "dormant": 0.05,  # almost no usage at all
    "support_surge": 0.04,  # >= 5 tickets in 30 days and >= 2x the 30 before
    "pricing_interest": 0.05,  # >= 3 pricing page visits in the last 2 weeks
    "cross_sell_clicks": 0.04,  # >= 2 clicks on a cross-sell email in the last 2 weeks
    "new_detractor": 0.03,  # NPS 0-6 with a comment in the last 3 days
    "recent_training": 0.06,  # a training session 1-7 days before as_of
    "late_payer": 0.08,  # pays invoices weeks after their due date
    "fiscal_year_buyer": 0.35,  # of accounts with a known fiscal year end
    "growing_buyer": 0.15,  # last three order amounts strictly increase
    "shrinking_buyer": 0.08,  # last three order amounts strictly decrease
    "same_day_orders": 0.10,  # two orders on one day at least once
}


# Contract situation of each account: (state, share of the accounts).
CONTRACT_STATES: tuple[tuple[str, float], ...] = (
    ("renewing", 0.89),  # active contract ending within the next 12 months
    ("churned", 0.04),  # last contract churned within the past ~11 months
    ("overdue", 0.04),  # active contract already past its end_date
    ("ends_in_2m", 0.015),  # end_date exactly as_of + 2 calendar months
    ("ends_in_4m", 0.015),  # end_date exactly as_of + 4 calendar months
)


REGIONS = ("JP", "APAC", "NA", "EU")


REGION_SHARE = (0.45, 0.15, 0.25, 0.15)


OFFSETS = ("+09:00", "Z", "+08:00", "+10:00", "-05:00", "-08:00", "+01:00")


OFFSET_SECONDS = np.array([9, 0, 8, 10, -5, -8, 1]) * 3600


# Offsets used by each region (rows follow REGIONS, columns follow OFFSETS).
REGION_OFFSET_SHARE = np.array(
    [
        [0.85, 0.15, 0, 0, 0, 0, 0],
        [0, 0.10, 0.60, 0.30, 0, 0, 0],
        [0, 0.20, 0, 0, 0.50, 0.30, 0],
        [0, 0.50, 0, 0, 0, 0, 0.50],
    ]
)


# Fiscal year end month (column 0 = unknown) for non-Japanese and Japanese accounts.
FISCAL_MONTH_SHARE = np.zeros((2, 13))


FISCAL_MONTH_SHARE[0, [0, 12, 3, 6, 9, 1, 4]] = (0.15, 0.55, 0.08, 0.08, 0.08, 0.03, 0.03)


FISCAL_MONTH_SHARE[1, [0, 3, 12, 6, 9, 1]] = (0.08, 0.70, 0.12, 0.03, 0.04, 0.03)


INDUSTRIES = ("manufacturing", "software", "retail", "finance", "healthcare", "logistics", "education", "media")


PLANS = ("starter", "standard", "professional", "enterprise")


PLAN_SHARE = (0.40, 0.30, 0.20, 0.10)


PLAN_ARR_USD = np.array([6_000, 24_000, 60_000, 180_000])


PLAN_ARR_SIGMA = np.array([0.35, 0.40, 0.50, 0.80])  # enterprise has the longest tail


EXTRA_ORDERS_PER_YEAR = np.array([0.4, 0.6, 1.0, 1.5])  # upsell and cross-sell orders


TICKETS_PER_YEAR = np.array([2.0, 4.0, 8.0, 14.0])


class Product(NamedTuple):
    sku: str
    name: str
    list_price_usd: int
    kind: str  # plan, upsell or cross_sell
    feature: str | None = None  # the product feature a cross-sell add-on unlocks


CATALOGUE: tuple[Product, ...] = (
    Product("PLAN-STARTER", "Starter plan (annual)", 6_000, "plan"),
    Product("PLAN-STANDARD", "Standard plan (annual)", 24_000, "plan"),
    Product("PLAN-PRO", "Professional plan (annual)", 60_000, "plan"),
    Product("PLAN-ENT", "Enterprise plan (annual)", 180_000, "plan"),
    Product("SEATS-10", "Additional seats x10", 3_000, "upsell"),
    Product("SEATS-50", "Additional seats x50", 12_000, "upsell"),
    Product("SUPPORT-PREMIUM", "Premium support", 20_000, "upsell"),
    Product("ADD-ANALYTICS", "Advanced Analytics add-on", 12_000, "cross_sell", "analytics"),
    Product("ADD-SSO", "SSO & SCIM add-on", 6_000, "cross_sell", "sso"),
    Product("ADD-API", "API Plus add-on", 9_000, "cross_sell", "api"),
    Product("ADD-WORKFLOW", "Workflow Automation add-on", 15_000, "cross_sell", "workflows"),
    Product("ADD-INTEGRATIONS", "Integration Hub add-on", 8_000, "cross_sell", "integrations"),
)


PLAN_PRODUCT = np.array([0, 1, 2, 3])  # CATALOGUE index of each plan's product


UPSELL_PRODUCTS = np.array([i for i, p in enumerate(CATALOGUE) if p.kind == "upsell"])


CROSS_SELL_PRODUCTS = np.array([i for i, p in enumerate(CATALOGUE) if p.kind == "cross_sell"])


ORDER_TYPES = ("new", "renewal", "upsell", "cross_sell")


FEATURES = ("reports", "dashboards", "alerts", "api", "sso", "workflows", "analytics", "integrations")


FEATURE_POPULARITY = np.array([3.0, 3.0, 1.5, 1.0, 0.8, 1.2, 1.0, 1.0])


EVENT_TYPES = ("login", "feature_used", "export", "api_call")


EVENT_TYPE_SHARE = np.array([0.30, 0.50, 0.10, 0.10])


class Page(NamedTuple):
    url: str
    category: str
    product: int | None = None  # CATALOGUE index for pricing and product pages


PAGE_CATEGORIES = ("pricing", "product", "docs", "whitepaper", "blog")


PAGE_CATEGORY_SHARE = (0.08, 0.20, 0.32, 0.08, 0.32)


PAGES: tuple[Page, ...] = (
    *(Page(f"{SITE}/pricing/{plan}", "pricing", i) for i, plan in enumerate(PLANS)),
    *(Page(f"{SITE}/products/{p.sku.lower()}", "product", i) for i, p in enumerate(CATALOGUE) if p.kind != "plan"),
    *(Page(f"{SITE}/docs/{feature}", "docs") for feature in FEATURES),
    *(
        Page(f"{SITE}/whitepapers/{slug}", "whitepaper")
        for slug in ("customer-success-playbook", "renewal-forecasting-guide", "security-overview", "roi-guide")
    ),
    *(
        Page(f"{SITE}/blog/{slug}", "blog")
        for slug in (
            "release-notes",
            "dashboard-tips",
            "automating-reports",
            "sso-rollout",
            "api-best-practices",
            "customer-story-manufacturing",
            "customer-story-retail",
            "year-in-review",
        )
    ),
)


# PAGES is grouped by category in PAGE_CATEGORIES order: each category is a slice.
PAGE_CATEGORY = np.array([PAGE_CATEGORIES.index(p.category) for p in PAGES])


PAGE_FIRST = np.searchsorted(PAGE_CATEGORY, np.arange(len(PAGE_CATEGORIES)))


PAGE_COUNT = np.bincount(PAGE_CATEGORY)


# Pages a buyer with budget reads: pricing of the larger plans and high-price products.
HIGH_PRICE_USD = 12_000


def _high_price_pages(category: str) -> np.ndarray:
    """Indexes into PAGES of a category's pages whose product lists at HIGH_PRICE_USD or more."""
    return np.array(
        [
            i
            for i, p in enumerate(PAGES)
            if p.category == category and CATALOGUE[p.product].list_price_usd >= HIGH_PRICE_USD
        ]
    )


HIGH_PRICE_PRICING_PAGES = _high_price_pages("pricing")


HIGH_PRICE_PRODUCT_PAGES = _high_price_pages("product")


CHANNELS = ("email", "chat", "phone", "web")


CHANNEL_SHARE = (0.40, 0.25, 0.10, 0.25)


TICKET_CATEGORIES = ("how_to", "bug", "billing", "access", "integration", "feature_request")


TICKET_CATEGORY_SHARE = (0.35, 0.25, 0.08, 0.12, 0.12, 0.08)


TOPICS = ("onboarding", "admin_basics", "reporting", "dashboards", "api_integration", "workflows", "advanced_analytics")


# Survey comments by tone (detractor, passive, promoter, training) and language.
COMMENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("detractor", "en"): (
        "Reports are far too slow to load.",
        'The "export" button keeps timing out, and support has not replied yet.',
        "Too expensive for what we actually use.",
        "Onboarding was confusing; half the team still does not log in.",
    ),
    ("detractor", "ja"): (
        "レポートの表示が遅く、業務に支障が出ています。",
        "サポートからの返信が遅いです。",
        "価格に見合った価値を感じられません。",
        "操作が分かりにくく、社内で定着していません。",
    ),
    ("passive", "en"): (
        "Does the job, but the UI could be simpler.",
        "Good overall; SSO setup took a while.",
    ),
    ("passive", "ja"): (
        "概ね満足していますが、もう少し使いやすくしてほしいです。",
        "機能は十分ですが、料金が少し高いと感じます。",
    ),
    ("promoter", "en"): (
        "Our team relies on the dashboards every day.",
        "Great support, quick answers!",
    ),
    ("promoter", "ja"): (
        "ダッシュボードが便利で、毎日使っています。",
        "サポートの対応がとても丁寧です。",
    ),
    ("training", "en"): ("Very practical session.", "A bit fast, but the examples helped."),
    ("training", "ja"): ("分かりやすい説明でした。", "実践的な内容で役に立ちました。"),
}


TONES = ("detractor", "passive", "promoter", "training")


JP_COMPANY_STEMS = (
    ("さくら", "sakura"), ("富士", "fuji"), ("東邦", "toho"), ("大和", "yamato"), ("みらい", "mirai"),
    ("青空", "aozora"), ("北斗", "hokuto"), ("光", "hikari"), ("日の出", "hinode"), ("丸和", "maruwa"),
)  # fmt: skip


JP_COMPANY_KINDS = (
    ("テクノロジー", "technology"), ("商事", "shoji"), ("製作所", "seisakusho"), ("システムズ", "systems"),
    ("物流", "logistics"), ("ホールディングス", "holdings"), ("電機", "denki"), ("フーズ", "foods"),
)  # fmt: skip


EN_COMPANY_STEMS = (
    "Northwind", "Blue River", "Acme", "Summit", "Evergreen", "Redwood",
    "Silverline", "Brightpath", "Harbor", "Crescent", "Pioneer", "Atlas",
)  # fmt: skip


EN_COMPANY_KINDS = ("Systems", "Labs", "Holdings", "Analytics", "Logistics", "Retail Group", "Health", "Partners")


LEGAL_FORM = {"APAC": " Pte. Ltd.", "NA": ", Inc.", "EU": " GmbH"}


JP_FAMILY_NAMES = (
    ("山田", "yamada"), ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"),
    ("田中", "tanaka"), ("伊藤", "ito"), ("渡辺", "watanabe"), ("中村", "nakamura"),
)  # fmt: skip


JP_GIVEN_NAMES = (
    ("太郎", "taro"), ("花子", "hanako"), ("健", "ken"), ("美咲", "misaki"),
    ("翔", "sho"), ("陽子", "yoko"), ("大輔", "daisuke"), ("結衣", "yui"),
)  # fmt: skip


EN_FIRST_NAMES = ("Emily", "James", "Olivia", "Liam", "Sophia", "Noah", "Mia", "Lucas", "Chloe", "Ethan")


# The demo's CSMs, by number (csm01 is the first): customer email is signed with these.
CSM_NAMES = (
    "Yui Tanaka", "Kenji Sato", "Emma Clark", "Haruto Suzuki", "Olivia Brown", "Sakura Ito",
    "Liam Walker", "Mei Kobayashi", "Noah Garcia", "Aoi Yamamoto", "Ava Martin", "Ren Nakamura",
)
EN_LAST_NAMES = ("Smith", "Clark", "Nguyen", "Garcia", "Schmidt", "Brown", "Taylor", "Lee", "Martin", "Walker")


ROLES = ("decision_maker", "admin", "user")


ROLE_SHARE = (0.15, 0.30, 0.55)  # for contacts after the first, who is always a decision maker


# Id prefix and digits of every generated id.
ID_FORMATS: dict[str, tuple[str, int]] = {
    "contact": ("CON", 7),
    "contract": ("CTR", 7),
    "order": ("ORD", 8),
    "event": ("EV", 10),
    "ticket": ("TKT", 7),
    "response": ("RSP", 8),
    "training": ("TRN", 7),
    "invoice": ("INV", 8),
}


# Names and comments may hold commas and quotes; every other file is quoted only in its header.
FREE_TEXT_ENTITIES = ("accounts", "survey_responses")
