"""Starts a real `strongroom serve --dev --test-clock` on a free loopback port."""
import json
import os
import pathlib
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _binary() -> str:
    b = os.environ.get("STRONGROOM_BIN", str(ROOT / "target" / "debug" / "strongroom"))
    assert os.path.exists(b), f"build the server first (cargo build): {b} is missing"
    return b


class Server:
    def __init__(self, extra=(), kmip=False):
        self.dir = tempfile.TemporaryDirectory(prefix="strongroom-py-")
        log = open(os.path.join(self.dir.name, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [_binary(), "serve", "--dev", "--test-clock", "--http-addr", "127.0.0.1:0", "--data-dir", self.dir.name,
             *extra, *(("--kmip-addr", "127.0.0.1:0") if kmip else ("--kmip-addr", "off"))],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        dev = pathlib.Path(self.dir.name) / "dev.json"
        deadline = time.time() + 30
        while not dev.exists():
            assert self.proc.poll() is None, "server exited during start-up"
            assert time.time() < deadline, "server did not start"
            time.sleep(0.05)
        info = json.loads(dev.read_text())
        self.url = info["rest_url"]
        self.admin_url = info["admin_url"]
        self.instance = info["instance_id"]
        self.token = info["token"]
        self.admin_token = info["admin_token"]
        self.grpc_addr = info["grpc_addr"]
        self.kmip_addr = info.get("kmip_addr")
        self.kmip_ca = info.get("kmip_ca")
        self.kmip_client_cert = info.get("kmip_client_cert")
        self.kmip_client_key = info.get("kmip_client_key")
        self.kmip_adapter = info.get("kmip_adapter")

    def advance(self, seconds: int):
        r = requests.post(
            f"{self.admin_url}/admin/v1/test/clock",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            json={"advance_seconds": seconds},
        )
        assert r.status_code == 200, r.text

    def api_key(self, *roles: str) -> str:
        r = requests.post(
            f"{self.admin_url}/admin/v1/instances/{self.instance}/api_keys",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            json={"name": "pytest", "roles": list(roles)},
        )
        assert r.status_code == 201, r.text
        return r.json()["apikey"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()
