//! `strongroom migrate` between two servers: the source plays IBM's part (any Key Protect
//! API), the destination is this Strongroom. Every key kind, aliases, rings, policies,
//! registrations, a KMIP adapter, 1,000 wrapped DEKs, and runs killed with SIGKILL in the
//! middle of the keys and of the DEKs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{bin, key_body, step, Api, Server};
use serde_json::{json, Value};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Test data only: uniqueness matters here, not secrecy.
fn random(n: usize) -> Vec<u8> {
    (0..n.div_ceil(16))
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .take(n)
        .collect()
}

fn dev_pin(s: &Server) -> String {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("dev.json")).unwrap()).unwrap();
    v["pkcs11_pin"].as_str().unwrap().to_string()
}

/// `strongroom migrate …` with the source's API key in the environment and the
/// destination in STRONGROOM_* variables.
fn migrate(src: &Server, dst: &Server, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("migrate")
        .args(args)
        .env("STRONGROOM_MIGRATE_FROM_API_KEY", dev_pin(src))
        .env("STRONGROOM_URL", &dst.url)
        .env("STRONGROOM_INSTANCE", &dst.instance)
        .env("STRONGROOM_TOKEN", &dst.token)
        .env_remove("STRONGROOM_API_KEY")
        .stdin(Stdio::null());
    c
}

fn output(mut c: Command) -> (bool, String) {
    let o = c.output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

async fn all_keys(api: &Api) -> Vec<Value> {
    let r = api
        .call("GET", "/api/v2/keys?limit=5000&state=0,1,2,3,5", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["resources"].as_array().cloned().unwrap_or_default()
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Starts a run and kills it (SIGKILL) once `file` has `at_least` lines.
fn kill_when(mut c: Command, file: &Path, at_least: usize, what: &str) {
    let err = file.with_extension("stderr");
    let mut child = c
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while lines(file) < at_least {
        if let Some(status) = child.try_wait().unwrap() {
            let report = file.with_file_name("plan.report.json");
            let report = std::fs::read_to_string(report).unwrap_or_default();
            panic!(
                "the run ended ({status}) before it could be killed {what}: {} {}",
                std::fs::read_to_string(&err).unwrap_or_default(),
                report
                    .lines()
                    .filter(|l| l.contains("\"error\"") && !l.contains("was not created here"))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no progress {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_migration_finishes_on_the_next_run_and_every_dek_unwraps_the_same() {
    let (sd, dd, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let src = Server::start(sd.path());
    let dst = Server::start(dd.path());
    let (s, d) = (src.client(), dst.client());
    let material = work.path().join("material");
    std::fs::create_dir(&material).unwrap();

    step("the source: 100 keys of every kind, with aliases, rings, policies and registrations");
    for ring in ["payments", "archive"] {
        let r = s
            .call("POST", &format!("/api/v2/key_rings/{ring}"), None)
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let mut roots = Vec::new();
    let mut kinds = BTreeMap::new();
    let mut alias = HashMap::new();
    for i in 0..100 {
        let kind = ["root", "root-imported", "standard", "standard-imported"][i % 4];
        let mut res = json!({
            "name": format!("{kind}-{}", i / 4 % 5),
            "extractable": kind.starts_with("standard"),
            "aliases": [format!("k{i}")],
            "description": format!("key {i}"),
        });
        if i % 10 == 0 {
            res["aliases"] = json!([
                format!("k{i}"),
                format!("a1-{i}"),
                format!("a2-{i}"),
                format!("a3-{i}"),
                format!("a4-{i}")
            ]);
        }
        if kind.ends_with("imported") {
            let m = random(32);
            res["payload"] = json!(b64(&m));
            // Half the imported root keys' material is given to the migration.
            if kind == "root-imported" && i % 8 == 1 {
                std::fs::write(material.join(format!("k{i}")), format!("{}\n", b64(&m))).unwrap();
            }
        }
        let ring = ["default", "payments", "archive"][i % 3];
        let r = s
            .raw(
                "POST",
                "/api/v2/keys",
                Some(key_body(res).to_string()),
                Some("application/json"),
                &[("x-kms-key-ring", ring)],
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["resources"][0]["id"].as_str().unwrap().to_string();
        kinds.insert(id.clone(), kind);
        alias.insert(id.clone(), format!("k{i}"));
        if kind.starts_with("root") {
            if kind == "root" && i % 5 == 0 {
                let r = s
                    .call(
                        "PUT",
                        &format!("/api/v2/keys/{id}/policies"),
                        Some(json!({
                            "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": 1},
                            "resources": [{"type": "application/vnd.ibm.kms.policy+json", "rotation": {"enabled": true, "interval_month": 3}}]
                        })),
                    )
                    .await;
                assert_eq!(r.status, 200, "{:?}", r.body);
            }
            if i % 9 == 0 {
                let crn =
                    format!("crn:v1:bluemix:public:cloud-object-storage:global:a/1:bucket{i}::");
                let r = s
                    .call(
                        "POST",
                        &format!(
                            "/api/v2/keys/{id}/registrations/{}",
                            crn.replace(':', "%3A").replace('/', "%2F")
                        ),
                        Some(json!({
                            "metadata": {"collectionType": "application/vnd.ibm.kms.registration_input+json", "collectionTotal": 1},
                            "resources": [{"preventKeyDeletion": false, "description": format!("bucket {i}")}]
                        })),
                    )
                    .await;
                assert_eq!(r.status, 201, "{:?}", r.body);
            }
            roots.push(id);
        }
    }
    // A destroyed key (cannot move) and a suspended one (moved, then suspended here).
    let doomed = s.create_root("doomed").await;
    let r = s
        .call("DELETE", &format!("/api/v2/keys/{doomed}"), None)
        .await;
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    let suspended = s.create_root("suspended").await;
    assert_eq!(
        s.call(
            "POST",
            &format!("/api/v2/keys/{suspended}/actions/disable"),
            None
        )
        .await
        .status,
        204
    );
    let r = s
        .call(
            "PUT",
            "/api/v2/instance/policies?policy=dualAuthDelete",
            Some(json!({
                "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": 1},
                "resources": [{"policy_type": "dualAuthDelete", "policy_data": {"enabled": false}}]
            })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // A KMIP adapter on the first root key, with a client certificate.
    let cert = rcgen::generate_simple_self_signed(vec!["kmip-client".into()])
        .unwrap()
        .cert
        .pem();
    let r = s
        .call(
            "POST",
            "/api/v2/kmip_adapters",
            Some(json!({
                "metadata": {"collectionType": "application/vnd.ibm.kms.kmip_adapter+json", "collectionTotal": 1},
                "resources": [{"name": "vcenter", "profile": "native_1.0", "profile_data": {"crk_id": roots[0]}}]
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let adapter = r.body["resources"][0]["id"].as_str().unwrap().to_string();
    let r = s
        .call(
            "POST",
            &format!("/api/v2/kmip_adapters/{adapter}/certificates"),
            Some(json!({
                "metadata": {"collectionType": "application/vnd.ibm.kms.kmip_client_certificate+json", "collectionTotal": 1},
                "resources": [{"name": "esxi", "certificate": cert}]
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    step("1,000 wrapped DEKs under the root keys, some with additional data");
    let deks_dir = work.path().join("deks");
    std::fs::create_dir(&deks_dir).unwrap();
    let mut plain_of: HashMap<String, Vec<u8>> = HashMap::new();
    let mut files = [String::new(), String::new()];
    for n in 0..1000 {
        let key = &roots[n % roots.len()];
        let dek = random(32);
        let aad = (n % 3 == 0).then(|| vec![format!("row-{n}")]);
        let mut body = json!({"plaintext": b64(&dek)});
        if let Some(a) = &aad {
            body["aad"] = json!(a);
        }
        let r = s
            .call(
                "POST",
                &format!("/api/v2/keys/{key}/actions/wrap"),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let ct = r.body["ciphertext"].as_str().unwrap().to_string();
        // Half the lines name the key by its alias.
        let named = if n % 2 == 0 {
            key.clone()
        } else {
            alias[key].clone()
        };
        let mut line = json!({"key": named, "ciphertext": ct});
        if let Some(a) = aad {
            line["aad"] = json!(a);
        }
        files[n % 2].push_str(&format!("{line}\n"));
        plain_of.insert(ct, dek);
    }
    std::fs::write(deks_dir.join("a.jsonl"), &files[0]).unwrap();
    std::fs::write(deks_dir.join("b.jsonl"), &files[1]).unwrap();

    step("plan: reads everything, changes nothing anywhere");
    let before = all_keys(&s).await;
    let plan = work.path().join("plan.json");
    let (ok, out) = output({
        let mut c = migrate(
            &src,
            &dst,
            &[
                "plan",
                "--from",
                &src.url,
                "--from-instance",
                &src.instance,
                "--material",
                material.to_str().unwrap(),
                "--out",
                plan.to_str().unwrap(),
            ],
        );
        c.env_remove("STRONGROOM_TOKEN");
        c
    });
    assert!(ok, "{out}");
    assert!(
        out.contains("recreate+rewrap") && out.contains("cannot move"),
        "{out}"
    );
    assert_eq!(all_keys(&s).await, before, "the plan changed the source");
    assert!(
        all_keys(&d).await.is_empty(),
        "the plan changed the destination"
    );
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let moves: HashMap<String, String> = p["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["move"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(moves.len(), 102);
    for (id, kind) in &kinds {
        let want = match *kind {
            "standard" | "standard-imported" => "copy",
            "root" => "recreate_and_rewrap",
            _ => {
                if material.join(format!("k{}", index_of(&p, id))).exists() {
                    "import"
                } else {
                    "recreate_and_rewrap"
                }
            }
        };
        assert_eq!(moves[id], want, "key {id} ({kind})");
    }
    assert_eq!(moves[&doomed], "cannot_move");
    assert_eq!(moves[&suspended], "recreate_and_rewrap");
    assert_eq!(
        p["source"]["kmip_adapters"][0]["certificates"][0]["certificate"]
            .as_str()
            .map(str::trim),
        Some(cert.trim())
    );

    step("bad input changes nothing: a DEK file with a broken line");
    let bad = work.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"key\": \"k0\"}\n").unwrap();
    let (ok, out) = output(migrate(
        &src,
        &dst,
        &[
            "run",
            "--plan",
            plan.to_str().unwrap(),
            "--deks",
            bad.to_str().unwrap(),
        ],
    ));
    assert!(!ok && out.contains("line 1"), "{out}");
    assert!(all_keys(&d).await.is_empty(), "a refused run created keys");

    step("a run killed with SIGKILL in the middle of the keys");
    let journal = plan.with_extension("journal");
    let deks_out = plan.with_extension("deks.jsonl");
    let run_args = [
        "run",
        "--plan",
        plan.to_str().unwrap(),
        "--material",
        material.to_str().unwrap(),
        "--deks",
        deks_dir.to_str().unwrap(),
        "--concurrency",
        "2",
    ];
    kill_when(migrate(&src, &dst, &run_args), &journal, 120, "in the keys");
    step("a second run killed in the middle of the DEKs");
    kill_when(
        migrate(&src, &dst, &run_args),
        &deks_out,
        400,
        "in the DEKs",
    );
    step("the third run finishes");
    let (ok, out) = output(migrate(&src, &dst, &run_args));
    assert!(ok, "{out}");
    assert!(out.contains("0 failed"), "{out}");

    step("nothing was done twice: one key here per movable key, each as it was");
    let here = all_keys(&d).await;
    assert_eq!(here.len(), 101, "{} keys here", here.len());
    let there: HashMap<String, Value> = before
        .iter()
        .map(|k| (k["id"].as_str().unwrap().to_string(), k.clone()))
        .collect();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(plan.with_extension("report.json")).unwrap())
            .unwrap();
    let map = report["keys"].as_object().unwrap();
    assert_eq!(map.len(), 101);
    let by_id: HashMap<&str, &Value> = here
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k))
        .collect();
    let mut new_ids = HashSet::new();
    for (old, new) in map {
        let (o, n) = (&there[old], by_id[new.as_str().unwrap()]);
        assert!(
            new_ids.insert(new.as_str().unwrap()),
            "two source keys share {new}"
        );
        for f in ["name", "description", "extractable", "keyRingID", "aliases"] {
            assert_eq!(o[f], n[f], "{f} of {old}");
        }
        let state = if old == &suspended { 2 } else { 1 };
        assert_eq!(n["state"], json!(state), "state of {old}");
        if o["extractable"] == json!(true) {
            let (a, b) = (
                s.call("GET", &format!("/api/v2/keys/{old}"), None).await,
                d.call(
                    "GET",
                    &format!("/api/v2/keys/{}", new.as_str().unwrap()),
                    None,
                )
                .await,
            );
            assert_eq!(
                a.body["resources"][0]["payload"], b.body["resources"][0]["payload"],
                "standard key {old} copied"
            );
        }
        let policies = |api: Api, id: String| async move {
            api.call("GET", &format!("/api/v2/keys/{id}/policies"), None)
                .await
                .body["resources"]
                .as_array()
                .map(|a| a.iter().map(|p| p["rotation"].clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            policies(s.clone(), old.clone()).await,
            policies(d.clone(), new.as_str().unwrap().to_string()).await,
            "policies of {old}"
        );
    }
    let regs = d.call("GET", "/api/v2/keys/registrations", None).await;
    assert_eq!(
        regs.body["resources"].as_array().map(Vec::len),
        s.call("GET", "/api/v2/keys/registrations", None).await.body["resources"]
            .as_array()
            .map(Vec::len)
    );
    let pol = d.call("GET", "/api/v2/instance/policies", None).await;
    assert!(
        pol.body.to_string().contains("dualAuthDelete"),
        "{:?}",
        pol.body
    );
    let adapters = d.call("GET", "/api/v2/kmip_adapters", None).await;
    let a = &adapters.body["resources"][0];
    assert_eq!(a["name"], "vcenter");
    assert_eq!(a["profile_data"]["crk_id"], map[&roots[0]]);

    step("every DEK unwraps here to the plaintext it was made from, once each");
    let text = std::fs::read_to_string(&deks_out).unwrap();
    let mut seen = HashSet::new();
    for line in text.lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        let old = l["ciphertext"].as_str().unwrap();
        assert!(seen.insert(old.to_string()), "DEK rewrapped twice: {old}");
        let aad = files
            .iter()
            .flat_map(|f| f.lines())
            .map(|x| serde_json::from_str::<Value>(x).unwrap())
            .find(|x| x["ciphertext"] == json!(old))
            .unwrap()["aad"]
            .clone();
        let mut body = json!({"ciphertext": l["new_ciphertext"]});
        if !aad.is_null() {
            body["aad"] = aad;
        }
        let r = d
            .call(
                "POST",
                &format!(
                    "/api/v2/keys/{}/actions/unwrap",
                    l["new_key"].as_str().unwrap()
                ),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            r.body["plaintext"].as_str().unwrap(),
            b64(&plain_of[old]),
            "DEK {old}"
        );
    }
    assert_eq!(seen.len(), 1000);

    step("a fourth run has nothing left to do");
    let (ok, out) = output(migrate(&src, &dst, &run_args));
    assert!(ok, "{out}");
    assert!(
        out.contains("0 rewrapped now") && out.contains("1000 in earlier runs"),
        "{out}"
    );
    assert_eq!(all_keys(&d).await.len(), 101);
}

/// The index `i` of a key created as `k{i}`.
fn index_of(plan: &Value, id: &str) -> usize {
    let k = plan["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == json!(id))
        .unwrap();
    k["aliases"][0].as_str().unwrap()[1..].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_just_before_a_kill_is_found_again_not_created_twice() {
    let (sd, dd, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let src = Server::start(sd.path());
    let dst = Server::start(dd.path());
    let (s, d) = (src.client(), dst.client());
    let old = s.create_root("orders").await;
    let plan = work.path().join("plan.json");
    let (ok, out) = output(migrate(
        &src,
        &dst,
        &[
            "plan",
            "--from",
            &src.url,
            "--from-instance",
            &src.instance,
            "--out",
            plan.to_str().unwrap(),
        ],
    ));
    assert!(ok, "{out}");

    step("the state a kill leaves between creating a key here and journaling it");
    let r = d
        .create_key(json!({
            "name": "orders", "extractable": false, "aliases": [format!("migrated-{old}")]
        }))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let made = r.body["resources"][0]["id"].as_str().unwrap().to_string();
    std::fs::write(
        plan.with_extension("journal"),
        format!("{}\n", json!({"step": "key-start", "old": old})),
    )
    .unwrap();

    step("the next run adopts that key and drops the marker alias");
    let (ok, out) = output(migrate(
        &src,
        &dst,
        &["run", "--plan", plan.to_str().unwrap()],
    ));
    assert!(ok, "{out}");
    let here = all_keys(&d).await;
    assert_eq!(here.len(), 1, "{here:?}");
    assert_eq!(here[0]["id"], json!(made));
    assert!(
        here[0]["aliases"].as_array().is_none_or(Vec::is_empty),
        "{here:?}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(plan.with_extension("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["keys"][&old], json!(made));
}

#[test]
fn the_source_api_key_never_comes_from_the_command_line_and_plans_are_checked() {
    let work = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args([
            "migrate",
            "plan",
            "--from",
            "http://127.0.0.1:9",
            "--from-instance",
            "x",
        ])
        .env_remove("STRONGROOM_MIGRATE_FROM_API_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("never on the command line"), "{err}");
    let o = Command::new(bin())
        .args(["migrate", "plan", "--from-api-key", "k"])
        .output()
        .unwrap();
    assert!(!o.status.success());

    let plan = work.path().join("plan.json");
    std::fs::write(&plan, r#"{"format": "something-else", "version": 1}"#).unwrap();
    let o = Command::new(bin())
        .args(["migrate", "run", "--plan", plan.to_str().unwrap()])
        .env("STRONGROOM_MIGRATE_FROM_API_KEY", "k")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("not a migration plan"),
        "{err}"
    );
}

mod grep11_blobs {
    use super::*;
    use strongroom_grep11::pb;
    use strongroom_grep11::{cka, ckk, ckm, cko, Cka};

    type Stub = pb::crypto_client::CryptoClient<tonic::transport::Channel>;

    fn attr(v: impl Into<Attr>) -> pb::AttributeValue {
        pb::AttributeValue {
            one_attr: Some(match v.into() {
                Attr::B(b) => pb::attribute_value::OneAttr::AttributeTf(b),
                Attr::I(i) => pb::attribute_value::OneAttr::AttributeI(i),
                Attr::Bytes(b) => pb::attribute_value::OneAttr::AttributeB(b),
            }),
        }
    }

    enum Attr {
        B(bool),
        I(i64),
        Bytes(Vec<u8>),
    }
    impl From<bool> for Attr {
        fn from(b: bool) -> Self {
            Attr::B(b)
        }
    }
    impl From<i64> for Attr {
        fn from(i: i64) -> Self {
            Attr::I(i)
        }
    }
    impl From<Vec<u8>> for Attr {
        fn from(b: Vec<u8>) -> Self {
            Attr::Bytes(b)
        }
    }

    fn t(items: Vec<(Cka, pb::AttributeValue)>) -> HashMap<u64, pb::AttributeValue> {
        items.into_iter().map(|(k, v)| (k.0, v)).collect()
    }

    fn mech(m: strongroom_grep11::Ckm, iv: Option<&[u8]>) -> Option<pb::Mechanism> {
        Some(pb::Mechanism {
            mechanism: m.0,
            parameter: iv.map(|iv| pb::mechanism::Parameter::ParameterB(iv.to_vec())),
        })
    }

    fn kb(b: &[u8]) -> Option<pb::KeyBlob> {
        Some(pb::KeyBlob {
            key_blobs: vec![b.to_vec().into()],
            ..Default::default()
        })
    }

    async fn aes(g: &mut Stub, token: &str, extractable: bool) -> Vec<u8> {
        let r = g
            .generate_key(common::grep11_req(
                pb::GenerateKeyRequest {
                    mech: mech(ckm::AES_KEY_GEN, None),
                    template: t(vec![
                        (cka::VALUE_LEN, attr(32i64)),
                        (cka::ENCRYPT, attr(true)),
                        (cka::DECRYPT, attr(true)),
                        (cka::EXTRACTABLE, attr(extractable)),
                    ]),
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        r.key_bytes
    }

    async fn encrypt(g: &mut Stub, token: &str, key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
        g.encrypt_single(common::grep11_req(
            pb::EncryptSingleRequest {
                key: kb(key),
                mech: mech(ckm::AES_CBC_PAD, Some(iv)),
                plain: data.to_vec(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .ciphered
    }

    fn grpc(s: &Server) -> String {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(s.dir.join("dev.json")).unwrap())
                .unwrap();
        format!("http://{}", v["grpc_addr"].as_str().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grep11_blobs_move_wrapped_and_are_used_and_fixed_keys_are_reported() {
        let (sd, dd, work) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let grpc_flags = ["--grpc-addr", "127.0.0.1:0"];
        let src = Server::start_with(sd.path(), &grpc_flags);
        let dst = Server::start_with(dd.path(), &grpc_flags);
        let mut gs = common::grep11_client(&src).await;
        let mut gd = common::grep11_client(&dst).await;

        step("the application's blobs at the source: AES extractable and not, an EC key pair");
        let movable = aes(&mut gs, &src.token, true).await;
        let fixed = aes(&mut gs, &src.token, false).await;
        let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let pair = gs
            .generate_key_pair(common::grep11_req(
                pb::GenerateKeyPairRequest {
                    mech: mech(ckm::EC_KEY_PAIR_GEN, None),
                    pub_key_template: t(vec![
                        (cka::EC_PARAMS, attr(p256)),
                        (cka::VERIFY, attr(true)),
                    ]),
                    priv_key_template: t(vec![
                        (cka::SIGN, attr(true)),
                        (cka::EXTRACTABLE, attr(true)),
                        (cka::LABEL, attr(b"signer".to_vec())),
                    ]),
                },
                &src.token,
            ))
            .await
            .unwrap()
            .into_inner();
        let (ec_priv, ec_pub) = (pair.priv_key_bytes, pair.pub_key_bytes);
        let iv = random(16);
        let secret = b"data the application encrypted at the source".to_vec();
        let ct = encrypt(&mut gs, &src.token, &movable, &iv, &secret).await;

        let input = work.path().join("blobs.jsonl");
        let blobs = [
            ("orders-key", &movable),
            ("hsm-bound", &fixed),
            ("signer", &ec_priv),
            ("signer-public", &ec_pub),
        ];
        let mut text = String::new();
        for (name, blob) in blobs {
            text.push_str(&json!({"name": name, "blob": b64(blob)}).to_string());
            text.push('\n');
        }
        std::fs::write(&input, text).unwrap();
        let out = work.path().join("blobs.moved.jsonl");
        let args = |extra: &[&str]| {
            let mut a = vec![
                "blobs".to_string(),
                "--from-grep11".into(),
                grpc(&src),
                "--from-instance".into(),
                src.instance.clone(),
                "--from".into(),
                src.url.clone(),
                "--to-grep11".into(),
                grpc(&dst),
                "--blobs".into(),
                input.display().to_string(),
            ];
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };

        step("a dry run says what would move and changes nothing");
        let a = args(&["--dry-run"]);
        let (ok, said) = output(migrate(
            &src,
            &dst,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
        assert!(ok, "{said}");
        assert!(said.contains("3 blob(s) would move"), "{said}");
        assert!(
            said.contains("cannot move hsm-bound: CKA_EXTRACTABLE is false"),
            "{said}"
        );
        assert!(said.contains("generate a new key in Strongroom"), "{said}");
        assert!(!out.exists());

        step("the run moves three blobs, checked at both ends, and reports the fixed one");
        let a = args(&[]);
        let run: Vec<&str> = a.iter().map(String::as_str).collect();
        let (ok, said) = output(migrate(&src, &dst, &run));
        assert!(ok, "{said}");
        assert!(
            said.contains("3 blob(s) moved, 0 moved by an earlier run"),
            "{said}"
        );
        assert!(said.contains("cannot move hsm-bound"), "{said}");
        let moved: HashMap<String, Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["name"].as_str().unwrap().to_string(), v)
            })
            .collect();
        assert_eq!(moved.len(), 3, "{moved:?}");
        assert_eq!(moved["orders-key"]["checked"], "same-ciphertext");
        assert_eq!(moved["signer"]["checked"], "same-public-key");
        assert_eq!(moved["signer-public"]["checked"], "same-public-key");
        assert_eq!(moved["orders-key"]["class"], "secret");
        assert!(!moved.contains_key("hsm-bound"));
        let new = |name: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(moved[name]["blob"].as_str().unwrap())
                .unwrap()
        };
        assert_ne!(new("orders-key"), movable);

        step("the moved AES key decrypts at Strongroom what the source encrypted");
        let back = gd
            .decrypt_single(common::grep11_req(
                pb::DecryptSingleRequest {
                    key: kb(&new("orders-key")),
                    mech: mech(ckm::AES_CBC_PAD, Some(&iv)),
                    ciphered: ct.clone(),
                    ..Default::default()
                },
                &dst.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .plain;
        assert_eq!(back, secret);
        step("the old blob means nothing to Strongroom: its master key is another");
        assert!(gd
            .decrypt_single(common::grep11_req(
                pb::DecryptSingleRequest {
                    key: kb(&movable),
                    mech: mech(ckm::AES_CBC_PAD, Some(&iv)),
                    ciphered: ct,
                    ..Default::default()
                },
                &dst.token,
            ))
            .await
            .is_err());

        step("the moved private key signs at Strongroom; the source's public key verifies it");
        let digest = random(32);
        let sig = gd
            .sign_single(common::grep11_req(
                pb::SignSingleRequest {
                    priv_key: kb(&new("signer")),
                    mech: mech(ckm::ECDSA, None),
                    data: digest.clone(),
                    ..Default::default()
                },
                &dst.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .signature;
        gs.verify_single(common::grep11_req(
            pb::VerifySingleRequest {
                pub_key: kb(&ec_pub),
                mech: mech(ckm::ECDSA, None),
                data: digest.clone(),
                signature: sig.clone(),
                ..Default::default()
            },
            &src.token,
        ))
        .await
        .unwrap();
        gd.verify_single(common::grep11_req(
            pb::VerifySingleRequest {
                pub_key: kb(&new("signer-public")),
                mech: mech(ckm::ECDSA, None),
                data: digest,
                signature: sig,
                ..Default::default()
            },
            &dst.token,
        ))
        .await
        .unwrap();
        step("attributes came along: the label, and the key's class and type");
        let a = gd
            .get_attribute_value(common::grep11_req(
                pb::GetAttributeValueRequest {
                    object: new("signer"),
                    attributes: t(vec![
                        (cka::LABEL, attr(false)),
                        (cka::CLASS, attr(false)),
                        (cka::KEY_TYPE, attr(false)),
                        (cka::EXTRACTABLE, attr(false)),
                    ]),
                    ..Default::default()
                },
                &dst.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .attributes;
        let one = |c: Cka| a[&c.0].one_attr.clone().unwrap();
        assert_eq!(
            one(cka::LABEL),
            pb::attribute_value::OneAttr::AttributeB(b"signer".to_vec())
        );
        assert_eq!(
            one(cka::CLASS),
            pb::attribute_value::OneAttr::AttributeI(cko::PRIVATE_KEY.0 as i64)
        );
        assert_eq!(
            one(cka::KEY_TYPE),
            pb::attribute_value::OneAttr::AttributeI(ckk::EC.0 as i64)
        );

        step("a second run moves nothing twice");
        let (ok, said) = output(migrate(&src, &dst, &run));
        assert!(ok, "{said}");
        assert!(
            said.contains("0 blob(s) moved, 3 moved by an earlier run"),
            "{said}"
        );
        assert_eq!(lines(&out), 3);

        step("bad input: a blob that is not base64 is named by its line");
        std::fs::write(&input, "{\"name\": \"x\", \"blob\": \"not base64!\"}\n").unwrap();
        let (ok, said) = output(migrate(&src, &dst, &run));
        assert!(
            !ok && said.contains("line 1: the blob is not base64"),
            "{said}"
        );
        step("a blob the source cannot open fails alone, and the run says so");
        std::fs::write(
            &input,
            format!("{}\n", json!({"name": "junk", "blob": b64(b"not a blob")})),
        )
        .unwrap();
        let (ok, said) = output(migrate(&src, &dst, &run));
        assert!(!ok && said.contains("FAILED junk"), "{said}");
        assert_eq!(lines(&out), 3);
    }
}
