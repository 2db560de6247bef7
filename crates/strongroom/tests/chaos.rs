//! Faults no user reports until it is too late, made on purpose: here, the disk filling up
//! under SQLite. The server runs on a 3 MiB filesystem (a tmpfs mounted in a user and mount
//! namespace the test creates, so no privilege is needed and nothing outside sees it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Inside the namespace: mount the small filesystem, keep 1 MiB of it in a filler file,
/// serve from it, hand dev.json out, free the filler on request, and at the end stop the
/// server and read the keystore back (a backup archive and the audit chain's verification,
/// written outside).
const SCRIPT: &str = r#"
set -eu
mount -t tmpfs -o size=3m tmpfs "$MNT"
head -c 1048576 /dev/zero > "$MNT/filler"
"$BIN" serve --dev --data-dir "$MNT/d" --http-addr 127.0.0.1:0 --kmip-addr off \
  --admin-addr off 2>"$OUT/server.log" &
pid=$!
until [ -s "$MNT/d/dev.json" ]; do sleep 0.05; done
cp "$MNT/d/dev.json" "$OUT/dev.json"
until [ -e "$OUT/free" ]; do sleep 0.05; done
rm "$MNT/filler"
touch "$OUT/freed"
until [ -e "$OUT/stop" ]; do sleep 0.05; done
kill -TERM "$pid"
wait "$pid" || true
"$BIN" backup create --dir "$OUT/backup" --data-dir "$MNT/d" --output json > "$OUT/backup.json"
"$BIN" audit verify --data-dir "$MNT/d" --output json > "$OUT/audit.json"
touch "$OUT/done"
"#;

fn wait_for(p: &Path, child: &mut Child) {
    let start = Instant::now();
    while !p.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the namespace script exited ({status}) before {}",
                p.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_sqlite_answers_503_and_loses_nothing() {
    let out = tempfile::tempdir().unwrap();
    let mnt = out.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", SCRIPT])
        .env("MNT", &mnt)
        .env("OUT", out.path())
        .env("BIN", bin())
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) runs the server in its own mount namespace");
    wait_for(&out.path().join("dev.json"), &mut child);
    let dev: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("dev.json")).unwrap())
            .unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        url: dev["rest_url"].as_str().unwrap().to_string(),
        admin_url: String::new(),
        instance: dev["instance_id"].as_str().unwrap().to_string(),
        token: dev["token"].as_str().unwrap().to_string(),
    };
    let description = "x".repeat(230);
    let create = |n: usize| {
        let api = api.clone();
        let body = key_body(json!({"name": format!("k{n}"), "description": description}));
        async move { api.call("POST", "/api/v2/keys", Some(body)).await }
    };

    step("Fill the disk: keys are created until the keystore cannot write; then 503.");
    let mut acked = Vec::new();
    let full = loop {
        let r = create(acked.len()).await;
        if r.status != 201 {
            break r;
        }
        acked.push(r.body["resources"][0]["id"].as_str().unwrap().to_string());
        assert!(acked.len() < 5000, "the disk never filled");
    };
    assert!(acked.len() >= 10, "only {} keys fit", acked.len());
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(full.code(), "SERVICE_UNAVAILABLE_ERR");
    for _ in 0..5 {
        let r = create(usize::MAX).await;
        assert_eq!(r.status, 503, "still full: {}", r.body);
    }
    // No answer of the full node is a 500, and none gives a secret away.
    let r = api.call("GET", "/api/v2/keys?limit=5", None).await;
    assert!(matches!(r.status, 200 | 503), "{}", r.status);
    assert!(!r.body.to_string().contains("payload"));

    step("Free the space: the node recovers by itself.");
    std::fs::write(out.path().join("free"), b"").unwrap();
    wait_for(&out.path().join("freed"), &mut child);
    let start = Instant::now();
    let recovered = loop {
        let r = create(1_000_000).await;
        if r.status == 201 {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the node did not recover: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    acked.push(
        recovered.body["resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );

    step("Every acknowledged key is there and works.");
    let mut missing = Vec::new();
    for (i, id) in acked.iter().enumerate() {
        let r = api
            .call("GET", &format!("/api/v2/keys/{id}/metadata"), None)
            .await;
        if r.status != 200 {
            missing.push((i, r.status));
        }
    }
    assert!(
        missing.is_empty(),
        "of {} acknowledged keys, lost: {missing:?}",
        acked.len()
    );
    let r = api
        .call(
            "POST",
            &format!("/api/v2/keys/{}/actions/wrap", acked[0]),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    step("Stopped, the keystore on that disk holds them all, and the audit chain verifies.");
    std::fs::write(out.path().join("stop"), b"").unwrap();
    wait_for(&out.path().join("done"), &mut child);
    assert!(child.wait().unwrap().success());
    let backup: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("backup.json")).unwrap())
            .unwrap();
    // Every acknowledged key is in the keystore on that disk. (A create answered 503 may
    // have committed its key before the audit record failed to: such a key is there too,
    // unacknowledged; a client that retries makes a second key, never loses one.)
    let archive = std::fs::read_to_string(backup["file"].as_str().unwrap()).unwrap();
    let stored: std::collections::HashSet<String> = archive
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "key")
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged keys missing after the restart: {lost:?}"
    );
    assert!(stored.len() >= acked.len());
    let audit: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("audit.json")).unwrap())
            .unwrap();
    assert_eq!(audit["ok"], json!(true), "{audit}");
}
