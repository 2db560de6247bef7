//! A backup restores into a new node that gets the key parts.

use super::*;

/// Disaster recovery (issue 6's acceptance, with the ceremony): an instance with 10,000 keys
/// is backed up, its node is wiped, the archive is restored into a new node, a new unit there
/// gets the master key from the key part files, and every key unwraps its DEK.
#[tokio::test]
async fn a_backup_restores_into_a_new_node_with_the_key_parts() {
    let mut c = Ceremony::new("1", "0");
    c.init_with_parts();
    let api = c.api().await;
    let keys = futures_join(&api, 10_000).await;
    let deks = wrap_each(&api, &keys).await;
    let backups = tempfile::tempdir().unwrap();
    let data = c._dir.path().to_str().unwrap().to_string();
    let (ok, out, err) = run(
        &[
            "backup",
            "create",
            "--dir",
            backups.path().to_str().unwrap(),
            "--data-dir",
            &data,
            "--output",
            "json",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    assert!(made["keys"].as_u64().unwrap() >= 10_000, "{made}");
    let file = made["file"].as_str().unwrap().to_string();

    step("The custodians' workstation survives; the node does not.");
    let safe = tempfile::tempdir().unwrap();
    let ws = safe.path().join("tke");
    std::fs::create_dir_all(&ws).unwrap();
    for e in std::fs::read_dir(&c.ws).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), ws.join(e.file_name())).unwrap();
    }
    c.server.kill9();
    for e in std::fs::read_dir(c._dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }

    let fresh = tempfile::tempdir().unwrap();
    let fdata = fresh.path().to_str().unwrap().to_string();
    let (ok, _, err) = run(&["backup", "restore", &file, "--data-dir", &fdata], &[]);
    assert!(ok, "{err}");
    let s = Server::start(fresh.path());
    let (ok, _, err) = run(
        &[
            "instance",
            "add-unit",
            &c.instance,
            "--url",
            &s.url,
            "--data-dir",
            &fdata,
        ],
        &[],
    );
    assert!(ok, "{err}");
    let pw = safe.path().join("passwords");
    std::fs::write(&pw, PASSWORDS).unwrap();
    step("Until the unit holds the master key, the restored keys do not serve.");
    let restored = Ceremony {
        server: s,
        _dir: fresh,
        ws,
        pw,
        instance: c.instance.clone(),
        apikey: c.apikey.clone(),
    };
    let api2 = restored.api().await;
    let r = api2
        .call(
            "POST",
            &format!("/api/v2/keys/{}/actions/wrap", keys[0]),
            Some(json!({})),
        )
        .await;
    r.assert_refused(503, "CRYPTO_UNIT_NOT_INITIALIZED_ERR");
    restored.ok(&["cryptounit-add", "--all"]);
    restored.admins_alice_and_bob();
    restored.ok(&["cryptounit-mk-load", "part1", "part2"]);
    restored.ok(&["cryptounit-mk-commit"]);
    restored.ok(&["cryptounit-mk-setimm", "--yes"]);
    assert_unwraps_all(&api2, deks).await;
}
