//! Crash safety: kill -9 in the middle of key creations, rotations and wraps; after a
//! restart every acknowledged key and version is there and every returned DEK unwraps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;

#[derive(Default)]
struct Acked {
    keys: Vec<String>,
    versions: Vec<(String, String)>,
    wraps: Vec<(String, String, String)>, // key, ciphertext, plaintext
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let api = s.client();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let api = api.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let r = api
                    .try_call(
                        "POST",
                        "/api/v2/keys",
                        Some(key_body(
                            json!({"name": format!("k{w}-{n}"), "extractable": false}),
                        )),
                    )
                    .await;
                let Some(r) = r else { return };
                if r.status != 201 {
                    continue;
                }
                let id = r.body["resources"][0]["id"].as_str().unwrap().to_string();
                acked.lock().unwrap().keys.push(id.clone());
                // Each key is rotated once (the once-per-hour rule) and wraps a DEK.
                let Some(r) = api
                    .try_call("POST", &format!("/api/v2/keys/{id}/actions/rotate"), None)
                    .await
                else {
                    return;
                };
                if r.status == 204 {
                    let Some(m) = api
                        .try_call("GET", &format!("/api/v2/keys/{id}/metadata"), None)
                        .await
                    else {
                        return;
                    };
                    if let Some(v) = m.body["resources"][0]["keyVersion"]["id"].as_str() {
                        acked
                            .lock()
                            .unwrap()
                            .versions
                            .push((id.clone(), v.to_string()));
                    }
                }
                let Some(r) = api
                    .try_call(
                        "POST",
                        &format!("/api/v2/keys/{id}/actions/wrap"),
                        Some(json!({})),
                    )
                    .await
                else {
                    return;
                };
                if r.status == 200 {
                    let ct = r.body["ciphertext"].as_str().unwrap().to_string();
                    let pt = r.body["plaintext"].as_str().unwrap().to_string();
                    acked.lock().unwrap().wraps.push((id, ct, pt));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(
        acked.keys.len() > 20,
        "the load made progress before the kill ({} keys)",
        acked.keys.len()
    );

    let s2 = Server::start(dir.path());
    let api = s2.client();
    for id in &acked.keys {
        let r = api
            .call("GET", &format!("/api/v2/keys/{id}/metadata"), None)
            .await;
        assert_eq!(r.status, 200, "acknowledged key {id} survived");
    }
    for (id, v) in &acked.versions {
        let r = api
            .call("GET", &format!("/api/v2/keys/{id}/versions"), None)
            .await;
        let ids: Vec<&str> = r.body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&v.as_str()),
            "acknowledged version {v} of {id} survived"
        );
    }
    for (id, ct, pt) in &acked.wraps {
        let r = api.action(id, "unwrap", json!({"ciphertext": ct})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["plaintext"].as_str(), Some(pt.as_str()));
    }
    eprintln!(
        "kill -9: {} keys, {} rotations, {} wraps acknowledged and intact",
        acked.keys.len(),
        acked.versions.len(),
        acked.wraps.len()
    );
}

trait TryCall {
    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Option<Resp>;
}

impl TryCall for Api {
    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Option<Resp> {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {}", self.token))
            .header("bluemix-instance", &self.instance);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.ok()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.ok()?;
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Some(Resp {
            status,
            body,
            headers,
        })
    }
}

/// The same server on PostgreSQL: keys created before a restart unwrap after it. Needs
/// `STRONGROOM_TEST_POSTGRES_URL` (scripts/test provides it); fails without it.
#[tokio::test]
async fn serves_from_postgresql_across_restarts() {
    let db = fresh_postgres_db("sr_srv").await;
    let dir = tempfile::tempdir().unwrap();
    // A private data directory, as a node's should be (else the node warns about it).
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut s = Server::start_with(dir.path(), &["--keystore-url", &db]);
    let api = s.client();
    let id = api.create_root("on-postgres").await;
    let w = api.action(&id, "wrap", json!({})).await;
    assert_eq!(w.status, 200);
    s.kill9();
    let s2 = Server::start_with(dir.path(), &["--keystore-url", &db]);
    let api = s2.client();
    let u = api
        .action(&id, "unwrap", json!({"ciphertext": w.body["ciphertext"]}))
        .await;
    assert_eq!(u.status, 200, "{:?}", u.body);
    assert_eq!(u.body["plaintext"], w.body["plaintext"]);
    let (ok, out) = {
        let o = std::process::Command::new(bin())
            .args(["audit", "verify", "--keystore-url", &db, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    assert!(ok && out.contains("chain intact"), "{out}");

    // A clean stop logs no warning (the change feed ends with the pool), and a log written
    // to a file carries no terminal colour codes.
    let mut s2 = s2;
    assert!(s2.terminate().success());
    let log = std::fs::read_to_string(
        dir.path()
            .join(format!("server-{}.log", std::process::id())),
    )
    .unwrap();
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escapes in a log file:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains(" WARN ") || l.contains(" ERROR ")),
        "a clean SIGTERM logs no warning:\n{log}"
    );
}

/// Two nodes on one PostgreSQL keystore (the second node holding the same node key and
/// master key, as the ceremony would give it): a key disabled through one node stops
/// wrapping on the other within a second, and enabling it again is seen too.
#[tokio::test]
async fn two_nodes_on_postgresql_see_each_others_changes() {
    let db = fresh_postgres_db("sr_two").await;
    let dir_a = tempfile::tempdir().unwrap();
    let a = Server::start_with(dir_a.path(), &["--keystore-url", &db]);
    let dir_b = tempfile::tempdir().unwrap();
    copy_node_files(dir_a.path(), dir_b.path());
    let b = Server::start_with(dir_b.path(), &["--keystore-url", &db]);
    let (api_a, api_b) = (a.client(), b.client());
    let id = api_a.create_root("shared").await;
    let wrap =
        |api: Api, id: String| async move { api.action(&id, "wrap", json!({})).await.status };
    assert_eq!(
        wrap(api_b.clone(), id.clone()).await,
        200,
        "node B serves a key created on node A"
    );
    assert_eq!(
        api_a
            .call("POST", &format!("/api/v2/keys/{id}/actions/disable"), None)
            .await
            .status,
        204
    );
    let seen = |api: Api, status: u16| {
        let id = id.clone();
        within_a_second(move || {
            let (api, id) = (api.clone(), id.clone());
            async move { wrap(api, id).await == status }
        })
    };
    assert!(
        seen(api_b.clone(), 409).await,
        "node B stopped wrapping with the key disabled on node A within a second"
    );
    api_a.advance(&a.admin_token, 31).await;
    assert_eq!(
        api_a
            .call("POST", &format!("/api/v2/keys/{id}/actions/enable"), None)
            .await
            .status,
        204
    );
    assert!(
        seen(api_b.clone(), 200).await,
        "node B sees the key enabled again"
    );

    // An API key deleted through node A stops its token on node B at once: the keystore
    // announces the change, well before B's recheck (5 s) would find it.
    let (key_id, token) = api_key_and_token(&a, &api_a.instance, &["Writer"]).await;
    let writer = Api {
        token,
        ..api_b.clone()
    };
    assert_eq!(wrap(writer.clone(), id.clone()).await, 200);
    delete_api_key(&a, &api_a.instance, &key_id).await;
    assert!(
        seen(writer, 401).await,
        "node B refused the deleted API key's token within a second"
    );
}

/// Whether `f` comes true within about a second (40 tries, 25 ms apart).
async fn within_a_second<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..40 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// PostgreSQL goes away under a running server: requests fail fast with a retryable 503
/// instead of hanging, and the server recovers by itself when the database is back; nothing
/// acknowledged is lost. Runs its own PostgreSQL (scripts/postgres), so it can stop it.
#[tokio::test]
async fn postgresql_restart_fails_fast_and_recovers() {
    let _ = std::env::var("STRONGROOM_TEST_POSTGRES_URL")
        .expect("STRONGROOM_TEST_POSTGRES_URL is not set: run scripts/test, which installs and starts PostgreSQL");
    let pg = OwnPostgres::start("sr-pg-restart", "127.0.0.1");
    let url = pg.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--keystore-url", &url]);
    let api = s.client();
    let id = api.create_root("before").await;
    let w = api.action(&id, "wrap", json!({})).await;

    pg.run("stop");
    let started = std::time::Instant::now();
    let r = api.create_key(json!({"name": "during"})).await;
    r.assert_refused(503, "SERVICE_UNAVAILABLE_ERR");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "failed fast: {:?}",
        started.elapsed()
    );
    // The GREP11 listener's health service tells a load balancer too.
    assert!(
        await_grpc_health(&s, "grep11.Crypto", 2, 15).await,
        "GREP11 health is NOT_SERVING while the keystore is down: {:?}",
        grpc_health(&s, "grep11.Crypto").await
    );

    pg.run("resume");
    let mut recovered = false;
    for _ in 0..60 {
        let r = api.create_key(json!({"name": "after"})).await;
        if r.status == 201 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        await_grpc_health(&s, "grep11.Crypto", 1, 15).await,
        "GREP11 health is SERVING again once the keystore is back"
    );
    assert!(recovered, "the server recovered by itself");
    let u = api
        .action(&id, "unwrap", json!({"ciphertext": w.body["ciphertext"]}))
        .await;
    assert_eq!(u.body["plaintext"], w.body["plaintext"]);
}

/// Three nodes on one PostgreSQL, each hosting its own crypto unit of an instance initialised
/// by the ceremony (key parts, loaded into the three units at once), under a client load of
/// creations, wraps and unwraps; one node is killed with SIGKILL mid-load and the client moves
/// to the others, then the node is restarted. Nothing acknowledged is lost and every wrapped
/// DEK unwraps on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_a_sigkill_under_load() {
    let db = fresh_postgres_db("sr_three").await;
    // Each node has its own node key and hosts its own crypto unit of the instance; the nodes
    // share the cluster key (tokens, audit chain).
    let cluster = tempfile::tempdir().unwrap();
    let ck = cluster.path().join("cluster.key");
    let ck = ck.to_str().unwrap().to_string();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let args = [
        "--keystore-url",
        db.as_str(),
        "--cluster-key-file",
        ck.as_str(),
    ];
    let mut nodes: Vec<Server> = dirs
        .iter()
        .map(|d| Server::start_with(d.path(), &args))
        .collect();
    let cli = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    let admin = |n: usize, args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&[
            "--url",
            &nodes[n].url,
            "--data-dir",
            dirs[n].path().to_str().unwrap(),
            "--output",
            "json",
        ]);
        cli(&a, &[])
    };
    let instance = admin(
        0,
        &[
            "instance",
            "create",
            "three",
            "--units",
            "1",
            "--recovery-units",
            "0",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin(1, &["instance", "add-unit", &instance]);
    admin(2, &["instance", "add-unit", &instance]);
    let apikey = admin(
        0,
        &[
            "instance", "apikey", "create", &instance, "--role", "Manager",
        ],
    )["apikey"]
        .as_str()
        .unwrap()
        .to_string();
    // The ceremony, from one workstation, over the three nodes.
    let ws = cluster.path().join("tke");
    let pw = cluster.path().join("passwords");
    std::fs::write(
        &pw,
        "admin.sigkey: admin-password-1\np1.mkpart: part-password-1\np2.mkpart: part-password-2\n",
    )
    .unwrap();
    let urls = nodes
        .iter()
        .map(|n| n.url.clone())
        .collect::<Vec<_>>()
        .join(",");
    let env = [
        ("STRONGROOM_URL", urls.as_str()),
        ("STRONGROOM_INSTANCE", instance.as_str()),
        ("STRONGROOM_API_KEY", apikey.as_str()),
        ("STRONGROOM_TKE_FILES", ws.to_str().unwrap()),
        ("STRONGROOM_TKE_PASSWORDS", pw.to_str().unwrap()),
    ];
    for step in [
        &["sigkey-add", "--name", "admin", "--kdf-memory-mib", "64"][..],
        &["sigkey-sel", "1"],
        &["cryptounit-add", "--all"],
        &["cryptounit-admin-add", "admin"],
        &[
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "1",
            "--revocation-threshold",
            "1",
        ],
        &[
            "mk-add",
            "--random",
            "--description",
            "p1",
            "--kdf-memory-mib",
            "64",
        ],
        &[
            "mk-add",
            "--random",
            "--description",
            "p2",
            "--kdf-memory-mib",
            "64",
        ],
        &["cryptounit-mk-load", "p1", "p2"],
        &["cryptounit-mk-commit"],
        &["cryptounit-mk-setimm", "--yes"],
    ] {
        let mut a = vec!["tke"];
        a.extend_from_slice(step);
        cli(&a, &env);
    }
    let out = std::process::Command::new(bin())
        .args(["tke", "cryptounit-compare"])
        .envs(env)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 selected units are identical"));
    let http = reqwest::Client::new();
    let token = exchange_apikey(&nodes[0].url, &apikey).await;
    let api_for = |url: &str| Api {
        http: http.clone(),
        url: url.to_string(),
        admin_url: String::new(),
        instance: instance.clone(),
        token: token.clone(),
    };
    let apis: Vec<Api> = nodes.iter().map(|n| api_for(&n.url)).collect();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..6usize {
        let (apis, acked, failed, stop) =
            (apis.clone(), acked.clone(), failed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                // The client's failover: try the nodes in turn until one answers.
                let mut done = false;
                for attempt in 0..3 {
                    let api = &apis[(n + attempt) % 3];
                    let Some(r) = api
                        .try_call(
                            "POST",
                            "/api/v2/keys",
                            Some(key_body(json!({"name": format!("l{w}-{n}")}))),
                        )
                        .await
                    else {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    };
                    if r.status != 201 {
                        break;
                    }
                    let id = r.body["resources"][0]["id"].as_str().unwrap().to_string();
                    acked.lock().unwrap().keys.push(id.clone());
                    let Some(wr) = api
                        .try_call(
                            "POST",
                            &format!("/api/v2/keys/{id}/actions/wrap"),
                            Some(json!({})),
                        )
                        .await
                    else {
                        break;
                    };
                    if wr.status == 200 {
                        let ct = wr.body["ciphertext"].as_str().unwrap().to_string();
                        let pt = wr.body["plaintext"].as_str().unwrap().to_string();
                        acked.lock().unwrap().wraps.push((id, ct, pt));
                    }
                    done = true;
                    break;
                }
                if !done {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    nodes[1].kill9();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    nodes[1] = Server::start_with(dirs[1].path(), &args);
    let restarted = api_for(&nodes[1].url);
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(
        acked.keys.len() > 30,
        "the load ran ({} keys)",
        acked.keys.len()
    );
    for (i, api) in [apis[0].clone(), restarted, apis[2].clone()]
        .into_iter()
        .enumerate()
    {
        for id in &acked.keys {
            assert_eq!(
                api.call("GET", &format!("/api/v2/keys/{id}/metadata"), None)
                    .await
                    .status,
                200,
                "node {i} has key {id}"
            );
        }
        for (id, ct, pt) in acked.wraps.iter().step_by(3) {
            let r = api.action(id, "unwrap", json!({"ciphertext": ct})).await;
            assert_eq!(
                r.body["plaintext"].as_str(),
                Some(pt.as_str()),
                "node {i} unwraps"
            );
        }
    }
    eprintln!(
        "three nodes: {} keys and {} wraps acknowledged and intact; {} requests refused by the killed node and retried",
        acked.keys.len(),
        acked.wraps.len(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A wrap on `api` of `key`: the ciphertext and the plaintext it wraps.
async fn wrap_on(api: &Api, key: &str) -> (String, String) {
    let (_, ciphertext, plaintext) = api.wrap(key).await;
    (ciphertext, plaintext)
}

/// The plaintext `ciphertext` unwraps to on `api`.
async fn unwrap_on(api: &Api, key: &str, ciphertext: &str) -> String {
    let r = api
        .action(key, "unwrap", json!({"ciphertext": ciphertext}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["plaintext"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_previous_release_and_this_one_serve_one_postgresql_together() {
    let db = fresh_postgres_db("sr_upgrade").await;
    step("a node of the previous release creates the schema and a key");
    let dir_old = tempfile::tempdir().unwrap();
    let old = Server::start_previous(dir_old.path(), &["--keystore-url", &db]);
    let api_old = old.client();
    let k_old = api_old.create_root("made by the previous release").await;
    let (c_old, p_old) = wrap_on(&api_old, &k_old).await;

    step("a node of this release joins: it expands the schema, and both go on serving");
    let dir_new = tempfile::tempdir().unwrap();
    copy_node_files(dir_old.path(), dir_new.path());
    let new = Server::start_with(dir_new.path(), &["--keystore-url", &db]);
    let mut api_new = new.client();
    api_new.instance = old.instance.clone();
    api_new.token = old.token.clone();
    assert_eq!(unwrap_on(&api_new, &k_old, &c_old).await, p_old);
    let k_new = api_new.create_root("made by this release").await;
    let (c_new, p_new) = wrap_on(&api_new, &k_new).await;
    assert_eq!(
        unwrap_on(&api_old, &k_new, &c_new).await,
        p_new,
        "the previous release reads a key this release wrote, in the expanded schema"
    );
    let k_old2 = api_old.create_root("made after the expansion").await;
    let (c2, p2) = wrap_on(&api_old, &k_old2).await;
    assert_eq!(unwrap_on(&api_new, &k_old2, &c2).await, p2);
    let listed = api_new.call("GET", "/api/v2/keys", None).await;
    assert_eq!(
        listed.body["metadata"]["collectionTotal"],
        json!(3),
        "{:?}",
        listed.body
    );
    let listed = api_old.call("GET", "/api/v2/keys", None).await;
    assert_eq!(
        listed.body["metadata"]["collectionTotal"],
        json!(3),
        "{:?}",
        listed.body
    );

    step("a token limited to key rings, issued by this release, is refused by the previous one");
    let r = api_new
        .call("POST", "/api/v2/key_rings/payments", None)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let key = admin_post(
        &new,
        &format!("/admin/v1/instances/{}/api_keys", old.instance),
        json!({"name": "ring app", "roles": ["Manager"], "key_rings": ["payments"]}),
    )
    .await;
    let limited = Api {
        token: exchange_apikey(&new.url, key["apikey"].as_str().unwrap()).await,
        ..api_old.clone()
    };
    let r = limited.action(&k_old, "wrap", json!({})).await;
    assert_eq!(r.status, 401, "never read as instance-wide: {:?}", r.body);
    let on_new = Api {
        url: new.url.clone(),
        ..limited.clone()
    };
    let r = on_new.action(&k_old, "wrap", json!({})).await;
    assert_eq!(
        r.status, 401,
        "outside its ring on this release too: {:?}",
        r.body
    );

    step("the previous release's node is upgraded in turn; the audit chain of both verifies");
    let mut old = old;
    old.terminate();
    let upgraded = Server::start_with(dir_old.path(), &["--keystore-url", &db]);
    let mut api_up = upgraded.client();
    api_up.instance = old.instance.clone();
    api_up.token = old.token.clone();
    assert_eq!(unwrap_on(&api_up, &k_old, &c_old).await, p_old);
    assert_eq!(unwrap_on(&api_up, &k_new, &c_new).await, p_new);
    drop(upgraded);
    drop(new);
    let out = std::process::Command::new(bin())
        .args(["audit", "verify", "--keystore-url", &db, "--data-dir"])
        .arg(dir_old.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "one chain across the two releases: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
