"""Tests for csflow.demo: the synthetic landing files follow the contract,
are reproducible, and hold every cohort the playbooks and marts look for."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from dateutil.relativedelta import relativedelta

import csflow.demo as gen
from csflow.contract import ENTITIES

AS_OF = date(2026, 3, 31)
ACCOUNTS = 300
SEED = 7
# The end of as_of in UTC: no timestamp may lie after it.
AS_OF_END = pd.Timestamp(AS_OF + timedelta(days=1), tz="UTC")

ISO_DATE = r"\d{4}-\d{2}-\d{2}"
ISO_TIMESTAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})"
MONEY = r"\d+\.\d{2}"


@pytest.fixture(scope="module", autouse=True)
def small_chunks() -> Iterator[None]:
    """Several chunks even in a small run, so ids and keys are checked across chunk borders."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gen, "CHUNK_ACCOUNTS", 120)
        yield


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("landing")
    return out, gen.generate(out, ACCOUNTS, SEED, AS_OF)


@pytest.fixture(scope="module")
def frames(landing: tuple[Path, dict[str, int]]) -> dict[str, pd.DataFrame]:
    out, _ = landing
    return {name: _read(out / f"{name}.csv").to_pandas() for name in ENTITIES}


@pytest.fixture(scope="module")
def usage(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Usage events with `at` parsed once: the largest file, read by several tests."""
    events = frames["usage_events"]
    return events.assign(at=_utc(events["occurred_at"]))


def _read(path: Path) -> pa.Table:
    """Every column as text and only an empty cell as missing (region "NA" is North America)."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    names = ENTITIES[path.stem].column_names
    options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(path, convert_options=options)


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _days(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format="%Y-%m-%d")


def _in_last(values: pd.Series, days: int) -> pd.Series:
    return _utc(values) >= AS_OF_END - pd.Timedelta(days=days)


# --------------------------------------------------------------------------- files and values


def test_writes_every_file_and_reports_its_rows(landing: tuple[Path, dict[str, int]]) -> None:
    out, rows = landing
    assert set(rows) == set(ENTITIES)
    for name in ENTITIES:
        assert _read(out / f"{name}.csv").num_rows == rows[name] > 0, name


def test_same_seed_gives_identical_files_and_another_seed_does_not(
    landing: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    out, _ = landing
    gen.generate(tmp_path / "same", ACCOUNTS, SEED, AS_OF)
    gen.generate(tmp_path / "other", ACCOUNTS, SEED + 1, AS_OF)
    for name in ENTITIES:
        original = (out / f"{name}.csv").read_bytes()
        assert (tmp_path / "same" / f"{name}.csv").read_bytes() == original, name
        assert (tmp_path / "other" / f"{name}.csv").read_bytes() != original, name


def test_headers_follow_the_contract(landing: tuple[Path, dict[str, int]]) -> None:
    out, _ = landing
    for name, entity in ENTITIES.items():
        with (out / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            assert next(csv.reader(f)) == entity.column_names


def test_values_parse_as_their_kind(frames: dict[str, pd.DataFrame]) -> None:
    for name, entity in ENTITIES.items():
        df = frames[name]
        for column in entity.columns:
            values = df[column.name]
            where = f"{name}.{column.name}"
            if column.required:
                assert values.notna().all(), f"{where} is required"
            present = values.dropna()
            if column.kind == "date":
                assert present.str.fullmatch(ISO_DATE).all(), where
                assert _days(present).notna().all(), where
            elif column.kind == "timestamp":
                assert present.str.fullmatch(ISO_TIMESTAMP).all(), where
                assert _utc(present).notna().all(), where
            elif column.kind == "numeric":
                assert present.str.fullmatch(MONEY).all(), where
            elif column.kind == "int":
                numbers = pd.to_numeric(present)
                assert (numbers == numbers.round()).all(), where
                if column.min_value is not None:
                    assert numbers.between(column.min_value, column.max_value).all(), where
            elif column.kind == "bool":
                assert present.isin(["true", "false"]).all(), where
            if column.allowed:
                assert present.isin(column.allowed).all(), where


def test_keys_are_unique_and_accounts_known(frames: dict[str, pd.DataFrame]) -> None:
    known = set(frames["accounts"]["account_id"])
    assert len(known) == ACCOUNTS
    for name, entity in ENTITIES.items():
        df = frames[name]
        assert not df.duplicated(list(entity.full_key)).any(), f"{name} key {entity.full_key} has duplicates"
        if entity.has_account:
            assert df["account_id"].isin(known).all(), name


def test_nothing_happens_after_as_of(frames: dict[str, pd.DataFrame]) -> None:
    for name, entity in ENTITIES.items():
        for column in entity.columns:
            if column.kind == "timestamp":
                values = frames[name][column.name].dropna()
                assert (_utc(values) < AS_OF_END).all(), f"{name}.{column.name} after as_of in UTC"
                assert (values.str[:10] <= AS_OF.isoformat()).all(), f"{name}.{column.name} after as_of locally"
    # Dates of things that already happened (end_date and due_date may lie ahead).
    for name, column in [("accounts", "created_date"), ("trainings", "session_date"), ("invoices", "paid_date")]:
        assert (frames[name][column].dropna() <= AS_OF.isoformat()).all(), f"{name}.{column}"


def test_data_generated_this_morning_in_tokyo_holds_nothing_after_the_moment_it_was_made(tmp_path: Path) -> None:
    """The demo runs for today (Tokyo) at 06:31 UTC, when it is still yesterday in California:
    accounts west of Tokyo may not have activity on as_of yet, and never in the future."""
    made = datetime(2026, 12, 1, 6, 31, tzinfo=UTC)
    gen.generate(tmp_path, 150, SEED, date(2026, 12, 1), not_after=made)
    latest = {}
    for name, entity in ENTITIES.items():
        frame = _read(tmp_path / f"{name}.csv").to_pandas()
        for column in entity.columns:
            if column.kind == "timestamp" and frame[column.name].notna().any():
                latest[f"{name}.{column.name}"] = _utc(frame[column.name].dropna()).max()
    assert latest and all(at <= pd.Timestamp(made) for at in latest.values()), latest
    assert max(latest.values()) > pd.Timestamp(made) - pd.Timedelta(hours=8)  # today's activity is there


def test_timestamps_mix_offsets(frames: dict[str, pd.DataFrame]) -> None:
    offsets = set(frames["usage_events"]["occurred_at"].str.extract(r"(Z|[+-]\d{2}:\d{2})$")[0])
    assert {"Z", "+09:00"} <= offsets
    assert len(offsets) >= 4


def test_parquet_holds_the_same_rows_as_csv(landing: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    out, rows = landing
    assert gen.generate(tmp_path, ACCOUNTS, SEED, AS_OF, fmt="parquet") == rows
    for name in ENTITIES:
        assert _read(tmp_path / f"{name}.parquet").equals(_read(out / f"{name}.csv")), name


def test_progress_is_reported_per_entity(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    rows = gen.generate(tmp_path, 130, SEED, AS_OF, progress=lambda entity, n: calls.append((entity, n)))
    for name in ENTITIES:
        counts = [n for entity, n in calls if entity == name]
        assert len(counts) == 2  # two chunks of at most 120 accounts
        assert counts == sorted(counts) and counts[-1] == rows[name]


def test_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        gen.generate(tmp_path, 10, SEED, AS_OF, fmt="xlsx")


# --------------------------------------------------------------------------- realism and cohorts


def test_accounts_look_like_a_customer_base(frames: dict[str, pd.DataFrame]) -> None:
    accounts = frames["accounts"]
    assert accounts["account_id"].str.fullmatch(r"ACC\d{6}").all()
    assert set(accounts["plan"]) == {"starter", "standard", "professional", "enterprise"}
    assert set(accounts["region"]) == {"JP", "APAC", "NA", "EU"}
    csms = accounts["owner_email"]
    assert csms.str.fullmatch(r"csm\d{2}@example\.com").all()
    assert csms.nunique() == -(-ACCOUNTS // 40)
    assert accounts["account_name"].str.contains("株式会社").any()
    assert accounts["account_name"].str.fullmatch(r"[A-Za-z ,.]+").any()
    japanese_fiscal = accounts.loc[accounts["region"] == "JP", "fiscal_year_end_month"]
    assert (japanese_fiscal == "3").mean() > 0.5
    assert accounts["fiscal_year_end_month"].isna().any()
    created = _days(accounts["created_date"])
    assert (created.max() - created.min()).days > 3 * 365


def test_arr_has_a_long_tail(frames: dict[str, pd.DataFrame]) -> None:
    active = frames["contracts"].query("status == 'active' and currency == 'USD'")
    arr = pd.to_numeric(active["arr"])
    assert arr.max() > 10 * arr.median()
    by_plan = arr.groupby(active["plan"]).median()
    assert by_plan["starter"] < by_plan["standard"] < by_plan["professional"] < by_plan["enterprise"]


def test_contacts_per_account(frames: dict[str, pd.DataFrame]) -> None:
    contacts = frames["contacts"]
    per_account = contacts.groupby("account_id")
    assert per_account.size().between(2, 6).all() and len(per_account) == ACCOUNTS
    assert per_account["role"].agg(lambda roles: (roles == "decision_maker").any()).all()
    assert 0.005 < (contacts["is_unsubscribed"] == "true").mean() < 0.06
    assert contacts["email"].str.fullmatch(r"[a-z]+\.[a-z]+\.\d@[a-z-]+-\d+\.example").all()


def test_contracts_cover_every_renewal_window(frames: dict[str, pd.DataFrame]) -> None:
    contracts = frames["contracts"]
    active = contracts[contracts["status"] == "active"]
    assert not active["account_id"].duplicated().any()
    churned = contracts[contracts["status"] == "churned"]["account_id"]
    assert len(churned) > 0 and not churned.isin(active["account_id"]).any()
    assert set(active["account_id"]) | set(churned) == set(frames["accounts"]["account_id"])
    assert (contracts["status"] == "renewed").any()

    end = _days(active["end_date"]).dt.date
    in_2m, in_4m, in_6m = (AS_OF + relativedelta(months=m) for m in (2, 4, 6))
    windows = {
        "overdue": end < AS_OF,
        "0-2m": (end >= AS_OF) & (end < in_2m),
        "2-4m": (end >= in_2m) & (end <= in_4m),
        "4-6m": (end > in_4m) & (end <= in_6m),
        "6m+": end > in_6m,
    }
    for window, members in windows.items():
        assert members.sum() >= 3, window
    assert (end == in_2m).any() and (end == in_4m).any()
    assert set(contracts["currency"]) == {"JPY", "USD"}
    assert set(contracts["auto_renew"]) == {"true", "false"}


def test_orders_show_buying_patterns(frames: dict[str, pd.DataFrame]) -> None:
    orders = frames["orders"].assign(at=lambda d: _utc(d["ordered_at"]), amount=lambda d: pd.to_numeric(d["amount"]))
    assert orders["order_id"].str.fullmatch(r"ORD\d{8}").all()
    assert set(orders["order_type"]) == {"new", "renewal", "upsell", "cross_sell"}
    assert (orders.groupby("account_id")["order_type"].first() == "new").all()

    # Several orders on one day (BTYD sums them per day).
    local_day = orders["ordered_at"].str[:10]
    same_day = orders.groupby(["account_id", local_day]).size() >= 2
    assert same_day.groupby(level="account_id").any().sum() >= 10

    # Growing and shrinking buyers: the last three amounts strictly rise (fall), here by steps of
    # about 10% or more as planted; chance alone gives far fewer such accounts.
    last_three = orders.sort_values(["account_id", "at"]).groupby("account_id")["amount"].apply(list)
    last_three = last_three[last_three.str.len() >= 3].str[-3:]
    growing = last_three.apply(lambda a: a[0] * 1.09 <= a[1] and a[1] * 1.09 <= a[2])
    shrinking = last_three.apply(lambda a: a[0] >= a[1] * 1.09 and a[1] >= a[2] * 1.09)
    assert growing.sum() >= 0.15 * ACCOUNTS and shrinking.sum() >= 0.07 * ACCOUNTS

    # Upsell and cross-sell buying clusters in the fiscal year-end month and the one before.
    fiscal = frames["accounts"].set_index("account_id")["fiscal_year_end_month"].dropna().astype(int)
    extra = orders[orders["order_type"].isin(["upsell", "cross_sell"]) & orders["account_id"].isin(fiscal.index)]
    month = extra["ordered_at"].str[5:7].astype(int)
    fy_end = extra["account_id"].map(fiscal)
    in_period_end = (month == fy_end) | (month == (fy_end - 2) % 12 + 1)
    assert in_period_end.mean() > 0.3  # two months out of twelve would be 0.17
    clustered = in_period_end.groupby(extra["account_id"]).agg(["mean", "size"])
    assert ((clustered["mean"] == 1) & (clustered["size"] >= 2)).sum() >= 10


def test_usage_events(frames: dict[str, pd.DataFrame], usage: pd.DataFrame) -> None:
    assert set(usage["event_type"]) == {"login", "feature_used", "export", "api_call"}
    assert usage["feature"].notna().eq(usage["event_type"] == "feature_used").all()
    assert usage["feature"].nunique() == 8
    assert usage["event_id"].str.fullmatch(r"EV\d{10}").all() and usage["event_id"].is_unique
    per_account = usage.groupby("account_id").size().reindex(frames["accounts"]["account_id"], fill_value=0)
    assert 350 < per_account.mean() < 700
    assert per_account.max() > 5 * per_account.median()  # heavy users
    assert (per_account < 10).sum() >= 3  # and nearly silent ones
    assert usage["at"].min() < AS_OF_END - pd.Timedelta(days=365)


def test_usage_decline_cohort(usage: pd.DataFrame) -> None:
    age = AS_OF_END - usage["at"]
    last = usage[age <= pd.Timedelta(days=30)].groupby("account_id").size()
    previous = usage[(age > pd.Timedelta(days=30)) & (age <= pd.Timedelta(days=60))].groupby("account_id").size()
    last = last.reindex(previous.index, fill_value=0)
    # Stricter than the playbook (>= 30% down) so chance dips of small accounts do not count.
    declining = (previous >= 20) & (last <= 0.6 * previous)
    assert declining.sum() >= 0.05 * ACCOUNTS


def test_single_feature_cohort(usage: pd.DataFrame) -> None:
    recent = usage[(usage["at"] >= AS_OF_END - pd.Timedelta(days=90)) & usage["feature"].notna()]
    per_account = recent.groupby("account_id")["feature"].agg(["nunique", "size"])
    # Busy accounts on one feature are planted; quiet ones may reach one feature by chance.
    assert ((per_account["nunique"] == 1) & (per_account["size"] >= 20)).sum() >= 0.05 * ACCOUNTS
    assert (per_account["nunique"] >= 3).sum() >= 0.5 * ACCOUNTS


def test_web_visits(frames: dict[str, pd.DataFrame]) -> None:
    visits = frames["web_visits"]
    paths = {"pricing": "pricing", "product": "products", "docs": "docs", "whitepaper": "whitepapers", "blog": "blog"}
    for category, path in paths.items():
        urls = visits.loc[visits["page_category"] == category, "page_url"]
        assert len(urls) and urls.str.startswith(f"https://www.example.com/{path}/").all(), category
    priced = visits["page_category"].isin(["pricing", "product"])
    assert visits["product_sku"].notna().eq(priced).all()
    assert visits["list_price"].notna().eq(priced).all()
    recent_pricing = visits[_in_last(visits["visited_at"], 14) & (visits["page_category"] == "pricing")]
    assert (recent_pricing.groupby("account_id").size() >= 3).sum() >= 5


def test_email_events(frames: dict[str, pd.DataFrame]) -> None:
    emails = frames["email_events"]
    assert set(emails["event"]) == {"delivered", "open", "click"}
    assert emails["link_url"].notna().eq(emails["event"] == "click").all()
    cross_sell = emails["campaign"].str.startswith("cross_sell_")
    assert emails.loc[cross_sell, "product_sku"].notna().all()
    clicks = emails[cross_sell & (emails["event"] == "click") & _in_last(emails["occurred_at"], 14)]
    assert (clicks.groupby("account_id").size() >= 2).sum() >= 5
    unsubscribed = frames["contacts"].query("is_unsubscribed == 'true'")["contact_id"]
    assert not emails["contact_id"].isin(unsubscribed).any()


def test_support_tickets(frames: dict[str, pd.DataFrame]) -> None:
    tickets = frames["support_tickets"]
    assert set(tickets["channel"]) == {"email", "chat", "phone", "web"}
    resolved = tickets.dropna(subset=["resolved_at"])
    assert (_utc(resolved["resolved_at"]) > _utc(resolved["opened_at"])).all()
    assert resolved["status"].isin(["resolved", "closed"]).all()
    assert tickets.loc[tickets["resolved_at"].isna(), "status"].isin(["open", "pending"]).all()

    age = AS_OF_END - _utc(tickets["opened_at"])
    last = tickets[age <= pd.Timedelta(days=30)].groupby("account_id").size()
    previous = tickets[(age > pd.Timedelta(days=30)) & (age <= pd.Timedelta(days=60))].groupby("account_id").size()
    previous = previous.reindex(last.index, fill_value=0)
    assert ((last >= 5) & (last >= 2 * previous)).sum() >= 5


def test_surveys(frames: dict[str, pd.DataFrame]) -> None:
    surveys = frames["survey_responses"].assign(score=lambda d: d["score"].astype(int))
    nps = surveys[surveys["survey_type"] == "nps"]
    assert nps["score"].between(0, 10).all()
    assert (nps["score"] <= 6).any() and nps["score"].between(7, 8).any() and (nps["score"] >= 9).any()
    new_detractors = nps[(nps["score"] <= 6) & _in_last(nps["responded_at"], 3) & nps["comment"].notna()]
    assert new_detractors["account_id"].nunique() >= 2
    assert nps["comment"].str.contains(r"[ぁ-んァ-ン一-龥]", na=False).any()
    assert nps["comment"].str.contains(",", na=False).any()  # exercises CSV quoting
    rated = surveys[surveys["survey_type"] != "nps"]
    assert rated["score"].between(1, 5).all() and (surveys["survey_type"] == "csat").any()

    feedback = surveys[surveys["survey_type"] == "training_feedback"]
    assert len(feedback) and feedback["training_id"].notna().all()
    attended = frames["trainings"].query("attended == 'true'")
    pairs = set(zip(attended["training_id"], attended["contact_id"], strict=True))
    assert all(pair in pairs for pair in zip(feedback["training_id"], feedback["contact_id"], strict=True))
    assert surveys.loc[surveys["survey_type"] != "training_feedback", "training_id"].isna().all()


def test_trainings(frames: dict[str, pd.DataFrame]) -> None:
    trainings = frames["trainings"]
    sessions = trainings.groupby("training_id")
    per_session = sessions.agg(contacts=("contact_id", "size"), accounts=("account_id", "nunique"))
    assert (per_session["accounts"] == 1).all() and (per_session["contacts"] >= 2).any()
    assert set(trainings["attended"]) == {"true", "false"}
    session = _days(trainings["session_date"]).dt.date
    recent = trainings[(session >= AS_OF - timedelta(days=7)) & (session <= AS_OF - timedelta(days=1))]
    assert recent.query("attended == 'true'")["account_id"].nunique() >= 0.05 * ACCOUNTS


def test_invoices(frames: dict[str, pd.DataFrame]) -> None:
    invoices = frames["invoices"]
    due, paid = _days(invoices["due_date"]), _days(invoices["paid_date"])
    assert (invoices["paid_date"].isna() & (due.dt.date < AS_OF)).any()  # unpaid and overdue
    assert (paid > due + pd.Timedelta(days=4)).any()  # paid late
    assert (paid <= due).mean() > 0.5
    assert set(invoices["invoice_id"].str[:3]) == {"INV"}


def test_yen_amounts_are_whole_and_dollar_amounts_keep_cents(frames: dict[str, pd.DataFrame]) -> None:
    currency = frames["contracts"].groupby("account_id")["currency"].first()
    orders = frames["orders"].assign(currency=lambda d: d["account_id"].map(currency))
    assert orders.loc[orders["currency"] == "JPY", "amount"].str.endswith(".00").all()
    assert not orders.loc[orders["currency"] == "USD", "amount"].str.endswith(".00").all()
