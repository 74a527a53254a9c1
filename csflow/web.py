"""`csflow serve`: the CSM workspace, a small server-rendered Starlette app.

Routes are thin: each checks who is asking, calls a plain function of
csflow.workspace over the warehouse, and renders a Jinja2 template from
templates/web/ (locale texts in templates/locales/). No JavaScript build step;
charts are inline SVG (csflow.charts).

Security, in one place:
- sign-in by a single-use emailed link (15 minutes), or a trusted header from
  a single sign-on proxy (setting workspace_trusted_header);
- the session is a signed cookie (HttpOnly, SameSite=Lax, Secure under https);
- every form carries a CSRF token derived from the session; changes are POSTs;
- a link in an email never changes anything on GET: outcome and unsubscribe
  links show a confirmation page whose button POSTs (mail scanners fetch links);
- whatever a user may not see answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import jinja2
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from csflow import charts, tokens, workspace
from csflow.addresses import is_address, normalized
from csflow.config import PROJECT_DIR, Settings
from csflow.dbt import dbt_var
from csflow.links import SURVEY_SCORES, read_survey_token
from csflow.outbox import Message, queue_messages
from csflow.outcomes import OUTCOMES
from csflow.render import money
from csflow.texts import all_texts, translator, word
from csflow.workspace import NotAllowed, RateLimited, User

SESSION_COOKIE = "csflow_session"
SESSION_HOURS = 12
TASK_ACTIONS = ("complete", "snooze", "reassign")
WEB_TEMPLATES = PROJECT_DIR / "templates" / "web"


def _points(rows: list[dict[str, Any]], x: str, y: str, scale: float = 1) -> list[tuple[Any, float | None]]:
    """(x, y) pairs of rows for a chart; y scaled (rates as percent)."""
    return [(r[x], None if r[y] is None else float(r[y]) * scale) for r in rows]


class Web:
    """The app's state: settings, the warehouse's engine, templates and texts."""

    def __init__(self, settings: Settings, engine: sa.Engine):
        self.settings = settings
        self.engine = engine
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(WEB_TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(svg_line=charts.line, svg_bars=charts.bars, quote=quote)
        self.env.filters["money"] = money
        self.env.filters["points"] = _points
        self.env.filters["word"] = jinja2.pass_context(lambda ctx, code, kind: word(kind, code, ctx["locale"]))
        self.secure = settings.base_url.startswith("https://")
        # What the marts were built with (dbt_project.yml): the health weights, the base currency.
        self.weights = {c: float(dbt_var(w)) for c, w in workspace.COMPONENTS}
        self.base_currency = dbt_var("base_currency")

    # -- people and sessions ------------------------------------------------

    def locale(self, request: Request, customer: bool = False) -> str:
        """CSMs read the team's language; a customer's page follows their browser."""
        if customer:
            wanted = request.headers.get("accept-language", "").lower()
            return "ja" if wanted.startswith("ja") else "en"
        return self.settings.internal_locale if self.settings.internal_locale in all_texts() else "en"

    def address(self, request: Request) -> str | None:
        header = self.settings.workspace_trusted_header
        if header:
            value = request.headers.get(header, "")
            return normalized(value) if is_address(normalized(value)) else None
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return tokens.verify(self.settings.workspace_secret, "session", cookie) if cookie else None

    def user(self, request: Request) -> User | None:
        address = self.address(request)
        if address is None:
            return None
        with self.engine.connect() as conn:
            return workspace.find_user(conn, self.settings, address)

    def csrf(self, request: Request) -> str:
        """The CSRF token of this browser's session: forms carry it, POSTs must return it."""
        seed = request.cookies.get(SESSION_COOKIE, "") or (self.address(request) or "")
        return hmac.new(self.settings.workspace_secret.encode(), f"csrf\x00{seed}".encode(), hashlib.sha256).hexdigest()

    # -- rendering ----------------------------------------------------------

    def page(
        self, request: Request, template: str, status: int = 200, customer: bool = False, **context: Any
    ) -> HTMLResponse:
        locale = self.locale(request, customer)
        t = translator(locale)
        user = None if customer else context.pop("user", None)
        context.setdefault("active", "")
        context.setdefault("brand", None)  # customers' pages carry the sender's name, not the tool's
        html = self.env.get_template(template).render(
            t=t, locale=locale, user=user, csrf=self.csrf(request) if user else "", today=self.today(), **context
        )
        return HTMLResponse(html, status_code=status)

    def not_found(self, request: Request) -> HTMLResponse:
        return self.page(request, "not_found.html", status=404, customer=True)

    def today(self) -> date:
        return datetime.now(self.settings.tz).date()


async def _posted(request: Request) -> dict[str, str]:
    if request.method != "POST":
        return {}
    return {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}


def _signed_in(
    handler: Callable[[Web, Request, User, dict[str, str]], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """Pages for users, run in a worker thread (they query the warehouse).

    Signed-out visitors go to /signin; a POST without this session's CSRF
    token is refused; what a user may not see is 404.
    """

    def call(web: Web, request: Request, form: dict[str, str]) -> Response:
        user = web.user(request)
        if user is None:
            return RedirectResponse("/signin", status_code=303)
        if request.method == "POST" and not hmac.compare_digest(form.get("csrf", ""), web.csrf(request)):
            return web.page(request, "message.html", status=403, user=user, title_key="not_done", text_key="csrf_bad")
        try:
            return handler(web, request, user, form)
        except NotAllowed:
            return web.not_found(request)

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(call, request.app.state.web, request, await _posted(request))

    return endpoint


def _public(handler: Callable[[Web, Request, dict[str, str]], Response]) -> Callable[[Request], Awaitable[Response]]:
    """Pages anyone may open (sign-in, links in email), run in a worker thread."""

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(handler, request.app.state.web, request, await _posted(request))

    return endpoint


# --------------------------------------------------------------------------
# Signing in and out


@_public
def home(web: Web, request: Request, form: dict[str, str]) -> Response:
    user = web.user(request)
    if user is None:
        return RedirectResponse("/signin", status_code=303)
    return RedirectResponse("/tasks" if user.has_tasks else "/kpis", status_code=303)


@_public
def signin(web: Web, request: Request, form: dict[str, str]) -> Response:
    if request.method == "GET":
        return web.page(request, "signin.html", customer=True, sent=False, error=None)
    address = normalized(form.get("email", ""))
    client = request.client.host if request.client else "unknown"
    try:
        with web.engine.begin() as conn:
            token = workspace.request_signin(conn, web.settings, address, client)
            if token:
                queue_messages(conn, [_signin_message(web, request, address, token)])
    except RateLimited as exc:
        return web.page(request, "signin.html", status=429, customer=True, sent=False, error=str(exc))
    if token:
        from csflow.mailers import deliver_outbox

        deliver_outbox(web.engine, web.settings, kinds=("signin",))
    # The same answer whether or not the address is known.
    return web.page(request, "signin.html", customer=True, sent=True, error=None)


def _signin_message(web: Web, request: Request, address: str, token: str) -> Message:
    t = translator(web.locale(request))
    link = tokens.link(web.settings.link("signin"), token)
    body = t("signin_email_body", link=link, minutes=workspace.SIGNIN_MINUTES)
    return Message(
        dedupe_key=f"signin:{hashlib.sha256(token.encode()).hexdigest()}",
        kind="signin",
        to_email=address,
        subject=t("signin_email_subject"),
        html_body=web.env.get_template("signin_email.html").render(body=body, link=link, t=t),
        text_body=body,
    )


@_public
def signin_link(web: Web, request: Request, form: dict[str, str]) -> Response:
    token = request.path_params["token"]
    if request.method == "GET":  # a mail scanner's fetch must not use up the single-use link
        return web.page(request, "signin_confirm.html", customer=True, token=token)
    with web.engine.begin() as conn:
        address = workspace.use_signin_link(conn, token)
    if address is None:
        return web.page(
            request,
            "message.html",
            status=400,
            customer=True,
            title_key="signin_link_bad",
            text_key="signin_link_bad_text",
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        tokens.sign(web.settings.workspace_secret, "session", address, SESSION_HOURS * 3600),
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=web.secure,
    )
    return response


async def signout(request: Request) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=request.app.state.web.secure)
    return response


# --------------------------------------------------------------------------
# Tasks, accounts, renewals, KPIs


@_signed_in
def tasks_page(web: Web, request: Request, user: User, form: dict[str, str]) -> Response:
    if not user.has_tasks:
        raise NotAllowed
    with web.engine.connect() as conn:
        rows, snoozed = workspace.open_tasks(conn, user, web.today())
        owners = workspace.task_owners(conn, web.settings) if user.is_lead else []
    notice = request.query_params.get("done")
    return web.page(
        request,
        "tasks.html",
        user=user,
        active="tasks",
        tasks=rows,
        single=False,
        snoozed=snoozed,
        outcomes=OUTCOMES,
        owners=owners,
        notice=notice if notice in TASK_ACTIONS else None,
    )


@_signed_in
def task_page(web: Web, request: Request, user: User, form: dict[str, str]) -> Response:
    """One task: its link in the digest; the same forms as the list while it is open."""
    with web.engine.connect() as conn:
        found = workspace.task(conn, user, int(request.path_params["task_id"]), web.today())
        owners = workspace.task_owners(conn, web.settings) if user.is_lead else []
    return web.page(
        request,
        "tasks.html",
        user=user,
        active="tasks",
        tasks=[found],
        single=True,
        snoozed=0,
        outcomes=OUTCOMES,
        owners=owners,
        notice=None,
    )


@_signed_in
def task_action(web: Web, request: Request, user: User, form: dict[str, str]) -> Response:
    task_id, action = int(request.path_params["task_id"]), request.path_params["action"]
    if action not in TASK_ACTIONS:
        raise NotAllowed
    try:
        with web.engine.begin() as conn:
            if action == "complete":
                workspace.complete_task(
                    conn, user, task_id, form.get("outcome", ""), form.get("note", "").strip() or None
                )
            elif action == "snooze":
                until = form.get("until", "")
                try:
                    day = date.fromisoformat(until)
                except ValueError:
                    raise ValueError(f"{until!r} is not a date (YYYY-MM-DD)") from None
                workspace.snooze_task(conn, user, task_id, day, web.today())
            else:
                workspace.reassign_task(conn, web.settings, user, task_id, form.get("owner", ""))
    except ValueError as exc:
        return web.page(request, "message.html", status=400, user=user, title_key="not_done", text=str(exc))
    return RedirectResponse(f"/tasks?done={action}", status_code=303)


@_signed_in
def account_page(web: Web, request: Request, user: User, form: dict[str, str]) -> Response:
    with web.engine.connect() as conn:
        data = workspace.account_page(conn, user, request.path_params["account_id"], web.weights)
    return web.page(request, "account.html", user=user, **data)


@_signed_in
def renewals_page(web: Web, request: Request, user: User, form: dict[str, str]) -> Response:
    with web.engine.connect() as conn:
        rows = workspace.renewals(conn, user)
    return web.page(request, "renewals.html", user=user, active="renewals", renewals=rows)


@_signed_in
def kpis_page(web: Web, request: Request, user: User, form: dict[str, str]) -> Response:
    with web.engine.connect() as conn:
        data = workspace.kpis(conn, user)
    return web.page(request, "kpis.html", user=user, active="kpis", base_currency=web.base_currency, **data)


# --------------------------------------------------------------------------
# Links in email: outcomes, unsubscribes and survey scores. A GET only shows a page with a
# button: mail scanners fetch links, and a fetch must change nothing.


@_public
def outcome_link(web: Web, request: Request, form: dict[str, str]) -> Response:
    token = request.path_params["token"]
    try:
        action_id, _, outcome = tokens.read(web.settings.workspace_secret, "outcome", token).partition(":")
        fired_id = int(action_id)
    except tokens.TokenError as exc:
        return web.page(request, "message.html", status=400, customer=True, title_key="nothing_recorded", text=str(exc))
    with web.engine.begin() as conn:
        fired = workspace.firing(conn, fired_id)
        if fired is None:
            return web.not_found(request)
        before = workspace.record_outcome_from_link(conn, fired_id, outcome) if request.method == "POST" else None
    return web.page(
        request,
        "outcome.html",
        customer=True,
        firing=fired,
        outcome=outcome,
        token=token,
        done=request.method == "POST",
        before=before,
    )


@_public
def unsubscribe_link(web: Web, request: Request, form: dict[str, str]) -> Response:
    token = request.path_params["token"]
    address = tokens.verify(web.settings.unsubscribe_secret, "unsubscribe", token)
    if address is None:
        return web.page(
            request, "message.html", status=400, customer=True, title_key="nothing_changed", text_key="unsubscribe_bad"
        )
    with web.engine.begin() as conn:
        if request.method == "GET":
            state = "suppressed" if workspace.is_suppressed(conn, address) else "confirm"
        elif request.path_params.get("undo") == "undo":
            state = "resubscribed" if workspace.undo_unsubscribe(conn, address) else "suppressed"
        else:
            one_click = form.get("List-Unsubscribe") == "One-Click"  # RFC 8058: the mail client's own POST
            workspace.unsubscribe(conn, address, "one-click" if one_click else "page")
            if one_click:
                return PlainTextResponse("unsubscribed")
            state = "done"
        undoable = state != "confirm" and workspace.is_suppressed(conn, address) == "unsubscribe"
    return web.page(
        request,
        "unsubscribe.html",
        customer=True,
        brand=web.settings.company_name,
        address=address,
        token=token,
        state=state,
        undoable=undoable,
    )


@_public
def survey_link(web: Web, request: Request, form: dict[str, str]) -> Response:
    """A score link of the post-training survey: confirm the score, add a comment, record once."""
    token = request.path_params["token"]
    try:
        answer = read_survey_token(web.settings, token)
    except tokens.TokenError as exc:
        return web.page(request, "message.html", status=400, customer=True, title_key="nothing_recorded", text=str(exc))
    with web.engine.begin() as conn:
        given = workspace.survey_response(conn, answer)
        score = answer.score
        if request.method == "POST" and given is None:
            chosen = form.get("score", "")
            score = int(chosen) if chosen.isdigit() and int(chosen) in SURVEY_SCORES else answer.score
            comment = form.get("comment", "").strip()[:4000] or None
            workspace.record_survey_response(conn, answer, score, comment)
            state = "thanks"
        else:
            state = "answered" if given else "confirm"
    return web.page(
        request,
        "survey.html",
        customer=True,
        brand=web.settings.company_name,
        token=token,
        state=state,
        score=given["score"] if given else score,
        scores=SURVEY_SCORES,
    )


async def sendgrid_webhook(request: Request) -> Response:
    """SendGrid's signed Event Webhook: 403 for a post it did not sign, 400 for a body that is not events."""
    from csflow.provider_events import BadSignature, record_sendgrid_events, verify_sendgrid_signature

    web: Web = request.app.state.web
    body = await request.body()
    try:
        verify_sendgrid_signature(
            web.settings.sendgrid_webhook_public_key,
            request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""),
            body,
        )
    except BadSignature as exc:
        return PlainTextResponse(str(exc), status_code=403)

    def record() -> dict[str, int]:
        with web.engine.begin() as conn:
            return record_sendgrid_events(conn, body)

    try:
        counts = await run_in_threadpool(record)
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    return PlainTextResponse(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to record")


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(settings: Settings, engine: sa.Engine) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/healthz", health),
            Route("/signin", signin, methods=["GET", "POST"]),
            Route("/signin/{token}", signin_link, methods=["GET", "POST"]),
            Route("/signout", signout, methods=["POST"]),
            Route("/tasks", tasks_page),
            Route("/tasks/{task_id:int}", task_page),
            Route("/tasks/{task_id:int}/{action}", task_action, methods=["POST"]),
            Route("/accounts/{account_id}", account_page),
            Route("/renewals", renewals_page),
            Route("/kpis", kpis_page),
            Route("/outcome/{token}", outcome_link, methods=["GET", "POST"]),
            Route("/unsubscribe/{token}", unsubscribe_link, methods=["GET", "POST"]),
            Route("/unsubscribe/{token}/{undo}", unsubscribe_link, methods=["POST"]),
            Route("/survey/{token}", survey_link, methods=["GET", "POST"]),
            Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"]),
        ],
        exception_handlers={404: _not_found_handler},
    )
    app.state.web = Web(settings, engine)
    return app


async def _not_found_handler(request: Request, exc: Exception) -> Response:
    return request.app.state.web.not_found(request)


def serving_refusal(settings: Settings, host: str) -> str | None:
    """Why the workspace may not serve with these settings: its secrets at their examples while
    it can be reached from elsewhere (listening beyond loopback, or behind a proxy at base_url)."""
    from csflow.config import env_name, is_loopback_host, is_loopback_url

    if is_loopback_host(host) and is_loopback_url(settings.base_url):
        return None
    where = host if not is_loopback_host(host) else settings.base_url
    for name in ("workspace_secret", "unsubscribe_secret"):
        if getattr(settings, name) in tokens.DEFAULT_SECRETS:
            return (
                f"setting {name} ({env_name(name)}) is the example value: anyone could forge this workspace's "
                f"links; set a long random secret before serving at {where}"
            )
    return None
