//! Rotating the master key under load, and resuming after kill -9.

use super::*;

#[tokio::test]
async fn rotation_of_10000_keys_keeps_serving_and_resumes_after_kill_9() {
    let mut c = Ceremony::new("2", "0");
    c.init_with_parts();
    let api = c.api().await;
    let keys = futures_join(&api, 10_000).await;
    let keys = Arc::new(keys);
    let mut deks = Vec::new();
    for k in keys.iter().step_by(50) {
        deks.push(api.wrap(k).await);
    }
    let deks = Arc::new(deks);

    step("A client keeps wrapping and unwrapping while the master key rotates.");
    let load = Load::start(&api, keys.clone(), deks.clone());
    c.ok(&[
        "mk-add",
        "--random",
        "--description",
        "part3",
        "--kdf-memory-mib",
        "64",
    ]);
    c.ok(&["cryptounit-mk-load", "part1", "part3"]);
    c.ok(&["cryptounit-mk-commit"]);
    let before_rotation = load.done();
    let (ws, pw, url, inst, ak) = (
        c.ws.clone(),
        c.pw.clone(),
        c.server.url.clone(),
        c.instance.clone(),
        c.apikey.clone(),
    );
    let rotate = tokio::task::spawn_blocking(move || {
        run(
            &["tke", "cryptounit-mk-rotate", "--batch", "500"],
            &[
                ("STRONGROOM_URL", &url),
                ("STRONGROOM_INSTANCE", &inst),
                ("STRONGROOM_API_KEY", &ak),
                ("STRONGROOM_TKE_FILES", ws.to_str().unwrap()),
                ("STRONGROOM_TKE_PASSWORDS", pw.to_str().unwrap()),
            ],
        )
    })
    .await
    .unwrap();
    assert!(rotate.0, "rotation failed: {}", rotate.2);
    assert!(
        rotate
            .2
            .contains("key storage re-encrypted (10000 key version(s))"),
        "{}",
        rotate.2
    );
    let during = load.done() - before_rotation;
    load.stop_without_failures().await;
    assert!(during > 0, "the client made requests during the rotation");
    let units = c.units();
    let vp2 = units[0]["current"]["vp"].as_str().unwrap().to_string();
    assert!(units.iter().all(|u| u["current"]["vp"] == vp2.as_str()
        && u["new"]["state"] == "empty"
        && u["rotating"] == false));
    assert_unwraps(&api, &deks).await;

    step("Second rotation, killed with SIGKILL in the middle of the re-encryption.");
    c.ok(&[
        "mk-add",
        "--random",
        "--description",
        "part4",
        "--kdf-memory-mib",
        "64",
    ]);
    c.ok(&["cryptounit-mk-load", "part3", "part4"]);
    c.ok(&["cryptounit-mk-commit"]);
    let alice = read_sigkey(&c.ws.join("alice.sigkey"), "alice-password-1");
    let vp3 = c.units()[0]["new"]["vp"].as_str().unwrap().to_string();
    for u in c.units() {
        let (r, _) = raw_command(
            &api,
            &u,
            Cmd::BeginRotation { vp: vp3.clone() },
            &[&alice],
            1,
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let r = api
        .call("POST", "/api/v2/crypto_units/reencrypt?batch=1000", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["rewrapped"].as_u64(), r.body["remaining"].as_u64()),
        (Some(1000), Some(9000))
    );
    step("Keys sealed under either master key serve while the rotation is half done.");
    assert_unwraps(&api, &deks[..40]).await;
    let in_flight = {
        let api = api.clone();
        tokio::spawn(async move {
            api.http
                .post(format!(
                    "{}/api/v2/crypto_units/reencrypt?batch=5000",
                    api.url
                ))
                .header("authorization", format!("Bearer {}", api.token))
                .header("bluemix-instance", &api.instance)
                .send()
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    c.restart(true);
    let _ = in_flight.await;
    let api = c.api().await;
    let units = c.units();
    assert!(
        units
            .iter()
            .all(|u| u["rotating"] == true && u["new"]["state"] == "full_committed"),
        "the crash left the rotation unfinished: {units:?}"
    );
    step("Finalize is refused while blobs remain under the old key.");
    c.fails(
        &["cryptounit-mk-setimm", "--yes"],
        "still sealed under another master key",
    );
    let out = c.tke(&["cryptounit-mk-rotate", "--batch", "700"]);
    assert!(out.0, "resume failed: {}", out.2);
    assert!(
        out.1.contains(&format!("current master key {vp3}")),
        "{}",
        out.1
    );
    assert_unwraps(&api, &deks).await;
    for k in keys.iter().step_by(997) {
        api.wrap(k).await;
    }
}
