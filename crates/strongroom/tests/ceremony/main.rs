//! The crypto unit ceremony end to end: `strongroom tke` driven as a subprocess against a
//! real server; refusals checked on the wire with commands signed here from the
//! administrators' key files (read as docs/formats.md describes them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod auto_init;
mod backup;
mod cards;
mod key_parts;
mod output;
mod recovery;
mod rotation;
mod signserv;
mod two_nodes;
mod zones;

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
    outcome(&out)
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
            // One test node stands for several: its units share one zone.
            "--allow-same-zone",
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
        self.tke_with(args, &[])
    }

    /// `strongroom tke <args>` with `extra` in its environment.
    fn tke_with(&self, args: &[&str], extra: &[(&str, &str)]) -> (bool, String, String) {
        let mut a = vec!["tke"];
        a.extend_from_slice(args);
        self.workstation(&a, extra)
    }

    /// `strongroom <args>` on the ceremony's workstation (its server, instance, API key,
    /// files and passwords), with `extra` in the environment.
    fn workstation(&self, args: &[&str], extra: &[(&str, &str)]) -> (bool, String, String) {
        let mut env = self.workstation_env();
        env.extend_from_slice(extra);
        run(args, &env)
    }

    /// The environment of the ceremony's workstation.
    fn workstation_env(&self) -> Vec<(&str, &str)> {
        vec![
            ("STRONGROOM_URL", self.server.url.as_str()),
            ("STRONGROOM_INSTANCE", self.instance.as_str()),
            ("STRONGROOM_API_KEY", self.apikey.as_str()),
            ("STRONGROOM_TKE_FILES", self.ws.to_str().unwrap()),
            ("STRONGROOM_TKE_PASSWORDS", self.pw.to_str().unwrap()),
        ]
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
        Api {
            http: reqwest::Client::new(),
            url: self.server.url.clone(),
            admin_url: self.server.admin_url.clone(),
            instance: self.instance.clone(),
            token: exchange_apikey(&self.server.url, &self.apikey).await,
        }
    }

    /// Adds the administrators alice and bob to the selected units, with a signature
    /// threshold of 2 and a revocation threshold of 1.
    fn admins_alice_and_bob(&self) {
        self.ok(&["cryptounit-admin-add", "alice"]);
        self.ok(&["cryptounit-admin-add", "bob"]);
        self.ok(&[
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "2",
            "--revocation-threshold",
            "1",
        ]);
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
        self.admins_alice_and_bob();
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

fn strip_ctr(mut v: Vec<Value>) -> Vec<Value> {
    for u in v.iter_mut() {
        u["ctr"] = json!(0);
    }
    v
}

/// Every (key, ciphertext, plaintext) unwraps to its plaintext.
async fn assert_unwraps(api: &Api, deks: &[(String, String, String)]) {
    for (k, ct, pt) in deks {
        let r = api.action(k, "unwrap", json!({"ciphertext": ct})).await;
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

/// Wraps one DEK with each key, 16 requests at a time.
async fn wrap_each(api: &Api, keys: &[String]) -> Vec<(String, String, String)> {
    sixteen_at_a_time(keys.iter().map(|k| {
        let (api, k) = (api.clone(), k.clone());
        async move { api.wrap(&k).await }
    }))
    .await
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

/// A client that keeps wrapping with `keys` and unwrapping `deks`, four requests at a time,
/// until stopped; it records every failed request.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    tasks: tokio::task::JoinSet<Vec<String>>,
}

impl Load {
    fn start(api: &Api, keys: Arc<Vec<String>>, deks: Arc<Vec<(String, String, String)>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..4usize {
            let (api, keys, deks, stop, done) = (
                api.clone(),
                keys.clone(),
                deks.clone(),
                stop.clone(),
                done.clone(),
            );
            tasks.spawn(async move {
                let mut failures = Vec::new();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let k = &keys[(i * 7919) % keys.len()];
                    let r = api.action(k, "wrap", json!({})).await;
                    if r.status != 200 {
                        failures.push(format!("wrap: {} {:?}", r.status, r.body));
                    }
                    let (k, ct, pt) = &deks[i % deks.len()];
                    let r = api.action(k, "unwrap", json!({"ciphertext": ct})).await;
                    if r.status != 200 || r.body["plaintext"].as_str() != Some(pt) {
                        failures.push(format!("unwrap: {} {:?}", r.status, r.body));
                    }
                    done.fetch_add(2, Ordering::Relaxed);
                    i += 4;
                }
                failures
            });
        }
        Load { stop, done, tasks }
    }

    /// Requests made so far.
    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the client and asserts that no request failed.
    async fn stop_without_failures(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut failures = Vec::new();
        while let Some(f) = self.tasks.join_next().await {
            failures.extend(f.unwrap());
        }
        assert!(
            failures.is_empty(),
            "{} failed requests under load, first: {:?}",
            failures.len(),
            failures.first()
        );
    }
}
