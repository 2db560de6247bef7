//! The key part ceremony, and refusals that change nothing.

use super::*;

#[tokio::test]
async fn key_part_ceremony_with_refusals_that_change_nothing() {
    let mut c = Ceremony::new("2", "0");
    let api = c.api().await;

    step("Until the units hold a master key, key operations fail clearly.");
    let r = api
        .create_key(json!({"name": "early", "extractable": false}))
        .await;
    r.assert_refused(503, "CRYPTO_UNIT_NOT_INITIALIZED_ERR");

    step("--plan shows the signatures and changes nothing.");
    let before = c.units();
    let out = c.ok(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
        "--plan",
    ]);
    assert!(out.contains("set_thresholds — 2 signature(s)"), "{out}");
    assert_eq!(c.units(), before);

    c.init_with_parts();
    let units = c.units();
    assert_eq!(units.len(), 2);
    let vp = units[0]["current"]["vp"].as_str().unwrap().to_string();
    assert_eq!(units[1]["current"]["vp"].as_str().unwrap(), vp);
    assert_eq!(
        (
            units[0]["signature_threshold"].as_u64(),
            units[0]["revocation_threshold"].as_u64()
        ),
        (Some(2), Some(1))
    );

    step("Keys work now.");
    let k = api.create_root("payments").await;
    let (_, ct, dek) = api.wrap(&k).await;

    let alice = read_sigkey(&c.ws.join("alice.sigkey"), "alice-password-1");
    let bob = read_sigkey(&c.ws.join("bob.sigkey"), "bob-password-22");
    let id0 = units[0]["unit"].as_str().unwrap().to_string();

    step("A command with too few signatures: clear the current register needs 1, a commit 2.");
    let u = unit_status(&api, &id0).await;
    let (r, _) = raw_command(
        &api,
        &u,
        Cmd::SetThresholds { sign: 1, revoke: 1 },
        &[&alice],
        1,
    )
    .await;
    r.assert_refused(403, "CRYPTO_UNIT_SIGNATURES_ERR");
    assert!(r.body["resources"][0]["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .contains("needs 2 administrator signature(s); 1 given"));
    assert_eq!(unit_status(&api, &id0).await, u, "no state change");

    step("A commit naming the wrong verification pattern (the server checks, not only the CLI).");
    let (r, _) = raw_command(
        &api,
        &u,
        Cmd::Commit {
            vp: "00".repeat(32),
        },
        &[&alice, &bob],
        1,
    )
    .await;
    r.assert_refused(409, "CRYPTO_UNIT_STATE_ERR");
    assert_eq!(unit_status(&api, &id0).await, u);
    c.fails(
        &["cryptounit-mk-commit", "--vp", &"11".repeat(32)],
        "the new register is empty",
    );

    step("A replayed command: accepted once, refused the second time.");
    let (r, signed) = raw_command(&api, &u, Cmd::GenImporter, &[&alice], 1).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let after = unit_status(&api, &id0).await;
    let replay = api
        .call(
            "POST",
            &format!("/api/v2/crypto_units/{id0}/commands"),
            Some(signed),
        )
        .await;
    replay.assert_refused(409, "CRYPTO_UNIT_REPLAY_ERR");
    assert_eq!(unit_status(&api, &id0).await, after);
    step("A stale counter from the past, too.");
    let (r, _) = raw_command(&api, &after, Cmd::GenImporter, &[&alice], 0).await;
    assert_eq!(r.code(), "CRYPTO_UNIT_REPLAY_ERR");

    step("A signature from a removed administrator.");
    c.ok(&["sigkey-add", "--name", "carol", "--kdf-memory-mib", "64"]);
    c.ok(&["cryptounit-admin-add", "carol"]);
    let carol = read_sigkey(&c.ws.join("carol.sigkey"), "carol-password-333");
    let u = unit_status(&api, &id0).await;
    let (r, _) = raw_command(&api, &u, Cmd::GenImporter, &[&carol], 1).await;
    assert_eq!(
        r.status, 200,
        "carol may sign while installed: {:?}",
        r.body
    );
    c.ok(&["cryptounit-admin-rm", "carol"]);
    let u = unit_status(&api, &id0).await;
    assert_eq!(u["admins"].as_array().unwrap().len(), 2);
    let (r, _) = raw_command(&api, &u, Cmd::GenImporter, &[&carol], 1).await;
    r.assert_refused(403, "CRYPTO_UNIT_SIGNATURES_ERR");
    assert!(r.body["resources"][0]["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .contains("is not an administrator"));
    assert_eq!(unit_status(&api, &id0).await, u);

    step("A key part file with the wrong password; a tampered key part file.");
    let before = c.units();
    std::fs::write(
        &c.pw,
        PASSWORDS.replace("part-two-password", "not-the-password"),
    )
    .unwrap();
    c.fails(
        &["cryptounit-mk-load", "part1", "part2"],
        "wrong password, or the file was altered",
    );
    std::fs::write(&c.pw, PASSWORDS).unwrap();
    let part2 = c.ws.join("part2.mkpart");
    let original = std::fs::read_to_string(&part2).unwrap();
    std::fs::write(
        &part2,
        original.replace("\"name\": \"part2\"", "\"name\": \"part9\""),
    )
    .unwrap();
    c.fails(
        &["cryptounit-mk-load", "part1", "part2"],
        "wrong password, or the file was altered",
    );
    std::fs::write(&part2, &original).unwrap();
    assert_eq!(strip_ctr(c.units()), strip_ctr(before.clone()));

    step("Loading a master key equal to the current one.");
    c.fails(
        &["cryptounit-mk-load", "part2", "part1"],
        "combine to the current master key",
    );
    let now = c.units();
    assert_eq!(now[0]["new"]["state"], "empty");
    assert_eq!(now[0]["current"]["vp"], before[0]["current"]["vp"]);

    step("Wrong signature key password.");
    std::fs::write(
        &c.pw,
        PASSWORDS.replace("bob-password-22", "bob-password-23"),
    )
    .unwrap();
    c.fails(&["sigkey-sel", "1", "2"], "wrong password");
    std::fs::write(&c.pw, PASSWORDS).unwrap();

    step("Everything still works and the DEK still unwraps.");
    let r = api.action(&k, "unwrap", json!({"ciphertext": ct})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["plaintext"].as_str().unwrap(), dek);

    step("A restart keeps the units (sealed state files) and the keys working.");
    c.restart(false);
    let api = c.api().await;
    let r = api.action(&k, "unwrap", json!({"ciphertext": ct})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(c.units()[0]["current"]["vp"].as_str().unwrap(), vp);
}
