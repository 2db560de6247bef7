//! The PKCS#11 library against a real server, through the `cryptoki` crate (as a Rust
//! application loads it) and OpenSC's `pkcs11-tool` (a second process): token objects
//! persist on the server, sessions in 16 threads work at once, and a server outage is
//! `CKR_DEVICE_ERROR` until the server is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

/// The library is loaded once per process and initialized by each test, with its
/// configuration in a process-wide variable, so the tests of one process take turns
/// (nextest runs each in a process of its own; a plain `cargo test` runs them in threads).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The library, initialized with the configuration `EP11CLIENT_CFG` names now: an earlier
/// test of the process that did not finalize it (it failed, or it had no need) is finalized
/// first, so that the library reads the configuration again.
fn loaded() -> Pkcs11 {
    let args = || CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK);
    let p = Pkcs11::new(module()).unwrap();
    match p.initialize(args()) {
        Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
            Pkcs11::new(module()).unwrap().finalize().unwrap();
            p.initialize(args()).unwrap();
        }
        r => r.unwrap(),
    }
    p
}

/// The library the workspace build produced next to the binary.
fn module() -> PathBuf {
    let dir = bin().parent().unwrap().to_path_buf();
    let so = dir.join("libstrongroom_pkcs11.so");
    assert!(
        so.exists(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        so.display()
    );
    so
}

fn pkcs11_tool() -> PathBuf {
    let p = PathBuf::from("/usr/bin/pkcs11-tool");
    assert!(
        p.exists(),
        "pkcs11-tool (Debian's opensc package) is required; scripts/test installs it"
    );
    p
}

struct Dev {
    server: Server,
    config: String,
    pin: String,
}

fn dev(dir: &std::path::Path, grpc: &str) -> Dev {
    dev_with(dir, grpc, &[])
}

/// [`dev`] with more `serve` arguments.
fn dev_with(dir: &std::path::Path, grpc: &str, extra: &[&str]) -> Dev {
    let mut args = vec!["--grpc-addr", grpc];
    args.extend_from_slice(extra);
    let server = Server::start_with(dir, &args);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dev.json")).unwrap()).unwrap();
    Dev {
        server,
        config: v["pkcs11_config"]
            .as_str()
            .expect("dev.json names pkcs11_config")
            .to_string(),
        pin: v["pkcs11_pin"]
            .as_str()
            .expect("dev.json names pkcs11_pin")
            .to_string(),
    }
}

fn open(d: &Dev) -> (Pkcs11, Session) {
    open_as(d, &d.pin)
}

/// [`open`], logged in with another API key of the instance.
fn open_as(d: &Dev, pin: &str) -> (Pkcs11, Session) {
    // SAFETY-free: the variable is read by the library at C_Initialize, in this process.
    std::env::set_var("EP11CLIENT_CFG", &d.config);
    let p = loaded();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(pin.to_string())))
        .unwrap();
    (p, s)
}

fn rsa_pair(s: &Session, label: &str, token: bool) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(token),
        Attribute::ModulusBits(2048.into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let private = [
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .unwrap()
}

fn find_one(s: &Session, class: ObjectClass, label: &str) -> Option<ObjectHandle> {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert!(found.len() <= 1, "{label}: {found:?}");
    found.first().copied()
}

/// Checks an RSA PKCS#1 v1.5 SHA-256 signature outside the token, from the public key's
/// modulus and exponent as the library reports them.
fn check_rsa_signature(s: &Session, public: ObjectHandle, data: &[u8], sig: &[u8]) {
    let attrs = s
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Modulus(m) => n = m,
            Attribute::PublicExponent(x) => e = x,
            _ => {}
        }
    }
    let key = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e };
    key.verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, data, sig)
        .expect("the token's signature verifies under its public key");
}

fn tool(d: &Dev, args: &[&str]) -> String {
    let out = Command::new(pkcs11_tool())
        .env("EP11CLIENT_CFG", &d.config)
        .arg("--module")
        .arg(module())
        .args(["--login", "--pin", &d.pin])
        .args(args)
        .output()
        .unwrap();
    let text = text_of(&out);
    assert!(out.status.success(), "pkcs11-tool {args:?}:\n{text}");
    text
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn token_objects_persist_across_processes_and_sixteen_threads_share_the_token() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");

    // Process 1 (this one): a token key pair, and a signature OpenSSL's peer checks.
    let (p, s) = open(&d);
    let (public, private) = rsa_pair(&s, "persisted-rsa", true);
    let data = b"signed by a key that lives on the server";
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, data).unwrap();
    check_rsa_signature(&s, public, data, &sig);
    drop(s);
    p.finalize().unwrap();

    // Process 2 (pkcs11-tool): sees the token key pair, and makes a token AES key.
    let listed = tool(&d, &["--list-objects"]);
    assert!(listed.contains("persisted-rsa"), "{listed}");
    tool(
        &d,
        &[
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            "from-pkcs11-tool",
        ],
    );

    // Back here, in a new initialisation: both processes' token objects are there.
    let (p, s) = open(&d);
    let private = find_one(&s, ObjectClass::PRIVATE_KEY, "persisted-rsa").expect("token key");
    let public = find_one(&s, ObjectClass::PUBLIC_KEY, "persisted-rsa").expect("token key");
    let aes = find_one(&s, ObjectClass::SECRET_KEY, "from-pkcs11-tool").expect("tool's key");
    let kt = s.get_attributes(aes, &[AttributeType::KeyType]).unwrap();
    assert_eq!(kt, vec![Attribute::KeyType(KeyType::AES)]);

    // 16 threads, a session each, sign and verify and encrypt at once.
    std::thread::scope(|scope| {
        for t in 0..16u8 {
            let p = &p;
            scope.spawn(move || {
                let slot = p.get_slots_with_token().unwrap()[0];
                let s = p.open_ro_session(slot).unwrap();
                for i in 0..5u8 {
                    let msg = [t, i, 42];
                    let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, &msg).unwrap();
                    s.verify(&Mechanism::Sha256RsaPkcs, public, &msg, &sig)
                        .unwrap();
                    let iv = [t; 16];
                    let ct = s.encrypt(&Mechanism::AesCbcPad(iv), aes, &msg).unwrap();
                    assert_eq!(s.decrypt(&Mechanism::AesCbcPad(iv), aes, &ct).unwrap(), msg);
                }
            });
        }
    });

    // Session objects end with their session; token objects stay.
    let (_, eph) = rsa_pair(&s, "ephemeral", false);
    assert!(find_one(&s, ObjectClass::PRIVATE_KEY, "ephemeral").is_some());
    drop(s);
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(d.pin.clone())))
        .unwrap();
    assert!(
        find_one(&s, ObjectClass::PRIVATE_KEY, "ephemeral").is_none(),
        "{eph:?}"
    );
    assert!(find_one(&s, ObjectClass::PRIVATE_KEY, "persisted-rsa").is_some());

    // Destroying a token object removes it for every process.
    s.destroy_object(aes).unwrap();
    let listed = tool(&d, &["--list-objects"]);
    assert!(!listed.contains("from-pkcs11-tool"), "{listed}");
    drop(s);
    p.finalize().unwrap();
    drop(d.server);
}

#[test]
fn the_library_fails_over_to_the_next_listed_endpoint() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    // Nothing listens on 127.0.0.2 (the server binds 127.0.0.1): the library moves on.
    let yaml = std::fs::read_to_string(&d.config).unwrap().replace(
        "address: \"127.0.0.1\"",
        "address: \"127.0.0.2, 127.0.0.1\"",
    );
    assert!(yaml.contains("127.0.0.2, 127.0.0.1"), "{yaml}");
    let config = dir.path().join("failover.yaml");
    std::fs::write(&config, yaml).unwrap();
    let failover = Dev {
        server: d.server,
        config: config.display().to_string(),
        pin: d.pin.clone(),
    };
    let (p, s) = open(&failover);
    let (public, private) = rsa_pair(&s, "failover", false);
    let sig = s
        .sign(
            &Mechanism::Sha256RsaPkcs,
            private,
            b"through the second endpoint",
        )
        .unwrap();
    s.verify(
        &Mechanism::Sha256RsaPkcs,
        public,
        b"through the second endpoint",
        &sig,
    )
    .unwrap();
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn a_server_outage_is_a_device_error_and_the_library_recovers() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut d = dev(dir.path(), &grpc);
    let (p, s) = open(&d);
    let (public, private) = rsa_pair(&s, "outage", false);
    let data = b"before";
    s.sign(&Mechanism::Sha256RsaPkcs, private, data).unwrap();

    d.server.kill9();
    match s.sign(&Mechanism::Sha256RsaPkcs, private, data) {
        Err(Error::Pkcs11(RvError::DeviceError, _)) => {}
        other => panic!("expected CKR_DEVICE_ERROR while the server is down, got {other:?}"),
    }

    // The same node comes back (same data directory and GREP11 port): the session, its
    // login and its session objects carry on without the application doing anything.
    let _back = Server::start_with(dir.path(), &["--grpc-addr", &grpc]);
    let start = Instant::now();
    let sig = loop {
        match s.sign(&Mechanism::Sha256RsaPkcs, private, b"after") {
            Ok(sig) => break sig,
            Err(Error::Pkcs11(RvError::DeviceError, _))
                if start.elapsed() < Duration::from_secs(20) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("after the restart: {e}"),
        }
    };
    s.verify(&Mechanism::Sha256RsaPkcs, public, b"after", &sig)
        .unwrap();
    drop(s);
    p.finalize().unwrap();
}

/// A SoftHSM2 token in `dir`, as the baseline `pkcs11-tool --test` is compared with.
fn softhsm(dir: &std::path::Path) -> (String, PathBuf) {
    let module = PathBuf::from(SOFTHSM);
    let conf = softhsm_conf(dir);
    let st = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "baseline",
            "--pin",
            "123456",
            "--so-pin",
            "12345678",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    (conf.display().to_string(), module)
}

/// Runs pkcs11-tool on a module; returns its output (and whether it exited 0).
fn run_tool(
    module: &std::path::Path,
    envs: &[(&str, &str)],
    pin: &str,
    args: &[&str],
) -> (bool, String) {
    let mut c = Command::new(pkcs11_tool());
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c
        .arg("--module")
        .arg(module)
        .args(["--login", "--pin", pin])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), text_of(&out))
}

/// The failures a `pkcs11-tool --test` run reports, one line each.
fn failures(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("error") && !l.contains("no errors") && !l.starts_with("warning"))
                || l.contains("failed")
                || l.contains("mismatch")
        })
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn pkcs11_tool_test_shows_no_failure_softhsm2_does_not_and_openssl_checks_its_signatures() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let ours = module();
    let env = [("EP11CLIENT_CFG", d.config.as_str())];
    let (conf, soft) = softhsm(dir.path());
    let soft_env = [("SOFTHSM2_CONF", conf.as_str())];

    // The same keys on both tokens, then pkcs11-tool's self-test on both.
    for (module, envs, pin) in [(&ours, &env, d.pin.as_str()), (&soft, &soft_env, "123456")] {
        for (kind, label, id) in [("rsa:2048", "t-rsa", "11"), ("EC:prime256v1", "t-ec", "12")] {
            let (ok, out) = run_tool(
                module,
                envs,
                pin,
                &[
                    "--keypairgen",
                    "--key-type",
                    kind,
                    "--label",
                    label,
                    "--id",
                    id,
                ],
            );
            assert!(ok, "{}: {out}", module.display());
        }
        let (ok, out) = run_tool(
            module,
            envs,
            pin,
            &[
                "--keygen",
                "--key-type",
                "AES:32",
                "--label",
                "t-aes",
                "--id",
                "13",
            ],
        );
        assert!(ok, "{}: {out}", module.display());
    }
    let (_, our_report) = run_tool(&ours, &env, &d.pin, &["--test"]);
    let (_, soft_report) = run_tool(&soft, &soft_env, "123456", &["--test"]);
    let soft_failures = failures(&soft_report);
    let extra: Vec<String> = failures(&our_report)
        .into_iter()
        .filter(|f| !soft_failures.contains(f))
        .collect();
    assert!(
        extra.is_empty(),
        "pkcs11-tool --test fails where SoftHSM2 does not: {extra:?}\n--- ours:\n{our_report}\n--- SoftHSM2:\n{soft_report}"
    );
    // SoftHSM2 2.6.1 stops at RSA-OAEP; our run goes through every test to its verdict.
    assert!(
        our_report.contains("Digests:") && our_report.contains("C_GenerateRandom"),
        "{our_report}"
    );
    assert!(our_report.contains("No errors"), "{our_report}");

    // Sign through pkcs11-tool; OpenSSL checks the signatures with the public keys read
    // back from the token.
    let p = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(p("data"), b"pkcs11-tool signs this").unwrap();
    for (id, mech, extra) in [
        ("11", "SHA256-RSA-PKCS", &[][..]),
        ("12", "ECDSA-SHA256", &["--signature-format", "openssl"][..]),
    ] {
        let data = p("data");
        let mut args = vec!["--sign", "--id", id, "-m", mech, "--input-file", &data];
        let sig = p(&format!("sig-{id}"));
        args.extend(["--output-file", sig.as_str()]);
        args.extend(extra);
        let (ok, out) = run_tool(&ours, &env, &d.pin, &args);
        assert!(ok, "{out}");
        let der = p(&format!("pub-{id}.der"));
        if id == "12" {
            // Debian 12's pkcs11-tool (OpenSC 0.23.0) reads EC public keys through freed
            // memory (fixed in 0.24.0 by OpenSC commit 63d4bd3d3), and fails or not with
            // the heap's layout: the point is read through the library instead, and
            // OpenSSL still checks the signature.
            std::fs::write(&der, ec_public_key_der(&d.config, &d.pin, &[0x12])).unwrap();
        } else {
            let (ok, out) = run_tool(
                &ours,
                &env,
                &d.pin,
                &[
                    "--read-object",
                    "--type",
                    "pubkey",
                    "--id",
                    id,
                    "--output-file",
                    &der,
                ],
            );
            assert!(ok, "reading public key {id}: {out}");
        }
        let v = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-keyform",
                "DER",
                "-verify",
                &der,
                "-signature",
                &sig,
                &p("data"),
            ])
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "openssl refuses the {mech} signature: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }

    // Encrypt and decrypt with the AES key through pkcs11-tool.
    let iv = "000102030405060708090a0b0c0d0e0f";
    let (ok, out) = run_tool(
        &ours,
        &env,
        &d.pin,
        &[
            "--encrypt",
            "--id",
            "13",
            "-m",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--input-file",
            &p("data"),
            "--output-file",
            &p("ct"),
        ],
    );
    assert!(ok, "{out}");
    assert_ne!(std::fs::read(p("ct")).unwrap(), b"pkcs11-tool signs this");
    let (ok, out) = run_tool(
        &ours,
        &env,
        &d.pin,
        &[
            "--decrypt",
            "--id",
            "13",
            "-m",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--input-file",
            &p("ct"),
            "--output-file",
            &p("pt"),
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(std::fs::read(p("pt")).unwrap(), b"pkcs11-tool signs this");
    drop(d.server);
}

/// The SubjectPublicKeyInfo (DER) of the P-256 public key with `id`, from its
/// `CKA_EC_POINT` as the library answers it.
fn ec_public_key_der(config: &str, pin: &str, id: &[u8]) -> Vec<u8> {
    std::env::set_var("EP11CLIENT_CFG", config);
    let p = loaded();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_ro_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(pin.to_string())))
        .unwrap();
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.to_vec()),
        ])
        .unwrap();
    let Some(Attribute::EcPoint(point)) = s
        .get_attributes(found[0], &[AttributeType::EcPoint])
        .unwrap()
        .pop()
    else {
        panic!("no CKA_EC_POINT");
    };
    drop(s);
    p.finalize().unwrap();
    // CKA_EC_POINT is a DER OCTET STRING holding the uncompressed point (65 bytes).
    assert_eq!(&point[..2], &[0x04, 0x41], "{point:02x?}");
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(&point[2..]);
    spki
}

/// An admin API call (the tests' only way to make a second instance and API keys).
fn admin(s: &Server, path: &str, body: serde_json::Value) -> serde_json::Value {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(admin_post(s, path, body))
}

fn api_key(s: &Server, instance: &str, roles: &[&str]) -> String {
    let v = admin(
        s,
        &format!("/admin/v1/instances/{instance}/api_keys"),
        serde_json::json!({"name": "p11", "roles": roles}),
    );
    v["apikey"].as_str().unwrap().to_string()
}

fn count_objects(s: &Session) -> usize {
    s.find_objects(&[]).unwrap().len()
}

#[test]
fn tenants_roles_and_quotas_hold_on_the_pkcs11_path() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let (p, s) = open(&d);
    rsa_pair(&s, "instance-a-key", true);
    let a_objects = count_objects(&s);
    assert!(a_objects >= 2);
    drop(s);
    p.finalize().unwrap();

    // Another instance, with the same keystore ids in its configuration: it sees nothing of
    // the first instance's keystores, and its objects stay its own.
    let b = admin(
        &d.server,
        "/admin/v1/instances",
        serde_json::json!({"name": "tenant-b", "dev_master_key": true}),
    );
    let b_id = b["id"].as_str().expect("instance id").to_string();
    let b_key = api_key(&d.server, &b_id, &["Manager", "Writer", "Reader"]);
    let yaml = std::fs::read_to_string(&d.config)
        .unwrap()
        .replace(&d.server.instance, &b_id);
    let b_config = dir.path().join("tenant-b.yaml");
    std::fs::write(&b_config, yaml.replace(&d.pin, &b_key)).unwrap();
    let tenant_b = Dev {
        server: Server {
            child: std::process::Command::new("true").spawn().unwrap(),
            url: d.server.url.clone(),
            admin_url: d.server.admin_url.clone(),
            instance: b_id.clone(),
            token: String::new(),
            admin_token: d.server.admin_token.clone(),
            dir: dir.path().to_path_buf(),
        },
        config: b_config.display().to_string(),
        pin: b_key.clone(),
    };
    let (p, s) = open(&tenant_b);
    assert_eq!(count_objects(&s), 0, "instance B sees instance A's objects");
    rsa_pair(&s, "instance-b-key", true);
    assert!(find_one(&s, ObjectClass::PRIVATE_KEY, "instance-a-key").is_none());
    drop(s);
    p.finalize().unwrap();
    let (p, s) = open(&d);
    assert_eq!(
        count_objects(&s),
        a_objects,
        "instance A sees instance B's objects"
    );
    drop(s);
    p.finalize().unwrap();

    // A Reader's API key: the private keystore (Writer) and key generation are refused.
    let reader = api_key(&d.server, &d.server.instance, &["Reader"]);
    std::env::set_var("EP11CLIENT_CFG", &d.config);
    let p = loaded();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(reader)))
        .unwrap();
    match s.find_objects(&[]) {
        Err(Error::Pkcs11(RvError::UserNotLoggedIn, _)) => {}
        other => panic!("a Reader listed the private keystore: {other:?}"),
    }
    let gen = s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Token(false),
        ],
    );
    assert!(
        matches!(gen, Err(Error::Pkcs11(RvError::UserNotLoggedIn, _))),
        "{gen:?}"
    );
    assert!(matches!(
        s.login(
            UserType::User,
            Some(&AuthPin::from("sr1.bogus.key".to_string()))
        ),
        Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _))
    ));
    s.logout().unwrap();
    assert!(matches!(
        s.login(
            UserType::User,
            Some(&AuthPin::from("sr1.bogus.key".to_string()))
        ),
        Err(Error::Pkcs11(RvError::PinIncorrect, _))
    ));
    drop(s);
    p.finalize().unwrap();

    // A session whose PIN (API key) is deleted stops working at its next call.
    let writer = api_key(&d.server, &d.server.instance, &["Writer"]);
    let p = loaded();
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(writer.clone())))
        .unwrap();
    let session_aes = |s: &Session| {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Token(false)],
        )
    };
    session_aes(&s).unwrap();
    let id = writer.split('.').nth(1).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_api_key(&d.server, &d.server.instance, id));
    let after = session_aes(&s);
    assert!(
        matches!(after, Err(Error::Pkcs11(RvError::UserNotLoggedIn, _))),
        "{after:?}"
    );
    drop(s);
    p.finalize().unwrap();
    drop(d.server);

    // The instance's key quota bounds its token objects.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &["--grpc-addr", "127.0.0.1:0", "--max-keys-per-instance", "2"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("dev.json")).unwrap())
            .unwrap();
    let q = Dev {
        server,
        config: v["pkcs11_config"].as_str().unwrap().to_string(),
        pin: v["pkcs11_pin"].as_str().unwrap().to_string(),
    };
    let (p, s) = open(&q);
    let aes = |label: &str| {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
        )
    };
    aes("one").unwrap();
    aes("two").unwrap();
    match aes("three") {
        Err(Error::Pkcs11(RvError::DeviceMemory, _)) => {}
        other => panic!("the quota did not hold: {other:?}"),
    }
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn expired_tokens_are_exchanged_again_init_token_empties_the_keystores_and_pins_stay_api_keys() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let (p, s) = open(&d);
    let (_, private) = rsa_pair(&s, "kept", true);
    s.sign(&Mechanism::Sha256RsaPkcs, private, b"now").unwrap();

    // The server's clock moves two days on: the token the PIN was exchanged for has
    // expired. The library exchanges the API key again and the call goes through.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(d.server.client().advance(&d.server.admin_token, 2 * 86_400));
    s.sign(&Mechanism::Sha256RsaPkcs, private, b"two days later")
        .unwrap();

    // PINs are API keys, managed by the instance's administrators.
    assert!(matches!(
        s.init_pin(&AuthPin::from("123456".to_string())),
        Err(Error::Pkcs11(RvError::FunctionNotSupported, _))
    ));
    assert!(matches!(
        s.set_pin(
            &AuthPin::from(d.pin.clone()),
            &AuthPin::from("123456".to_string())
        ),
        Err(Error::Pkcs11(RvError::FunctionNotSupported, _))
    ));
    drop(s);

    // C_InitToken by the security officer (its PIN: an API key with Manager) empties both
    // keystores.
    let slot = p.get_slots_with_token().unwrap()[0];
    assert!(matches!(
        p.init_token(
            slot,
            &AuthPin::from("sr1.not.a-key".to_string()),
            "Strongroom 0"
        ),
        Err(Error::Pkcs11(RvError::PinIncorrect, _))
    ));
    p.init_token(slot, &AuthPin::from(d.pin.clone()), "Strongroom 0")
        .unwrap();
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(d.pin.clone())))
        .unwrap();
    assert!(find_one(&s, ObjectClass::PRIVATE_KEY, "kept").is_none());
    assert_eq!(count_objects(&s), 0);
    drop(s);
    p.finalize().unwrap();
}

/// Every file under `dir`, read whole (the server's keystore and its journal).
fn files_under(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            all.extend(files_under(&path));
        } else if let Ok(b) = std::fs::read(&path) {
            all.extend(b);
        }
    }
    all
}

/// How the library's JSON encoding of a token object writes `text` (bytes as numbers).
fn as_stored(text: &str) -> Vec<u8> {
    let n: Vec<String> = text.bytes().map(|b| b.to_string()).collect();
    n.join(",").into_bytes()
}

#[test]
fn a_keystore_password_keeps_other_users_out_and_the_server_holds_only_ciphertext() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    // The user's keystore (users.1) becomes a new, empty one, with IBM's sessionauth or
    // without.
    let config = |name: &str, password: Option<&str>| {
        let space = "5b0c7f3e-0d7c-4f7e-9a51-0c2f3a9d6e11";
        user_keystore_config(&d, dir.path(), name, space, password)
    };
    let login = |config: &str| {
        std::env::set_var("EP11CLIENT_CFG", config);
        let p = loaded();
        let slot = p.get_slots_with_token().unwrap()[0];
        let s = p.open_rw_session(slot).unwrap();
        let r = s.login(UserType::User, Some(&AuthPin::from(d.pin.clone())));
        (p, s, r)
    };
    let protected = config("protected.yaml", Some("first-pw"));
    let (guarded, public) = ("guarded-by-password", "public-without-one");

    // The first login protects the empty keystore with the configured password.
    let (p, s, r) = login(&protected);
    r.unwrap();
    let mut template = aes_template().to_vec();
    template.extend([
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(guarded.into()),
    ]);
    let key = s.generate_key(&Mechanism::AesKeyGen, &template).unwrap();
    let iv = [9u8; 16];
    let ct = s
        .encrypt(&Mechanism::AesCbcPad(iv), key, b"kept under a password")
        .unwrap();
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(public.into()),
        Attribute::Value(vec![1, 2, 3]),
    ])
    .unwrap();
    drop(s);
    p.finalize().unwrap();

    // The same password, in a new initialisation: the key is there and works.
    let (p, s, r) = login(&protected);
    r.unwrap();
    let key = find_one(&s, ObjectClass::SECRET_KEY, guarded).expect("the protected key");
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad(iv), key, &ct).unwrap(),
        b"kept under a password"
    );
    drop(s);
    p.finalize().unwrap();

    // Another password: C_Login answers CKR_PIN_INCORRECT and nobody is logged in.
    let (p, s, r) = login(&config("wrong.yaml", Some("other-pw")));
    assert!(
        matches!(r, Err(Error::Pkcs11(RvError::PinIncorrect, _))),
        "{r:?}"
    );
    assert!(matches!(
        s.generate_key(&Mechanism::AesKeyGen, &template),
        Err(Error::Pkcs11(RvError::UserNotLoggedIn, _))
    ));
    drop(s);
    p.finalize().unwrap();

    // No password for the same keystore: the login (an API key of the same instance and
    // role) succeeds, and the keystore stays closed.
    let unprotected = config("none.yaml", None);
    let (p, s, r) = login(&unprotected);
    r.unwrap();
    assert!(matches!(
        s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]),
        Err(Error::Pkcs11(RvError::PinIncorrect, _))
    ));
    drop(s);

    // The server's files hold the public object's label (the control), and nothing
    // readable of the protected one.
    let stored = files_under(dir.path());
    let holds = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(holds(&as_stored(public)), "the control is not found");
    assert!(
        !holds(&as_stored(guarded)),
        "the protected object is readable on the server"
    );

    // The security officer's C_InitToken empties the keystore and lifts its password: the
    // way back from a lost password, at the cost of its objects.
    let slot = p.get_slots_with_token().unwrap()[0];
    p.init_token(slot, &AuthPin::from(d.pin.clone()), "Strongroom 0")
        .unwrap();
    p.finalize().unwrap();
    let (p, s, r) = login(&config("new.yaml", Some("new-password")));
    r.unwrap();
    assert!(find_one(&s, ObjectClass::SECRET_KEY, guarded).is_none());
    drop(s);
    p.finalize().unwrap();
}

/// The dev configuration with the user's keystore (`users.1`) renamed to `space`, with IBM's
/// sessionauth and `password` when given, written to `dir/name`.
fn user_keystore_config(
    d: &Dev,
    dir: &std::path::Path,
    name: &str,
    space: &str,
    password: Option<&str>,
) -> String {
    let yaml = std::fs::read_to_string(&d.config).unwrap();
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("tokenspaceID:"))
        .unwrap();
    let indent = &line[..line.len() - line.trim_start().len()];
    let auth = password
        .map(|p| {
            format!(
                "\n{indent}sessionauth:\n{indent}  enabled: true\n{indent}  tokenspaceIDPassword: \"{p}\""
            )
        })
        .unwrap_or_default();
    let text = yaml.replacen(line, &format!("{indent}tokenspaceID: \"{space}\"{auth}"), 1);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The tokenspaceID of the dev configuration's user keystore.
fn dev_user_keystore(d: &Dev) -> String {
    let yaml = std::fs::read_to_string(&d.config).unwrap();
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("tokenspaceID:"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn seal_keystore_moves_objects_written_without_a_password_into_a_protected_keystore() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let old = dev_user_keystore(&d);

    // A key in a keystore written without a password (as every keystore was before the
    // library read sessionauth).
    let (p, s) = open(&d);
    let mut template = aes_template().to_vec();
    template.extend([
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label("moved".into()),
    ]);
    let key = s.generate_key(&Mechanism::AesKeyGen, &template).unwrap();
    let iv = [3u8; 16];
    let ct = s
        .encrypt(
            &Mechanism::AesCbcPad(iv),
            key,
            b"written before the password",
        )
        .unwrap();
    drop(s);
    p.finalize().unwrap();

    // Turning sessionauth on for that keystore is refused, and loses nothing.
    let same = user_keystore_config(&d, dir.path(), "same.yaml", &old, Some("pass-word"));
    std::env::set_var("EP11CLIENT_CFG", &same);
    let p = loaded();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    let r = s.login(UserType::User, Some(&AuthPin::from(d.pin.clone())));
    assert!(
        matches!(r, Err(Error::Pkcs11(RvError::TokenNotRecognized, _))),
        "{r:?}"
    );
    drop(s);
    p.finalize().unwrap();

    // strongroom pkcs11 seal-keystore moves the objects into a new, protected keystore.
    let new = "0b8c6f0e-6a51-4d3e-8f5a-2f7d9c1e4b21";
    let protected = user_keystore_config(&d, dir.path(), "new.yaml", new, Some("pass-word"));
    let seal = |pin: Option<&str>, extra: &[&str]| {
        let args = [
            "pkcs11",
            "seal-keystore",
            "--config",
            &protected,
            "--from",
            &old,
        ];
        let mut c = Command::new(bin());
        c.args(args)
            .args(["--output", "json"])
            .args(extra)
            .env_remove("STRONGROOM_PKCS11_PIN");
        if let Some(pin) = pin {
            c.env("STRONGROOM_PKCS11_PIN", pin);
        }
        c.output().unwrap()
    };
    // A first run that keeps the source (as one that stopped before deleting), then a run
    // that finishes the move.
    let out = seal(Some(&d.pin), &["--keep-source"]);
    assert!(out.status.success(), "{}", text_of(&out));
    let out = seal(Some(&d.pin), &[]);
    assert!(out.status.success(), "{}", text_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["objects"], 1, "{report}");
    assert_eq!(report["to"], new);

    // The application, with the new configuration, finds the key and uses it.
    std::env::set_var("EP11CLIENT_CFG", &protected);
    let p = loaded();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(d.pin.clone())))
        .unwrap();
    let key = find_one(&s, ObjectClass::SECRET_KEY, "moved").expect("the moved key");
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad(iv), key, &ct).unwrap(),
        b"written before the password"
    );
    drop(s);
    p.finalize().unwrap();

    // The old keystore is empty, and a run again has nothing to move.
    let (p, s) = open(&d);
    assert!(find_one(&s, ObjectClass::SECRET_KEY, "moved").is_none());
    drop(s);
    p.finalize().unwrap();
    let out = seal(Some(&d.pin), &[]);
    assert!(out.status.success(), "{}", text_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["objects"], 0, "{report}");
    // Without the PIN the tool says what it needs.
    let out = seal(None, &[]);
    assert!(
        !out.status.success() && text_of(&out).contains("STRONGROOM_PKCS11_PIN"),
        "{}",
        text_of(&out)
    );
}

#[test]
fn the_library_speaks_tls_to_grep11_and_iam() {
    let _one = one_at_a_time();
    // A self-signed certificate for the loopback address, which the dev configuration
    // then names as its CA.
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.key_pair.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (c, k) = (
        cert_pem.display().to_string(),
        key_pem.display().to_string(),
    );
    let d = {
        let server = Server::start_with(
            &data,
            &[
                "--grpc-addr",
                "127.0.0.1:0",
                "--tls-cert",
                &c,
                "--tls-key",
                &k,
            ],
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data.join("dev.json")).unwrap()).unwrap();
        assert!(
            v["rest_url"].as_str().unwrap().starts_with("https://"),
            "{v}"
        );
        Dev {
            server,
            config: v["pkcs11_config"].as_str().unwrap().to_string(),
            pin: v["pkcs11_pin"].as_str().unwrap().to_string(),
        }
    };
    let yaml = std::fs::read_to_string(&d.config).unwrap();
    assert!(
        !yaml.contains("enabled: false") && yaml.contains(&format!("cacert: \"{c}\"")),
        "{yaml}"
    );
    let (p, s) = open(&d);
    let (public, private) = rsa_pair(&s, "over-tls", true);
    let sig = s
        .sign(&Mechanism::Sha256RsaPkcs, private, b"over TLS")
        .unwrap();
    s.verify(&Mechanism::Sha256RsaPkcs, public, b"over TLS", &sig)
        .unwrap();
    drop(s);
    p.finalize().unwrap();
    // The library offers the hybrid post-quantum group first, and the server takes it, on
    // GREP11 and on the IAM token exchange (REST).
    let metrics = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap()
            .get(format!("{}/metrics", d.server.admin_url))
            .bearer_auth(&d.server.admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let handshakes = |listener: &str, group: &str| -> u64 {
        let want = format!(
            "strongroom_tls_handshakes_total{{group=\"{group}\",listener=\"{listener}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&want))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    assert!(handshakes("grep11", "X25519MLKEM768") >= 1, "{metrics}");
    assert_eq!(handshakes("grep11", "X25519"), 0, "{metrics}");
    assert!(handshakes("rest", "X25519MLKEM768") >= 1, "{metrics}");

    // A CA the server's certificate does not chain to: the library refuses the connection.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let other_pem = dir.path().join("other.crt");
    std::fs::write(&other_pem, other.cert.pem()).unwrap();
    let wrong = dir.path().join("wrong-ca.yaml");
    std::fs::write(&wrong, yaml.replace(&c, &other_pem.display().to_string())).unwrap();
    std::env::set_var("EP11CLIENT_CFG", &wrong);
    let p = loaded();
    let slot = p.get_slots_with_token().unwrap()[0];
    let s = p.open_rw_session(slot).unwrap();
    match s.login(UserType::User, Some(&AuthPin::from(d.pin.clone()))) {
        Err(Error::Pkcs11(RvError::DeviceError, _)) => {}
        other => panic!("a server outside the configured CA was trusted: {other:?}"),
    }
    drop(s);
    p.finalize().unwrap();
}

/// PKCS#11 3.2's post-quantum functions through the library (its default interface is 3.2):
/// ML-DSA-65 signatures with a context, ML-KEM-768 C_EncapsulateKey / C_DecapsulateKey to
/// AES keys that agree, and the refusals (deterministic ML-DSA, a truncated ciphertext).
/// An AES-256 session key that encrypts and decrypts (what agreements and KEMs derive here).
fn aes_template() -> [Attribute; 5] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]
}

#[test]
fn ml_dsa_and_ml_kem_through_the_pkcs11_3_2_interface() {
    let _one = one_at_a_time();
    use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
    use cryptoki::object::{MlDsaParameterSetType, MlKemParameterSetType};
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let (p, s) = open(&d);
    assert!(p.is_fn_supported(cryptoki::context::Function::EncapsulateKey));

    step("ML-DSA-65: generate, sign with a context, verify; another context fails.");
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::MlDsaKeyPairGen,
            &[
                Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_65.into()),
                Attribute::Verify(true),
            ],
            &[Attribute::Sign(true), Attribute::Sensitive(true)],
        )
        .unwrap();
    let attrs = s
        .get_attributes(public, &[AttributeType::KeyType, AttributeType::Value])
        .unwrap();
    assert!(attrs.contains(&Attribute::KeyType(KeyType::ML_DSA)));
    assert!(attrs
        .iter()
        .any(|a| matches!(a, Attribute::Value(v) if v.len() == 1952)));
    let ctx = SignAdditionalContext::new(HedgeType::Preferred, Some(b"pkcs11 context"));
    let sig = s
        .sign(&Mechanism::MlDsa(ctx), private, b"a message")
        .unwrap();
    assert_eq!(sig.len(), 3309);
    s.verify(&Mechanism::MlDsa(ctx), public, b"a message", &sig)
        .unwrap();
    let other = SignAdditionalContext::new(HedgeType::Preferred, Some(b"other"));
    assert!(matches!(
        s.verify(&Mechanism::MlDsa(other), public, b"a message", &sig),
        Err(Error::Pkcs11(RvError::SignatureInvalid, _))
    ));
    let det = SignAdditionalContext::new(HedgeType::DeterministicRequired, None);
    assert!(matches!(
        s.sign(&Mechanism::MlDsa(det), private, b"a message"),
        Err(Error::Pkcs11(RvError::MechanismParamInvalid, _))
    ));

    step("ML-KEM-768: encapsulate to the public key, decapsulate with the private key.");
    let (ek, dk) = s
        .generate_key_pair(
            &Mechanism::MlKemKeyPairGen,
            &[
                Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                Attribute::Encapsulate(true),
            ],
            &[Attribute::Decapsulate(true), Attribute::Sensitive(true)],
        )
        .unwrap();
    // PKCS#11 3.2's usage attributes, and no CKA_DERIVE the application did not ask for.
    for (key, usage) in [
        (ek, AttributeType::Encapsulate),
        (dk, AttributeType::Decapsulate),
    ] {
        let got = s
            .get_attributes(key, &[usage, AttributeType::Derive])
            .unwrap();
        assert!(
            matches!(
                got[..],
                [
                    Attribute::Encapsulate(true) | Attribute::Decapsulate(true),
                    Attribute::Derive(false)
                ]
            ),
            "{got:?}"
        );
    }
    let aes = aes_template();
    let (ct, sent) = s.encapsulate_key(&Mechanism::MlKem, ek, &aes).unwrap();
    assert_eq!(ct.len(), 1088);
    let got = s.decapsulate_key(&Mechanism::MlKem, dk, &aes, &ct).unwrap();
    let iv = [9u8; 16];
    let c = s
        .encrypt(&Mechanism::AesCbcPad(iv), sent, b"one shared secret")
        .unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad(iv), got, &c).unwrap(),
        b"one shared secret"
    );
    assert!(matches!(
        s.decapsulate_key(&Mechanism::MlKem, dk, &aes, &ct[..1087]),
        Err(Error::Pkcs11(RvError::EncryptedDataLenRange, _))
    ));
    // A key without CKA_ENCAPSULATE may not encapsulate; an ML-DSA key is the wrong type.
    assert!(matches!(
        s.encapsulate_key(&Mechanism::MlKem, dk, &aes),
        Err(Error::Pkcs11(RvError::KeyFunctionNotPermitted, _))
    ));
    drop(s);
    p.finalize().unwrap();
}

#[test]
fn x25519_agreement_through_the_library_and_ibm_mechanisms_it_lists() {
    let _one = one_at_a_time();
    use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
    use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
    use cryptoki::mechanism::MechanismType;
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let (p, s) = open(&d);
    let slot = s.get_session_info().unwrap().slot_id();

    // (cryptoki's C_GetMechanismList drops the vendor-defined codes it does not name, so the
    // test asks C_GetMechanismInfo, which refuses what the library leaves out of its list.)
    step("C_GetMechanismInfo: X25519 agreement, BIP32 and Schnorr/BLS are there; BLS aggregation, which signs and derives without a key, is not.");
    let x25519 = MechanismType::new_vendor_defined(0x8001_001B).unwrap();
    let info = p.get_mechanism_info(slot, x25519).unwrap();
    assert!(info.derive());
    let aggregate = MechanismType::new_vendor_defined(0x8001_0034).unwrap();
    assert!(matches!(
        p.get_mechanism_info(slot, aggregate),
        Err(Error::Pkcs11(RvError::MechanismInvalid, _))
    ));
    for listed in [0x8007_0001, 0x8001_0031] {
        let m = MechanismType::new_vendor_defined(listed).unwrap();
        assert!(p.get_mechanism_info(slot, m).is_ok(), "{listed:#x}");
    }

    step("Two X25519 pairs (EC_PARAMS id-X25519) agree through CK_ECDH1_DERIVE_PARAMS on one AES key.");
    let x25519_oid = [0x06, 0x03, 0x2b, 0x65, 0x6e];
    let pair = || {
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::EcParams(x25519_oid.to_vec()),
                Attribute::Derive(true),
            ],
            &[Attribute::Derive(true), Attribute::Sensitive(true)],
        )
        .unwrap()
    };
    let point = |public| match s
        .get_attributes(public, &[AttributeType::EcPoint])
        .unwrap()
        .pop()
    {
        Some(Attribute::EcPoint(p)) => p,
        other => panic!("{other:?}"),
    };
    let ((a_pub, a), (b_pub, b)) = (pair(), pair());
    let aes = aes_template();
    let derive = |private, peer: &[u8]| {
        let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
        let m = Mechanism::VendorDefined(VendorDefinedMechanism::new(x25519, Some(&params)));
        s.derive_key(&m, private, &aes)
    };
    let (pa, pb) = (point(a_pub), point(b_pub));
    let ab = derive(a, &pb).unwrap();
    let ba = derive(b, &pa).unwrap();
    let iv = [3u8; 16];
    let c = s.encrypt(&Mechanism::AesCbcPad(iv), ab, b"agreed").unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad(iv), ba, &c).unwrap(),
        b"agreed"
    );
    assert!(matches!(
        derive(a, &[0u8; 32]),
        Err(Error::Pkcs11(RvError::MechanismParamInvalid, _))
    ));
    drop(s);
    p.finalize().unwrap();
}

/// IBM's `CK_IBM_BTC_DERIVE_PARAMS` as an application declares it (ep11.h).
#[repr(C)]
struct BtcDeriveParams {
    kind: u64,
    child_key_index: u64,
    chain_code: *mut u8,
    chain_code_len: u64,
    version: u64,
}

#[test]
fn bip32_bip340_and_ec_sdsa_through_the_library_with_ibm_parameter_structures() {
    let _one = one_at_a_time();
    use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
    use cryptoki::mechanism::MechanismType;
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let (p, s) = open(&d);
    let btc = MechanismType::new_vendor_defined(0x8007_0001).unwrap();
    let other = MechanismType::new_vendor_defined(0x8001_0031).unwrap();
    let secp256k1 = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

    step("BIP32 test vector 1: the seed imported, the master key and m/0H derived; the chain codes come back in pChainCode and match.");
    let seed = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(hex::decode("000102030405060708090a0b0c0d0e0f").unwrap()),
            Attribute::Derive(true),
        ])
        .unwrap();
    let template = |class: ObjectClass| {
        let usage = if class == ObjectClass::PRIVATE_KEY {
            Attribute::Sign(true)
        } else {
            Attribute::Verify(true)
        };
        vec![
            Attribute::Class(class),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(secp256k1.clone()),
            Attribute::Derive(true),
            usage,
        ]
    };
    let derive = |kind: u64, index: u64, base, chain: &mut [u8; 32], parent_len: u64, class| {
        let params = BtcDeriveParams {
            kind,
            child_key_index: index,
            chain_code: chain.as_mut_ptr(),
            chain_code_len: parent_len,
            version: 1,
        };
        let m = Mechanism::VendorDefined(VendorDefinedMechanism::new(btc, Some(&params)));
        s.derive_key(&m, base, &template(class))
    };
    let mut master_chain = [0u8; 32];
    let master = derive(4, 0, seed, &mut master_chain, 0, ObjectClass::PRIVATE_KEY).unwrap();
    assert_eq!(
        hex::encode(master_chain),
        "873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508"
    );
    let mut chain = master_chain;
    let child = derive(
        1,
        0x8000_0000,
        master,
        &mut chain,
        32,
        ObjectClass::PRIVATE_KEY,
    )
    .unwrap();
    assert_eq!(
        hex::encode(chain),
        "47fdacbd0f1097043b78c63c20c34ef4ed9a111d980047ad16282c7ae6236141"
    );
    let mut chain = master_chain;
    let child_pub = derive(
        2,
        0x8000_0000,
        master,
        &mut chain,
        32,
        ObjectClass::PUBLIC_KEY,
    )
    .unwrap();
    let point = match s
        .get_attributes(child_pub, &[AttributeType::EcPoint])
        .unwrap()
        .pop()
    {
        Some(Attribute::EcPoint(p)) => p,
        other => panic!("{other:?}"),
    };
    // The uncompressed point, possibly inside a DER OCTET STRING.
    let raw = &point[point.len() - 65..];
    let compressed = [&[2 + (raw[64] & 1)][..], &raw[1..33]].concat();
    assert_eq!(
        hex::encode(compressed),
        "035a784662a4a20a65bf6aab9ae98a6c068a81c52e4b032c0fb5400c706cfccc56"
    );

    step("A hardened child of a public key is refused; a short chain code is refused.");
    let mut c = chain;
    assert!(matches!(
        derive(
            3,
            0x8000_0001,
            child_pub,
            &mut c,
            32,
            ObjectClass::PUBLIC_KEY
        ),
        Err(Error::Pkcs11(RvError::MechanismParamInvalid, _))
    ));
    let mut c = chain;
    assert!(matches!(
        derive(1, 1, child, &mut c, 31, ObjectClass::PRIVATE_KEY),
        Err(Error::Pkcs11(RvError::MechanismParamInvalid, _))
    ));

    step("CK_IBM_ECDSA_OTHER_PARAMS with the derived key: BIP340 Schnorr (variant 256) and IBM's EC-SDSA (3 and 5) sign and verify; a changed message, or another variant, fails.");
    fn with(other: MechanismType, variant: &u64) -> Mechanism<'_> {
        Mechanism::VendorDefined(VendorDefinedMechanism::new(other, Some(variant)))
    }
    for variant in [256u64, 3, 5] {
        let m = with(other, &variant);
        let sig = s.sign(&m, child, b"pay 1 BTC").unwrap();
        assert_eq!(sig.len(), 64);
        s.verify(&m, child_pub, b"pay 1 BTC", &sig).unwrap();
        for (v, msg) in [
            (variant, &b"pay 2 BTC"[..]),
            (if variant == 3 { 5 } else { 3 }, b"pay 1 BTC"),
        ] {
            assert!(
                matches!(
                    s.verify(&with(other, &v), child_pub, msg, &sig),
                    Err(Error::Pkcs11(RvError::SignatureInvalid, _))
                ),
                "variant {variant} checked as {v}"
            );
        }
    }
    drop(s);
    p.finalize().unwrap();
}

/// `serve --fips-policy` reaches applications through the library: C_GetMechanismList and
/// C_GetMechanismInfo show what the server offers, and what it refuses fails with
/// CKR_MECHANISM_INVALID or CKR_CURVE_NOT_SUPPORTED.
#[test]
fn the_fips_policy_reaches_applications_through_the_library() {
    let _one = one_at_a_time();
    use cryptoki::mechanism::MechanismType;
    let dir = tempfile::tempdir().unwrap();
    let d = dev_with(dir.path(), "127.0.0.1:0", &["--fips-policy"]);
    let (p, s) = open(&d);
    let slot = s.get_session_info().unwrap().slot_id();
    let list = p.get_mechanism_list(slot).unwrap();
    assert!(list.contains(&MechanismType::AES_KEY_GEN));
    assert!(list.contains(&MechanismType::ECDSA_SHA256));
    assert!(!list.contains(&MechanismType::DES3_KEY_GEN));
    assert!(matches!(
        p.get_mechanism_info(slot, MechanismType::DES3_KEY_GEN),
        Err(Error::Pkcs11(RvError::MechanismInvalid, _))
    ));
    let rsa = p.get_mechanism_info(slot, MechanismType::RSA_PKCS).unwrap();
    assert!(rsa.sign() && !rsa.encrypt() && !rsa.decrypt());

    assert!(matches!(
        s.generate_key(&Mechanism::Des3KeyGen, &[Attribute::Encrypt(true)]),
        Err(Error::Pkcs11(RvError::MechanismInvalid, _))
    ));
    let secp256k1 = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
    assert!(matches!(
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(secp256k1), Attribute::Verify(true)],
            &[Attribute::Sign(true)],
        ),
        Err(Error::Pkcs11(RvError::CurveNotSupported, _))
    ));
    // Approved mechanisms work as before.
    let (public, private) = rsa_pair(&s, "fips", false);
    let sig = s
        .sign(&Mechanism::Sha256RsaPkcs, private, b"approved")
        .unwrap();
    check_rsa_signature(&s, public, b"approved", &sig);
}

/// A call's result as the comparisons with SoftHSM2 record it: "ok" or the CKR's name.
fn answer<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(Error::Pkcs11(rv, _)) => format!("{rv:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// Runs `scenario` (given a logged-in session and its PIN) on a fresh SoftHSM2 token, then
/// through Strongroom's library on the dev server `d`, and asserts that both answered the
/// same. Returns Strongroom's answers and its session, still open, for the checks SoftHSM2
/// has no counterpart of.
fn answers_as_in_softhsm2(
    dir: &std::path::Path,
    d: &Dev,
    scenario: impl Fn(&Session, &str) -> Vec<String>,
) -> (Pkcs11, Session, Vec<String>) {
    let (conf, soft) = softhsm(dir);
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let sp = Pkcs11::new(soft).unwrap();
    sp.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = sp.get_slots_with_token().unwrap()[0];
    let ss = sp.open_rw_session(slot).unwrap();
    ss.login(UserType::User, Some(&AuthPin::from("123456".to_string())))
        .unwrap();
    let theirs = scenario(&ss, "123456");
    drop(ss);
    sp.finalize().unwrap();

    let (p, s) = open(d);
    let ours = scenario(&s, &d.pin);
    assert_eq!(
        ours, theirs,
        "Strongroom (left) and SoftHSM2 (right) differ"
    );
    (p, s, ours)
}

/// CKA_ALLOWED_MECHANISMS: an RSA key for PSS only, an AES key for CBC-PAD only.
fn allowed_mechanism_answers(s: &Session, _pin: &str) -> Vec<String> {
    use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
    use cryptoki::mechanism::MechanismType;
    let mut out = Vec::new();
    let pss = Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    });
    let (_, private) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Sensitive(true),
                Attribute::AllowedMechanisms(vec![MechanismType::SHA256_RSA_PKCS_PSS]),
            ],
        )
        .unwrap();
    out.push(answer(s.sign(&pss, private, b"pss only")));
    out.push(answer(s.sign_init(&Mechanism::Sha256RsaPkcs, private)));
    out.push(answer(s.sign(&Mechanism::Sha256RsaPkcs, private, b"pkcs1")));
    let list = s
        .get_attributes(private, &[AttributeType::AllowedMechanisms])
        .unwrap();
    out.push(format!("{list:?}"));

    let mut aes = aes_template().to_vec();
    aes.push(Attribute::AllowedMechanisms(vec![
        MechanismType::AES_CBC_PAD,
    ]));
    let k = s.generate_key(&Mechanism::AesKeyGen, &aes).unwrap();
    out.push(answer(s.encrypt(
        &Mechanism::AesCbcPad([3; 16]),
        k,
        b"allowed",
    )));
    out.push(answer(s.encrypt(&Mechanism::AesEcb, k, &[0; 16])));
    out.push(answer(s.decrypt(&Mechanism::AesEcb, k, &[0; 16])));
    out
}

/// CKA_ALLOWED_MECHANISMS binds a key to its mechanisms: the library answers as SoftHSM2
/// does, in the same run, and the server enforces the list too (it is bound into the
/// blob), so a modified client gains nothing. The list cannot be changed.
#[test]
fn allowed_mechanisms_restrict_keys_as_in_softhsm2() {
    use cryptoki::mechanism::MechanismType;
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let (p, s, ours) = answers_as_in_softhsm2(dir.path(), &d, allowed_mechanism_answers);
    assert_eq!(ours[..3], ["ok", "MechanismInvalid", "MechanismInvalid"]);

    // Widening the list afterwards, directly or on a copy, is refused.
    let mut aes = aes_template().to_vec();
    aes.push(Attribute::AllowedMechanisms(vec![
        MechanismType::AES_CBC_PAD,
    ]));
    let k = s.generate_key(&Mechanism::AesKeyGen, &aes).unwrap();
    let wider = [Attribute::AllowedMechanisms(vec![
        MechanismType::AES_CBC_PAD,
        MechanismType::AES_ECB,
    ])];
    assert!(matches!(
        s.update_attributes(k, &wider),
        Err(Error::Pkcs11(RvError::AttributeReadOnly, _))
    ));
    assert!(matches!(
        s.copy_object(k, &wider),
        Err(Error::Pkcs11(RvError::AttributeReadOnly, _))
    ));
    // A copy keeps the list.
    let copy = s.copy_object(k, &[]).unwrap();
    assert!(matches!(
        s.encrypt(&Mechanism::AesEcb, copy, &[0; 16]),
        Err(Error::Pkcs11(RvError::MechanismInvalid, _))
    ));
    drop(s);
    p.finalize().unwrap();
}

/// CKA_ALWAYS_AUTHENTICATE: each signature with the key needs the PIN again.
fn always_authenticate_answers(s: &Session, pin: &str) -> Vec<String> {
    let pin = AuthPin::from(pin.to_string());
    let wrong = AuthPin::from("not-the-pin".to_string());
    let ctx = UserType::ContextSpecific;
    let (_, private) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::AlwaysAuthenticate(true),
            ],
        )
        .unwrap();
    let m = Mechanism::Sha256RsaPkcs;
    let mut out = vec![
        // Without the PIN: refused, and the operation ends.
        answer(s.sign(&m, private, b"no pin")),
        answer(s.sign_final()),
        // The PIN with no use waiting for it.
        answer(s.login(ctx, Some(&pin))),
    ];
    // A wrong PIN, then the right one: the use goes ahead.
    out.push(answer(s.sign_init(&m, private)));
    out.push(answer(s.login(ctx, Some(&wrong))));
    out.push(answer(s.login(ctx, Some(&pin))));
    out.push(answer(s.sign_update(b"with ")));
    out.push(answer(s.sign_update(b"the pin")));
    out.push(answer(s.sign_final()));
    // Once: the next use asks again.
    out.push(answer(s.sign_init(&m, private)));
    out.push(answer(s.sign_update(b"again")));
    out
}

/// CKA_ALWAYS_AUTHENTICATE makes each use of a key ask for the PIN again
/// (`C_Login(CKU_CONTEXT_SPECIFIC)`), as SoftHSM2 does in the same run; the library used to
/// keep the attribute and never ask. It can be turned on, not off.
#[test]
fn always_authenticate_asks_for_the_pin_at_each_use_as_in_softhsm2() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let (p, s, ours) = answers_as_in_softhsm2(dir.path(), &d, always_authenticate_answers);
    assert_eq!(ours[0], "UserNotLoggedIn");
    assert_eq!(ours[ours.len() - 3], "ok", "{ours:?}");

    let (_, private) = rsa_pair(&s, "always-auth", false);
    s.update_attributes(private, &[Attribute::AlwaysAuthenticate(true)])
        .unwrap();
    assert!(matches!(
        s.sign(&Mechanism::Sha256RsaPkcs, private, b"x"),
        Err(Error::Pkcs11(RvError::UserNotLoggedIn, _))
    ));
    assert!(matches!(
        s.update_attributes(private, &[Attribute::AlwaysAuthenticate(false)]),
        Err(Error::Pkcs11(RvError::AttributeReadOnly, _))
    ));
    drop(s);
    p.finalize().unwrap();
}

/// Only a Manager of the whole instance (the security officer of PKCS#11) makes a key
/// CKA_TRUSTED, through the library as over GREP11. So CKA_WRAP_WITH_TRUSTED keeps its
/// meaning: a Writer can neither make a trusted KEK nor turn its own KEK trusted, and so
/// cannot wrap such a key out.
#[test]
fn only_a_manager_makes_keys_trusted_through_the_library() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dev(dir.path(), "127.0.0.1:0");
    let writer = api_key(&d.server, &d.server.instance, &["Writer", "Reader"]);
    let manager = api_key(
        &d.server,
        &d.server.instance,
        &["Manager", "Writer", "Reader"],
    );
    let aes = |extra: &[Attribute]| {
        let mut t = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
        ];
        t.extend_from_slice(extra);
        t
    };
    let kek = aes(&[Attribute::Wrap(true), Attribute::Trusted(true)]);
    let iv = Mechanism::AesCbcPad([9; 16]);
    for (pin, officer) in [(writer, false), (manager, true)] {
        let (p, s) = open_as(&d, &pin);
        let made = s.generate_key(&Mechanism::AesKeyGen, &kek);
        let own = s
            .generate_key(&Mechanism::AesKeyGen, &aes(&[Attribute::Wrap(true)]))
            .unwrap();
        let turned = s.update_attributes(own, &[Attribute::Trusted(true)]);
        let guarded = s
            .generate_key(
                &Mechanism::AesKeyGen,
                &aes(&[
                    Attribute::Extractable(true),
                    Attribute::WrapWithTrusted(true),
                ]),
            )
            .unwrap();
        if officer {
            let trusted = made.unwrap();
            turned.unwrap();
            s.wrap_key(&iv, trusted, guarded).unwrap();
            s.wrap_key(&iv, own, guarded).unwrap();
        } else {
            assert!(
                matches!(made, Err(Error::Pkcs11(RvError::AttributeReadOnly, _))),
                "{made:?}"
            );
            assert!(
                matches!(turned, Err(Error::Pkcs11(RvError::AttributeReadOnly, _))),
                "{turned:?}"
            );
            assert!(matches!(
                s.wrap_key(&iv, own, guarded),
                Err(Error::Pkcs11(RvError::KeyNotWrappable, _))
            ));
        }
        drop(s);
        p.finalize().unwrap();
    }
}
