//! Administrators keep their HPCS identities: keys an HPCS-style signing service holds
//! (`TKE_SIGNSERV_URL`, `SIGNSERVKEYS`): a small server here speaks the protocol IBM
//! documents (GET /keys/:name, POST /sign/:name, the key's token in `Authorization`).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::*;

struct Service {
    /// name → (token, PKCS#8, raw public key)
    keys: HashMap<String, (String, Vec<u8>, Vec<u8>)>,
    signed: AtomicU64,
    inputs: Mutex<Vec<String>>,
}

type Shared = Arc<Service>;

fn der_int(v: &[u8]) -> Vec<u8> {
    let mut v = v
        .iter()
        .skip_while(|&&b| b == 0)
        .copied()
        .collect::<Vec<_>>();
    if v.first().is_none_or(|&b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

fn authorized(s: &Service, name: &str, h: &HeaderMap) -> Result<(Vec<u8>, Vec<u8>), StatusCode> {
    let (token, pkcs8, public) = s.keys.get(name).ok_or(StatusCode::NOT_FOUND)?;
    match h.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(t) if t == token => Ok((pkcs8.clone(), public.clone())),
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

async fn public_key(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
    h: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    let (_, public) = authorized(&s, &name, &h)?;
    // SEQUENCE { INTEGER X, INTEGER Y } of the uncompressed point 04 || X || Y.
    let mut body = der_int(&public[1..67]);
    body.extend(der_int(&public[67..]));
    let mut der = vec![0x30, 0x81, body.len() as u8];
    der.extend(body);
    Ok(Json(json!({"publickey": B64.encode(der)})))
}

async fn sign(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
    h: HeaderMap,
    Json(req): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    let (pkcs8, _) = authorized(&s, &name, &h)?;
    if req["hash_algorithm"] != json!("sha2-512") {
        return Err(StatusCode::BAD_REQUEST);
    }
    let input = B64
        .decode(req["input"].as_str().ok_or(StatusCode::BAD_REQUEST)?)
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    // "svc-liar" signs with another key than the one it publishes.
    let pkcs8 = if name == "svc-liar" {
        AwsLcProvider
            .sig_generate(SigAlg::EcdsaP521Sha512)
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
            .0
            .to_vec()
    } else {
        pkcs8
    };
    let sig = AwsLcProvider
        .sig_sign(SigAlg::EcdsaP521Sha512, &pkcs8, &input)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    s.signed.fetch_add(1, Ordering::SeqCst);
    s.inputs.lock().unwrap().push(name);
    Ok(Json(json!({"signature": B64.encode(sig)})))
}

async fn start_service(names: &[(&str, &str)]) -> (String, Shared) {
    let mut keys = HashMap::new();
    for (name, token) in names {
        let (pkcs8, public) = AwsLcProvider.sig_generate(SigAlg::EcdsaP521Sha512).unwrap();
        keys.insert(
            name.to_string(),
            (token.to_string(), pkcs8.to_vec(), public),
        );
    }
    let shared = Arc::new(Service {
        keys,
        signed: AtomicU64::new(0),
        inputs: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/keys/{name}", get(public_key))
        .route("/sign/{name}", post(sign))
        .with_state(shared.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, shared)
}

impl Ceremony {
    fn with_service(&self, url: &str, args: &[&str]) -> (bool, String, String) {
        self.tke_with(args, &[("TKE_SIGNSERV_URL", url)])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_keys_held_by_a_signing_service_sign_ceremony_commands() {
    let c = Ceremony::new("1", "0");
    let (url, service) = start_service(&[
        ("svc-one", "token-1"),
        ("svc-two", "token-2"),
        ("svc-liar", "token-3"),
    ])
    .await;
    // One token in SIGNSERVKEYS, the other from the passwords file (IBM prompts for it).
    std::fs::write(
        c.ws.join("SIGNSERVKEYS"),
        r#"[{"key":"svc-one","token":"token-1"},{"key":"svc-two"},{"key":"svc-liar","token":"token-3"}]"#,
    )
    .unwrap();
    let good = std::fs::read_to_string(&c.pw).unwrap() + "svc-two.signserv: token-2\n";
    std::fs::write(&c.pw, &good).unwrap();
    let ok = |args: &[&str]| {
        let (ok, out, err) = c.with_service(&url, args);
        assert!(ok, "{args:?} failed:\n{err}\n{out}");
        out
    };

    step("the service's keys become administrators; the service signs their proofs");
    for name in ["svc-one", "svc-two"] {
        let out = ok(&["cryptounit-admin-add", name]);
        assert!(
            out.contains(&format!("administrator {name}"))
                && out.contains(&format!("key held by the signing service {url}")),
            "{out}"
        );
    }
    assert_eq!(service.signed.load(Ordering::SeqCst), 2);
    let out = ok(&["cryptounit-admin-add", "svc-one", "--output", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signing_service"], json!(url), "{out}");
    assert_eq!(c.units()[0]["admins"].as_array().map(Vec::len), Some(2));

    step("a proof signed with another key than the service publishes is refused before it is sent");
    let (refused, out, err) = c.with_service(&url, &["cryptounit-admin-add", "svc-liar"]);
    assert!(
        !refused && err.contains("signature of key svc-liar does not verify with its public key"),
        "{err}\n{out}"
    );
    assert_eq!(c.units()[0]["admins"].as_array().map(Vec::len), Some(2));
    ok(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "2",
    ]);
    let units = c.units();
    assert_eq!(units[0]["signature_threshold"], json!(2));
    assert_eq!(units[0]["admins"].as_array().map(Vec::len), Some(2));

    step("a command that needs two signatures is signed by both service keys");
    let before = service.signed.load(Ordering::SeqCst);
    ok(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
    ]);
    assert_eq!(service.signed.load(Ordering::SeqCst), before + 2);
    assert_eq!(c.units()[0]["revocation_threshold"], json!(1));
    let used: Vec<String> = service.inputs.lock().unwrap().clone();
    assert!(used.contains(&"svc-one".into()) && used.contains(&"svc-two".into()));

    step("a wrong token is refused by the service and changes nothing");
    let before = c.units();
    std::fs::write(&c.pw, good.replace("token-2", "token-x")).unwrap();
    let (ok2, _, err) = c.with_service(
        &url,
        &[
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "1",
            "--revocation-threshold",
            "1",
        ],
    );
    assert!(
        !ok2 && err.contains("401") && err.contains("token"),
        "{err}"
    );
    assert_eq!(c.units(), before);
}

/// HPCS's protection of a TKE file's secret: a random 32-byte `seaSalt`, and AES-256-GCM
/// under PBKDF2-HMAC-SHA-256 (4,096 iterations) of the password over it, as `nonce ‖
/// ciphertext ‖ tag`. Returns the salt and that `enckey`.
fn hpcs_seal(password: &str, mut secret: Vec<u8>) -> ([u8; 32], Vec<u8>) {
    let p = AwsLcProvider;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 12];
    p.fill_random(&mut salt).unwrap();
    p.fill_random(&mut nonce).unwrap();
    let mut k = [0u8; 32];
    p.pbkdf2_hmac_sha256(password.as_bytes(), &salt, 4096, &mut k)
        .unwrap();
    p.aead_key(AeadAlg::AesGcm, &k)
        .unwrap()
        .seal(&nonce, &[], &mut secret)
        .unwrap();
    let mut enc = nonce.to_vec();
    enc.extend(secret);
    (salt, enc)
}

/// An HPCS TKE CLI signature key file (spec/ceremony.md §3.8) for a new P-521 key:
/// PBKDF2-HMAC-SHA-256 (4,096 iterations) of the password over `seaSalt`, and AES-256-GCM
/// (`nonce ‖ ciphertext ‖ tag`) of the PEM private key. Returns the file and the key's SKI.
fn hpcs_sigkey_file(password: &str) -> (String, String) {
    let p = AwsLcProvider;
    let (pkcs8, public) = p.sig_generate(SigAlg::EcdsaP521Sha512).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        B64.encode(&pkcs8)
    );
    let (salt, enc) = hpcs_seal(password, pem.into_bytes());
    let ski = hex::encode(strongroom_engine::admin::ski_of(
        &p,
        SigAlg::EcdsaP521Sha512,
        &public,
    ));
    let file = json!({
        "keyType": "p521ec",
        "ski": ski.to_uppercase(),
        "seaSalt": hex::encode(salt),
        "enckey": hex::encode(enc),
    });
    (file.to_string(), ski)
}

#[tokio::test]
async fn an_hpcs_signature_key_file_is_re_protected_on_first_use_and_signs() {
    let c = Ceremony::new("1", "0");
    let (file, ski) = hpcs_sigkey_file("hpcs-password-1");
    let path = c.ws.join("hpcs-admin.sigkey");
    std::fs::write(&path, &file).unwrap();
    let good = std::fs::read_to_string(&c.pw).unwrap();

    step("the listing shows it as an HPCS file");
    let out = c.ok(&["sigkeys"]);
    assert!(
        out.contains("HPCS file") && out.contains(&ski.to_uppercase()),
        "{out}"
    );

    step("a wrong password is refused and the file stays as it was");
    std::fs::write(
        &c.pw,
        format!("{good}hpcs-admin.sigkey: not-the-password\n"),
    )
    .unwrap();
    c.fails(&["cryptounit-admin-add", "hpcs-admin"], "wrong password");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), file);

    step("with its password it is re-protected, installed, and signs");
    std::fs::write(&c.pw, format!("{good}hpcs-admin.sigkey: hpcs-password-1\n")).unwrap();
    let out = c.ok(&["cryptounit-admin-add", "hpcs-admin"]);
    assert!(out.contains(&ski), "{out}");
    let converted: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(converted["format"], json!("strongroom-sigkey/1"));
    assert_eq!(converted["kdf"]["alg"], json!("argon2id"));
    assert_eq!(
        std::fs::read_to_string(c.ws.join("hpcs-admin.sigkey.hpcs")).unwrap(),
        file
    );
    c.ok(&["sigkey-sel", "hpcs-admin"]);
    c.ok(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "1",
        "--revocation-threshold",
        "1",
    ]);
    let u = &c.units()[0];
    assert_eq!(u["signature_threshold"], json!(1));
    assert!(u["admins"].to_string().contains(&ski), "{u}");
}

/// An HPCS TKE CLI key part file, in the layout spec/ceremony.md §3.8 infers for it: the
/// signature key files' scheme (PBKDF2-HMAC-SHA-256 over `seaSalt`, AES-256-GCM of the
/// secret in `enckey`) holding the 32-byte part, raw or as 64 hex digits.
fn hpcs_part_file(password: &str, part: &[u8; 32], as_hex: bool, description: &str) -> String {
    let secret = if as_hex {
        hex::encode(part).into_bytes()
    } else {
        part.to_vec()
    };
    let (salt, enc) = hpcs_seal(password, secret);
    json!({
        "seaSalt": hex::encode(salt),
        "enckey": hex::encode(enc),
        "description": description,
    })
    .to_string()
}

#[tokio::test]
async fn hpcs_key_part_files_are_re_protected_and_load_the_master_key() {
    let c = Ceremony::new("1", "0");
    let p = AwsLcProvider;
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    p.fill_random(&mut a).unwrap();
    p.fill_random(&mut b).unwrap();
    let file_a = hpcs_part_file("custodian-a-pw", &a, false, "custodian-a");
    std::fs::write(c.ws.join("hpcs-a.mkpart"), &file_a).unwrap();
    std::fs::write(
        c.ws.join("hpcs-b.mkpart"),
        hpcs_part_file("custodian-b-pw", &b, true, "custodian-b"),
    )
    .unwrap();
    let good = std::fs::read_to_string(&c.pw).unwrap();

    step("the listing shows both as HPCS files");
    let out = c.ok(&["mks"]);
    assert_eq!(out.matches("HPCS file").count(), 2, "{out}");

    c.admins_alice_and_bob();

    step("a wrong password is refused, the file stays as it was, nothing is loaded");
    std::fs::write(
        &c.pw,
        format!("{good}hpcs-a.mkpart: not-it\nhpcs-b.mkpart: custodian-b-pw\n"),
    )
    .unwrap();
    let before = c.units();
    c.fails(
        &["cryptounit-mk-load", "hpcs-a", "hpcs-b"],
        "wrong password",
    );
    assert_eq!(
        std::fs::read_to_string(c.ws.join("hpcs-a.mkpart")).unwrap(),
        file_a
    );
    assert_eq!(c.units(), before);

    step("with their passwords both are re-protected and load the master key a ⊕ b");
    std::fs::write(
        &c.pw,
        format!("{good}hpcs-a.mkpart: custodian-a-pw\nhpcs-b.mkpart: custodian-b-pw\n"),
    )
    .unwrap();
    c.ok(&["cryptounit-mk-load", "hpcs-a", "hpcs-b"]);
    c.ok(&["cryptounit-mk-commit"]);
    c.ok(&["cryptounit-mk-setimm", "--yes"]);
    let mut mk = [0u8; 32];
    for i in 0..32 {
        mk[i] = a[i] ^ b[i];
    }
    let vp = strongroom_engine::admin::vp_of(&p, &mk).unwrap().to_hex();
    assert_eq!(c.units()[0]["current"]["vp"].as_str().unwrap(), vp);
    let converted: Value =
        serde_json::from_str(&std::fs::read_to_string(c.ws.join("hpcs-b.mkpart")).unwrap())
            .unwrap();
    assert_eq!(converted["format"], json!("strongroom-mkpart/1"));
    assert_eq!(converted["name"], json!("custodian-b"));
    assert_eq!(
        converted["part_vp"],
        json!(strongroom_engine::admin::part_vp_of(&p, &b)
            .unwrap()
            .to_hex())
    );
    assert_eq!(
        std::fs::read_to_string(c.ws.join("hpcs-a.mkpart.hpcs")).unwrap(),
        file_a
    );
    let out = c.ok(&["mks"]);
    assert!(
        out.contains("custodian-b") && !out.contains("HPCS file"),
        "{out}"
    );

    step("a signature key file named as a part is refused with what to do");
    let (sigkey, _) = hpcs_sigkey_file("pw-of-a-sigkey");
    std::fs::write(c.ws.join("wrong.mkpart"), sigkey).unwrap();
    std::fs::write(&c.pw, format!("{good}wrong.mkpart: pw-of-a-sigkey\n")).unwrap();
    c.fails(
        &["cryptounit-mk-load", "wrong", "hpcs-b"],
        "not a key part file",
    );
}
