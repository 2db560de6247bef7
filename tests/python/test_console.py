"""The web console (/ui/), driven by Playwright in Debian's headless Chromium against a real
dev server: log in, create, rotate, disable, see the audit event, secure import (checked by
opening a DEK the imported key wrapped), the dual-authorization delete, restore, purge, the
Reader's view, logout; the security headers, no request to another host, nothing rendered as
HTML from the API; an axe-core scan of every page in light and dark themes. Screenshots of
every page go to $STRONGROOM_CONSOLE_SCREENSHOTS (docs/console for the README) or a
temporary directory."""
import base64
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT, Server, _binary

KEY_JSON = "application/vnd.ibm.kms.key+json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def backup_dir():
    with tempfile.TemporaryDirectory(prefix="strongroom-backups-") as d:
        yield pathlib.Path(d) / "archives"


@pytest.fixture(scope="module")
def server(backup_dir):
    s = Server(kmip=True, extra=("--backup-dir", str(backup_dir)))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def shots():
    d = os.environ.get("STRONGROOM_CONSOLE_SCREENSHOTS")
    if d:
        pathlib.Path(d).mkdir(parents=True, exist_ok=True)
        yield pathlib.Path(d)
    else:
        with tempfile.TemporaryDirectory(prefix="strongroom-console-") as t:
            yield pathlib.Path(t)


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing (scripts/test installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


class Console:
    """One browser context (one tab's sessionStorage), recording what the page does."""

    def __init__(self, browser, server, scheme="light"):
        self.server = server
        self.ctx = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
        self.page = self.ctx.new_page()
        self.requests = []
        self.errors = []
        self.page.on("request", lambda r: self.requests.append((r.method, r.url)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Refused API calls log "Failed to load resource" (the page shows their reason);
        # anything else on the console (a CSP violation, a script error) fails the test.
        self.page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
                     and self.errors.append(m.text))
        self.axe = Axe()

    def open(self, path="#/keys"):
        self.page.goto(f"{self.server.url}/ui/{path}")

    def login_with_key(self, api_key):
        self.open("")
        self.page.get_by_label("API key").fill(api_key)
        self.page.get_by_role("button", name="Log in", exact=True).click()
        expect(self.page.get_by_role("heading", name="Keys")).to_be_visible()

    def scan(self, name, shots):
        """axe-core over the page: no serious or critical violation; then a screenshot."""
        self.page.wait_for_load_state("networkidle")
        results = self.axe.run(self.page)
        bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name}: " + "; ".join(f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in bad)
        self.page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    def close(self):
        assert not self.errors, self.errors
        host = urllib.parse.urlsplit(self.server.url).netloc
        foreign = [u for _, u in self.requests if urllib.parse.urlsplit(u).netloc not in (host, "")]
        assert not foreign, f"requests left the page's host: {foreign}"
        # Key material is never fetched: the page reads keys through /metadata only (a GET of
        # /api/v2/keys/{id} would return a standard key's payload).
        material = [u for m, u in self.requests
                    if m == "GET" and re.fullmatch(r"/api/v2/keys/[^/]+", urllib.parse.urlsplit(u).path)]
        assert not material, material
        self.ctx.close()


def api(server, method, path, token=None, content_type=None, **kw):
    headers = {"Authorization": f"Bearer {token or server.token}", "Bluemix-Instance": server.instance}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.request(method, f"{server.url}{path}", headers=headers, **kw)


def create_key(server, name):
    r = api(server, "POST", "/api/v2/keys", content_type=KEY_JSON, json={"metadata": {"collectionType": KEY_JSON, "collectionTotal": 1},
              "resources": [{"type": KEY_JSON, "name": name}]})
    assert r.status_code == 201, r.text
    return r.json()["resources"][0]


def key_by_name(server, name):
    r = api(server, "GET", "/api/v2/keys", params={"search": f"exact:{name}", "state": "0,1,2,3,5"})
    assert r.status_code == 200, r.text
    found = [k for k in r.json().get("resources", []) if k["name"] == name]
    assert len(found) == 1, found
    return found[0]


def test_headers_and_assets(server):
    r = requests.get(f"{server.url}/ui/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    assert "<script type=\"module\" src=\"app.js\">" in r.text
    assert requests.get(f"{server.url}/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert requests.get(f"{server.url}/ui/nothing.js").status_code == 404
    r = requests.get(f"{server.url}/ui", allow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/ui/"
    ep = requests.get(f"{server.url}/ui/endpoints.json").json()
    assert ep["grep11"]["port"] == int(server.grpc_addr.rsplit(":", 1)[1])
    assert ep["kmip"]["port"] == int(server.kmip_addr.rsplit(":", 1)[1])


def test_manager_walks_through_a_key_life(server, browser, shots):
    manager = server.api_key("Manager", "Writer")
    c = Console(browser, server)
    page = c.page
    c.open("")
    expect(page.get_by_role("heading", name="Log in to Strongroom")).to_be_visible()
    c.scan("login", shots)
    # A wrong key gets IAM's reason, and no session.
    page.get_by_label("API key").fill("sr1.0000000000000000.wrong")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Provided API key could not be found")
    assert page.evaluate("sessionStorage.length") == 0

    c.login_with_key(manager)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('strongroom.session')).token")
    assert token and api(server, "HEAD", "/api/v2/keys", token=token).status_code == 200

    # Create: the detail page shows the new key, active, one version.
    page.get_by_role("button", name="Create key").click()
    page.get_by_label("Name").fill("console-key")
    page.get_by_label("Description").fill("made in the console")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name="console-key")).to_be_visible()
    expect(page.locator("#key-state")).to_have_text("Active")
    expect(page.get_by_text("1 version", exact=True)).to_be_visible()
    key = key_by_name(server, "console-key")
    assert key["description"] == "made in the console" and key["extractable"] is False

    # Rotate: two versions.
    page.get_by_role("button", name="Rotate").click()
    expect(page.get_by_text("2 versions", exact=True)).to_be_visible()
    versions = api(server, "GET", f"/api/v2/keys/{key['id']}/versions").json()["resources"]
    assert len(versions) == 2
    c.scan("key", shots)

    # Disable: suspended, and the audit event is in the activity page.
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#key-state")).to_have_text("Suspended")
    assert api(server, "GET", f"/api/v2/keys/{key['id']}/metadata").json()["resources"][0]["state"] == 2
    page.get_by_role("link", name="Activity of this key").click()
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    expect(page.get_by_role("cell", name="kms.secrets.disable")).to_be_visible()
    expect(page.get_by_role("cell", name="kms.secrets.rotate")).to_be_visible()
    c.scan("activity", shots)
    page.get_by_label("Outcome").select_option("failure")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No events match.")).to_be_visible()

    # Enable within 30 s of the disable: the API's refusal is shown; after 30 s it works.
    c.open(f"#/keys/{key['id']}")
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("alert")).to_contain_text("Enable was refused")
    expect(page.locator("#key-state")).to_have_text("Suspended")
    server.advance(31)
    page.reload()
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#key-state")).to_have_text("Active")

    # The list: search, filter by state, paging.
    for i in range(12):
        create_key(server, f"bulk-{i:02}")
    c.open("#/keys")
    page.get_by_label("Per page").select_option("10")
    expect(page.locator("#range")).to_contain_text("1–10 of")
    total = int(page.locator("#range").inner_text().rsplit(" ", 1)[1])
    assert total == int(api(server, "HEAD", "/api/v2/keys").headers["Key-Total"])
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#range")).to_contain_text("11–")
    page.get_by_label("Search").fill("bulk-0")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#range")).to_have_text("1–10 of 10")
    page.get_by_label("Sort").select_option("creationDate")
    expect(page.locator("tbody tr").first).to_contain_text("bulk-00")
    page.get_by_label("Search").fill("")
    page.get_by_label("State").select_option("2")
    expect(page.locator("#range")).to_have_text("0–0 of 0")
    page.get_by_label("State").select_option("1,2")
    # A key ring narrows the list (the X-Kms-Key-Ring header).
    r = api(server, "POST", "/api/v2/key_rings/payments", content_type="application/json")
    assert r.status_code == 201, r.text
    r = requests.post(f"{server.url}/api/v2/keys",
                      json={"metadata": {"collectionType": KEY_JSON, "collectionTotal": 1},
                            "resources": [{"type": KEY_JSON, "name": "in-payments"}]},
                      headers={"Authorization": f"Bearer {server.token}", "Bluemix-Instance": server.instance,
                               "Content-Type": KEY_JSON, "X-Kms-Key-Ring": "payments"})
    assert r.status_code == 201, r.text
    page.reload()
    page.get_by_label("Key ring").select_option("payments")
    expect(page.locator("#range")).to_have_text("1–1 of 1")
    expect(page.get_by_role("link", name="in-payments")).to_be_visible()
    page.get_by_label("Key ring").select_option("")
    c.scan("keys", shots)

    # An API name is text, never markup.
    create_key(server, "<img src=x id=pwned>")
    page.get_by_label("Search").fill("pwned")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("link", name="<img src=x id=pwned>")).to_be_visible()
    assert page.locator("#pwned").count() == 0
    c.close()


def test_secure_import_wraps_in_the_browser(server, browser):
    manager = server.api_key("Manager", "Writer")
    c = Console(browser, server)
    page = c.page
    c.login_with_key(manager)
    material = os.urandom(32)
    page.get_by_role("button", name="Import root key").click()
    page.get_by_label("Name").fill("console-imported")
    page.get_by_label("Key material (base64)").fill(base64.b64encode(material).decode())
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="console-imported")).to_be_visible()
    key = key_by_name(server, "console-imported")
    assert key["imported"] is True
    assert base64.b64encode(material).decode() not in page.content()
    # The material never travelled in clear: no request body carried it.
    # (The page wrapped it; the server opened it.) A DEK wrapped by the key opens with it.
    w = api(server, "POST", f"/api/v2/keys/{key['id']}/actions/wrap",
            content_type="application/vnd.ibm.kms.key_action+json", json={"plaintext": base64.b64encode(b"dek").decode()})
    assert w.status_code == 200, w.text
    raw = base64.b64decode(w.json()["ciphertext"])
    aad = b"strongroom/wdek/v1" + raw[:29] + (0).to_bytes(4, "big")
    assert AESGCM(material).decrypt(raw[17:29], raw[29:], aad) == b"dek"
    # An imported key rotates to new material, wrapped in the page as well.
    rotated = os.urandom(32)
    page.get_by_role("button", name="Rotate").click()
    page.get_by_label("Key material (base64)").fill(base64.b64encode(rotated).decode())
    page.get_by_role("button", name="Rotate", exact=True).last.click()
    expect(page.get_by_text("2 versions", exact=True)).to_be_visible()
    w2 = api(server, "POST", f"/api/v2/keys/{key['id']}/actions/wrap",
             content_type="application/vnd.ibm.kms.key_action+json", json={"plaintext": base64.b64encode(b"dek2").decode()})
    raw = base64.b64decode(w2.json()["ciphertext"])
    aad = b"strongroom/wdek/v1" + raw[:29] + (0).to_bytes(4, "big")
    assert AESGCM(rotated).decrypt(raw[17:29], raw[29:], aad) == b"dek2"
    # Bad material is refused in the page, before anything is sent.
    page.get_by_role("link", name="← All keys").click()
    page.get_by_role("button", name="Import root key").click()
    page.get_by_label("Name").fill("console-bad")
    page.get_by_label("Key material (base64)").fill(base64.b64encode(b"short").decode())
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("16, 24 or 32 bytes")
    assert not api(server, "GET", "/api/v2/keys", params={"search": "exact:console-bad"}).json().get("resources")
    c.close()


def test_dual_authorization_delete_restore_and_purge(server, browser, shots):
    alice_key = server.api_key("Manager", "Writer")
    bob_key = server.api_key("Manager", "Writer", "KeyPurge")
    key = create_key(server, "guarded")
    policy = "application/vnd.ibm.kms.policy+json"
    r = api(server, "PUT", f"/api/v2/keys/{key['id']}/policies", content_type=policy, json={"metadata": {"collectionType": policy, "collectionTotal": 1},
                  "resources": [{"type": policy, "dualAuthDelete": {"enabled": True}}]})
    assert r.status_code == 200, r.text

    alice = Console(browser, server)
    alice.login_with_key(alice_key)
    a = alice.page
    alice.open(f"#/keys/{key['id']}")
    expect(a.get_by_text("Required for deletion")).to_be_visible()
    # Deleting before a second Manager authorized it: the API's reason is shown, nothing changes.
    a.get_by_role("button", name="Delete").click()
    a.get_by_label("Type the key's name").fill("guarded")
    a.get_by_role("button", name="Delete key").click()
    expect(a.get_by_role("alert")).to_contain_text("Delete was refused")
    assert api(server, "GET", f"/api/v2/keys/{key['id']}/metadata").json()["resources"][0]["state"] == 1
    a.get_by_role("button", name="Authorize deletion").click()
    expect(a.get_by_role("status")).to_contain_text("Authorize deletion: done.")
    alice.close()

    bob = Console(browser, server, scheme="dark")
    bob.login_with_key(bob_key)
    b = bob.page
    bob.open(f"#/keys/{key['id']}")
    # A wrong confirmation deletes nothing.
    b.get_by_role("button", name="Delete").click()
    b.get_by_label("Type the key's name").fill("not-the-name")
    b.get_by_role("button", name="Delete key").click()
    expect(b.get_by_role("status")).to_contain_text("nothing was deleted")
    assert api(server, "GET", f"/api/v2/keys/{key['id']}/metadata").json()["resources"][0]["state"] == 1
    b.get_by_role("button", name="Delete").click()
    b.get_by_label("Type the key's name").fill("guarded")
    b.get_by_role("button", name="Delete key").click()
    expect(b.locator("#key-state")).to_have_text("Destroyed")
    bob.scan("key-deleted-dark", shots)
    # Purge is refused within 4 hours of the deletion, with the API's reason.
    b.get_by_role("button", name="Purge").click()
    b.get_by_label("Type the key's name").fill("guarded")
    b.get_by_role("button", name="Purge key").click()
    expect(b.get_by_role("alert")).to_contain_text("Purge was refused")
    # Restore (30 s after the deletion), delete again (the authorization was used up: Alice
    # authorizes again, through the API), then purge 4 hours later.
    b.get_by_role("button", name="Restore").click()
    expect(b.get_by_role("alert")).to_contain_text("Restore was refused")
    server.advance(31)
    b.reload()
    b.get_by_role("button", name="Restore").click()
    expect(b.locator("#key-state")).to_have_text("Active")
    alice_token = requests.post(f"{server.url}/identity/token",
                                data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": alice_key}).json()["access_token"]
    r = api(server, "POST", f"/api/v2/keys/{key['id']}/actions/setKeyForDeletion", token=alice_token)
    assert r.status_code == 204, r.text
    b.reload()
    b.get_by_role("button", name="Delete").click()
    b.get_by_label("Type the key's name").fill("guarded")
    b.get_by_role("button", name="Delete key").click()
    expect(b.locator("#key-state")).to_have_text("Destroyed")
    server.advance(4 * 3600 + 60)
    # Bob's token has expired by the server's clock: the console says so and asks again.
    b.reload()
    expect(b.get_by_role("heading", name="Log in to Strongroom")).to_be_visible()
    expect(b.get_by_role("status")).to_contain_text("Your session has ended")
    bob.login_with_key(bob_key)
    bob.open(f"#/keys/{key['id']}")
    b.get_by_role("button", name="Purge").click()
    b.get_by_label("Type the key's name").fill("guarded")
    b.get_by_role("button", name="Purge key").click()
    expect(b.get_by_role("heading", name="Keys")).to_be_visible()
    assert api(server, "GET", f"/api/v2/keys/{key['id']}/metadata").status_code in (404, 410)
    bob.close()


def test_units_integrations_usage_pages(server, browser, shots):
    c = Console(browser, server)
    c.login_with_key(server.api_key("Manager"))
    page = c.page
    page.get_by_role("link", name="Crypto units").click()
    expect(page.get_by_role("heading", name="Crypto units")).to_be_visible()
    expect(page.get_by_role("note").first).to_contain_text("development unit")
    expect(page.get_by_text("Next ceremony step:")).to_be_visible()
    units = api(server, "GET", "/api/v2/crypto_units").json()["units"]
    status = json.loads(base64.b64decode(units[0]["body"]))["output"]
    expect(page.get_by_role("cell", name=status["current"]["vp"][:16] + "…", exact=False)).to_be_visible()
    c.scan("units", shots)

    page.get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    grpc_port = server.grpc_addr.rsplit(":", 1)[1]
    expect(page.get_by_text(f"127.0.0.1:{grpc_port}")).to_be_visible()
    expect(page.get_by_role("cell", name="dev", exact=True)).to_be_visible()
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download grep11client.yaml").click()
    yaml = pathlib.Path(dl.value.path()).read_text()
    assert f'port: "{grpc_port}"' in yaml and f'instance: "{server.instance}"' in yaml
    assert "sr1." not in yaml  # no API key in the file
    # The file works as it is: the PKCS#11 library reads it, an API key is the PIN.
    cfg = pathlib.Path(c.server.dir.name) / "console-grep11client.yaml"
    cfg.write_text(yaml)
    module = ROOT / "target" / "debug" / "libstrongroom_pkcs11.so"
    assert module.exists(), f"build the workspace first: {module} is missing"
    out = subprocess.run(["pkcs11-tool", "--module", str(module), "--login", "--pin", server.api_key("Manager", "Writer"),
                          "--keypairgen", "--key-type", "EC:prime256v1", "--label", "from-console-yaml"],
                         env={**os.environ, "EP11CLIENT_CFG": str(cfg)}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "from-console-yaml" in out.stdout
    c.scan("integrations", shots)

    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage")).to_be_visible()
    usage = api(server, "GET", "/api/v2/instance/usage").json()
    chart = page.get_by_role("img", name="API calls per month")
    expect(chart).to_be_visible()
    assert f"{usage['month']} " in chart.get_attribute("aria-label")
    c.scan("usage", shots)
    c.close()


def test_reader_sees_no_write_controls_and_logs_out(server, browser, shots):
    key = create_key(server, "for-reader")
    c = Console(browser, server)
    c.login_with_key(server.api_key("Reader"))
    page = c.page
    expect(page.get_by_role("link", name="for-reader")).to_be_visible()
    for name in ("Create key", "Import root key"):
        assert page.get_by_role("button", name=name).count() == 0
    assert page.get_by_role("link", name="Crypto units").is_hidden()
    c.scan("keys-reader", shots)
    page.get_by_role("link", name="for-reader").click()
    expect(page.get_by_role("heading", name="for-reader")).to_be_visible()
    for name in ("Rotate", "Disable", "Enable", "Delete", "Restore", "Purge", "Authorize deletion"):
        assert page.get_by_role("button", name=name).count() == 0, name
    # The server, not the page, decides: the Reader's token cannot rotate.
    token = page.evaluate("JSON.parse(sessionStorage.getItem('strongroom.session')).token")
    r = api(server, "POST", f"/api/v2/keys/{key['id']}/actions/rotate", token=token)
    assert r.status_code == 401 and "needs the Writer role" in r.text  # Key Protect's answer

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Strongroom")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    c.open("#/keys")
    expect(page.get_by_role("heading", name="Log in to Strongroom")).to_be_visible()
    c.close()


def test_dev_token_login(server, browser):
    c = Console(browser, server)
    c.open("")
    c.page.get_by_label("Bearer token").fill(server.token)
    c.page.get_by_role("button", name="Log in with token").click()
    expect(c.page.get_by_role("heading", name="Keys")).to_be_visible()
    expect(c.page.locator("#who")).to_contain_text("dev · Manager")
    # A token that is not one: refused, no session kept.
    c.page.get_by_role("button", name="Log out").click()
    c.page.get_by_label("Bearer token").fill("not.a.token")
    c.page.get_by_role("button", name="Log in with token").click()
    expect(c.page.get_by_role("alert")).to_be_visible()
    assert c.page.evaluate("sessionStorage.length") == 0
    c.close()


def test_backups_page_lists_the_archives_that_hold_the_instance(server, browser, backup_dir, shots):
    c = Console(browser, server)
    c.login_with_key(server.api_key("Manager"))
    page = c.page
    page.get_by_role("link", name="Backups").click()
    expect(page.get_by_role("heading", name="Backups")).to_be_visible()
    expect(page.get_by_text("No archive yet.")).to_be_visible()

    other = requests.post(f"{server.admin_url}/admin/v1/instances", headers={"Authorization": f"Bearer {server.admin_token}"},
                          json={"name": "other-tenant"})
    assert other.status_code == 201, other.text
    other_id = other.json()["id"]

    def backup(*extra):
        subprocess.run([_binary(), "backup", "create", "--dir", str(backup_dir), "--data-dir", server.dir.name, *extra],
                       check=True, stdout=subprocess.DEVNULL)

    backup()
    backup("--instance", server.instance)
    backup("--instance", other_id)
    names = sorted(p.name for p in backup_dir.iterdir())
    assert len(names) == 3
    page.reload()
    expect(page.get_by_text("2 archives, newest first")).to_be_visible()
    expect(page.get_by_role("cell", name="This instance only")).to_be_visible()
    expect(page.get_by_role("cell", name="Whole node")).to_be_visible()
    assert other_id not in page.content()
    listed = api(server, "GET", "/api/v2/instance/backups").json()
    assert listed["configured"] is True and [b["scope"] for b in listed["backups"]].count("node") == 1
    assert all(other_id not in b["name"] for b in listed["backups"])
    c.scan("backups", shots)
    c.close()


def test_keyboard_only_on_a_phone_in_the_dark(server, browser, shots):
    """The create flow with the keyboard alone, on a phone-sized screen in the dark theme."""
    c = Console(browser, server, scheme="dark")
    c.page.set_viewport_size({"width": 390, "height": 844})
    c.login_with_key(server.api_key("Manager", "Writer"))
    page = c.page
    page.get_by_role("button", name="Create key").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("typed-key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="typed-key")).to_be_visible()
    assert key_by_name(server, "typed-key")["state"] == 1
    # Escape closes a dialog and creates nothing.
    page.get_by_role("link", name="← All keys").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Create key").focus()
    page.keyboard.press("Enter")
    page.keyboard.type("never-made")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert not api(server, "GET", "/api/v2/keys", params={"search": "exact:never-made"}).json().get("resources")
    c.scan("keys-phone-dark", shots)
    c.close()


def test_units_side_by_side_with_their_warnings(server, browser, shots):
    """Runs last: it adds crypto units in imprint mode to the module's instance."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    added = []
    for kind in ("operational", "recovery"):
        r = requests.post(f"{server.admin_url}/admin/v1/instances/{server.instance}/units", headers=admin,
                          json={"kind": kind, "allow_same_zone": True})
        assert r.status_code in (200, 201), r.text
        added.append(r.json()["unit"])
    c = Console(browser, server)
    c.login_with_key(server.api_key("Manager"))
    page = c.page
    page.get_by_role("link", name="Crypto units").click()
    expect(page.get_by_text("3 units, side by side")).to_be_visible()
    for unit in added:
        expect(page.get_by_role("columnheader", name=unit)).to_be_visible()
        expect(page.get_by_role("note").filter(has_text=f"Unit {unit[:8]} is in imprint mode")).to_be_visible()
    expect(page.get_by_role("note").filter(has_text="operational units disagree")).to_be_visible()
    expect(page.locator(".panel")).to_contain_text("strongroom tke cryptounit-admin-add")
    expect(page.get_by_role("row", name="Kind")).to_contain_text("recovery")
    c.scan("units-compared", shots)
    c.close()
