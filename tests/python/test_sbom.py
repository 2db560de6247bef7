"""The release SBOMs (scripts/sbom): valid CycloneDX 1.5 by the CycloneDX project's own
validator, and true to Cargo.lock — every component a locked crate at its locked version,
the crypto stack named, OpenSSL absent."""
import json
import pathlib
import shutil
import subprocess
import tempfile
import tomllib

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _sboms():
    assert shutil.which("cargo-cyclonedx"), "cargo-cyclonedx is required; scripts/test installs it"
    out = tempfile.mkdtemp(prefix="strongroom-sbom-")
    subprocess.run([str(ROOT / "scripts" / "sbom"), out], check=True, capture_output=True)
    return {p.name: p.read_text() for p in pathlib.Path(out).glob("*.cdx.json")}


def test_release_sboms_are_valid_cyclonedx_and_match_cargo_lock():
    sboms = _sboms()
    assert set(sboms) == {"strongroom.cdx.json", "libstrongroom_pkcs11.cdx.json"}
    locked = {(p["name"], p["version"]) for p in tomllib.loads((ROOT / "Cargo.lock").read_text())["package"]}
    validator = JsonStrictValidator(SchemaVersion.V1_5)
    for name, text in sboms.items():
        # The checkout is mapped to /strongroom, so that SBOMs do not depend on where they
        # were made (scripts/release --verify compares two builds at different paths).
        assert str(ROOT) not in text, f"{name} names the checkout path {ROOT}"
        error = validator.validate_str(text)
        assert error is None, f"{name}: {error}"
        bom = json.loads(text)
        assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
        components = {(c["name"], c["version"]) for c in bom["components"]}
        assert components <= locked, f"{name}: not in Cargo.lock: {sorted(components - locked)[:5]}"
        names = {c["name"]: c for c in bom["components"]}
        aws = [v for (n, v) in locked if n == "aws-lc-rs"]
        assert names["aws-lc-rs"]["version"] in aws
        assert names["aws-lc-rs"]["purl"].startswith("pkg:cargo/aws-lc-rs@")
        assert "licenses" in names["aws-lc-rs"]
        assert "openssl" not in names and "openssl-sys" not in names
        assert "rustls" in names
    server = json.loads(sboms["strongroom.cdx.json"])
    assert server["metadata"]["component"]["name"] == "strongroom"
    server_names = {c["name"] for c in server["components"]}
    # The server links its front ends and keystores; the library is a GREP11 client only.
    assert {"axum", "tonic", "sqlx-sqlite", "strongroom-service"} <= server_names
    library = {c["name"] for c in json.loads(sboms["libstrongroom_pkcs11.cdx.json"])["components"]}
    assert {"tonic", "strongroom-client"} <= library
    assert not library & {"strongroom-service", "strongroom-keystore", "sqlx-core"}, library
