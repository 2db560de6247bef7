//! Operations: TLS outside dev mode, graceful shutdown, audit verification and tamper
//! detection, instance administration through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
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
        api.call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/wrap"),
            Some(json!({})),
        )
        .await;
    }
    api.call("GET", "/api/v2/keys/missing-key", None).await;
    let status = s.terminate();
    assert!(status.success(), "graceful shutdown exits 0");

    let (ok, out, _) = cli(dir.path(), &["audit", "verify", "--output", "json"]);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["records"].as_u64().unwrap(),
        7,
        "create, 5 wraps and one denied read"
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
    let (ok, out, err) = cli(dir.path(), &["audit", "verify"]);
    assert!(!ok);
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
    let (ok, out, _) = run(&[
        "wrap",
        "payments-root",
        "--aad",
        "order-1",
        "--output",
        "json",
    ]);
    assert!(ok);
    let w: Value = serde_json::from_str(&out).unwrap();
    let (ok, out, _) = run(&[
        "unwrap",
        "payments-root",
        "--ciphertext",
        w["ciphertext"].as_str().unwrap(),
        "--aad",
        "order-1",
        "--output",
        "json",
    ]);
    assert!(ok);
    let u: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u["plaintext"], w["plaintext"]);
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
async fn cli_secure_import_sends_no_material_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let material = [0x5au8; 32];
    let file = dir.path().join("root.key");
    std::fs::write(&file, material).unwrap();
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "key",
            "import",
            "byok",
            "--secure",
            file.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let k: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (k["imported"].as_bool(), k["extractable"].as_bool()),
        (Some(true), Some(false))
    );
    // The key holds exactly that material: a WDEK made by the server opens with it.
    let api = s.client();
    let id = k["id"].as_str().unwrap();
    let w = api
        .call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/wrap"),
            Some(json!({"plaintext": "ZGVr"})),
        )
        .await;
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
        let w = api
            .call(
                "POST",
                &format!("/api/v2/keys/{id}/actions/wrap"),
                Some(json!({})),
            )
            .await;
        wraps.push((
            id,
            w.body["ciphertext"].as_str().unwrap().to_string(),
            w.body["plaintext"].as_str().unwrap().to_string(),
        ));
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
        let r = api2
            .call(
                "POST",
                &format!("/api/v2/keys/{id}/actions/unwrap"),
                Some(json!({"ciphertext": ct})),
            )
            .await;
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
        api.call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/wrap"),
            Some(json!({})),
        )
        .await;
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
        if calls >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(calls, 6, "create, 4 wraps, 1 refused read");
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

    let text = reqwest::get(format!("{}/metrics", api.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let api = s.client();
    let id = api.create_root("s3-backed").await;
    let w = api
        .call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/wrap"),
            Some(json!({})),
        )
        .await;
    let (ct, pt) = (
        w.body["ciphertext"].as_str().unwrap().to_string(),
        w.body["plaintext"].as_str().unwrap().to_string(),
    );
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
        .call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/unwrap"),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["plaintext"].as_str()),
        (200, Some(pt.as_str())),
        "{:?}",
        r.body
    );
}
