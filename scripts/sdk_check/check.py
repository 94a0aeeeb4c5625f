#!/usr/bin/env python3
"""Official-SDK compatibility check for the finchgate Finch sandbox emulator.

Drives Finch's own Python SDK (package `finch-api`) against a running emulator, so the emulator
is known to accept what the SDK really sends and to answer what the SDK can parse:

  connect session -> Connect page by plain HTTP -> code exchange -> introspect -> reauthenticate
  -> sandbox connection -> disconnect, plus the error paths (wrong secret, reused code, revoked
  token) and the Finch-Request-Id header;

  then the data API with a sandbox connection's token and the SDK's strict response validation
  (every answer must parse into the SDK's pydantic types): company, the directory across pages,
  individuals, employments, payments, pay statements, automated jobs, providers, introspect, and
  the typed errors for a product not granted, a bad token and Finch's rate limit.

Environment: SANDBOX_URL (the emulator's base URL), SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET.
Exits 0 with a PASS summary, or 1 with a FAIL line naming the first mismatch.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
import urllib.parse
from html.parser import HTMLParser

import finch
import httpx

REDIRECT_URI = "http://127.0.0.1:8080/t/sdk-check/finch/callback?from=sdk"
CUSTOMER_ID = "sdk-check-customer"
CUSTOMER_NAME = "SDK Check & Co"
PRODUCTS = ["company", "directory", "individual"]


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def request_id(response: httpx.Response, what: str) -> str:
    value = response.headers.get("finch-request-id")
    check(bool(value), f"{what}: no Finch-Request-Id header")
    return value


class ConnectForm(HTMLParser):
    """Collects the approve/deny form of the Connect page: its action and hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        if tag == "input" and a.get("type") == "hidden" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")


def complete_connect(http: httpx.Client, connect_url: str, state: str, provider: str) -> dict[str, str]:
    """Opens the Connect page, approves, and returns the redirect's query parameters."""
    parts = urllib.parse.urlsplit(connect_url)
    query = urllib.parse.parse_qsl(parts.query) + [("state", state)]
    page_url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    page = http.get(page_url)
    check(page.status_code == 200, f"Connect page: HTTP {page.status_code}")
    request_id(page, "Connect page")

    form = ConnectForm()
    form.feed(page.text)
    for element in ("provider", "approve", "deny"):
        check(element in form.ids, f"Connect page: no element with id {element!r}")
    check(form.action is not None, "Connect page: no form")
    fields = dict(form.fields, decision="approve", provider=provider)
    answer = http.post(urllib.parse.urljoin(page_url, form.action or ""), data=fields)
    check(answer.status_code in (302, 303), f"approve: expected a redirect, got HTTP {answer.status_code}")
    location = answer.headers.get("location", "")
    check(location.startswith(REDIRECT_URI.split("?")[0]), f"approve: redirected to {location!r}")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    check(params.get("from") == "sdk", "approve: the redirect_uri's own query was lost")
    check(params.get("state") == state, "approve: state not returned")
    check(bool(params.get("code")), "approve: no code in the redirect")
    return params


def main() -> None:
    base_url = os.environ.get("SANDBOX_URL", "")
    client_id = os.environ.get("SANDBOX_CLIENT_ID", "")
    client_secret = os.environ.get("SANDBOX_CLIENT_SECRET", "")
    check(bool(base_url and client_id and client_secret),
          "set SANDBOX_URL, SANDBOX_CLIENT_ID and SANDBOX_CLIENT_SECRET")
    steps: list[str] = []

    # max_retries=0: a retried request would hide what the emulator answered first.
    app = finch.Finch(client_id=client_id, client_secret=client_secret, base_url=base_url, max_retries=0)
    http = httpx.Client(follow_redirects=False, timeout=10)

    # 1. Connect session (HTTP Basic, 201).
    raw = app.connect.sessions.with_raw_response.new(
        customer_id=CUSTOMER_ID,
        customer_name=CUSTOMER_NAME,
        products=PRODUCTS,
        redirect_uri=REDIRECT_URI,
        sandbox="finch",
        minutes_to_expire=30,
        integration={"provider": "gusto"},
    )
    check(raw.http_response.status_code == 201, f"connect.sessions.new: HTTP {raw.http_response.status_code}")
    request_id(raw.http_response, "connect.sessions.new")
    session = raw.parse()
    check(bool(session.session_id), "connect.sessions.new: no session_id")
    check(f"session={session.session_id}" in session.connect_url, "connect_url does not carry the session")
    steps.append("connect.sessions.new")

    # 2. The employer approves (plain HTTP instead of a browser).
    params = complete_connect(http, session.connect_url, "sdk-state-1", "gusto")
    steps.append("Connect page approve")

    # 3. Code exchange with the SDK's own request shape.
    raw = app.access_tokens.with_raw_response.create(code=params["code"], redirect_uri=REDIRECT_URI)
    request_id(raw.http_response, "access_tokens.create")
    token = raw.parse()
    check(token.token_type == "bearer", f"token_type {token.token_type!r}")
    check(token.customer_id == CUSTOMER_ID, f"customer_id {token.customer_id!r} is not the session's")
    check(token.customer_name == CUSTOMER_NAME, f"customer_name {token.customer_name!r}")
    check(token.client_type == "sandbox", f"client_type {token.client_type!r}")
    check(token.connection_type == "finch", f"connection_type {token.connection_type!r}")
    check(token.provider_id == "gusto", f"provider_id {token.provider_id!r}")
    check(list(token.products) == PRODUCTS, f"products {token.products!r}")
    check(len(token.entity_ids) == 1, "entity_ids")
    steps.append("access_tokens.create")

    # 4. The same code again: single use, invalid_grant_error.
    try:
        app.access_tokens.create(code=params["code"], redirect_uri=REDIRECT_URI)
        raise CheckFailed("a reused code was accepted")
    except finch.BadRequestError as e:
        check(e.status_code == 400, f"reused code: HTTP {e.status_code}")
        check(isinstance(e.body, dict) and e.body.get("name") == "invalid_grant_error",
              f"reused code: body {e.body!r}")
        request_id(e.response, "reused code")
    steps.append("reused code -> BadRequestError invalid_grant_error")

    # 5. Introspect with the token.
    connection = finch.Finch(access_token=token.access_token, base_url=base_url, max_retries=0)
    info = connection.account.introspect()
    check(info.connection_id == token.connection_id, "introspect: another connection_id")
    check(info.connection_status.status == "connected", f"introspect: status {info.connection_status.status!r}")
    check(info.customer_id == CUSTOMER_ID, f"introspect: customer_id {info.customer_id!r}")
    check(info.client_id == client_id, f"introspect: client_id {info.client_id!r}")
    steps.append("account.introspect")

    # 6. Reauthenticate: same connection, new token, old token revoked.
    reauth = app.connect.sessions.reauthenticate(connection_id=token.connection_id, redirect_uri=REDIRECT_URI)
    params = complete_connect(http, reauth.connect_url, "sdk-state-2", "gusto")
    renewed = app.access_tokens.create(code=params["code"], redirect_uri=REDIRECT_URI)
    check(renewed.connection_id == token.connection_id, "reauthentication changed the connection_id")
    check(renewed.access_token != token.access_token, "reauthentication kept the old token")
    try:
        connection.account.introspect()
        raise CheckFailed("the token replaced by reauthentication still works")
    except finch.AuthenticationError as e:
        check(e.body.get("name") == "invalid_token_error", f"replaced token: body {e.body!r}")
    steps.append("connect.sessions.reauthenticate (same connection_id, old token revoked)")

    # 7. A sandbox connection without Connect.
    created = app.sandbox.connections.create(provider_id="gusto", products=["company", "payment"])
    check(bool(created.access_token) and created.provider_id == "gusto", "sandbox.connections.create")
    check(list(created.products) == ["company", "payment"], f"sandbox connection products {created.products!r}")
    steps.append("sandbox.connections.create")

    # 8. Disconnect; the token stops working.
    renewed_client = finch.Finch(access_token=renewed.access_token, base_url=base_url, max_retries=0)
    result = renewed_client.account.disconnect()
    check(result.status == "success", f"disconnect: status {result.status!r}")
    try:
        renewed_client.account.introspect()
        raise CheckFailed("a disconnected token still works")
    except finch.AuthenticationError as e:
        check(e.status_code == 401, f"disconnected token: HTTP {e.status_code}")
    steps.append("account.disconnect (token revoked)")

    # 9. Wrong secret: AuthenticationError with Finch's error body and a request id.
    wrong = finch.Finch(client_id=client_id, client_secret="not-the-secret", base_url=base_url, max_retries=0)
    try:
        wrong.connect.sessions.new(customer_id="x", customer_name="x", products=["company"])
        raise CheckFailed("a wrong client secret was accepted")
    except finch.AuthenticationError as e:
        check(e.status_code == 401, f"wrong secret: HTTP {e.status_code}")
        check(isinstance(e.body, dict), f"wrong secret: body {e.body!r}")
        check(e.body.get("name") == "invalid_client_error", f"wrong secret: name {e.body.get('name')!r}")
        check(e.body.get("code") == 401, f"wrong secret: code {e.body.get('code')!r}")
        check("finch_code" in e.body and "message" in e.body, f"wrong secret: body {e.body!r}")
        request_id(e.response, "wrong secret")
    steps.append("wrong secret -> AuthenticationError invalid_client_error")

    data_api(app, base_url, client_id, steps)

    print(f"PASS: finch-api {finch.__version__} against {base_url}")
    for step in steps:
        print(f"  ok  {step}")


def strict_client(access_token: str, base_url: str) -> finch.Finch:
    """A client that validates every response against the SDK's types (extra fields allowed)."""
    return finch.Finch(access_token=access_token, base_url=base_url, max_retries=0,
                       _strict_response_validation=True)


def no_extra(model: object, what: str) -> None:
    """Fails when the emulator sent a field the SDK's type does not know (a likely typo)."""
    extra = getattr(model, "model_extra", None) or {}
    check(not extra, f"{what}: fields unknown to the SDK: {sorted(extra)}")


def data_api(app: finch.Finch, base_url: str, client_id: str, steps: list[str]) -> None:
    all_products = ["company", "directory", "individual", "employment", "payment", "pay_statement"]
    created = app.sandbox.connections.create(provider_id="gusto", products=all_products, employee_size=230)
    client = strict_client(created.access_token, base_url)

    # account.introspect with the data connection.
    info = client.account.introspect()
    check(info.connection_id == created.connection_id, "introspect: another connection")
    check(sorted(info.products) == sorted(all_products), f"introspect: products {info.products!r}")
    check(info.client_id == client_id, f"introspect: client_id {info.client_id!r}")

    # hris.company.retrieve
    company = client.hris.company.retrieve()
    no_extra(company, "company")
    check(company.id == created.company_id, f"company.id {company.id!r} is not the connection's company_id")
    check(bool(company.legal_name) and bool(company.ein), "company: no legal_name or ein")
    check(bool(company.departments) and bool(company.locations) and bool(company.accounts),
          "company: no departments, locations or accounts")
    check(client.hris.company.retrieve().model_dump() == company.model_dump(), "company: two reads differ")
    steps.append(f"hris.company.retrieve ({company.legal_name}, {len(company.departments or [])} departments)")

    # hris.directory.list, auto-paginated across pages of 50.
    people = list(client.hris.directory.list(limit=50))
    ids = [p.id for p in people]
    check(len(ids) == 230, f"directory: {len(ids)} people, expected 230")
    check(len(set(ids)) == len(ids), "directory: an individual appears twice across pages")
    for p in people[:5]:
        no_extra(p, "directory individual")
    check(all(p.first_name and p.last_name for p in people), "directory: a person without a name")
    managers = {p.manager.id for p in people if p.manager}
    check(managers <= set(ids), "directory: a manager who is not in the directory")
    first_page = client.hris.directory.list(limit=50)
    check(first_page.paging.count == 230 and first_page.paging.offset == 0,
          f"directory paging {first_page.paging!r}")
    steps.append(f"hris.directory.list ({len(ids)} people over 5 pages, no duplicates)")

    # hris.individuals.retrieve_many: three known people and one unknown id.
    unknown = "00000000-0000-4000-8000-000000000000"
    wanted = ids[:3] + [unknown]
    answers = list(client.hris.individuals.retrieve_many(requests=[{"individual_id": i} for i in wanted]))
    check([a.individual_id for a in answers] == wanted, "individuals: answers not in request order")
    for a in answers[:3]:
        check(a.code == 200, f"individual {a.individual_id}: code {a.code}")
        check(isinstance(a.body, finch.types.hris.individual.IndividualResponseBody),
              f"individual body type {type(a.body).__name__}")
        no_extra(a.body, "individual")
        check(a.body.id == a.individual_id and bool(a.body.emails), "individual: id or emails")
        check(a.body.ssn is None, "individual: an SSN without the ssn product")
    miss = answers[3]
    check(miss.code == 404 and isinstance(miss.body, finch.types.hris.individual.BatchError),
          f"unknown individual: code {miss.code}, body {type(miss.body).__name__}")
    check(miss.body.name == "not_found_error" and miss.body.finch_code == "individual_not_found",
          f"unknown individual: {miss.body!r}")
    steps.append("hris.individuals.retrieve_many (3 found, 1 per-item not_found_error)")

    # hris.employments.retrieve_many
    answers = list(client.hris.employments.retrieve_many(requests=[{"individual_id": i} for i in ids[:10]]))
    check(len(answers) == 10 and all(a.code == 200 for a in answers), "employments: not all found")
    for a in answers:
        body = a.body
        check(isinstance(body, finch.types.hris.employment_data.EmploymentDataResponseBody),
              f"employment body type {type(body).__name__}")
        no_extra(body, "employment")
        check(body.income is not None and (body.income.amount or 0) > 0, "employment: no income")
        check(body.employment is not None and body.employment.type in ("employee", "contractor"),
              "employment: no employment type")
    check(answers[0].body.manager is None and answers[1].body.manager is not None,
          "employment: the first person should be the top of the tree")
    steps.append("hris.employments.retrieve_many (10 people, income and managers)")

    # hris.payments.list over the last six months.
    today = datetime.date.today()
    payments = list(client.hris.payments.list(start_date=today - datetime.timedelta(days=200), end_date=today))
    check(10 <= len(payments) <= 15, f"payments: {len(payments)} pay runs in ~6 months")
    for p in payments:
        no_extra(p, "payment")
        check(p.pay_frequencies == ["bi_weekly"], f"payment frequencies {p.pay_frequencies!r}")
        check(p.gross_pay is not None and p.net_pay is not None and p.gross_pay.amount > p.net_pay.amount > 0,
              "payment: gross must exceed net")
    latest = max(payments, key=lambda p: p.pay_date or "")
    steps.append(f"hris.payments.list ({len(payments)} bi-weekly pay runs, latest {latest.pay_date})")

    # hris.pay_statements.retrieve_many: page through one payment's statements.
    statements = []
    offset = 0
    while True:
        page = list(client.hris.pay_statements.retrieve_many(
            requests=[{"payment_id": latest.id, "limit": 100, "offset": offset}]))
        check(len(page) == 1 and page[0].code == 200, f"pay statements: {page!r}"[:300])
        body = page[0].body
        check(isinstance(body, finch.types.hris.pay_statement_data.PayStatementData),
              f"pay statement body type {type(body).__name__}")
        statements.extend(body.pay_statements)
        offset += len(body.pay_statements)
        if not body.pay_statements or offset >= (body.paging.count or 0):
            break
    for s in statements[:5]:
        no_extra(s, "pay statement")
    check(len(statements) == len(latest.individual_ids or []), "pay statements: not one per paid individual")
    gross = sum(s.gross_pay.amount for s in statements)
    net = sum(s.net_pay.amount for s in statements)
    check(gross == latest.gross_pay.amount and net == latest.net_pay.amount,
          "pay statements do not add up to their payment")
    unknown_payment = list(client.hris.pay_statements.retrieve_many(requests=[{"payment_id": unknown}]))
    check(unknown_payment[0].code == 404, f"unknown payment: code {unknown_payment[0].code}")
    steps.append(f"hris.pay_statements.retrieve_many ({len(statements)} statements adding up to the payment)")

    # jobs.automated: create, the running job again, retrieve, list.
    job = client.jobs.automated.create(type="data_sync_all")
    check(bool(job.job_id) and job.allowed_refreshes == 1 and job.remaining_refreshes == 0,
          f"jobs.automated.create: {job!r}")
    again = client.jobs.automated.create(type="data_sync_all")
    check(again.job_id == job.job_id, "jobs.automated.create: a second job while one runs")
    status = client.jobs.automated.retrieve(job.job_id)
    check(status.status == "pending" and status.type == "data_sync_all", f"job status {status.status!r}")
    time.sleep(2.2)
    status = client.jobs.automated.retrieve(job.job_id)
    check(status.status == "complete" and status.completed_at is not None, f"job status {status.status!r}")
    listed = client.jobs.automated.list()
    check([j.job_id for j in listed.data] == [job.job_id], "jobs.automated.list")
    check(listed.meta.quotas.data_sync_all.remaining_refreshes == 0, "jobs quota")
    try:
        client.jobs.automated.create(type="data_sync_all")
        raise CheckFailed("a second forced refresh within the hour was accepted")
    except finch.RateLimitError as e:
        check(e.response.headers.get("x-should-retry") == "false", "refresh limit: x-should-retry")
    steps.append("jobs.automated.create / retrieve (pending -> complete) / list, 1 refresh per hour")

    # providers.list (no credentials needed).
    providers = list(finch.Finch(base_url=base_url, max_retries=0, _strict_response_validation=True,
                                 access_token="unused").providers.list())
    check("gusto" in {p.id for p in providers}, "providers.list: no gusto")
    for p in providers:
        no_extra(p, "provider")
    steps.append(f"providers.list ({len(providers)} providers)")

    # A product not granted -> PermissionDeniedError (403 insufficient_scope_error).
    narrow = app.sandbox.connections.create(provider_id="gusto", products=["company"])
    narrow_client = strict_client(narrow.access_token, base_url)
    check(bool(narrow_client.hris.company.retrieve().id), "narrow connection: company")
    try:
        list(narrow_client.hris.directory.list())
        raise CheckFailed("a directory read without the directory product was accepted")
    except finch.PermissionDeniedError as e:
        check(e.body.get("name") == "insufficient_scope_error", f"missing product: body {e.body!r}")
    steps.append("product not granted -> PermissionDeniedError insufficient_scope_error")

    # A bad token -> AuthenticationError.
    try:
        strict_client("not-a-token", base_url).hris.company.retrieve()
        raise CheckFailed("a bad token was accepted")
    except finch.AuthenticationError as e:
        check(e.body.get("name") == "invalid_token_error", f"bad token: body {e.body!r}")
    steps.append("bad token -> AuthenticationError invalid_token_error")

    # Finch's per-application limit: company is 20 a minute; the narrow connection used 1 above
    # and the data connection 2, all under the same application.
    try:
        for _ in range(25):
            narrow_client.hris.company.retrieve()
        raise CheckFailed("25 company reads in a minute were all accepted")
    except finch.RateLimitError as e:
        expected = {"code": 429, "message": "Too many requests for token",
                    "name": "rate_limit_exceeded_error", "finch_code": "finch_application_rl"}
        check(isinstance(e.body, dict) and all(e.body.get(k) == v for k, v in expected.items()),
              f"rate limit: body {e.body!r}")
        request_id(e.response, "rate limit")
    steps.append("rate limit -> RateLimitError finch_application_rl")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        sys.exit(1)
    except finch.APIError as error:
        status = getattr(error, "status_code", "no response")
        print(f"FAIL: unexpected SDK error ({type(error).__name__}, HTTP {status}): {error}", file=sys.stderr)
        sys.exit(1)
