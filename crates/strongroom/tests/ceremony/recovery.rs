//! Recovery units: initialisation, recovery, and export only to the roster.

use super::*;

#[tokio::test]
async fn recovery_unit_initialises_recovers_and_exports_only_to_the_roster() {
    let c = Ceremony::new("2", "1");
    let api = c.api().await;
    step("auto-init refuses an impossible threshold before touching anything.");
    c.fails(
        &[
            "auto-init",
            "--signature-threshold",
            "3",
            "--revocation-threshold",
            "1",
        ],
        "need at least 3 administrators",
    );
    let out = c.ok(&[
        "auto-init",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
        "--plan",
    ]);
    assert!(
        out.contains("gen_random") && out.contains("export (current)"),
        "{out}"
    );
    assert!(c.units().iter().all(|u| u["mode"] == "imprint"));

    c.ok(&[
        "auto-init",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
    ]);
    let out = c.ok(&["cryptounit-compare"]);
    assert!(out.contains("3 selected units are identical"), "{out}");
    let units = c.units();
    let vp = units[0]["current"]["vp"].as_str().unwrap().to_string();
    assert!(units
        .iter()
        .all(|u| u["current"]["vp"] == vp.as_str() && u["roster"].as_array().unwrap().len() == 3));

    let keys: Vec<String> = futures_join(&api, 5).await;
    let mut deks = Vec::new();
    for k in &keys {
        deks.push(api.wrap(k).await);
    }

    step("Zeroize one operational unit; the other keeps serving.");
    let op: Vec<&Value> = units
        .iter()
        .filter(|u| u["kind"] == "operational")
        .collect();
    let z = op[0]["unit"].as_str().unwrap().to_string();
    let others: Vec<String> = units
        .iter()
        .map(|u| u["unit"].as_str().unwrap().to_string())
        .filter(|u| *u != z)
        .collect();
    c.ok(&["cryptounit-rm", &others[0], &others[1]]);
    step("Zeroize is refused while the keystore holds keys, says what happens to them, and changes nothing; --force goes on.");
    let err = c.fails(&["cryptounit-zeroize", "--yes"], "holds 5 key(s)");
    assert!(
        err.contains("another unit of the instance still holds that master key")
            && err.contains("--force"),
        "{err}"
    );
    let still = unit_status(&api, &z).await;
    assert_eq!(
        (still["mode"].as_str(), still["current"]["vp"].as_str()),
        (Some("secured"), Some(vp.as_str())),
        "the refused zeroize changed nothing"
    );
    c.fails(&["cryptounit-zeroize", "--force"], "pass --yes");
    c.ok(&["cryptounit-zeroize", "--yes", "--force"]);
    let zs = unit_status(&api, &z).await;
    assert_eq!(
        (
            zs["mode"].as_str(),
            zs["current"]["state"].as_str(),
            zs["admins"].as_array().unwrap().len()
        ),
        (Some("imprint"), Some("empty"), 0)
    );
    assert_unwraps(&api, &deks).await;

    step("auto-mk-recover puts the master key back into the zeroized unit.");
    c.ok(&["cryptounit-add", "--all"]);
    let out = c.ok(&["auto-mk-recover"]);
    assert!(out.contains(&format!("master key {vp} recovered")), "{out}");
    assert!(c.ok(&["cryptounit-compare"]).contains("identical"));

    step("A unit that is not on the roster gets nothing from the recovery unit.");
    let (ok, out, err) = run(
        &[
            "instance",
            "add-unit",
            &c.instance,
            "--kind",
            "operational",
            "--url",
            &c.server.url,
            "--data-dir",
            c._dir.path().to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let newcomer = serde_json::from_str::<Value>(&out).unwrap()["unit"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["cryptounit-rm", &others[0], &others[1], &z]);
    c.ok(&["cryptounit-add", &newcomer]);
    c.admins_alice_and_bob();
    let recovery = units.iter().find(|u| u["kind"] == "recovery").unwrap()["unit"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["cryptounit-add", &recovery]);
    let rec_before = unit_status(&api, &recovery).await;
    c.fails(&["auto-mk-recover"], "CRYPTO_UNIT_ROSTER_ERR");
    let rec_after = unit_status(&api, &recovery).await;
    assert_eq!(
        rec_after, rec_before,
        "the refused export changed nothing on the recovery unit"
    );
    step("Once the administrators put it on the roster, it can receive the key.");
    c.ok(&["cryptounit-add", "--all"]);
    c.ok(&["cryptounit-roster-set"]);
    c.ok(&["auto-mk-recover"]);
    assert!(c
        .ok(&["cryptounit-compare"])
        .contains("4 selected units are identical"));

    step("auto-mk-rotate: a random master key made inside the recovery unit reaches every unit, the keystore is re-encrypted under it, and every DEK still unwraps.");
    let out = c.ok(&["auto-mk-rotate"]);
    let after = c.units();
    let new_vp = after[0]["current"]["vp"].as_str().unwrap().to_string();
    assert_ne!(new_vp, vp, "the current master key changed: {out}");
    assert!(
        after
            .iter()
            .all(|u| u["current"]["vp"] == new_vp.as_str() && u["new"]["state"] == "empty"),
        "every unit holds the new key as current and an empty new register: {after:?}"
    );
    assert!(c
        .ok(&["cryptounit-compare"])
        .contains("4 selected units are identical"));
    assert_unwraps(&api, &deks).await;
    let created = api.create_root("after-auto-rotate").await;
    api.wrap(&created).await;
}
