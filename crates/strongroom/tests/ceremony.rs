//! The crypto unit ceremony end to end: `strongroom tke` driven as a subprocess against a
//! real server; refusals checked on the wire with commands signed here from the
//! administrators' key files (read as docs/formats.md describes them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::admin::{sign_command, Cmd, CommandBody, Signer, WIRE_VERSION};
use strongroom_engine::{AeadAlg, CryptoProvider, SigAlg};

const PASSWORDS: &str = "\
alice.sigkey: alice-password-1
bob.sigkey: bob-password-22
carol.sigkey: carol-password-333
part1.mkpart: part-one-password
part2.mkpart: part-two-password
part3.mkpart: part-three-password
part4.mkpart: part-four-password
";

struct Ceremony {
    server: Server,
    _dir: tempfile::TempDir,
    ws: PathBuf,
    pw: PathBuf,
    instance: String,
    apikey: String,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Ceremony {
    /// A dev server and a new instance with `units` operational and `recovery` recovery
    /// units in imprint mode, a Manager API key, and two administrators' signature keys
    /// (alice Ed25519, bob ECDSA P-256) on the workstation, both selected.
    fn new(units: &str, recovery: &str) -> Ceremony {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path());
        let admin = |args: &[&str]| {
            let mut a = args.to_vec();
            a.extend_from_slice(&[
                "--url",
                &server.url,
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--output",
                "json",
            ]);
            let (ok, out, err) = run(&a, &[]);
            assert!(ok, "{err}");
            serde_json::from_str::<Value>(&out).unwrap()
        };
        let inst = admin(&[
            "instance",
            "create",
            "prod",
            "--units",
            units,
            "--recovery-units",
            recovery,
        ]);
        let instance = inst["id"].as_str().unwrap().to_string();
        let key = admin(&[
            "instance", "apikey", "create", &instance, "--role", "Manager",
        ]);
        let apikey = key["apikey"].as_str().unwrap().to_string();
        let ws = dir.path().join("tke");
        let pw = dir.path().join("passwords");
        std::fs::write(&pw, PASSWORDS).unwrap();
        let c = Ceremony {
            server,
            ws,
            pw,
            instance,
            apikey,
            _dir: dir,
        };
        c.ok(&["sigkey-add", "--name", "alice", "--kdf-memory-mib", "64"]);
        c.ok(&[
            "sigkey-add",
            "--name",
            "bob",
            "--alg",
            "ecdsa-p256-sha256",
            "--kdf-memory-mib",
            "64",
        ]);
        c.ok(&["sigkey-sel", "1", "2"]);
        c.ok(&["cryptounit-add", "--all"]);
        c
    }

    fn tke(&self, args: &[&str]) -> (bool, String, String) {
        let mut a = vec!["tke"];
        a.extend_from_slice(args);
        run(
            &a,
            &[
                ("STRONGROOM_URL", &self.server.url),
                ("STRONGROOM_INSTANCE", &self.instance),
                ("STRONGROOM_API_KEY", &self.apikey),
                ("STRONGROOM_TKE_FILES", self.ws.to_str().unwrap()),
                ("STRONGROOM_TKE_PASSWORDS", self.pw.to_str().unwrap()),
            ],
        )
    }

    /// Stops the server (SIGTERM, or SIGKILL with `kill`) and starts it again on the same
    /// data directory.
    fn restart(&mut self, kill: bool) {
        if kill {
            self.server.kill9();
        } else {
            self.server.terminate();
        }
        self.server = Server::start(self._dir.path());
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.tke(args);
        assert!(ok, "tke {args:?} failed:\n{err}\n{out}");
        out
    }

    fn fails(&self, args: &[&str], expect: &str) -> String {
        let (ok, out, err) = self.tke(args);
        assert!(!ok, "tke {args:?} should fail:\n{out}");
        assert!(
            err.contains(expect),
            "tke {args:?}: expected '{expect}' in:\n{err}"
        );
        err
    }

    /// The selected units' statuses.
    fn units(&self) -> Vec<Value> {
        let out = self.ok(&["cryptounit-mk", "--output", "json"]);
        serde_json::from_str::<Value>(&out).unwrap()["units"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn api(&self) -> Api {
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{}/identity/token", self.server.url))
            .form(&[
                ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                ("apikey", self.apikey.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            http,
            url: self.server.url.clone(),
            instance: self.instance.clone(),
            token: r["access_token"].as_str().unwrap().to_string(),
        }
    }

    /// Initialises the units from key part files: admins alice and bob, thresholds 2/1,
    /// master key = part1 ⊕ part2.
    fn init_with_parts(&self) {
        self.ok(&[
            "mk-add",
            "--random",
            "--description",
            "part1",
            "--kdf-memory-mib",
            "64",
        ]);
        self.ok(&[
            "mk-add",
            "--random",
            "--description",
            "part2",
            "--kdf-memory-mib",
            "64",
        ]);
        self.ok(&["cryptounit-admin-add", "alice"]);
        self.ok(&["cryptounit-admin-add", "bob"]);
        self.ok(&[
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "2",
            "--revocation-threshold",
            "1",
        ]);
        self.ok(&["cryptounit-mk-load", "part1", "part2"]);
        self.ok(&["cryptounit-mk-commit"]);
        self.ok(&["cryptounit-mk-setimm", "--yes"]);
        let out = self.ok(&["cryptounit-compare"]);
        assert!(out.contains("are identical"), "{out}");
    }
}

// ------------------------------------------------------------------------------------
// Reading a signature key file as docs/formats.md documents it (outside check of the
// format): AAD = the header (every field but "ct", in file order) as compact JSON.

#[derive(Serialize, Deserialize)]
struct Kdf {
    alg: String,
    v: u32,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}
#[derive(Serialize, Deserialize)]
struct Aead {
    alg: String,
    nonce: String,
}
#[derive(Serialize, Deserialize)]
struct SigkeyHeader {
    format: String,
    id: String,
    name: String,
    created: String,
    alg: String,
    public_key: String,
    ski: String,
    kdf: Kdf,
    aead: Aead,
}
#[derive(Deserialize)]
struct SigkeyFile {
    #[serde(flatten)]
    header: SigkeyHeader,
    ct: String,
}

struct AdminKey {
    alg: SigAlg,
    pkcs8: Vec<u8>,
    ski: [u8; 32],
}

fn read_sigkey(path: &Path, password: &str) -> AdminKey {
    let p = AwsLcProvider;
    let f: SigkeyFile = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(f.header.format, "strongroom-sigkey/1");
    assert_eq!(
        (f.header.kdf.alg.as_str(), f.header.kdf.v),
        ("argon2id", 0x13)
    );
    let mut k = [0u8; 32];
    p.argon2id(
        password.as_bytes(),
        &B64.decode(&f.header.kdf.salt).unwrap(),
        f.header.kdf.m_kib,
        f.header.kdf.t,
        f.header.kdf.p,
        &mut k,
    )
    .unwrap();
    let key = p.aead_key(AeadAlg::AesGcm, &k).unwrap();
    let nonce: [u8; 12] = B64
        .decode(&f.header.aead.nonce)
        .unwrap()
        .try_into()
        .unwrap();
    let mut body = B64.decode(&f.ct).unwrap();
    key.open(&nonce, &serde_json::to_vec(&f.header).unwrap(), &mut body)
        .expect("the documented AAD opens the file");
    let alg = SigAlg::parse(&f.header.alg).unwrap();
    let public = p.sig_public_key(alg, &body).unwrap();
    assert_eq!(B64.encode(&public), f.header.public_key);
    let ski = strongroom_engine::admin::ski_of(&p, alg, &public);
    assert_eq!(hex::encode(ski), f.header.ski);
    AdminKey {
        alg,
        pkcs8: body,
        ski,
    }
}

/// Signs `cmd` for `unit` (at its current counter) with `keys` and posts it.
async fn raw_command(
    api: &Api,
    unit: &Value,
    cmd: Cmd,
    keys: &[&AdminKey],
    ctr_offset: u64,
) -> (Resp, Value) {
    let body = CommandBody {
        v: WIRE_VERSION,
        instance: api.instance.parse().unwrap(),
        unit: unit["unit"].as_str().unwrap().parse().unwrap(),
        epoch: unit["epoch"].as_u64().unwrap(),
        ctr: unit["ctr"].as_u64().unwrap() + ctr_offset,
        cmd,
    };
    let signers: Vec<Signer<'_>> = keys
        .iter()
        .map(|k| Signer {
            alg: k.alg,
            pkcs8: &k.pkcs8,
            ski: k.ski,
        })
        .collect();
    let signed = sign_command(&AwsLcProvider, &body, &signers).unwrap();
    let path = format!(
        "/api/v2/crypto_units/{}/commands",
        unit["unit"].as_str().unwrap()
    );
    let r = api.call("POST", &path, Some(json!(signed))).await;
    (r, json!(signed))
}

async fn unit_status(api: &Api, id: &str) -> Value {
    let r = api
        .call("GET", &format!("/api/v2/crypto_units/{id}"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body: Value =
        serde_json::from_slice(&B64.decode(r.body["body"].as_str().unwrap()).unwrap()).unwrap();
    body["output"].clone()
}

#[tokio::test]
async fn key_part_ceremony_with_refusals_that_change_nothing() {
    let mut c = Ceremony::new("2", "0");
    let api = c.api().await;

    // Until the units hold a master key, key operations fail clearly.
    let r = api
        .call(
            "POST",
            "/api/v2/keys",
            Some(key_body(json!({"name": "early", "extractable": false}))),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (503, "CRYPTO_UNIT_NOT_INITIALIZED_ERR"),
        "{:?}",
        r.body
    );

    // --plan shows the signatures and changes nothing.
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

    // Keys work now.
    let k = api.create_root("payments").await;
    let r = api
        .call(
            "POST",
            &format!("/api/v2/keys/{k}/actions/wrap"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ct = r.body["ciphertext"].as_str().unwrap().to_string();
    let dek = r.body["plaintext"].as_str().unwrap().to_string();

    let alice = read_sigkey(&c.ws.join("alice.sigkey"), "alice-password-1");
    let bob = read_sigkey(&c.ws.join("bob.sigkey"), "bob-password-22");
    let id0 = units[0]["unit"].as_str().unwrap().to_string();

    // A command with too few signatures: clear the current register needs 1, a commit 2.
    let u = unit_status(&api, &id0).await;
    let (r, _) = raw_command(
        &api,
        &u,
        Cmd::SetThresholds { sign: 1, revoke: 1 },
        &[&alice],
        1,
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "CRYPTO_UNIT_SIGNATURES_ERR"),
        "{:?}",
        r.body
    );
    assert!(r.body["resources"][0]["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .contains("needs 2 administrator signature(s); 1 given"));
    assert_eq!(unit_status(&api, &id0).await, u, "no state change");

    // A commit naming the wrong verification pattern (the server checks, not only the CLI).
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
    assert_eq!(
        (r.status, r.code()),
        (409, "CRYPTO_UNIT_STATE_ERR"),
        "{:?}",
        r.body
    );
    assert_eq!(unit_status(&api, &id0).await, u);
    c.fails(
        &["cryptounit-mk-commit", "--vp", &"11".repeat(32)],
        "the new register is empty",
    );

    // A replayed command: accepted once, refused the second time.
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
    assert_eq!(
        (replay.status, replay.code()),
        (409, "CRYPTO_UNIT_REPLAY_ERR"),
        "{:?}",
        replay.body
    );
    assert_eq!(unit_status(&api, &id0).await, after);
    // A stale counter from the past, too.
    let (r, _) = raw_command(&api, &after, Cmd::GenImporter, &[&alice], 0).await;
    assert_eq!(r.code(), "CRYPTO_UNIT_REPLAY_ERR");

    // A signature from a removed administrator.
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
    assert_eq!(
        (r.status, r.code()),
        (403, "CRYPTO_UNIT_SIGNATURES_ERR"),
        "{:?}",
        r.body
    );
    assert!(r.body["resources"][0]["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .contains("is not an administrator"));
    assert_eq!(unit_status(&api, &id0).await, u);

    // A key part file with the wrong password; a tampered key part file.
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

    // Loading a master key equal to the current one.
    c.fails(
        &["cryptounit-mk-load", "part2", "part1"],
        "combine to the current master key",
    );
    let now = c.units();
    assert_eq!(now[0]["new"]["state"], "empty");
    assert_eq!(now[0]["current"]["vp"], before[0]["current"]["vp"]);

    // Wrong signature key password.
    std::fs::write(
        &c.pw,
        PASSWORDS.replace("bob-password-22", "bob-password-23"),
    )
    .unwrap();
    c.fails(&["sigkey-sel", "1", "2"], "wrong password");
    std::fs::write(&c.pw, PASSWORDS).unwrap();

    // Everything still works and the DEK still unwraps.
    let r = api
        .call(
            "POST",
            &format!("/api/v2/keys/{k}/actions/unwrap"),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["plaintext"].as_str().unwrap(), dek);

    // A restart keeps the units (sealed state files) and the keys working.
    c.restart(false);
    let api = c.api().await;
    let r = api
        .call(
            "POST",
            &format!("/api/v2/keys/{k}/actions/unwrap"),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(c.units()[0]["current"]["vp"].as_str().unwrap(), vp);
}

fn strip_ctr(mut v: Vec<Value>) -> Vec<Value> {
    for u in v.iter_mut() {
        u["ctr"] = json!(0);
    }
    v
}

#[tokio::test]
async fn recovery_unit_initialises_recovers_and_exports_only_to_the_roster() {
    let c = Ceremony::new("2", "1");
    let api = c.api().await;
    // auto-init refuses an impossible threshold before touching anything.
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
        let r = api
            .call(
                "POST",
                &format!("/api/v2/keys/{k}/actions/wrap"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200);
        deks.push((
            k.clone(),
            r.body["ciphertext"].as_str().unwrap().to_string(),
            r.body["plaintext"].as_str().unwrap().to_string(),
        ));
    }

    // Zeroize one operational unit; the other keeps serving.
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
    c.fails(&["cryptounit-zeroize"], "pass --yes");
    c.ok(&["cryptounit-zeroize", "--yes"]);
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

    // auto-mk-recover puts the master key back into the zeroized unit.
    c.ok(&["cryptounit-add", "--all"]);
    let out = c.ok(&["auto-mk-recover"]);
    assert!(out.contains(&format!("master key {vp} recovered")), "{out}");
    assert!(c.ok(&["cryptounit-compare"]).contains("identical"));

    // A unit that is not on the roster gets nothing from the recovery unit.
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
    c.ok(&["cryptounit-admin-add", "alice"]);
    c.ok(&["cryptounit-admin-add", "bob"]);
    c.ok(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
    ]);
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
    // Once the administrators put it on the roster, it can receive the key.
    c.ok(&["cryptounit-add", "--all"]);
    c.ok(&["cryptounit-roster-set"]);
    c.ok(&["auto-mk-recover"]);
    assert!(c
        .ok(&["cryptounit-compare"])
        .contains("4 selected units are identical"));
}

/// Every (key, ciphertext, plaintext) unwraps to its plaintext.
async fn assert_unwraps(api: &Api, deks: &[(String, String, String)]) {
    for (k, ct, pt) in deks {
        let r = api
            .call(
                "POST",
                &format!("/api/v2/keys/{k}/actions/unwrap"),
                Some(json!({"ciphertext": ct})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["plaintext"].as_str()),
            (200, Some(pt.as_str())),
            "{k}"
        );
    }
}

/// Runs the futures 16 at a time; their outputs in completion order.
async fn sixteen_at_a_time<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for f in futures {
        tasks.spawn(f);
        if tasks.len() >= 16 {
            out.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(r) = tasks.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// Creates `n` root keys; returns their ids.
async fn futures_join(api: &Api, n: usize) -> Vec<String> {
    sixteen_at_a_time((0..n).map(|i| {
        let api = api.clone();
        async move { api.create_root(&format!("k{i}")).await }
    }))
    .await
}

#[tokio::test]
async fn rotation_of_10000_keys_keeps_serving_and_resumes_after_kill_9() {
    let mut c = Ceremony::new("2", "0");
    c.init_with_parts();
    let api = c.api().await;
    let keys = futures_join(&api, 10_000).await;
    let keys = Arc::new(keys);
    let mut deks = Vec::new();
    for k in keys.iter().step_by(50) {
        let r = api
            .call(
                "POST",
                &format!("/api/v2/keys/{k}/actions/wrap"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200);
        deks.push((
            k.clone(),
            r.body["ciphertext"].as_str().unwrap().to_string(),
            r.body["plaintext"].as_str().unwrap().to_string(),
        ));
    }
    let deks = Arc::new(deks);

    // A client keeps wrapping and unwrapping while the master key rotates.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut load = tokio::task::JoinSet::new();
    for w in 0..4usize {
        let (api, keys, deks, stop, done) = (
            api.clone(),
            keys.clone(),
            deks.clone(),
            stop.clone(),
            done.clone(),
        );
        load.spawn(async move {
            let mut failures = Vec::new();
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let k = &keys[(i * 7919) % keys.len()];
                let r = api
                    .call(
                        "POST",
                        &format!("/api/v2/keys/{k}/actions/wrap"),
                        Some(json!({})),
                    )
                    .await;
                if r.status != 200 {
                    failures.push(format!("wrap: {} {:?}", r.status, r.body));
                }
                let (k, ct, pt) = &deks[i % deks.len()];
                let r = api
                    .call(
                        "POST",
                        &format!("/api/v2/keys/{k}/actions/unwrap"),
                        Some(json!({"ciphertext": ct})),
                    )
                    .await;
                if r.status != 200 || r.body["plaintext"].as_str() != Some(pt) {
                    failures.push(format!("unwrap: {} {:?}", r.status, r.body));
                }
                done.fetch_add(2, Ordering::Relaxed);
                i += 4;
            }
            failures
        });
    }
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
    let before_rotation = done.load(Ordering::Relaxed);
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
    let during = done.load(Ordering::Relaxed) - before_rotation;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    while let Some(f) = load.join_next().await {
        failures.extend(f.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed requests during the rotation, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(during > 0, "the client made requests during the rotation");
    let units = c.units();
    let vp2 = units[0]["current"]["vp"].as_str().unwrap().to_string();
    assert!(units.iter().all(|u| u["current"]["vp"] == vp2.as_str()
        && u["new"]["state"] == "empty"
        && u["rotating"] == false));
    assert_unwraps(&api, &deks).await;

    // Second rotation, killed with SIGKILL in the middle of the re-encryption.
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
    // Keys sealed under either master key serve while the rotation is half done.
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
    // Finalize is refused while blobs remain under the old key.
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
        let r = api
            .call(
                "POST",
                &format!("/api/v2/keys/{k}/actions/wrap"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
}

/// Two nodes on one PostgreSQL keystore, each hosting its own unit of one instance: the
/// ceremony reaches both through `--url a,b`, a key created on one node serves on the
/// other, and a rotation keeps both serving.
#[tokio::test]
async fn units_on_two_nodes_share_one_master_key_and_rotate_together() {
    let db = fresh_postgres_db("sr_cer").await;
    // The nodes share only the cluster key (tokens, audit chain): each has its own node key,
    // administrator token and crypto unit.
    let cluster = tempfile::tempdir().unwrap();
    let cluster_key = cluster.path().join("cluster.key");
    let ck = cluster_key.to_str().unwrap();
    let dir_a = tempfile::tempdir().unwrap();
    let a = Server::start_with(
        dir_a.path(),
        &["--keystore-url", &db, "--cluster-key-file", ck],
    );
    assert!(
        cluster_key.exists(),
        "the first node creates the cluster key file"
    );
    let dir_b = tempfile::tempdir().unwrap();
    let b = Server::start_with(
        dir_b.path(),
        &["--keystore-url", &db, "--cluster-key-file", ck],
    );
    assert_ne!(
        std::fs::read(dir_a.path().join("node.key")).unwrap(),
        std::fs::read(dir_b.path().join("node.key")).unwrap()
    );
    let admin = |server: &Server, dir: &Path, args: &[&str]| {
        let mut v = args.to_vec();
        v.extend_from_slice(&[
            "--url",
            &server.url,
            "--data-dir",
            dir.to_str().unwrap(),
            "--output",
            "json",
        ]);
        let (ok, out, err) = run(&v, &[]);
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let instance = admin(
        &a,
        dir_a.path(),
        &["instance", "create", "shared", "--units", "1"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin(&b, dir_b.path(), &["instance", "add-unit", &instance]);
    let apikey = admin(
        &a,
        dir_a.path(),
        &[
            "instance", "apikey", "create", &instance, "--role", "Manager",
        ],
    )["apikey"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = dir_a.path().join("tke");
    let pw = dir_a.path().join("passwords");
    std::fs::write(&pw, PASSWORDS).unwrap();
    let urls = format!("{},{}", a.url, b.url);
    let env = [
        ("STRONGROOM_URL", urls.as_str()),
        ("STRONGROOM_INSTANCE", instance.as_str()),
        ("STRONGROOM_API_KEY", apikey.as_str()),
        ("STRONGROOM_TKE_FILES", ws.to_str().unwrap()),
        ("STRONGROOM_TKE_PASSWORDS", pw.to_str().unwrap()),
    ];
    let tke = |args: &[&str]| {
        let mut v = vec!["tke"];
        v.extend_from_slice(args);
        let (ok, out, err) = run(&v, &env);
        assert!(ok, "tke {args:?}: {err}");
        out + &err
    };
    let out = tke(&["cryptounits"]);
    assert!(
        out.contains(&a.url) && out.contains(&b.url),
        "one unit on each node: {out}"
    );
    tke(&["sigkey-add", "--name", "alice", "--kdf-memory-mib", "64"]);
    tke(&["sigkey-add", "--name", "bob", "--kdf-memory-mib", "64"]);
    tke(&["sigkey-sel", "1", "2"]);
    tke(&["cryptounit-add", "--all"]);
    tke(&["cryptounit-admin-add", "alice"]);
    tke(&["cryptounit-admin-add", "bob"]);
    tke(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "2",
    ]);
    for p in ["part1", "part2", "part3"] {
        tke(&[
            "mk-add",
            "--random",
            "--description",
            p,
            "--kdf-memory-mib",
            "64",
        ]);
    }
    tke(&["cryptounit-mk-load", "part1", "part2"]);
    tke(&["cryptounit-mk-commit"]);
    tke(&["cryptounit-mk-setimm", "--yes"]);
    assert!(tke(&["cryptounit-compare"]).contains("2 selected units are identical"));

    let token = |server: &Server| {
        let (http, url, apikey) = (reqwest::Client::new(), server.url.clone(), apikey.clone());
        async move {
            let r: Value = http
                .post(format!("{url}/identity/token"))
                .form(&[
                    ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                    ("apikey", apikey.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_string()
        }
    };
    let api_a = Api {
        http: reqwest::Client::new(),
        url: a.url.clone(),
        instance: instance.clone(),
        token: token(&a).await,
    };
    let api_b = Api {
        http: reqwest::Client::new(),
        url: b.url.clone(),
        instance: instance.clone(),
        token: token(&b).await,
    };
    let keys = futures_join(&api_a, 50).await;
    let mut deks = Vec::new();
    for k in &keys {
        let r = api_b
            .call(
                "POST",
                &format!("/api/v2/keys/{k}/actions/wrap"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            r.status, 200,
            "node B serves keys created on node A: {:?}",
            r.body
        );
        deks.push((
            k.clone(),
            r.body["ciphertext"].as_str().unwrap().to_string(),
            r.body["plaintext"].as_str().unwrap().to_string(),
        ));
    }
    // An import token made before the rotation.
    let r = api_a
        .call(
            "POST",
            "/api/v2/import_token",
            Some(json!({"expiration": 1200, "maxAllowedRetrievals": 5})),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
    // GREP11 before the rotation: a key blob and a ciphertext under the current key.
    use strongroom_grep11::pb;
    let mut g = grep11_client(&a).await;
    let mech = |iv: &[u8]| {
        Some(pb::Mechanism {
            mechanism: strongroom_grep11::ckm::AES_CBC_PAD,
            parameter: Some(pb::mechanism::Parameter::ParameterB(iv.to_vec())),
        })
    };
    let tf = |v: bool| pb::AttributeValue {
        one_attr: Some(pb::attribute_value::OneAttr::AttributeTf(v)),
    };
    let template = [
        (
            strongroom_grep11::cka::VALUE_LEN,
            pb::AttributeValue {
                one_attr: Some(pb::attribute_value::OneAttr::AttributeI(16)),
            },
        ),
        (strongroom_grep11::cka::ENCRYPT, tf(true)),
        (strongroom_grep11::cka::DECRYPT, tf(true)),
    ]
    .into_iter()
    .collect();
    let old_blob = g
        .generate_key(grep11_req(
            pb::GenerateKeyRequest {
                mech: Some(pb::Mechanism {
                    mechanism: strongroom_grep11::ckm::AES_KEY_GEN,
                    parameter: None,
                }),
                template,
            },
            &api_a.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .key_bytes;
    let kb = |b: &[u8]| {
        Some(pb::KeyBlob {
            key_blobs: vec![b.to_vec()],
            ..Default::default()
        })
    };
    let before = g
        .encrypt_single(grep11_req(
            pb::EncryptSingleRequest {
                mech: mech(&[4; 16]),
                plain: b"before the rotation".to_vec(),
                key: kb(&old_blob),
                ..Default::default()
            },
            &api_a.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .ciphered;
    // Another instance's blob: that instance's unit holds another master key.
    let err = g
        .encrypt_single(grep11_req(
            pb::EncryptSingleRequest {
                mech: mech(&[4; 16]),
                plain: b"x".to_vec(),
                key: kb(&old_blob),
                ..Default::default()
            },
            &a.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        strongroom_grep11::grep11_error_of(&err).unwrap().code,
        strongroom_grep11::ckr::IBM_WKID_MISMATCH
    );
    tke(&["cryptounit-mk-load", "part2", "part3"]);
    tke(&["cryptounit-mk-commit"]);
    // Test_rewrapKeyBlob: once the new key is committed, RewrapKeyBlob moves the blob to it.
    let rewrapped = g
        .rewrap_key_blob(grep11_req(
            pb::RewrapKeyBlobRequest {
                wrapped_key: kb(&old_blob),
                ..Default::default()
            },
            &api_a.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .rewrapped_key_bytes;
    assert_ne!(rewrapped, old_blob);
    // A rotation needs every unit of the instance.
    let units_out = tke(&["cryptounits"]);
    let unit_b = units_out
        .lines()
        .find(|l| l.contains(&b.url))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    tke(&["cryptounit-rm", &unit_b]);
    let (ok, _, err) = run(&["tke", "cryptounit-mk-rotate"], &env);
    assert!(
        !ok && err.contains("needs every unit of the instance selected"),
        "{err}"
    );
    tke(&["cryptounit-add", "--all"]);
    let out = tke(&["cryptounit-mk-rotate"]);
    assert!(
        out.contains("key storage re-encrypted (50 key version(s))"),
        "{out}"
    );
    for (api, other) in [(&api_a, &api_b), (&api_b, &api_a)] {
        assert_unwraps(api, &deks).await;
        let k = other.create_root("after-rotation").await;
        let r = api
            .call(
                "POST",
                &format!("/api/v2/keys/{k}/actions/wrap"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    assert!(tke(&["cryptounit-compare"]).contains("identical"));
    // After the rotation: the old blob is refused with CKR_IBM_WKID_MISMATCH; the rewrapped
    // blob decrypts what the old one encrypted, on either node.
    for server in [&a, &b] {
        let mut g = grep11_client(server).await;
        let decrypt = |key: Vec<u8>| {
            grep11_req(
                pb::DecryptSingleRequest {
                    mech: mech(&[4; 16]),
                    ciphered: before.clone(),
                    key: kb(&key),
                    ..Default::default()
                },
                &api_a.token,
            )
        };
        let err = g
            .decrypt_single(decrypt(old_blob.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            strongroom_grep11::grep11_error_of(&err).unwrap().code,
            strongroom_grep11::ckr::IBM_WKID_MISMATCH
        );
        let plain = g
            .decrypt_single(decrypt(rewrapped.clone()))
            .await
            .unwrap()
            .into_inner()
            .plain;
        assert_eq!(plain, b"before the rotation");
    }
    // The import token is stale after the rotation: a clear, retryable answer (not a 500).
    let resource = json!({"name": "imported", "extractable": false,
        "payload": B64.encode([1u8; 512]), "encryptedNonce": B64.encode([2u8; 28]), "iv": B64.encode([3u8; 12]),
        "encryptionAlgorithm": "RSAES_OAEP_SHA_256"});
    let r = api_a
        .call("POST", "/api/v2/keys", Some(key_body(resource)))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "IMPORT_TOKEN_EXPIRED_ERR"),
        "{:?}",
        r.body
    );
    assert!(
        r.body.to_string().contains("previous master key"),
        "{:?}",
        r.body
    );
    // Both nodes extended one audit chain, keyed by the cluster key.
    let verify = |key: Option<&str>| {
        let mut v = vec![
            "audit",
            "verify",
            "--keystore-url",
            &db,
            "--data-dir",
            dir_b.path().to_str().unwrap(),
        ];
        if let Some(k) = key {
            v.extend_from_slice(&["--cluster-key-file", k]);
        }
        run(&v, &[])
    };
    let (ok, out, err) = verify(Some(ck));
    assert!(ok && out.contains("chain intact"), "{out}{err}");
    let (ok, _, _) = verify(None);
    assert!(!ok, "the chain is not keyed by a node key");
}

/// Wraps one DEK with each key, 16 requests at a time.
async fn wrap_each(api: &Api, keys: &[String]) -> Vec<(String, String, String)> {
    sixteen_at_a_time(keys.iter().map(|k| {
        let (api, k) = (api.clone(), k.clone());
        async move {
            let r = api
                .call(
                    "POST",
                    &format!("/api/v2/keys/{k}/actions/wrap"),
                    Some(json!({})),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            (
                k,
                r.body["ciphertext"].as_str().unwrap().to_string(),
                r.body["plaintext"].as_str().unwrap().to_string(),
            )
        }
    }))
    .await
}

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

    // The custodians' workstation survives; the node does not.
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
    // Until the unit holds the master key, the restored keys do not serve.
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
    assert_eq!(
        (r.status, r.code()),
        (503, "CRYPTO_UNIT_NOT_INITIALIZED_ERR"),
        "{:?}",
        r.body
    );
    restored.ok(&["cryptounit-add", "--all"]);
    restored.ok(&["cryptounit-admin-add", "alice"]);
    restored.ok(&["cryptounit-admin-add", "bob"]);
    restored.ok(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
    ]);
    restored.ok(&["cryptounit-mk-load", "part1", "part2"]);
    restored.ok(&["cryptounit-mk-commit"]);
    restored.ok(&["cryptounit-mk-setimm", "--yes"]);
    assert_unwraps_all(&api2, deks).await;
}

/// `assert_unwraps` over many DEKs, in 16 parallel chunks.
async fn assert_unwraps_all(api: &Api, deks: Vec<(String, String, String)>) {
    let n = deks.len();
    let chunks: Vec<Vec<(String, String, String)>> =
        deks.chunks(n.div_ceil(16)).map(<[_]>::to_vec).collect();
    sixteen_at_a_time(chunks.into_iter().map(|chunk| {
        let api = api.clone();
        async move { assert_unwraps(&api, &chunk).await }
    }))
    .await;
}

/// `--output json` prints one JSON document on stdout and nothing else, for every `tke`
/// command a script reads, so that `jq` and `json.loads` never meet a sentence. Before the
/// fix `cryptounit-compare --output json` printed the units, then "the 2 selected units are
/// identical".
#[tokio::test]
async fn tke_output_json_prints_only_json() {
    let c = Ceremony::new("2", "0");
    c.init_with_parts();
    let json = |args: &[&str]| -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--output", "json"]);
        let out = c.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("tke {args:?} --output json printed more than one JSON document ({e}):\n{out}")
        })
    };
    let compare = json(&["cryptounit-compare"]);
    assert_eq!(compare["identical"], true);
    assert_eq!(compare["units"].as_array().unwrap().len(), 2);
    for args in [
        &["cryptounit-admins"][..],
        &["cryptounit-thrhlds"],
        &["cryptounit-mk"],
        &["cryptounits"],
        &["sigkeys"],
        &["mks"],
        &["sigkey-sel", "1", "2"],
        &["cryptounit-add", "--all"],
        &["cryptounit-zeroize", "--plan"],
        &[
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "1",
            "--revocation-threshold",
            "1",
            "--plan",
        ],
        &["cryptounit-mk-rotate", "--plan"],
    ] {
        let v = json(args);
        assert!(v.is_object(), "tke {args:?}: {v}");
    }
    let set = json(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "2",
    ]);
    assert_eq!(set["revocation_threshold"], 2);
}
