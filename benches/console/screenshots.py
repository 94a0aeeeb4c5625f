#!/usr/bin/env python3
"""Headless-Chromium screenshots of the operator console, through chromedriver's WebDriver API
(standard library only): signs in through the login form, then saves each page as a PNG.

    benches/console/screenshots.py BASE_URL EMAIL PASSWORD OUT_DIR

Start a seeded server first (see docs/benchmarks.md or README "Operator console"); chromedriver
and chromium must be installed (Debian: apt-get install chromium chromium-driver).
"""
import base64
import http.cookiejar
import json
import pathlib
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

base, email, password, out = sys.argv[1:5]
out = pathlib.Path(out)
out.mkdir(parents=True, exist_ok=True)
port = 19515
driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["value"]


try:
    for _ in range(50):
        try:
            call("GET", "/status")
            break
        except OSError:
            time.sleep(0.2)
    session = call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                 "--hide-scrollbars"]}}}})["sessionId"]
    s = f"/session/{session}"

    def go(path):
        call("POST", f"{s}/url", {"url": base + path})

    def run(script, *args):
        return call("POST", f"{s}/execute/sync", {"script": script, "args": list(args)})

    # Sign in over HTTP and hand the session cookie to the browser. (A form POST that Chromium
    # sends from a page served with Referrer-Policy: no-referrer carries "Origin: null", which the
    # CSRF check refuses: see the note in docs/benchmarks.md.)
    jar = http.cookiejar.CookieJar()
    http_client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = http_client.open(base + "/login").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": csrf})
    http_client.open(base + "/login", data=form.encode())
    go("/healthz")
    for cookie in jar:
        call("POST", f"{s}/cookie", {"cookie": {"name": cookie.name, "value": cookie.value, "path": "/"}})

    def shot(path, name, full_height=False):
        go(path)
        if full_height:
            height = run("return Math.min(document.body.scrollHeight, 2400);")
            call("POST", f"{s}/window/rect", {"width": 1280, "height": height + 140})
        else:
            call("POST", f"{s}/window/rect", {"width": 1280, "height": 900})
        png = base64.b64decode(call("GET", f"{s}/screenshot"))
        (out / name).write_bytes(png)
        print(f"{name}: {base}{path}")

    shot("/ops/exchanges", "exchanges.png")
    html = run("return document.documentElement.outerHTML;")
    first = re.search(r'href="/ops/exchanges/([0-9a-f-]{36})"', html).group(1)
    shot(f"/ops/exchanges/{first}", "exchange.png", full_height=True)
    shot("/ops/exchanges?view=groups", "groups.png")
    shot("/ops/exchanges?view=trends", "trends.png", full_height=True)
    shot("/ops/tenants", "tenants.png")
    call("DELETE", s)
finally:
    driver.terminate()
