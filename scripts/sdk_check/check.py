#!/usr/bin/env python3
"""Official-SDK compatibility check for the finchgate Finch sandbox emulator.

Drives Finch's own Python SDK (package `finch-api`) against a running emulator, so the emulator
is known to accept what the SDK really sends and to answer what the SDK can parse:

  connect session -> Connect page by plain HTTP -> code exchange -> introspect -> reauthenticate
  -> sandbox connection -> disconnect, plus the error paths (wrong secret, reused code, revoked
  token) and the Finch-Request-Id header.

Environment: SANDBOX_URL (the emulator's base URL), SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET.
Exits 0 with a PASS summary, or 1 with a FAIL line naming the first mismatch.
"""

from __future__ import annotations

import os
import sys
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

    print(f"PASS: finch-api {finch.__version__} against {base_url}")
    for step in steps:
        print(f"  ok  {step}")


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
