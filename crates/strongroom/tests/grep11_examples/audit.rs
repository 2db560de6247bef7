//! The audit records GREP11 calls leave.

use super::*;

/// Every GREP11 call leaves an audit record (action and outcome, never key material or
/// data), refused calls included; records nobody waits for land within moments while the
/// server runs, and the chain verifies.
#[tokio::test]
async fn grep11_calls_are_audited_without_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    let key = g
        .gen_key(ckm::AES_KEY_GEN, &aes_template(32))
        .await
        .key_bytes;
    let plain = b"plaintext that must never reach the audit log".to_vec();
    let encrypt = |g: &G, key: &[u8]| {
        g.r(pb::EncryptSingleRequest {
            mech: mb(ckm::AES_CBC_PAD, &[7; 16]),
            key: kb(key),
            plain: plain.clone(),
            ..Default::default()
        })
    };
    let r = encrypt(&g, &key);
    g.c.encrypt_single(r).await.unwrap();
    let mut tampered = key.clone();
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    let r = encrypt(&g, &tampered);
    assert_ne!(ckr_of(g.c.encrypt_single(r).await), Ckr(0));

    let db = dir.path().join("keystore-audit.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let mut rows: Vec<(String, String, Option<String>, String)> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as(
            "SELECT action, outcome, key, principal FROM audit WHERE action LIKE 'ep11.%' ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pool.close().await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("ep11.generate_key", "success")
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("ep11.encrypt", "success")
    );
    assert_eq!(rows[2].0, "ep11.encrypt");
    assert_ne!(
        rows[2].1, "success",
        "a refused call is recorded as refused"
    );
    for (_, _, key_column, principal) in &rows {
        assert_eq!(
            key_column, &None,
            "GREP11 keys live in blobs, not in the log"
        );
        assert_eq!(principal, "dev");
    }
    step("Graceful shutdown, with this runtime free to answer the server's GOAWAY and PING.");
    let stopped = tokio::task::spawn_blocking(move || s.terminate());
    assert!(stopped.await.unwrap().success());
    drop(g);
    step("Neither the data nor any part of the key blob is anywhere in the audit files.");
    let mut files = Vec::new();
    for f in ["keystore-audit.db", "keystore-audit.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(f)) {
            files.extend(b);
        }
    }
    assert!(!files.is_empty());
    assert!(!files.windows(plain.len()).any(|w| w == plain.as_slice()));
    assert!(!files.windows(16).any(|w| key.windows(16).any(|k| k == w)));
    let out = std::process::Command::new(bin())
        .args(["audit", "verify", "--output", "json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["problem"].is_null(), "{v}");
    assert!(v["records"].as_u64().unwrap() >= 3, "{v}");
}
