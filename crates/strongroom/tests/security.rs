//! The hostile newcomer's findings, each as a regression test against a real binary: TLS
//! trust on the workstation, private files, crypto-shredding on every node of a cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------- TLS trust on the workstation

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A private CA and a server certificate it signs for `names`.
fn private_pki(names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Strongroom test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}

struct TlsNode {
    child: std::process::Child,
    port: u16,
    admin_url: String,
    dir: tempfile::TempDir,
    ca: PathBuf,
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A production-mode node (TLS required) whose certificate comes from a private CA.
async fn tls_node(names: &[&str]) -> TlsNode {
    tls_node_with(names, &[]).await
}

async fn tls_node_with(names: &[&str], extra: &[&str]) -> TlsNode {
    let dir = tempfile::tempdir().unwrap();
    let pki = private_pki(names);
    let (cp, kp, ca) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cp, &pki.cert_pem).unwrap();
    std::fs::write(&kp, &pki.key_pem).unwrap();
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, admin_port) = (free_port(), free_port());
    let child = Command::new(bin())
        .args([
            "serve",
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--admin-addr",
            &format!("127.0.0.1:{admin_port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cp)
        .arg("--tls-key")
        .arg(&kp)
        .args(extra)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let node = TlsNode {
        child,
        port,
        admin_url: format!("https://127.0.0.1:{admin_port}"),
        dir,
        ca,
    };
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && node.dir.path().join("data/admin.token").exists()
        {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("TLS node did not start");
}

/// `strongroom instance list` against the node, with extra arguments and environment.
fn instance_list(node: &TlsNode, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args([
            "instance",
            "list",
            "--admin-url",
            &node.admin_url,
            "--data-dir",
        ])
        .arg(node.dir.path().join("data"))
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("STRONGROOM_CA_FILE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    outcome(&out)
}

#[tokio::test]
async fn cli_trusts_a_private_ca_only_when_told_and_names_the_certificate_problem() {
    let node = tls_node(&["localhost", "127.0.0.1"]).await;
    let ca = node.ca.to_str().unwrap();

    let (ok, _, err) = instance_list(&node, &[], &[]);
    assert!(!ok, "an unknown CA is refused");
    assert!(
        err.contains("not signed by a CA this workstation trusts") && err.contains("--ca-file"),
        "the error names the certificate problem and the way out: {err}"
    );
    assert!(!err.contains("error sending request"), "{err}");

    let (ok, _, err) = instance_list(&node, &["--ca-file", ca], &[]);
    assert!(ok, "--ca-file: {err}");
    let (ok, _, err) = instance_list(&node, &[], &[("STRONGROOM_CA_FILE", ca)]);
    assert!(ok, "STRONGROOM_CA_FILE: {err}");
    let (ok, _, err) = instance_list(&node, &[], &[("SSL_CERT_FILE", ca)]);
    assert!(ok, "the system trust store honours SSL_CERT_FILE: {err}");

    // --insecure is never taken from the environment, and warns loudly when given.
    for var in ["STRONGROOM_INSECURE", "INSECURE"] {
        let (ok, _, _) = instance_list(&node, &[], &[(var, "true")]);
        assert!(!ok, "{var} must not turn verification off");
    }
    let (ok, _, err) = instance_list(&node, &["--insecure"], &[]);
    assert!(ok, "{err}");
    assert!(
        err.contains("WARNING") && err.contains("NOT verified"),
        "{err}"
    );

    // A CA file that is not one is refused by name.
    let junk = node.dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let (ok, _, err) = instance_list(&node, &["--ca-file", junk.to_str().unwrap()], &[]);
    assert!(
        !ok && err.contains("junk.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_as_such() {
    let node = tls_node(&["kms.example.com"]).await;
    let (ok, _, err) = instance_list(&node, &["--ca-file", node.ca.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("not valid for the host name"), "{err}");
}

// ---------------------------------------------------------------- files and dev mode

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn data_directory_and_databases_are_created_private() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("new").join("data");
    let _s = Server::start(&dir);
    assert_eq!(mode(&dir), 0o700, "data directory");
    assert_eq!(mode(&dir.join("units")), 0o700, "units directory");
    for f in [
        "keystore.db",
        "keystore-audit.db",
        "keystore.db-wal",
        "node.key",
        "admin.token",
        "dev.json",
    ] {
        let p = dir.join(f);
        assert!(p.exists(), "{f} exists");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
}

#[test]
fn dev_mode_refuses_an_address_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    for addr in [["--http-addr", "0.0.0.0:0"], ["--grpc-addr", "0.0.0.0:0"]] {
        let out = Command::new(bin())
            .args(["serve", "--dev", "--data-dir"])
            .arg(dir.path())
            .args(addr)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{addr:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not a loopback address") && err.contains("--dev-allow-non-loopback"),
            "{err}"
        );
        assert!(!dir.path().join("dev.json").exists(), "nothing served");
    }
}

// ---------------------------------------------------------------- crypto-shredding, three nodes

async fn versions_in_db(db: &str, key: &str) -> i64 {
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_versions WHERE key_id = $1")
        .bind(key)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

fn unit_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("units"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "seal.salt")
        .collect();
    v.sort();
    v
}

/// A token for the dev instance after the clock moved past the dev token's 7 days.
async fn fresh_token(s: &Server) -> Api {
    Api {
        token: token_for(s, &s.instance, &["Manager", "KeyPurge"]).await,
        ..s.client()
    }
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_keys_are_purged_and_deleted_instances_shredded_on_every_node() {
    let db = fresh_postgres_db("sr_shred").await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let args = ["--keystore-url", db.as_str(), "--jobs-every", "1"];
    let a = Server::start_with(dirs[0].path(), &args);
    for d in &dirs[1..] {
        copy_node_files(dirs[0].path(), d.path());
    }
    let b = Server::start_with(dirs[1].path(), &args);
    let mut c = Server::start_with(dirs[2].path(), &args);
    let nodes = [&a, &b, &c];

    // A key used on every node (each caches it unwrapped), then deleted.
    let api_a = a.client();
    let id = api_a.create_root("shred-me").await;
    for n in nodes {
        let r = n.client().action(&id, "wrap", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let deleted = api_a
        .call("DELETE", &format!("/api/v2/keys/{id}"), None)
        .await;
    assert!(
        deleted.status == 200 || deleted.status == 204,
        "{:?}",
        deleted.body
    );
    assert_eq!(versions_in_db(&db, &id).await, 1);

    // Day 89: nothing is purged yet.
    for n in nodes {
        n.client().advance(&n.admin_token, 89 * 86_400).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        versions_in_db(&db, &id).await,
        1,
        "not before purgeScheduledOn"
    );

    // Day 91: purged by whichever node holds the job's lease; gone on every node.
    for n in nodes {
        n.client().advance(&n.admin_token, 2 * 86_400).await;
    }
    eventually("the sealed versions leave the keystore", || {
        let db = db.clone();
        let id = id.clone();
        async move { versions_in_db(&db, &id).await == 0 }
    })
    .await;
    for n in nodes {
        let api = fresh_token(n).await;
        assert_eq!(
            api.call("GET", &format!("/api/v2/keys/{id}"), None)
                .await
                .status,
            404
        );
        let r = api
            .action(&id, "unwrap", json!({"ciphertext": "AAAA"}))
            .await;
        assert_eq!(
            r.status, 404,
            "no node serves the purged key from its cache"
        );
    }

    // Deleting the instance on node A shreds its units on B at once, and on C (down at the
    // time) when it starts again.
    let units_before = unit_files(dirs[1].path());
    assert!(!units_before.is_empty());
    assert_eq!(unit_files(dirs[2].path()), units_before);
    c.terminate();
    let r = reqwest::Client::new()
        .delete(format!("{}/admin/v1/instances/{}", a.admin_url, a.instance))
        .bearer_auth(&a.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert!(unit_files(dirs[0].path())
        .iter()
        .all(|f| !units_before.contains(f)));
    let b_dir = dirs[1].path().to_path_buf();
    eventually(
        "node B destroys its unit files of the deleted instance",
        || {
            let b_dir = b_dir.clone();
            let before = units_before.clone();
            async move { unit_files(&b_dir).iter().all(|f| !before.contains(f)) }
        },
    )
    .await;
    c = Server::start_with(dirs[2].path(), &args);
    assert!(
        unit_files(dirs[2].path())
            .iter()
            .all(|f| !units_before.contains(f)),
        "node C shreds at start-up"
    );
    drop(c);
}

/// allowedNetwork: an instance whose policy is private-only answers only on the private
/// listeners (REST and GREP11); the public ones refuse it, and setting the policy back
/// opens them again.
#[tokio::test]
async fn private_only_instances_answer_on_private_listeners_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--private-http-addr",
            "127.0.0.1:0",
            "--private-grpc-addr",
            "127.0.0.1:0",
        ],
    );
    let dev: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("dev.json")).unwrap())
            .unwrap();
    let public = s.client();
    let mut private = s.client();
    private.url = dev["private_rest_url"].as_str().unwrap().to_string();
    let private_grpc = dev["private_grpc_addr"].as_str().unwrap().to_string();
    let policy = |network: &str| {
        json!({
            "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": 1},
            "resources": [{"policy_type": "allowedNetwork",
                           "policy_data": {"enabled": true, "attributes": {"allowed_network": network}}}]
        })
    };
    let random = |addr: String, token: String| async move {
        let mut c =
            strongroom_grep11::pb::crypto_client::CryptoClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        c.generate_random(grep11_req(
            strongroom_grep11::pb::GenerateRandomRequest { len: 8 },
            &token,
        ))
        .await
    };
    let public_grpc = dev["grpc_addr"].as_str().unwrap().to_string();
    assert_eq!(public.call("GET", "/api/v2/keys", None).await.status, 200);
    let r = public
        .call(
            "PUT",
            "/api/v2/instance/policies?policy=allowedNetwork",
            Some(policy("private-only")),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    let r = public.call("GET", "/api/v2/keys", None).await;
    r.assert_refused(401, "UNAUTHORIZED_ERR");
    assert!(r.body.to_string().contains("private"), "{:?}", r.body);
    assert_eq!(private.call("GET", "/api/v2/keys", None).await.status, 200);
    let refused = random(public_grpc.clone(), s.token.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(random(private_grpc.clone(), s.token.clone()).await.is_ok());

    let r = private
        .call(
            "PUT",
            "/api/v2/instance/policies?policy=allowedNetwork",
            Some(policy("public-and-private")),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(public.call("GET", "/api/v2/keys", None).await.status, 200);
    assert!(random(public_grpc, s.token.clone()).await.is_ok());
}

// ---------------------------------------------------------------- post-quantum TLS

/// A TLS 1.3 handshake with the node's REST listener offering only `groups`: the group
/// negotiated, or the error.
async fn handshake(
    node: &TlsNode,
    groups: &[&'static dyn rustls::crypto::SupportedKxGroup],
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&node.ca).unwrap(),
    )) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = groups.to_vec();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", node.port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    match tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
    {
        Ok(mut s) => {
            let group = format!(
                "{:?}",
                s.get_ref()
                    .1
                    .negotiated_key_exchange_group()
                    .unwrap()
                    .name()
            );
            // The client's side of a TLS 1.3 handshake ends before the server's: an HTTP
            // answer shows that the server has finished (and counted) it too.
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut first = [0u8; 1];
            s.read_exact(&mut first).await.unwrap();
            Ok(group)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The node's count of handshakes on `listener` that negotiated `group` (`/metrics`).
async fn handshakes(node: &TlsNode, listener: &str, group: &str) -> u64 {
    let token = std::fs::read_to_string(node.dir.path().join("data/admin.token")).unwrap();
    // The CLI's own TLS configuration (hybrid post-quantum first).
    let trust = strongroom_client::Trust {
        ca_file: Some(node.ca.clone()),
        insecure: false,
    };
    let text = reqwest::Client::builder()
        .use_preconfigured_tls(trust.rustls_config().unwrap().unwrap())
        .build()
        .unwrap()
        .get(format!(
            "{}/metrics",
            node.admin_url.replace("127.0.0.1", "localhost")
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want =
        format!("strongroom_tls_handshakes_total{{group=\"{group}\",listener=\"{listener}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn tls_prefers_hybrid_post_quantum_keeps_classic_and_can_refuse_it() {
    use rustls::crypto::aws_lc_rs::kx_group::{X25519, X25519MLKEM768};
    let node = tls_node(&["localhost", "127.0.0.1"]).await;
    assert_eq!(
        handshake(&node, &[X25519MLKEM768, X25519]).await.unwrap(),
        "X25519MLKEM768",
        "a post-quantum client gets the hybrid group"
    );
    assert_eq!(
        handshake(&node, &[X25519]).await.unwrap(),
        "X25519",
        "older clients still connect"
    );
    assert!(handshakes(&node, "rest", "X25519MLKEM768").await >= 1);
    assert!(handshakes(&node, "rest", "X25519").await >= 1);
    let admin = handshakes(&node, "admin", "X25519").await
        + handshakes(&node, "admin", "X25519MLKEM768").await;
    assert!(
        admin >= 1,
        "the metrics requests themselves, on the admin listener"
    );

    let pq = tls_node_with(&["localhost", "127.0.0.1"], &["--tls-groups", "pq-only"]).await;
    assert_eq!(
        handshake(&pq, &[X25519MLKEM768]).await.unwrap(),
        "X25519MLKEM768"
    );
    let refused = handshake(&pq, &[X25519]).await.unwrap_err();
    assert!(
        refused.contains("HandshakeFailure") || refused.contains("handshake"),
        "{refused}"
    );
    assert_eq!(handshakes(&pq, "rest", "X25519").await, 0);
}

/// The `Max …` row of `/proc/<pid>/limits`: (soft, hard).
fn limit(pid: u32, row: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no {row} in {limits}"));
    let v: Vec<&str> = line[row.len()..].split_whitespace().collect();
    (v[0].to_string(), v[1].to_string())
}

#[test]
fn the_server_makes_no_core_dumps_and_locks_its_memory_where_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let pid = s.child.id();
    assert_eq!(
        limit(pid, "Max core file size"),
        ("0".to_string(), "0".to_string()),
        "core dumps stay on"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    // The server inherits this process's locked-memory limit.
    if limit(pid, "Max locked memory").0 == "unlimited" {
        assert!(locked_kb > 0, "memory is not locked:\n{status}");
    } else {
        assert_eq!(locked_kb, 0);
        let log = std::fs::read_to_string(
            dir.path()
                .join(format!("server-{}.log", std::process::id())),
        )
        .unwrap_or_default();
        assert!(log.contains("memory is not locked"), "{log}");
    }
}
