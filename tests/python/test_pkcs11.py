"""python-pkcs11 0.10.1's own test suite (from its PyPI source distribution, unmodified)
against Strongroom's PKCS#11 library and, in the same run, against SoftHSM2. Every test
whose result differs is listed below with the reason; the run fails on any other
difference, and on a listed difference that no longer holds (so the list stays true)."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, Server

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"

# Test ids (file::class::test) whose outcome differs from SoftHSM2's, and why.
RSA_1024 = "generates 1024-bit RSA keys; Strongroom generates and imports RSA keys of 2048 to 8192 bits only"
DSA_1024 = "uses 1024-bit DSA/DH domain parameters; Strongroom's are 2048 bits or more"
NO_VALUE = "reads CKA_VALUE of a secret key; the library never reveals key values (wrap the key instead)"
NOT_IMPLEMENTED = "a mechanism the GREP11 server does not implement (so the test is skipped, SoftHSM2 runs it)"
EXPECTED_DIFFERENCES = {
    **{f"test_rsa.py::RSATests::{t}": RSA_1024 for t in [
        "test_encrypt_oaep", "test_encrypt_too_much_data", "test_key_length", "test_key_wrap",
        "test_sign_default", "test_sign_pkcs_v15", "test_sign_pss", "test_sign_pss_undersized_buffer",
        "test_sign_stream", "test_sign_stream_interrupt_releases_operation",
        "test_sign_stream_undersized_buffer", "test_sign_stream_with_empty_blocks",
        "test_sign_stream_with_reauthentication", "test_sign_with_reauthentication",
        "test_verify_stream_interrupt_releases_operation"]},
    "test_sessions.py::SessionTests::test_generate_keypair": RSA_1024,
    "test_public_key_external.py::ExternalPublicKeyTests::test_rsa": RSA_1024,
    "test_public_key_external.py::ExternalPublicKeyTests::test_terrible_hybrid_file_encryption_app": RSA_1024,
    "test_x509.py::X509Tests::test_self_sign_certificate": RSA_1024,
    "test_x509.py::X509Tests::test_sign_csr": RSA_1024,
    "test_x509.py::X509Tests::test_verify_certificate_rsa": "imports the 1024-bit RSA key of a test certificate; " + RSA_1024,
    "test_x509.py::X509Tests::test_verify_certificate_dsa": "imports a 1024-bit DSA public key; DSA keys are imported through GREP11 as 2048 bits or more",
    "test_dsa.py::DSATests::test_generate_params": DSA_1024,
    "test_dsa.py::DSATests::test_generate_keypair_directly": DSA_1024,
    "test_dsa.py::DSATests::test_generate_keypair_and_sign": DSA_1024,
    "test_dh.py::DHTests::test_generate_params": DSA_1024,
    "test_dh.py::DHTests::test_derive_key": DSA_1024,
    "test_ecc.py::ECCTests::test_derive_key": "uses the curve prime192v1; Strongroom offers P-256, P-384, P-521, secp256k1 and Ed25519",
    "test_public_key_external.py::ExternalPublicKeyTests::test_ecdh": "derives an extractable key from a non-extractable EC key, which EP11's rules refuse",
    "test_digest.py::DigestTests::test_digest_key": NO_VALUE,
    "test_digest.py::DigestTests::test_digest_key_data": NO_VALUE,
    "test_sessions.py::SessionTests::test_seed_random": "C_SeedRandom: the server's generator takes no seed (CKR_RANDOM_SEED_NOT_SUPPORTED, as IBM's library)",
    "test_aes.py::AESTests::test_encrypt_gcm_with_custom_tag_length": "a 96-bit GCM tag; the server's AES-GCM takes 128-bit tags",
    # Passed here, skipped on SoftHSM2 2.6.1, which lacks the hash-and-sign ECDSA mechanisms.
    "test_x509.py::X509Tests::test_verify_certificate_ecdsa": "SoftHSM2 lacks CKM_ECDSA_SHA256; it passes here",
    "test_ecc.py::ECCTests::test_import_key_named_curve": "SoftHSM2 lacks CKM_ECDSA_SHA256; it passes here",
    "test_public_key_external.py::ExternalPublicKeyTests::test_ecdsa": "SoftHSM2 lacks CKM_ECDSA_SHA256; it passes here",
    # Passed here, skipped on SoftHSM2 2.6.1, which has no post-quantum mechanisms (PKCS#11 3.2).
    **{f"test_ml_dsa.py::MLDSATests::{t}": "SoftHSM2 lacks ML-DSA; it passes here" for t in [
        "test_generate_ml_dsa_44", "test_generate_ml_dsa_65", "test_generate_ml_dsa_87",
        "test_missing_parameter_set_raises", "test_sign_verify", "test_sign_verify_wrong_data"]},
    **{f"test_ml_kem.py::MLKEMTests::{t}": "SoftHSM2 lacks ML-KEM; it passes here" for t in [
        "test_generate_ml_kem_512", "test_generate_ml_kem_768", "test_generate_ml_kem_1024",
        "test_missing_parameter_set_raises", "test_encapsulate_decapsulate_0_AES_256",
        "test_encapsulate_decapsulate_1_AES_128"]},
}


def python_pkcs11_tests() -> pathlib.Path:
    src = pathlib.Path(os.environ.get(
        "STRONGROOM_PYTHON_PKCS11_SDIST", str(ROOT / ".venv" / "python-pkcs11-sdist" / "python_pkcs11-0.10.1")))
    if not (src / "tests").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"python-pkcs11 0.10.1's sources are missing at {src} (scripts/test fetches them)")
        pytest.skip(f"python-pkcs11 0.10.1's sources are not at {src}; run scripts/test")
    return src / "tests"


def run_suite(tests: pathlib.Path, env: dict) -> dict:
    """Outcome of every test ("passed", "failed", "skipped"), each file in its own process."""
    work = tempfile.mkdtemp(prefix="p11suite-")
    # The tests import `pkcs11` from site-packages: the source tree's package must not shadow it.
    shutil.copytree(tests, os.path.join(work, "tests"))
    outcomes = {}
    for f in sorted(os.listdir(os.path.join(work, "tests"))):
        if not (f.startswith("test_") and f.endswith(".py")):
            continue
        xml = os.path.join(work, f + ".xml")
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", f"tests/{f}"],
            cwd=work, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = f"{f}::{case.get('classname').split('.')[-1]}::{case.get('name')}"
            kinds = {c.tag for c in case}
            outcomes[name] = ("failed" if kinds & {"failure", "error"}
                              else "skipped" if "skipped" in kinds else "passed")
    shutil.rmtree(work, ignore_errors=True)
    return outcomes


def test_python_pkcs11_suite_against_the_library_and_softhsm2():
    tests = python_pkcs11_tests()
    assert os.path.exists(SOFTHSM), "SoftHSM2 (Debian's softhsm2) is required; scripts/test installs it"
    module = str(ROOT / "target" / "debug" / "libstrongroom_pkcs11.so")
    assert os.path.exists(module), f"build the workspace first: {module} is missing"
    server = Server(extra=("--grpc-addr", "127.0.0.1:0"))
    try:
        info = __import__("json").loads((pathlib.Path(server.dir.name) / "dev.json").read_text())
        ours = run_suite(tests, {
            "PKCS11_MODULE": module, "PKCS11_TOKEN_LABEL": "Strongroom 0",
            "PKCS11_TOKEN_PIN": info["pkcs11_pin"], "EP11CLIENT_CFG": info["pkcs11_config"]})
    finally:
        server.stop()
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "tokens"))
        conf = os.path.join(d, "softhsm2.conf")
        with open(conf, "w") as c:
            c.write(f"directories.tokendir = {d}/tokens\n")
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "baseline", "--pin", "1234",
                        "--so-pin", "5678"], env={**os.environ, "SOFTHSM2_CONF": conf}, check=True,
                       capture_output=True)
        soft = run_suite(tests, {"PKCS11_MODULE": SOFTHSM, "PKCS11_TOKEN_LABEL": "baseline",
                                 "PKCS11_TOKEN_PIN": "1234", "PKCS11_TOKEN_SO_PIN": "5678",
                                 "SOFTHSM2_CONF": conf})
    assert len(ours) > 150 and set(ours) == set(soft), (len(ours), set(ours) ^ set(soft))
    differ = {t for t in ours if ours[t] != soft[t]}
    skipped_here = {t for t in differ if ours[t] == "skipped" and soft[t] == "passed"}
    unexplained = {t: (ours[t], soft[t]) for t in differ - skipped_here if t not in EXPECTED_DIFFERENCES}
    assert not unexplained, f"results that differ from SoftHSM2's without a reason: {unexplained}"
    no_longer = {t for t in EXPECTED_DIFFERENCES if ours.get(t) == soft.get(t)}
    assert not no_longer, f"listed differences that no longer hold (update the list): {no_longer}"
    # Skips come only from mechanisms the server does not implement (`requires(...)`);
    # they are listed by the suite itself, and counted here so that a change shows.
    print(f"{sum(v == 'passed' for v in ours.values())} passed here, "
          f"{sum(v == 'passed' for v in soft.values())} on SoftHSM2; "
          f"{len(skipped_here)} skipped here for mechanisms the server lacks: {NOT_IMPLEMENTED}")


ENGINE = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"


def test_nginx_serves_tls_with_a_private_key_held_in_strongroom():
    """TLS offload: Debian's nginx (two worker processes, so the library is used across
    fork) serves HTTPS with an EC key generated non-extractable in Strongroom, through
    OpenSSL 3 and libengine-pkcs11-openssl (Debian 12 does not package the pkcs11 provider);
    curl completes the handshake and checks the certificate."""
    for tool in ("nginx", "curl", "openssl", "pkcs11-tool"):
        assert shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}"), f"{tool} is required; scripts/test installs it"
    assert os.path.exists(ENGINE), "libengine-pkcs11-openssl is required; scripts/test installs it"
    module = str(ROOT / "target" / "debug" / "libstrongroom_pkcs11.so")
    server = Server(extra=("--grpc-addr", "127.0.0.1:0"))
    d = tempfile.mkdtemp(prefix="nginx-offload-")
    nginx = None
    try:
        info = __import__("json").loads((pathlib.Path(server.dir.name) / "dev.json").read_text())
        pin = info["pkcs11_pin"]
        env = {**os.environ, "EP11CLIENT_CFG": info["pkcs11_config"]}
        tool = ["pkcs11-tool", "--module", module, "--login", "--pin", pin]
        r = subprocess.run(tool + ["--keypairgen", "--key-type", "EC:prime256v1", "--label", "web", "--id", "77"],
                           env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        listing = subprocess.run(tool + ["--list-objects", "--type", "privkey"], env=env, capture_output=True, text=True).stdout
        assert "never extractable" in listing and "sensitive" in listing, listing
        # The key's value cannot be read out (python-pkcs11, in a process of its own).
        probe = ("import pkcs11, sys\n"
                 "from pkcs11 import Attribute, ObjectClass\n"
                 f"lib = pkcs11.lib({module!r})\n"
                 "tok = lib.get_token(token_label='Strongroom 0')\n"
                 f"with tok.open(user_pin={pin!r}) as s:\n"
                 "    k = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label='web')\n"
                 "    assert k[Attribute.EXTRACTABLE] is False and k[Attribute.SENSITIVE] is True\n"
                 "    try:\n"
                 "        k[Attribute.VALUE]\n"
                 "    except pkcs11.exceptions.AttributeSensitive:\n"
                 "        print('sensitive')\n")
        r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
        assert r.stdout == "sensitive\n", r.stdout + r.stderr
        conf = os.path.join(d, "openssl.cnf")
        with open(conf, "w") as f:
            f.write("openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n"
                    "[engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\n"
                    f"dynamic_path = {ENGINE}\nMODULE_PATH = {module}\nPIN = {pin}\ninit = 1\n")
        env["OPENSSL_CONF"] = conf
        cert = os.path.join(d, "cert.pem")
        r = subprocess.run(["openssl", "req", "-new", "-x509", "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=IP:127.0.0.1", "-engine", "pkcs11", "-keyform", "engine",
                            "-key", "pkcs11:object=web;type=private", "-out", cert],
                           env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        user = "user root root;\n" if os.getuid() == 0 else ""
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"{user}daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n"
                    "env OPENSSL_CONF;\nenv EP11CLIENT_CFG;\nevents { worker_connections 64; }\n"
                    f"http {{\n access_log off;\n client_body_temp_path {d}/b; proxy_temp_path {d}/p;\n"
                    f" fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n"
                    f" server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {cert};\n"
                    '  ssl_certificate_key "engine:pkcs11:pkcs11:object=web;type=private";\n'
                    '  location / { return 200 "offloaded\\n"; }\n }\n}\n')
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import time
        deadline = time.time() + 20
        out = None
        while time.time() < deadline:
            r = subprocess.run(["curl", "-sS", "--cacert", cert, f"https://127.0.0.1:{port}/"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                out = r.stdout
                break
            time.sleep(0.2)
        log = open(os.path.join(d, "error.log")).read() if os.path.exists(os.path.join(d, "error.log")) else ""
        assert out == "offloaded\n", f"{r.stderr}\n{log}"
        # Several handshakes, served by either worker process.
        for _ in range(6):
            r = subprocess.run(["curl", "-sS", "--cacert", cert, f"https://127.0.0.1:{port}/"],
                               capture_output=True, text=True)
            assert r.stdout == "offloaded\n", r.stderr
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(timeout=15)
        server.stop()
        shutil.rmtree(d, ignore_errors=True)
