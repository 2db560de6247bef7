//! Starts real `strongroom serve --dev` processes on loopback for integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes
)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_strongroom"))
}

pub struct Server {
    pub child: Child,
    pub url: String,
    /// The admin listener (`/admin/v1/...`, `/metrics`).
    pub admin_url: String,
    pub instance: String,
    pub token: String,
    pub admin_token: String,
    pub dir: PathBuf,
}

impl Server {
    /// Starts a dev server with the test clock on a free port, in `dir`.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[&str]) -> Server {
        let _ = std::fs::remove_file(dir.join("dev.json"));
        let log =
            std::fs::File::create(dir.join(format!("server-{}.log", std::process::id()))).ok();
        let mut cmd = Command::new(bin());
        cmd.args([
            "serve",
            "--dev",
            "--test-clock",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null());
        // KMIP's dev adapter brings a root key into the dev instance; tests that count the
        // instance's keys or audit records start without it unless they ask for KMIP.
        if !extra.contains(&"--kmip-addr") {
            cmd.args(["--kmip-addr", "off"]);
        }
        match log {
            Some(f) => cmd.stderr(f),
            None => cmd.stderr(Stdio::null()),
        };
        Self::launch(cmd, dir)
    }

    /// Starts the previous release's server (`STRONGROOM_PREVIOUS_BIN`, built by scripts/test
    /// from the commit in `scripts/previous-release`) in dev mode, with only the flags that
    /// release has. Fails, never skips, without it.
    pub fn start_previous(dir: &Path, extra: &[&str]) -> Server {
        let bin = std::env::var("STRONGROOM_PREVIOUS_BIN").expect(
            "STRONGROOM_PREVIOUS_BIN is not set: run scripts/test, which builds the previous release",
        );
        let _ = std::fs::remove_file(dir.join("dev.json"));
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--dev",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null());
        match std::fs::File::create(dir.join("previous-server.log")) {
            Ok(f) => cmd.stderr(f),
            Err(_) => cmd.stderr(Stdio::null()),
        };
        Self::launch(cmd, dir)
    }

    /// Spawns `cmd` and waits for the `dev.json` it writes in `dir`. A release without an
    /// admin listener serves the admin API on its REST listener.
    fn launch(mut cmd: Command, dir: &Path) -> Server {
        let dev = dir.join("dev.json");
        let mut child = cmd.spawn().expect("spawn strongroom");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&dev) {
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    return Server {
                        child,
                        url: v["rest_url"].as_str().unwrap().to_string(),
                        admin_url: v["admin_url"]
                            .as_str()
                            .or(v["rest_url"].as_str())
                            .unwrap()
                            .to_string(),
                        instance: v["instance_id"].as_str().unwrap().to_string(),
                        token: v["token"].as_str().unwrap().to_string(),
                        admin_token: v["admin_token"].as_str().unwrap().to_string(),
                        dir: dir.to_path_buf(),
                    };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "server exited before it was ready ({status}); its log is in {}",
                    dir.display()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait")
    }

    pub fn client(&self) -> Api {
        Api {
            http: reqwest::Client::new(),
            url: self.url.clone(),
            admin_url: self.admin_url.clone(),
            instance: self.instance.clone(),
            token: self.token.clone(),
        }
    }
}

impl Server {
    /// The node's `/metrics` text (read with the admin token).
    pub async fn metrics(&self) -> String {
        reqwest::Client::new()
            .get(format!("{}/metrics", self.admin_url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// What the server has written to its log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("server-{}.log", std::process::id())))
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows the end of the server's log: its temporary directory goes
        // with the test.
        if std::thread::panicking() {
            let text = self.log();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("--- the last lines of {}'s server log:", self.dir.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub admin_url: String,
    pub instance: String,
    pub token: String,
}

/// A DEK that a key wrapped: the key's id, the ciphertext and the plaintext (base64).
pub type Dek = (String, String, String);

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["resources"][0]["reasons"][0]["code"]
            .as_str()
            .unwrap_or("")
    }

    /// Asserts that the answer is `status` with Key Protect's reason `code` (the whole
    /// body in the message otherwise).
    #[track_caller]
    #[allow(dead_code)]
    pub fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "{:?}",
            self.body
        );
    }
}

impl Api {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.raw(
            method,
            path,
            body.map(|b| b.to_string()),
            Some("application/json"),
            &[],
        )
        .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        ct: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {}", self.token))
            .header("bluemix-instance", &self.instance);
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            r = r.body(b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            body,
            headers,
        }
    }

    /// `POST /api/v2/keys/{key}/actions/{action}` with a JSON body.
    pub async fn action(&self, key: &str, action: &str, body: Value) -> Resp {
        let path = format!("/api/v2/keys/{key}/actions/{action}");
        self.call("POST", &path, Some(body)).await
    }

    /// Has `key` wrap a fresh DEK and asserts that it did.
    pub async fn wrap(&self, key: &str) -> Dek {
        let r = self.action(key, "wrap", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let field = |name: &str| r.body[name].as_str().unwrap().to_string();
        (key.to_string(), field("ciphertext"), field("plaintext"))
    }

    /// `POST /api/v2/keys` with one key resource.
    pub async fn create_key(&self, resource: Value) -> Resp {
        self.call("POST", "/api/v2/keys", Some(key_body(resource)))
            .await
    }

    pub async fn create_root(&self, name: &str) -> String {
        let r = self
            .create_key(json!({"name": name, "extractable": false}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["resources"][0]["id"].as_str().unwrap().to_string()
    }

    pub async fn advance(&self, admin_token: &str, secs: i64) {
        let r = self
            .http
            .post(format!("{}/admin/v1/test/clock", self.admin_url))
            .header("authorization", format!("Bearer {admin_token}"))
            .body(json!({"advance_seconds": secs}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
}

pub fn key_body(resource: Value) -> Value {
    let mut r = resource;
    r["type"] = json!("application/vnd.ibm.kms.key+json");
    json!({"metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1}, "resources": [r]})
}

/// Prepares `to` as another node of `from`'s cluster: the same node key and administrator
/// token, and a copy of every crypto unit file (each node holds its own copy of the units).
pub fn copy_node_files(from: &Path, to: &Path) {
    for f in ["node.key", "admin.token"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    std::fs::create_dir_all(to.join("units")).unwrap();
    for e in std::fs::read_dir(from.join("units")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("units").join(e.file_name())).unwrap();
    }
}

/// A new, empty database on the test PostgreSQL (`STRONGROOM_TEST_POSTGRES_URL`, set by
/// scripts/test); its URL. Fails, never skips, without PostgreSQL.
pub async fn fresh_postgres_db(prefix: &str) -> String {
    let url = std::env::var("STRONGROOM_TEST_POSTGRES_URL").expect(
        "STRONGROOM_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL on loopback",
    );
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    format!("{}/{name}", url.rsplit_once('/').unwrap().0)
}

/// A GREP11 client on a dev server's gRPC listener (from `dev.json`).
pub async fn grep11_client(
    s: &Server,
) -> strongroom_grep11::pb::crypto_client::CryptoClient<tonic::transport::Channel> {
    let dev: Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("dev.json")).unwrap()).unwrap();
    let addr = dev["grpc_addr"].as_str().expect("dev.json names grpc_addr");
    strongroom_grep11::pb::crypto_client::CryptoClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

/// A GREP11 request carrying `authorization: Bearer <token>`.
pub fn grep11_req<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// Names the step of a scenario test that starts here. The name goes to the test's
/// output, so a failing assertion is read under the step it broke.
#[allow(dead_code)]
pub fn step(name: &str) {
    eprintln!("---- step: {name}");
}

/// The status `grpc.health.v1.Health/Check` gives for `service` on the server's gRPC
/// listener (1 = SERVING, 2 = NOT_SERVING), or the call's error.
#[allow(dead_code)]
pub async fn grpc_health(s: &Server, service: &str) -> Result<i32, tonic::Status> {
    let dev: Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("dev.json")).unwrap()).unwrap();
    let addr = dev["grpc_addr"]
        .as_str()
        .expect("dev.json names the gRPC address");
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut c = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = c
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_string(),
        })
        .await?;
    Ok(r.into_inner().status)
}

/// Polls the health of `service` until it is `want`, for up to `secs` seconds.
#[allow(dead_code)]
pub async fn await_grpc_health(s: &Server, service: &str, want: i32, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if grpc_health(s, service).await.ok() == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// POSTs `body` to the admin API path with the node's admin token; the JSON answer.
#[allow(dead_code)]
pub async fn admin_post(s: &Server, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.admin_url))
        .header("authorization", format!("Bearer {}", s.admin_token))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// A bearer token for a new API key of `instance` with `roles`.
#[allow(dead_code)]
pub async fn token_for(s: &Server, instance: &str, roles: &[&str]) -> String {
    let key = admin_post(
        s,
        &format!("/admin/v1/instances/{instance}/api_keys"),
        json!({"name": "test", "roles": roles}),
    )
    .await;
    exchange_apikey(&s.url, key["apikey"].as_str().unwrap()).await
}

/// A new API key of `instance` with `roles`: its id and a bearer token exchanged for it.
#[allow(dead_code)]
pub async fn api_key_and_token(s: &Server, instance: &str, roles: &[&str]) -> (String, String) {
    let key = admin_post(
        s,
        &format!("/admin/v1/instances/{instance}/api_keys"),
        json!({"name": "test", "roles": roles}),
    )
    .await;
    let token = exchange_apikey(&s.url, key["apikey"].as_str().unwrap()).await;
    (key["id"].as_str().unwrap().to_string(), token)
}

/// Deletes an API key of `instance` through the node's admin API.
#[allow(dead_code)]
pub async fn delete_api_key(s: &Server, instance: &str, id: &str) {
    let r = reqwest::Client::new()
        .delete(format!(
            "{}/admin/v1/instances/{instance}/api_keys/{id}",
            s.admin_url
        ))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "deleting API key {id}: {}",
        r.status()
    );
}

/// Exchanges an API key for a bearer token at the node's `/identity/token`.
pub async fn exchange_apikey(url: &str, apikey: &str) -> String {
    let tok: Value = reqwest::Client::new()
        .post(format!("{url}/identity/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey={apikey}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tok["access_token"].as_str().unwrap().to_string()
}

/// A PostgreSQL of the test's own (scripts/postgres), listening on `listen` (comma-separated
/// loopback addresses), so that the test can stop it or cut it off. Stopped when dropped.
pub struct OwnPostgres {
    /// The server's directory (its data, log and `port` file).
    pub pg: PathBuf,
    /// `postgres://…@127.0.0.1:<port>/strongroom_test`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    pub fn start(prefix: &str, listen: &str) -> OwnPostgres {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // scripts/postgres runs the server as the postgres user.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let pg = dir.path().join("pg");
        let out = output_ok(
            Command::new(Self::script())
                .arg("start")
                .arg(&pg)
                .env("PG_LISTEN", listen),
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        OwnPostgres { pg, url, _dir: dir }
    }

    pub fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres")
    }

    /// `scripts/postgres stop|resume`.
    pub fn run(&self, what: &str) {
        let ok = Command::new(Self::script())
            .arg(what)
            .arg(&self.pg)
            .status()
            .unwrap()
            .success();
        assert!(ok, "scripts/postgres {what}");
    }

    /// The port it listens on.
    pub fn port(&self) -> String {
        std::fs::read_to_string(self.pg.join("port"))
            .unwrap()
            .trim()
            .to_string()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(Self::script())
            .arg("stop")
            .arg(&self.pg)
            .status();
    }
}

/// What a finished command wrote, as text: its stdout, then its stderr.
#[allow(dead_code)]
pub fn text_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Whether a finished command succeeded, with its stdout and its stderr as text.
#[allow(dead_code)]
pub fn outcome(out: &std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` and asserts that it succeeded (its stderr in the message); its output.
pub fn output_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Debian's SoftHSM2 module (the smart-card stand-in and the PKCS#11 baseline).
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 configuration whose tokens live in `dir/tokens` (errors only in its log);
/// returns its path, for `SOFTHSM2_CONF`. SoftHSM2 must be installed.
pub fn softhsm_conf(dir: &Path) -> PathBuf {
    assert!(
        Path::new(SOFTHSM).exists(),
        "SoftHSM2 (Debian's softhsm2 package) is required; scripts/test installs it"
    );
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    conf
}
