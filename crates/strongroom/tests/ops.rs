//! Operations: TLS outside dev mode, graceful shutdown, audit verification and tamper
//! detection, instance administration through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = cli_status(dir, args);
    (status == Some(0), out, err)
}

/// Runs the CLI with `--data-dir dir`: its exit status, stdout and stderr.
fn cli_status(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tls_is_required_without_dev() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["serve", "--http-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS is required"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cp, kp) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cp, cert.cert.pem()).unwrap();
    std::fs::write(&kp, cert.key_pair.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .arg("--tls-cert")
        .arg(&cp)
        .arg("--tls-key")
        .arg(&kp)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut ok = false;
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("https://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            ok = r.status().is_success();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "https /health answered");
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
}

#[tokio::test]
async fn audit_verify_detects_changed_and_removed_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let api = s.client();
    let id = api.create_root("a").await;
    for _ in 0..5 {
        api.action(&id, "wrap", json!({})).await;
    }
    api.call("GET", "/api/v2/keys/missing-key", None).await;
    let status = s.terminate();
    assert!(status.success(), "graceful shutdown exits 0");

    let (ok, out, _) = cli(dir.path(), &["audit", "verify", "--output", "json"]);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["records"].as_u64().unwrap(),
        8,
        "dev mode's PKCS#11 API key, create, 5 wraps and one denied read"
    );

    // A wrong key is told apart from tampering: no record verifies, yet they link.
    let wrong = dir.path().join("other-cluster.key");
    std::fs::write(&wrong, [7u8; 32]).unwrap();
    let (status, out, err) = cli_status(
        dir.path(),
        &[
            "audit",
            "verify",
            "--cluster-key-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(status, Some(2), "{out} {err}");
    assert!(
        out.contains("the key is wrong, not the log") && !out.contains("changed"),
        "{out}"
    );
    // `--config` takes the data directory (and keystore, cluster key) from serve's file.
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", dir.path().to_str().unwrap()),
    )
    .unwrap();
    let o = Command::new(bin())
        .args(["audit", "verify", "--config", config.to_str().unwrap()])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("chain intact"),
        "{o:?}"
    );

    let db = dir.path().join("keystore-audit.db");
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let refused =
        sqlx::query("UPDATE audit SET outcome = 'success' WHERE outcome = 'key_not_found'")
            .execute(&pool)
            .await;
    assert!(
        refused.is_err(),
        "the database itself refuses changes to the audit log"
    );
    // An attacker with write access to the file can drop the triggers; the chain still tells.
    for t in ["audit_no_update", "audit_no_delete", "audit_contiguous"] {
        sqlx::query(&format!("DROP TRIGGER {t}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit SET outcome = 'success' WHERE outcome = 'key_not_found'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (status, out, err) = cli_status(dir.path(), &["audit", "verify"]);
    assert_eq!(status, Some(5), "a failed check exits 5: {out} {err}");
    assert!(
        out.contains("BROKEN") && out.contains("changed"),
        "{out} {err}"
    );

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit SET outcome = 'key_not_found' WHERE action = 'kms.secrets.read'")
        .execute(&pool)
        .await
        .unwrap();
    let (ok, out, _) = cli(dir.path(), &["audit", "verify"]);
    assert!(ok, "restored record verifies again: {out}");
    sqlx::query("DELETE FROM audit WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (ok, out, _) = cli(dir.path(), &["audit", "verify"]);
    assert!(!ok);
    assert!(out.contains("record 3 is missing"), "{out}");
}

#[tokio::test]
async fn cli_drives_instances_api_keys_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "instance",
            "create",
            "team-a",
            "--dev-master-key",
            "--output",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let inst: Value = serde_json::from_str(&out).unwrap();
    let iid = inst["id"].as_str().unwrap().to_string();
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "instance", "apikey", "create", &iid, "--role", "Writer", "--output", "json",
        ],
    );
    assert!(ok, "{err}");
    let key: Value = serde_json::from_str(&out).unwrap();
    let apikey = key["apikey"].as_str().unwrap().to_string();
    let (ok, out, _) = cli(dir.path(), &["instance", "list"]);
    assert!(ok && out.contains("team-a") && out.contains("dev"));

    // Keys of team-a through the API key; the dev instance does not see them.
    let base = ["--url", &s.url, "--instance", &iid, "--api-key", &apikey];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = vec!["key"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&base);
        cli(dir.path(), &a)
    };
    let (ok, out, err) = run(&[
        "create",
        "payments",
        "--alias",
        "payments-root",
        "--output",
        "json",
    ]);
    assert!(ok, "{err}");
    let k: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(k["name"], "payments");
    // `key <args> --output json`, which must succeed.
    let json_of = |args: &[&str]| -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--output", "json"]);
        let (ok, out, err) = run(&a);
        assert!(ok, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let w = json_of(&["wrap", "payments-root", "--aad", "order-1"]);
    let ct = w["ciphertext"].as_str().unwrap();
    let unwrap = |ct: &str| {
        json_of(&[
            "unwrap",
            "payments-root",
            "--ciphertext",
            ct,
            "--aad",
            "order-1",
        ])
    };
    assert_eq!(unwrap(ct)["plaintext"], w["plaintext"]);
    // rewrap keeps the AAD and gives a ciphertext that unwraps to the same key.
    let r = json_of(&[
        "rewrap",
        "payments-root",
        "--ciphertext",
        ct,
        "--aad",
        "order-1",
    ]);
    assert_eq!(
        unwrap(r["ciphertext"].as_str().unwrap())["plaintext"],
        w["plaintext"]
    );
    let (ok, _, err) = run(&["rewrap", "payments-root", "--ciphertext", ct]);
    assert!(!ok, "rewrap without the AAD must fail");
    assert!(
        err.contains("INVALID_FIELD_ERR") && err.contains("check that the aad matches"),
        "{err}"
    );
    let (ok, _, err) = run(&["disable", "payments-root"]);
    assert!(
        !ok && err.contains("401 UNAUTHORIZED_ERR"),
        "Writer cannot disable: {err}"
    );
    let (ok, out, _) = cli(dir.path(), &["key", "list"]);
    assert!(
        ok && out.contains("no keys"),
        "the dev instance sees none of team-a's keys: {out}"
    );

    // Deleting an instance is refused while it holds keys.
    let (ok, _, err) = cli(dir.path(), &["instance", "delete", &iid]);
    assert!(!ok && err.contains("INSTANCE_NOT_EMPTY_ERR"), "{err}");
    let (ok, _, err) = cli(dir.path(), &["instance", "list", "--admin-token", "wrong"]);
    assert!(!ok && err.contains("401"), "{err}");
}

#[tokio::test]
async fn cli_manages_service_ids_limited_to_key_rings() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let iid = s.instance.clone();
    let mut api = s.client();
    api.token = token_for(&s, &iid, &["Manager"]).await;
    let r = api.call("POST", "/api/v2/key_rings/payments", None).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let other = api.create_root("elsewhere").await;

    step("a service ID limited to the payments ring, and two API keys of it");
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "instance",
            "service-id",
            "create",
            &iid,
            "--role",
            "Writer",
            "--key-ring",
            "payments",
            "--name",
            "payments app",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("roles Writer on key rings payments"), "{out}");
    let sid = out
        .split_whitespace()
        .find(|w| w.starts_with("ServiceId-"))
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (ok, out, err) = cli(
            dir.path(),
            &[
                "instance",
                "apikey",
                "create",
                &iid,
                "--service-id",
                &sid,
                "--output",
                "json",
            ],
        );
        assert!(ok, "{err}");
        let k: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(k["service_id"], json!(sid));
        keys.push(k);
    }
    let (ok, out, _) = cli(dir.path(), &["instance", "apikey", "list", &iid]);
    assert!(
        ok && out.matches(&format!("service ID {sid}")).count() == 2,
        "{out}"
    );

    step("its keys reach the payments ring only");
    let key_cmd = |apikey: &str, extra: &[&str]| {
        let mut a = vec!["key"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--url", &s.url, "--instance", &iid, "--api-key", apikey]);
        cli(dir.path(), &a)
    };
    let first = keys[0]["apikey"].as_str().unwrap().to_string();
    let (ok, _, err) = key_cmd(&first, &["wrap", &other]);
    assert!(!ok && err.contains("401 UNAUTHORIZED_ERR"), "{err}");
    let (ok, out, _) = key_cmd(&first, &["list"]);
    assert!(ok && out.contains("no keys"), "{out}");
    let (ok, _, err) = key_cmd(&first, &["create", "elsewhere-too"]);
    assert!(!ok && err.contains("key ring 'default'"), "{err}");
    let (ok, out, err) = key_cmd(&first, &["create", "card-fees", "--key-ring", "payments"]);
    assert!(ok, "{err}");
    assert!(out.contains("card-fees"), "{out}");
    let (ok, out, _) = key_cmd(&first, &["list", "--key-ring", "payments"]);
    assert!(ok && out.contains("card-fees"), "{out}");
    let (ok, _, err) = key_cmd(&first, &["list", "--key-ring", "default"]);
    assert!(!ok && err.contains("401"), "{err}");

    step("a wrong command line is a usage error that creates nothing");
    let (ok, _, err) = cli(dir.path(), &["instance", "apikey", "create", &iid]);
    assert!(!ok && err.contains("--role"), "{err}");
    let (ok, _, err) = cli(
        dir.path(),
        &[
            "instance",
            "apikey",
            "create",
            &iid,
            "--service-id",
            &sid,
            "--role",
            "Manager",
        ],
    );
    assert!(!ok && err.contains("cannot be used with"), "{err}");

    step("rotate: delete the first key, the second goes on; then delete the service ID");
    let id0 = keys[0]["id"].as_str().unwrap();
    let (ok, _, err) = cli(dir.path(), &["instance", "apikey", "delete", &iid, id0]);
    assert!(ok, "{err}");
    let second = keys[1]["apikey"].as_str().unwrap().to_string();
    let (ok, _, err) = key_cmd(&second, &["list"]);
    assert!(ok, "{err}");
    let (ok, out, _) = cli(dir.path(), &["instance", "service-id", "list", &iid]);
    assert!(ok && out.contains(&sid), "{out}");
    let (ok, _, err) = cli(
        dir.path(),
        &["instance", "service-id", "delete", &iid, &sid],
    );
    assert!(ok, "{err}");
    let (ok, out, _) = cli(dir.path(), &["instance", "apikey", "list", &iid]);
    assert!(ok && !out.contains(&sid), "{out}");
    let (ok, _, err) = key_cmd(&second, &["list"]);
    assert!(!ok, "the service ID's keys went with it: {err}");
}

#[tokio::test]
async fn cli_secure_import_sends_no_material_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // The default transport (ML-KEM-1024), the other ML-KEM set, and Key Protect's RSA.
    for (n, transport) in [None, Some("ml-kem-768"), Some("rsa-4096")]
        .into_iter()
        .enumerate()
    {
        let material = [0x5a ^ n as u8; 32];
        let file = dir.path().join(format!("root{n}.key"));
        std::fs::write(&file, material).unwrap();
        let name = format!("byok{n}");
        let mut args = vec![
            "key",
            "import",
            &name,
            "--secure",
            file.to_str().unwrap(),
            "--alias",
            &name,
        ];
        args.extend(transport.iter().flat_map(|t| ["--transport", *t]));
        let (ok, out, err) = cli(dir.path(), &args);
        assert!(ok, "{transport:?}: {err}");
        let used = ["ML_KEM_1024", "ML_KEM_768", "RSA_4096"][n];
        assert!(
            out.contains(&format!("import token whose transport key is {used}")),
            "{out}"
        );
        let api = s.client();
        let k = api.call("GET", &format!("/api/v2/keys/{name}"), None).await;
        let k = &k.body["resources"][0];
        assert_eq!(
            (k["imported"].as_bool(), k["extractable"].as_bool()),
            (Some(true), Some(false))
        );
        // The key holds exactly that material: a WDEK made by the server opens with it.
        let id = k["id"].as_str().unwrap();
        let w = api.action(id, "wrap", json!({"plaintext": "ZGVr"})).await;
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(w.body["ciphertext"].as_str().unwrap())
            .unwrap();
        let wk = strongroom_engine::WrappingKey::new(
            &strongroom_crypto_awslc::AwsLcProvider,
            &strongroom_engine::KeyMaterial::from_slice(&material),
        )
        .unwrap();
        let wdek = strongroom_engine::Wdek::parse(&raw).unwrap();
        assert_eq!(
            strongroom_engine::envelope::unwrap(&wk, &wdek, &[])
                .unwrap()
                .as_slice(),
            b"dek"
        );
    }
    let short = dir.path().join("short.key");
    std::fs::write(&short, [1u8; 20]).unwrap();
    let (ok, _, err) = cli(
        dir.path(),
        &["key", "import", "bad", "--secure", short.to_str().unwrap()],
    );
    assert!(!ok && err.contains("16, 24 or 32"), "{err}");
}

#[tokio::test]
async fn backup_restore_into_a_fresh_node_and_refuse_damaged_archives() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let api = s.client();
    let mut wraps = Vec::new();
    for n in 0..30 {
        let id = api.create_root(&format!("b{n}")).await;
        if n % 3 == 0 {
            api.call("POST", &format!("/api/v2/keys/{id}/actions/rotate"), None)
                .await;
        }
        wraps.push(api.wrap(&id).await);
    }
    api.call(
        "POST",
        &format!("/api/v2/keys/{}/aliases/kept-alias", wraps[1].0),
        None,
    )
    .await;
    let backups = dir.path().join("backups");
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "backup",
            "create",
            "--dir",
            backups.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (made["keys"].as_u64(), made["versions"].as_u64()),
        (Some(30), Some(40))
    );
    let file = made["file"].as_str().unwrap().to_string();
    let (ok, out, _) = cli(dir.path(), &["backup", "verify", &file]);
    assert!(ok && out.contains("intact"), "{out}");
    // When it was written, so that an older archive than expected stands out.
    assert!(out.contains(" s ago"), "{out}");

    // Damaged archives are refused, with a clear reason.
    let bytes = std::fs::read(&file).unwrap();
    let flipped = dir.path().join("flipped.srbk");
    let mut f = bytes.clone();
    let mid = f.len() / 2;
    f[mid] ^= 0x01;
    std::fs::write(&flipped, &f).unwrap();
    let truncated = dir.path().join("truncated.srbk");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    for (bad, why) in [(&flipped, "checksum"), (&truncated, "truncated")] {
        let (ok, _, err) = cli(dir.path(), &["backup", "verify", bad.to_str().unwrap()]);
        assert!(!ok && err.contains(why), "{why}: {err}");
        let never = dir.path().join("never");
        let (ok, _, err) = cli(&never, &["backup", "restore", bad.to_str().unwrap()]);
        assert!(!ok && err.contains(why), "{why}: {err}");
    }

    // A fresh node: the archive plus the same master key (here: the node key and unit files,
    // which the ceremony will deliver instead). Everything unwraps.
    let fresh = tempfile::tempdir().unwrap();
    let (ok, out, err) = cli(
        fresh.path(),
        &["backup", "restore", &file, "--output", "json"],
    );
    assert!(ok, "{err}");
    let restored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(restored["keys"].as_u64(), Some(30));
    assert_eq!(
        (
            restored["ready_instances"].as_array().map(Vec::len),
            restored["instances_needing_master_keys"]
                .as_array()
                .map(Vec::len)
        ),
        (Some(0), Some(1)),
        "a node without units waits for the master key: {restored}"
    );
    // Into a node whose units already hold the master key: ready at once, and the restore
    // does not ask for master keys.
    let primed = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("node.key"), primed.path().join("node.key")).unwrap();
    std::fs::create_dir_all(primed.path().join("units")).unwrap();
    for e in std::fs::read_dir(dir.path().join("units")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), primed.path().join("units").join(e.file_name())).unwrap();
    }
    let (ok, out, err) = cli(primed.path(), &["backup", "restore", &file]);
    assert!(ok, "{err}");
    assert!(
        !out.contains("load the master keys") && out.contains("already hold the master keys"),
        "{out}"
    );
    let (ok, _, err) = cli(fresh.path(), &["backup", "restore", &file]);
    assert!(
        !ok && err.contains("not empty"),
        "a second restore is refused: {err}"
    );
    std::fs::copy(dir.path().join("node.key"), fresh.path().join("node.key")).unwrap();
    std::fs::create_dir_all(fresh.path().join("units")).unwrap();
    for e in std::fs::read_dir(dir.path().join("units")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), fresh.path().join("units").join(e.file_name())).unwrap();
    }
    let s2 = Server::start(fresh.path());
    let api2 = s2.client();
    for (id, ct, pt) in &wraps {
        let r = api2.action(id, "unwrap", json!({"ciphertext": ct})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["plaintext"].as_str(), Some(pt.as_str()));
    }
    assert_eq!(
        api2.call("GET", "/api/v2/keys/kept-alias/metadata", None)
            .await
            .status,
        200
    );
    // Without the master key the archive is useless: a node with its own key cannot open it.
    let stranger = tempfile::tempdir().unwrap();
    let (ok, _, _) = cli(stranger.path(), &["backup", "restore", &file]);
    assert!(ok);
    let s3 = Server::start(stranger.path());
    let r = s3.client();
    let mut api3 = r.clone();
    api3.instance = api2.instance.clone();
    let u = api3
        .call(
            "POST",
            &format!("/api/v2/keys/{}/actions/unwrap", wraps[0].0),
            Some(json!({"ciphertext": wraps[0].1})),
        )
        .await;
    assert_ne!(
        u.status, 200,
        "a node without the master key cannot use restored keys"
    );
}

#[tokio::test]
async fn metering_and_prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let api = s.client();
    let id = api.create_root("metered").await;
    for _ in 0..4 {
        api.action(&id, "wrap", json!({})).await;
    }
    api.call("GET", "/api/v2/keys/nope-alias", None).await;
    // Refused calls count too; let the queued audit records land.
    let mut calls = 0;
    let mut usage = Value::Null;
    for _ in 0..50 {
        let (ok, out, err) = cli(
            dir.path(),
            &["instance", "usage", &api.instance, "--output", "json"],
        );
        assert!(ok, "{err}");
        usage = serde_json::from_str(&out).unwrap();
        calls = usage["api_calls"].as_u64().unwrap();
        if calls >= 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        calls, 7,
        "dev mode's PKCS#11 API key, create, 4 wraps, 1 refused read"
    );
    // The same calls, counted against the crypto unit that served them.
    let per_unit = usage["crypto_units"].as_array().unwrap();
    assert_eq!(per_unit.len(), 1, "{usage}");
    assert_eq!(per_unit[0]["api_calls"], 6, "{usage}");
    let units = api.call("GET", "/api/v2/crypto_units", None).await;
    let body: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            units.body["units"][0]["body"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(body["unit"], per_unit[0]["unit"]);
    let (ok, out, _) = cli(
        dir.path(),
        &[
            "instance",
            "usage",
            &api.instance,
            "--month",
            "2001-01",
            "--output",
            "json",
        ],
    );
    assert!(ok);
    let old: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(old["api_calls"], 0);
    assert_eq!(old["crypto_units"], json!([]));
    let (ok, _, err) = cli(
        dir.path(),
        &["instance", "usage", &api.instance, "--month", "2001-13"],
    );
    assert!(!ok && err.contains("YYYY-MM"), "{err}");

    // /metrics and the admin API live on the admin listener only, and /metrics needs the
    // admin token there.
    for path in ["/metrics", "/admin/v1/instances"] {
        let on_api = reqwest::get(format!("{}{path}", api.url)).await.unwrap();
        assert_eq!(on_api.status(), 404, "{path} is not on the API listener");
    }
    let anonymous = reqwest::get(format!("{}/metrics", api.admin_url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "/metrics needs the admin token");
    let text = s.metrics().await;
    assert!(text.contains(r#"strongroom_http_requests_total{method="POST",route="/api/v2/keys/{id}/actions/wrap",status="200"} 4"#), "{text}");
    assert!(text.contains("strongroom_http_request_duration_seconds_bucket"));
    assert!(text.contains("strongroom_cached_keys 1"));
    assert!(
        text.contains(r#"strongroom_crypto_units{current="valid",kind="operational",mode="imprint",new="empty",rotating="false"} 1"#),
        "the dev unit: {text}"
    );
    // 4 wraps of one key: the first reads and opens it, the next three find it cached.
    assert!(
        text.contains(r#"strongroom_node{counter="key_cache_misses"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"strongroom_node{counter="key_cache_hits"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"strongroom_node{counter="reencrypt_remaining"} 0"#),
        "{text}"
    );
    assert!(
        !text.contains(&api.instance),
        "no tenant identifiers in metrics"
    );
}

/// OpenTelemetry: with --otlp-endpoint, each request is exported as a span (OTLP over
/// HTTP/protobuf) that continues the caller's W3C trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_are_exported_over_otlp() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().push(body.to_vec());
                (
                    [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_with(dir.path(), &["--otlp-endpoint", &collector]);
    let api = s.client();
    let id = api.create_root("traced").await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let r = api
        .raw(
            "POST",
            &format!("/api/v2/keys/{id}/actions/wrap"),
            Some("{}".into()),
            Some("application/json"),
            &[("traceparent", &format!("00-{trace_id}-b7ad6b7169203331-01"))],
        )
        .await;
    assert_eq!(r.status, 200);
    // A graceful stop flushes the spans still queued.
    assert!(s.terminate().success());
    let all: Vec<u8> = received.lock().unwrap().concat();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"POST /api/v2/keys/{id}/actions/wrap"),
        "span named after the route"
    );
    assert!(has(b"POST /api/v2/keys"), "the creation too");
    assert!(
        has(&hex::decode(trace_id).unwrap()),
        "the caller's trace is continued"
    );
    assert!(has(b"strongroom"), "service name");
}

/// An archive with its checksum recomputed (coreutils' sha256sum) after `extra` lines were
/// put before the trailer, as anyone who can write to the backup store can do; with
/// `keep_mac` false, the authentication code is removed as well.
fn forge(archive: &[u8], extra: &str, keep_mac: bool) -> Vec<u8> {
    let text = std::str::from_utf8(archive).unwrap();
    let body_end = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let mut trailer: Value = serde_json::from_str(&text[body_end..]).unwrap();
    let body = format!("{}{extra}", &text[..body_end]);
    let mut sum = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    sum.stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = String::from_utf8(sum.wait_with_output().unwrap().stdout).unwrap();
    trailer["sha256"] = json!(out.split_whitespace().next().unwrap());
    trailer["records"] = json!(trailer["records"].as_u64().unwrap() + extra.lines().count() as u64);
    if !keep_mac {
        trailer.as_object_mut().unwrap().remove("hmac");
    }
    format!("{body}{trailer}\n").into_bytes()
}

/// `backup --backup-key-file`: the archive carries an authentication code; an archive in
/// which someone planted an API key with Manager and recomputed the checksum, or whose code
/// they removed, is refused by `verify` and `restore` with the key (and passes the checksum
/// without it); the genuine archive restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_key_refuses_archives_someone_changed_and_rechecksummed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let api = s.client();
    api.create_root("kept").await;
    let backups = dir.path().join("backups");
    let key_file = dir.path().join("backup.key");
    let key = key_file.to_str().unwrap();
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "backup",
            "create",
            "--dir",
            backups.to_str().unwrap(),
            "--backup-key-file",
            key,
            "--output",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made["authenticity"], "verified", "{made}");
    assert!(err.contains("created a new backup key file"), "{err}");
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let file = made["file"].as_str().unwrap().to_string();
    let (ok, out, err) = cli(
        dir.path(),
        &["backup", "verify", &file, "--backup-key-file", key],
    );
    assert!(
        ok && out.contains("authenticated by the backup key"),
        "{out}{err}"
    );
    let (ok, out, _) = cli(dir.path(), &["backup", "verify", &file]);
    assert!(ok && out.contains("not checked"), "{out}");

    let archive = std::fs::read(&file).unwrap();
    let instance = serde_json::from_str::<Value>(
        std::str::from_utf8(&archive)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let planted = json!({"type": "api_key", "instance": instance, "id": "intruder",
        "name": "intruder", "roles": 7, "created_at": 0,
        "secret_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    .to_string()
        + "\n";
    for (name, bytes, why) in [
        (
            "planted.srbk",
            forge(&archive, &planted, true),
            "does not match the backup key",
        ),
        (
            "stripped.srbk",
            forge(&archive, &planted, false),
            "carries no authentication code",
        ),
    ] {
        let bad = dir.path().join(name);
        std::fs::write(&bad, bytes).unwrap();
        let bad = bad.to_str().unwrap();
        let (ok, out, _) = cli(dir.path(), &["backup", "verify", bad]);
        assert!(ok, "{name}: the checksum alone accepts it: {out}");
        let (ok, _, err) = cli(
            dir.path(),
            &["backup", "verify", bad, "--backup-key-file", key],
        );
        assert!(!ok && err.contains(why), "{name}: {err}");
        let never = dir.path().join("never");
        let (ok, _, err) = cli(
            &never,
            &["backup", "restore", bad, "--backup-key-file", key],
        );
        assert!(!ok && err.contains(why), "{name}: {err}");
        assert!(
            !never.join("keystore.db").exists(),
            "{name}: a refused restore wrote"
        );
    }
    // A reader's key file that is not there is an error, not a new key.
    let missing = dir.path().join("missing.key");
    let (ok, _, err) = cli(
        dir.path(),
        &[
            "backup",
            "verify",
            &file,
            "--backup-key-file",
            missing.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("cannot read"), "{err}");
    assert!(!missing.exists());

    let fresh = tempfile::tempdir().unwrap();
    let (ok, out, err) = cli(
        fresh.path(),
        &["backup", "restore", &file, "--backup-key-file", key],
    );
    assert!(
        ok && out.contains("authenticated by the backup key"),
        "{out}{err}"
    );
}

/// Backups to an S3-compatible store (moto's server, started by this test from the venv that
/// scripts/test prepares): create, list, verify, restore into a fresh node from s3://, and a
/// damaged object refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_to_an_s3_compatible_store() {
    let moto = std::env::var("STRONGROOM_TEST_MOTO_SERVER").expect(
        "STRONGROOM_TEST_MOTO_SERVER is not set: run scripts/test, which installs moto's S3 server",
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _moto = Kill(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http
            .put(format!("{endpoint}/strongroom-backups"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "moto_server did not start");
    let env = [
        ("STRONGROOM_S3_ENDPOINT", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let s3cli = |dir: &std::path::Path, args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .envs(env)
            .output()
            .unwrap();
        outcome(&out)
    };

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let api = s.client();
    let id = api.create_root("s3-backed").await;
    let (_, ct, pt) = api.wrap(&id).await;
    let (ok, out, err) = s3cli(
        dir.path(),
        &[
            "backup",
            "create",
            "--dir",
            "s3://strongroom-backups/node-1",
            "--output",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let location = made["file"].as_str().unwrap().to_string();
    assert!(
        location.starts_with("s3://strongroom-backups/node-1/strongroom-backup-"),
        "{location}"
    );
    let (ok, out, err) = s3cli(
        dir.path(),
        &["backup", "list", "--dir", "s3://strongroom-backups/node-1"],
    );
    assert!(
        ok && out.contains(&location) && out.contains("1 keys") || out.contains("keys"),
        "{out}{err}"
    );
    let (ok, out, err) = s3cli(dir.path(), &["backup", "verify", &location]);
    assert!(ok && out.contains("intact"), "{out}{err}");

    // A damaged object in the bucket is refused.
    // (moto refuses anonymous reads; a local archive of the same node gives the bytes.)
    let local = dir.path().join("local-backups");
    let (ok, out, err) = s3cli(
        dir.path(),
        &[
            "backup",
            "create",
            "--dir",
            local.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let good = std::fs::read(
        serde_json::from_str::<Value>(&out).unwrap()["file"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let bad_key = format!("{endpoint}/strongroom-backups/node-1/strongroom-backup-0-damaged.srbk");
    assert!(http
        .put(&bad_key)
        .body(bad)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let (ok, _, err) = s3cli(
        dir.path(),
        &[
            "backup",
            "verify",
            "s3://strongroom-backups/node-1/strongroom-backup-0-damaged.srbk",
        ],
    );
    assert!(!ok && err.contains("checksum"), "{err}");
    let (ok, out, _) = s3cli(
        dir.path(),
        &["backup", "list", "--dir", "s3://strongroom-backups/node-1"],
    );
    assert!(ok && out.contains("DAMAGED"), "{out}");

    // Restore into a fresh node straight from the bucket; the same unit files give the key.
    let fresh = tempfile::tempdir().unwrap();
    let (ok, _, err) = s3cli(fresh.path(), &["backup", "restore", &location]);
    assert!(ok, "{err}");
    std::fs::copy(dir.path().join("node.key"), fresh.path().join("node.key")).unwrap();
    std::fs::create_dir_all(fresh.path().join("units")).unwrap();
    for e in std::fs::read_dir(dir.path().join("units")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), fresh.path().join("units").join(e.file_name())).unwrap();
    }
    drop(s);
    let s2 = Server::start(fresh.path());
    let r = s2
        .client()
        .action(&id, "unwrap", json!({"ciphertext": ct}))
        .await;
    assert_eq!(
        (r.status, r.body["plaintext"].as_str()),
        (200, Some(pt.as_str())),
        "{:?}",
        r.body
    );
}

/// Tenants read their own activity: an instance's Readers and Managers list its audit events
/// as CADF events, filtered by action, outcome, key and time, page by page with a cursor;
/// never another instance's events; KeyPurge alone may not; bad filters get Key Protect's
/// error envelope.
#[tokio::test]
async fn tenants_read_their_own_activity_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let a = s.client();
    let started = a.call("GET", "/api/v2/keys", None).await;
    assert_eq!(started.status, 200);
    let id = a.create_root("tracked").await;
    for _ in 0..3 {
        let w = a.action(&id, "wrap", json!({})).await;
        assert_eq!(w.status, 200);
    }
    assert_eq!(
        a.call("GET", "/api/v2/keys/no-such-key", None).await.status,
        404
    );

    // Another tenant, busy with its own keys.
    let other = admin_post(
        &s,
        "/admin/v1/instances",
        json!({"name": "tenant-b", "dev_master_key": true}),
    )
    .await;
    let b_id = other["id"].as_str().unwrap().to_string();
    let mut b = a.clone();
    b.instance = b_id.clone();
    b.token = token_for(&s, &b_id, &["Manager"]).await;
    let b_key = b.create_root("b-secret").await;
    b.action(&b_key, "wrap", json!({})).await;

    let events = |api: &Api, q: &str| {
        let (api, q) = (api.clone(), q.to_string());
        async move {
            let r = api
                .call("GET", &format!("/api/v2/activity_events{q}"), None)
                .await;
            assert_eq!(r.status, 200, "{q}: {:?}", r.body);
            r.body
        }
    };
    let all = events(&a, "?limit=1000").await;
    let list = all["resources"].as_array().unwrap().clone();
    assert!(
        list.iter()
            .all(|e| !e.to_string().contains(&b_id) && !e.to_string().contains(&b_key)),
        "never another tenant's events"
    );
    let wraps = events(&a, &format!("?action=kms.secrets.wrap&key={id}")).await;
    let wraps = wraps["resources"].as_array().unwrap();
    assert_eq!(wraps.len(), 3);
    let e = &wraps[0];
    assert_eq!(
        e["typeURI"],
        "http://schemas.dmtf.org/cloud/audit/1.0/event"
    );
    assert_eq!(
        (
            e["action"].as_str(),
            e["outcome"].as_str(),
            e["severity"].as_str()
        ),
        (Some("kms.secrets.wrap"), Some("success"), Some("normal"))
    );
    assert_eq!(e["target"]["id"], id.as_str());
    assert_eq!(e["reason"]["reasonCode"], 200);
    assert!(e["initiator"]["id"].as_str().is_some_and(|p| !p.is_empty()));
    let failed = events(&a, "?outcome=failure").await;
    let failed = failed["resources"].as_array().unwrap();
    assert!(
        failed
            .iter()
            .any(|e| e["reason"]["reasonType"] == "key_not_found"
                && e["reason"]["reasonCode"] == 404
                && e["severity"] == "warning"),
        "{failed:?}"
    );
    assert!(failed.iter().all(|e| e["outcome"] == "failure"));
    // Paging with the cursor walks every event once, in order.
    let mut seen = Vec::new();
    let mut after = String::from("0");
    loop {
        let page = events(&a, &format!("?limit=2&after={after}")).await;
        let items = page["resources"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        seen.extend(
            items
                .iter()
                .map(|e| e["seq"].as_str().unwrap().parse::<i64>().unwrap()),
        );
        after = page["metadata"]["next"].as_str().unwrap().to_string();
    }
    let listed: Vec<i64> = list
        .iter()
        .map(|e| e["seq"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(seen.len() >= listed.len() && seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(&seen[..listed.len()], &listed[..]);
    // A time window in the future holds nothing.
    let none = events(&a, "?from=2999-01-01T00:00:00Z").await;
    assert_eq!(none["resources"].as_array().unwrap().len(), 0);
    // Tenant B sees its own key's events, and none of A's.
    let theirs = events(&b, "?limit=1000").await;
    let theirs = theirs["resources"].as_array().unwrap();
    assert!(theirs.iter().any(|e| e["target"]["id"] == b_key.as_str()));
    assert!(theirs.iter().all(|e| e["target"]["id"] != id.as_str()));
    // A Reader may read them; KeyPurge alone may not.
    let mut reader = a.clone();
    reader.token = token_for(&s, &a.instance, &["Reader"]).await;
    assert_eq!(
        reader
            .call("GET", "/api/v2/activity_events", None)
            .await
            .status,
        200
    );
    let mut purger = a.clone();
    purger.token = token_for(&s, &a.instance, &["KeyPurge"]).await;
    let r = purger.call("GET", "/api/v2/activity_events", None).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED_ERR"));
    // Export as a stream: JSON lines to a file, resumed from the position, never twice.
    let out = dir.path().join("activity.jsonl");
    let state = dir.path().join("activity.pos");
    let export = |extra: &[&str]| {
        let mut args = vec!["activity", "export", "--state", state.to_str().unwrap()];
        args.extend_from_slice(extra);
        cli(dir.path(), &args)
    };
    let (ok, _, err) = export(&["--to-file", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    let lines = |p: &std::path::Path| -> Vec<Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let first = lines(&out);
    assert!(first.iter().all(|e| e["action"] != "activity.events.read"));
    assert_eq!(
        first
            .iter()
            .filter(|e| e["action"] == "kms.secrets.wrap")
            .count(),
        3
    );
    a.action(&id, "wrap", json!({})).await;
    // The position file is lost: the file's last line still tells where to go on.
    std::fs::remove_file(&state).unwrap();
    let (ok, _, err) = export(&["--to-file", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    let second = lines(&out);
    let seqs: Vec<i64> = second
        .iter()
        .map(|e| e["seq"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "no event twice: {seqs:?}"
    );
    assert_eq!(
        second
            .iter()
            .filter(|e| e["action"] == "kms.secrets.wrap")
            .count(),
        4
    );
    assert!(second.iter().all(|e| !e.to_string().contains(&b_id)));
    // To a webhook: a refused batch is not counted as sent; the next run sends it.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/events", hook.local_addr().unwrap());
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let got = std::sync::Arc::clone(&received);
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for (n, conn) in hook.incoming().enumerate() {
            let mut conn = conn.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let body = loop {
                let k = conn.read(&mut chunk).unwrap();
                if k == 0 {
                    break Vec::new();
                }
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text[..i]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break buf[i + 4..i + 4 + len].to_vec();
                    }
                }
            };
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            if n > 0 {
                got.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
            }
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    let hook_state = dir.path().join("hook.pos");
    let webhook = |state: &std::path::Path| {
        cli(
            dir.path(),
            &[
                "activity",
                "export",
                "--webhook",
                &hook_url,
                "--state",
                state.to_str().unwrap(),
                "--action",
                "kms.secrets.wrap",
            ],
        )
    };
    let (ok, _, err) = webhook(&hook_state);
    assert!(!ok && err.contains("500"), "{err}");
    assert!(!hook_state.exists(), "nothing counted as delivered");
    let (ok, _, err) = webhook(&hook_state);
    assert!(ok, "{err}");
    let batches = received.lock().unwrap().clone();
    let sent: Vec<&Value> = batches
        .iter()
        .flat_map(|b| b["events"].as_array().unwrap())
        .collect();
    assert_eq!(sent.len(), 4, "{batches:?}");
    assert!(sent.iter().all(|e| e["action"] == "kms.secrets.wrap"));

    for bad in [
        "?limit=0",
        "?limit=1001",
        "?after=-1",
        "?outcome=Bad!",
        "?from=yesterday",
    ] {
        let r = a
            .call("GET", &format!("/api/v2/activity_events{bad}"), None)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "INVALID_QUERY_PARAM_ERR"),
            "{bad}: {:?}",
            r.body
        );
    }
}

/// Zones: a node's units carry its zone; several operational units on one node (one zone,
/// failing together) need --allow-same-zone; `/ready?instance=` tells a load balancer
/// whether this node can serve an instance.
#[tokio::test]
async fn zones_are_shown_and_one_node_does_not_pose_as_several() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--zone", "zone-a", "--region", "eu-1"]);
    let (status, _, err) = cli_status(dir.path(), &["instance", "create", "twin", "--units", "2"]);
    assert_eq!(status, Some(3), "the server refuses: {err}");
    assert!(
        err.contains("one zone (zone-a)") && err.contains("add-unit"),
        "{err}"
    );
    let (ok, out, _) = cli(dir.path(), &["instance", "list"]);
    assert!(ok && !out.contains("twin"), "nothing was created: {out}");
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "instance",
            "create",
            "twin",
            "--units",
            "2",
            "--allow-same-zone",
            "--output",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let twin: Value = serde_json::from_str(&out).unwrap();
    let api = s.client();
    let units = api.call("GET", "/api/v2/crypto_units", None).await;
    assert_eq!(
        (units.body["zone"].as_str(), units.body["region"].as_str()),
        (Some("zone-a"), Some("eu-1"))
    );
    let base = s.url.clone();
    let ready = |q: String| {
        let url = format!("{base}/ready{q}");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(
        ready(format!("?instance={}", api.instance)).await,
        200,
        "the dev instance is served"
    );
    assert_eq!(
        ready(format!("?instance={}", twin["id"].as_str().unwrap())).await,
        503,
        "units in imprint mode serve nothing yet"
    );
    assert_eq!(ready("?instance=nope".into()).await, 400);
    let (status, _, err) = cli_status(dir.path(), &["serve", "--dev", "--zone", "Zone A"]);
    assert_eq!(status, Some(2), "{err}");
}

/// An admin request to `s`'s admin listener: status and JSON body.
async fn admin_call(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", s.admin_url))
        .header("authorization", format!("Bearer {}", s.admin_token));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn units_of_an_instance_are_placed_apart_across_nodes() {
    let db = fresh_postgres_db("sr_zones").await;
    let dir_a = tempfile::tempdir().unwrap();
    let a = Server::start_with(
        dir_a.path(),
        &[
            "--keystore-url",
            &db,
            "--zone",
            "zone-a",
            "--region",
            "eu-1",
        ],
    );
    let dir_b = tempfile::tempdir().unwrap();
    copy_node_files(dir_a.path(), dir_b.path());
    let b = Server::start_with(
        dir_b.path(),
        &[
            "--keystore-url",
            &db,
            "--zone",
            "zone-b",
            "--region",
            "eu-2",
        ],
    );
    use reqwest::Method;

    step("an instance created on node A has its operational unit in zone-a");
    let (st, inst) = admin_call(
        &a,
        Method::POST,
        "/admin/v1/instances",
        Some(json!({"name": "zoned", "recovery_units": 0})),
    )
    .await;
    assert_eq!(st, 201, "{inst}");
    let id = inst["id"].as_str().unwrap().to_string();
    let units = format!("/admin/v1/instances/{id}/units");
    let (_, p) = admin_call(&b, Method::GET, &units, None).await;
    assert_eq!(p["units"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["units"][0]["zone"], "zone-a");
    let advice = p["advice"].to_string();
    assert!(
        advice.contains("another zone") && advice.contains("0 of the 2"),
        "{advice}"
    );

    step("node B adds one in zone-b; node A is refused a second one in zone-a");
    let (st, body) = admin_call(
        &b,
        Method::POST,
        &units,
        Some(json!({"kind": "operational"})),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = admin_call(
        &a,
        Method::POST,
        &units,
        Some(json!({"kind": "operational"})),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body.to_string().contains("already in zone zone-a"),
        "{body}"
    );
    let (_, p) = admin_call(&a, Method::GET, &units, None).await;
    assert_eq!(
        p["units"].as_array().unwrap().len(),
        2,
        "the refusal created nothing: {p}"
    );

    step("recovery units: the first in this region, the second in the other region");
    let (st, _) = admin_call(&a, Method::POST, &units, Some(json!({"kind": "recovery"}))).await;
    assert_eq!(st, 201);
    let (st, body) = admin_call(&a, Method::POST, &units, Some(json!({"kind": "recovery"}))).await;
    assert_eq!(
        st, 400,
        "a second recovery unit in eu-1 while eu-2 exists: {body}"
    );
    assert!(
        body.to_string().contains("add it on a node in eu-2"),
        "{body}"
    );
    let (st, body) = admin_call(
        &a,
        Method::POST,
        "/admin/v1/instances",
        Some(json!({"name": "two-here", "recovery_units": 2})),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    let (_, list) = admin_call(&a, Method::GET, "/admin/v1/instances", None).await;
    assert!(
        !list.to_string().contains("two-here"),
        "the refusal created nothing: {list}"
    );
    let (_, p) = admin_call(&a, Method::GET, &units, None).await;
    let advice = p["advice"].to_string();
    assert!(
        advice.contains("1 of the 2") && advice.contains("region eu-2"),
        "{advice}"
    );
    let (st, _) = admin_call(&b, Method::POST, &units, Some(json!({"kind": "recovery"}))).await;
    assert_eq!(st, 201);

    step("the CLI lists the units with their zones, and nothing is left to do");
    let (ok, out, err) = cli(
        dir_b.path(),
        &[
            "instance",
            "units",
            &id,
            "--admin-url",
            &b.admin_url,
            "--admin-token",
            &b.admin_token,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.matches("zone zone-a").count(), 2, "{out}");
    assert_eq!(out.matches("zone zone-b").count(), 2, "{out}");
    assert!(!out.contains("next:"), "{out}");

    step("instance create makes the first recovery unit here and says where the second goes");
    let (ok, out, err) = cli(
        dir_a.path(),
        &[
            "instance",
            "create",
            "by-cli",
            "--admin-url",
            &a.admin_url,
            "--admin-token",
            &a.admin_token,
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("next: it has 1 of the 2 recovery units") && out.contains("region eu-2"),
        "{out}"
    );

    step("units placed before placements were kept are placed again at start-up, where the node is now");
    let mut b = b;
    b.terminate();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    sqlx::query("DELETE FROM placements WHERE zone = 'zone-b'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let b = Server::start_with(
        dir_b.path(),
        &[
            "--keystore-url",
            &db,
            "--zone",
            "zone-c",
            "--region",
            "eu-2",
        ],
    );
    let (_, p) = admin_call(&b, Method::GET, &units, None).await;
    let zones: Vec<&str> = p["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones.len(), 4, "{p}");
    assert_eq!(zones.iter().filter(|z| **z == "zone-c").count(), 2, "{p}");
}

/// A server without Strongroom's import token extension (IBM's Key Protect) ignores
/// `transportKeyAlgorithm` and hands out an RSA token: `key import --secure` refuses rather
/// than downgrade, and sends no key.
#[test]
fn cli_secure_import_refuses_a_downgrade_to_rsa() {
    use base64::Engine as _;
    use std::io::{BufRead, BufReader, Read, Write};
    use strongroom_engine::CryptoProvider as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (_, spki) = strongroom_crypto_awslc::AwsLcProvider
        .rsa_generate(2048)
        .unwrap();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64(&spki)
    );
    let token = json!({"creationDate": "2026-12-04T00:00:00Z", "maxAllowedRetrievals": 1,
        "remainingRetrievals": 0, "payload": b64(pem.as_bytes()), "nonce": b64(&[7; 12])});
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let target = line
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                let answer = match target.as_str() {
                    "POST /api/v2/import_token" | "GET /api/v2/import_token" => token.to_string(),
                    _ => "{}".to_string(),
                };
                log.lock().unwrap().push(target);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
                    answer.len(),
                    answer
                );
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("root.key");
    std::fs::write(&file, [9u8; 32]).unwrap();
    let (ok, _, err) = cli(
        dir.path(),
        &[
            "key",
            "import",
            "pq",
            "--secure",
            file.to_str().unwrap(),
            "--url",
            &url,
            "--token",
            "t",
            "--instance",
            "00000000-0000-4000-8000-000000000001",
        ],
    );
    assert!(
        !ok && err.contains("import token is RSA_4096, not ML_KEM_1024")
            && err.contains("--transport rsa-4096"),
        "{err}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        ["POST /api/v2/import_token", "GET /api/v2/import_token"],
        "the CLI stopped before sending any key"
    );
}
