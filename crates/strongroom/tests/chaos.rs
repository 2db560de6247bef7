//! Faults no user reports until it is too late, made on purpose: the disk filling up under
//! SQLite (a 3 MiB tmpfs mounted in a user and mount namespace the test creates, so no
//! privilege is needed and nothing outside sees it), and a node cut off from PostgreSQL under
//! load (a network namespace of the test's own, with nftables; root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Inside the namespace: mount the small filesystem, keep 1 MiB of it in a filler file,
/// serve from it, hand dev.json out, free the filler on request, and at the end stop the
/// server and read the keystore back (a backup archive and the audit chain's verification,
/// written outside).
const SCRIPT: &str = r#"
set -eu
mount -t tmpfs -o size=3m tmpfs "$MNT"
head -c 1048576 /dev/zero > "$MNT/filler"
"$BIN" serve --dev --data-dir "$MNT/d" --http-addr 127.0.0.1:0 --kmip-addr off \
  --admin-addr off 2>"$OUT/server.log" &
pid=$!
until [ -s "$MNT/d/dev.json" ]; do sleep 0.05; done
cp "$MNT/d/dev.json" "$OUT/dev.json"
until [ -e "$OUT/free" ]; do sleep 0.05; done
rm "$MNT/filler"
touch "$OUT/freed"
until [ -e "$OUT/stop" ]; do sleep 0.05; done
kill -TERM "$pid"
wait "$pid" || true
"$BIN" backup create --dir "$OUT/backup" --data-dir "$MNT/d" --output json > "$OUT/backup.json"
"$BIN" audit verify --data-dir "$MNT/d" --output json > "$OUT/audit.json"
touch "$OUT/done"
"#;

fn wait_for(p: &Path, child: &mut Child) {
    let start = Instant::now();
    while !p.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the namespace script exited ({status}) before {}",
                p.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_sqlite_answers_503_and_loses_nothing() {
    let out = tempfile::tempdir().unwrap();
    let mnt = out.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", SCRIPT])
        .env("MNT", &mnt)
        .env("OUT", out.path())
        .env("BIN", bin())
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) runs the server in its own mount namespace");
    wait_for(&out.path().join("dev.json"), &mut child);
    let dev: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("dev.json")).unwrap())
            .unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        url: dev["rest_url"].as_str().unwrap().to_string(),
        admin_url: String::new(),
        instance: dev["instance_id"].as_str().unwrap().to_string(),
        token: dev["token"].as_str().unwrap().to_string(),
    };
    let description = "x".repeat(230);
    let create = |n: usize| {
        let api = api.clone();
        let body = key_body(json!({"name": format!("k{n}"), "description": description}));
        async move { api.call("POST", "/api/v2/keys", Some(body)).await }
    };

    step("Fill the disk: keys are created until the keystore cannot write; then 503.");
    let mut acked = Vec::new();
    let full = loop {
        let r = create(acked.len()).await;
        if r.status != 201 {
            break r;
        }
        acked.push(r.body["resources"][0]["id"].as_str().unwrap().to_string());
        assert!(acked.len() < 5000, "the disk never filled");
    };
    assert!(acked.len() >= 10, "only {} keys fit", acked.len());
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(full.code(), "SERVICE_UNAVAILABLE_ERR");
    for _ in 0..5 {
        let r = create(usize::MAX).await;
        assert_eq!(r.status, 503, "still full: {}", r.body);
    }
    // No answer of the full node is a 500, and none gives a secret away.
    let r = api.call("GET", "/api/v2/keys?limit=5", None).await;
    assert!(matches!(r.status, 200 | 503), "{}", r.status);
    assert!(!r.body.to_string().contains("payload"));

    step("Free the space: the node recovers by itself.");
    std::fs::write(out.path().join("free"), b"").unwrap();
    wait_for(&out.path().join("freed"), &mut child);
    let start = Instant::now();
    let recovered = loop {
        let r = create(1_000_000).await;
        if r.status == 201 {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the node did not recover: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    acked.push(
        recovered.body["resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );

    step("Every acknowledged key is there and works.");
    let mut missing = Vec::new();
    for (i, id) in acked.iter().enumerate() {
        let r = api
            .call("GET", &format!("/api/v2/keys/{id}/metadata"), None)
            .await;
        if r.status != 200 {
            missing.push((i, r.status));
        }
    }
    assert!(
        missing.is_empty(),
        "of {} acknowledged keys, lost: {missing:?}",
        acked.len()
    );
    let r = api
        .call(
            "POST",
            &format!("/api/v2/keys/{}/actions/wrap", acked[0]),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    step("Stopped, the keystore on that disk holds them all, and the audit chain verifies.");
    std::fs::write(out.path().join("stop"), b"").unwrap();
    wait_for(&out.path().join("done"), &mut child);
    assert!(child.wait().unwrap().success());
    let backup: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("backup.json")).unwrap())
            .unwrap();
    // Every acknowledged key is in the keystore on that disk. (A create answered 503 may
    // have committed its key before the audit record failed to: such a key is there too,
    // unacknowledged; a client that retries makes a second key, never loses one.)
    let archive = std::fs::read_to_string(backup["file"].as_str().unwrap()).unwrap();
    let stored: std::collections::HashSet<String> = archive
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "key")
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged keys missing after the restart: {lost:?}"
    );
    assert!(stored.len() >= acked.len());
    let audit: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("audit.json")).unwrap())
            .unwrap();
    assert_eq!(audit["ok"], json!(true), "{audit}");
}

/// Set in the copy of this test binary that runs inside the network namespace.
const IN_NETNS: &str = "STRONGROOM_CHAOS_IN_NETNS";

/// A node cut off from PostgreSQL under load, and so from its peers (the nodes of a cluster
/// speak only through the keystore). The test runs itself again in a network namespace of
/// its own (`unshare --net`: loopback only, nothing outside sees it), starts PostgreSQL
/// there on 127.0.0.1 and 127.0.0.2, node A on the second address and node B on the first,
/// and cuts A off with nftables (its packets to and from the database dropped, not
/// refused: a partition, not a stopped server). B serves on; A answers within seconds
/// instead of hanging; a key disabled on B while A is cut off is refused on A once it is
/// back; every acknowledged creation on either node is there at the end.
#[test]
fn a_node_cut_off_from_postgresql_fails_fast_loses_nothing_and_catches_up() {
    if std::env::var_os(IN_NETNS).is_some() {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(partition_in_this_namespace());
        return;
    }
    let root = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "a network namespace with nftables needs root (scripts/test runs as root)"
    );
    let nft = Command::new("nft").arg("--version").output();
    assert!(
        nft.is_ok_and(|o| o.status.success()),
        "nft is missing: scripts/test installs Debian's nftables"
    );
    let out = Command::new("unshare")
        .args(["--net", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_node_cut_off_from_postgresql_fails_fast_loses_nothing_and_catches_up",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(IN_NETNS, "1")
        .output()
        .expect("unshare (util-linux)");
    let text = text_of(&out);
    println!("{text}");
    assert!(
        out.status.success(),
        "the partition scenario failed:\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "the scenario ran in the namespace:\n{text}"
    );
}

fn sh(cmd: &str, args: &[&str]) {
    output_ok(Command::new(cmd).args(args));
}

/// Drops node A's packets to and from PostgreSQL (`on`), or lets them through again.
fn cut_off(port: &str, on: bool) {
    if on {
        sh("nft", &["add", "table", "inet", "chaos"]);
        sh(
            "nft",
            &[
                "add",
                "chain",
                "inet",
                "chaos",
                "input",
                "{ type filter hook input priority 0; }",
            ],
        );
        for rule in [
            format!("ip daddr 127.0.0.2 tcp dport {port} drop"),
            format!("ip saddr 127.0.0.2 tcp sport {port} drop"),
        ] {
            let mut args = vec!["add", "rule", "inet", "chaos", "input"];
            args.extend(rule.split(' '));
            sh("nft", &args);
        }
    } else {
        sh("nft", &["delete", "table", "inet", "chaos"]);
    }
}

/// Asserts that every acknowledged key is readable, asking the nodes of `apis` in turn.
async fn assert_none_lost(apis: &[&Api], acked: &[String]) {
    let mut lost = Vec::new();
    for (i, id) in acked.iter().enumerate() {
        let r = apis[i % apis.len()]
            .call("GET", &format!("/api/v2/keys/{id}/metadata"), None)
            .await;
        if r.status != 200 {
            lost.push((id.clone(), r.status));
        }
    }
    assert!(
        lost.is_empty(),
        "of {} acknowledged keys, lost: {lost:?}",
        acked.len()
    );
}

/// What a load client saw: the keys whose creation was acknowledged, and the slowest answer.
#[derive(Default)]
struct Seen {
    acked: Vec<String>,
    refused: usize,
    slowest: Duration,
}

/// Creates keys on `api` until `stop`, one request at a time.
fn load(
    api: Api,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            let body = key_body(json!({"name": format!("load-{n}")}));
            let started = Instant::now();
            let r = api.call("POST", "/api/v2/keys", Some(body)).await;
            seen.slowest = seen.slowest.max(started.elapsed());
            match r.status {
                201 => seen
                    .acked
                    .push(r.body["resources"][0]["id"].as_str().unwrap().to_string()),
                503 => seen.refused += 1,
                other => panic!("unexpected answer {other}: {}", r.body),
            }
        }
        seen
    })
}

async fn partition_in_this_namespace() {
    sh("ip", &["link", "set", "lo", "up"]);
    let pg = OwnPostgres::start("sr-netns-pg", "127.0.0.1,127.0.0.2");
    let url_b = pg.url.clone();
    let url_a = url_b.replace("127.0.0.1", "127.0.0.2");
    let port = pg.port();

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start_with(dir_a.path(), &["--keystore-url", &url_a]);
    copy_node_files(dir_a.path(), dir_b.path());
    let b = Server::start_with(dir_b.path(), &["--keystore-url", &url_b]);
    let (api_a, api_b) = (a.client(), b.client());
    let shared = api_a.create_root("shared").await;
    let (_, ct, pt) = api_b.wrap(&shared).await;
    assert_eq!(api_a.wrap(&shared).await.2.len(), pt.len());

    step("Both nodes under load; then node A is cut off from the database.");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load_a = load(api_a.clone(), stop.clone());
    let load_b = load(api_b.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    cut_off(&port, true);
    let cut_at = Instant::now();

    step("Cut off, A answers within seconds (503, never a hang); B serves on, and disables the shared key.");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = api_b.action(&shared, "disable", json!({})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let started = Instant::now();
    let r = api_a.create_key(json!({"name": "cut-off"})).await;
    assert_eq!(
        (r.status, r.code()),
        (503, "SERVICE_UNAVAILABLE_ERR"),
        "{}",
        r.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "A answered in {:?}",
        started.elapsed()
    );
    // Once A knows the database is away, it answers in a few seconds.
    let started = Instant::now();
    let r = api_a
        .call("GET", &format!("/api/v2/keys/{shared}/metadata"), None)
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "A answered in {:?}",
        started.elapsed()
    );
    // Cut off, A cannot write the audit record a wrap needs: it refuses rather than serve a
    // key from its cache that may have changed meanwhile (as this one has).
    let during = api_a.action(&shared, "wrap", json!({})).await;
    assert_eq!(during.status, 503, "{}", during.body);
    while cut_at.elapsed() < Duration::from_secs(25) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    step("The partition heals: A catches up by itself.");
    cut_off(&port, false);
    let healed = Instant::now();
    let back = loop {
        let r = api_a.create_key(json!({"name": "healed"})).await;
        if r.status == 201 {
            break r;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(60),
            "A did not recover: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!(
        "A recovered {:?} after the partition healed",
        healed.elapsed()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (seen_a, seen_b) = (load_a.await.unwrap(), load_b.await.unwrap());
    println!(
        "A: {} acknowledged, {} refused, slowest {:?}; B: {} acknowledged, {} refused, slowest {:?}",
        seen_a.acked.len(),
        seen_a.refused,
        seen_a.slowest,
        seen_b.acked.len(),
        seen_b.refused,
        seen_b.slowest
    );
    assert!(seen_a.refused > 0, "A refused while cut off");
    assert!(
        seen_a.slowest < Duration::from_secs(15),
        "A never hung: {:?}",
        seen_a.slowest
    );
    assert_eq!(seen_b.refused, 0, "B served on");
    assert!(seen_b.acked.len() > seen_a.acked.len());

    step("Back, A knows what changed while it was cut off: the key B disabled is refused.");
    for (what, r) in [
        ("wrap", api_a.action(&shared, "wrap", json!({})).await),
        (
            "unwrap",
            api_a
                .action(&shared, "unwrap", json!({"ciphertext": ct}))
                .await,
        ),
    ] {
        assert_eq!(
            (r.status, r.code()),
            (409, "KEY_ACTION_INVALID_STATE_ERR"),
            "{what}: {}",
            r.body
        );
    }

    step("Every acknowledged creation, on either node, is in the keystore.");
    let mut acked = seen_a.acked;
    acked.extend(seen_b.acked);
    acked.push(
        back.body["resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_none_lost(&[&api_b], &acked).await;
}

/// A pg_auto_failover formation of the test's own (`scripts/postgres formation`): a monitor,
/// a primary and its synchronous standby, on loopback.
struct Formation {
    dir: std::path::PathBuf,
    /// The multi-host URL of both nodes.
    url: String,
    _tmp: tempfile::TempDir,
}

impl Formation {
    fn start() -> Formation {
        let tmp = tempfile::Builder::new()
            .prefix("sr-formation")
            .tempdir()
            .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            // scripts/postgres runs the servers as the postgres user.
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let dir = tmp.path().join("f");
        let out = output_ok(
            Command::new(OwnPostgres::script())
                .arg("formation")
                .arg(&dir),
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(url.contains(','), "a multi-host URL: {url}");
        Formation {
            dir,
            url,
            _tmp: tmp,
        }
    }

    fn script(&self, what: &str) -> String {
        let out = output_ok(Command::new(OwnPostgres::script()).arg(what).arg(&self.dir));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        let _ = Command::new(OwnPostgres::script())
            .arg("formation-stop")
            .arg(&self.dir)
            .status();
    }
}

/// Creates keys on `api` until the next creation after `since` succeeds; how long that took.
async fn until_it_writes(api: &Api, since: Instant, what: &str) -> Duration {
    loop {
        let r = api.create_key(json!({"name": what})).await;
        if r.status == 201 {
            return since.elapsed();
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            since.elapsed() < Duration::from_secs(90),
            "{what}: no write within 90 s of the crash: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A planned switchover (the old primary stays up, read-only), then a crash of the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failing_over_to_its_standby_under_load_loses_no_acknowledged_write() {
    let f = Formation::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start_with(dir_a.path(), &["--keystore-url", &f.url]);
    copy_node_files(dir_a.path(), dir_b.path());
    let b = Server::start_with(dir_b.path(), &["--keystore-url", &f.url]);
    let (api_a, api_b) = (a.client(), b.client());
    let shared = api_a.create_root("shared").await;
    let (_, ct, pt) = api_b.wrap(&shared).await;
    let first = f.script("primary");
    // The formation replicates synchronously: nothing to warn about.
    for s in [&a, &b] {
        assert!(
            !s.log().contains("replicates asynchronously"),
            "{}",
            s.log()
        );
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loads = [
        load(api_a.clone(), stop.clone()),
        load(api_a.clone(), stop.clone()),
        load(api_b.clone(), stop.clone()),
        load(api_b.clone(), stop.clone()),
    ];

    step("Two nodes under load; a planned switchover demotes the primary to a standby.");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let switched_at = Instant::now();
    let second = f.script("switchover");
    assert_ne!(second, first, "the standby was promoted");
    // The old primary is alive and read-only now: the nodes' connections to it must go.
    let (took_a, took_b) = tokio::join!(
        until_it_writes(&api_a, switched_at, "after-switchover-a"),
        until_it_writes(&api_b, switched_at, "after-switchover-b")
    );
    println!("switchover {first} -> {second}: A wrote again after {took_a:?}, B after {took_b:?} (from the start of the switchover)");

    step("Under load again, the new primary crashes (SIGKILL, server and keeper).");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let crashed = f.script("crash");
    assert_eq!(crashed, second);
    let crash_at = Instant::now();

    step("The monitor promotes the standby; both nodes find the new primary by themselves.");
    let (took_a, took_b) = tokio::join!(
        until_it_writes(&api_a, crash_at, "after-crash-a"),
        until_it_writes(&api_b, crash_at, "after-crash-b")
    );
    // The monitor's table lags the promotion it ordered: the promoted node takes writes
    // before it reports its new state. Read the table until it names the node (30 s at most).
    let mut third = f.script("primary");
    let deadline = Instant::now() + Duration::from_secs(30);
    while third != first && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        third = f.script("primary");
    }
    assert_eq!(third, first, "the first node took over again");
    println!(
        "{second} crashed; {third} took over: A wrote again after {took_a:?}, B after {took_b:?}"
    );
    // Some more load on the new primary.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for l in loads {
        let seen = l.await.unwrap();
        println!(
            "a load client: {} acknowledged, {} refused, slowest {:?}",
            seen.acked.len(),
            seen.refused,
            seen.slowest
        );
        assert!(
            seen.slowest < Duration::from_secs(15),
            "no answer took long: {:?}",
            seen.slowest
        );
        acked.extend(seen.acked);
    }

    step("Every acknowledged creation is on the new primary; the DEK wrapped before unwraps.");
    assert_none_lost(&[&api_a, &api_b], &acked).await;
    for api in [&api_a, &api_b] {
        let r = api
            .action(&shared, "unwrap", json!({"ciphertext": ct}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["plaintext"].as_str(), Some(pt.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_url_serves_and_warns_when_replication_is_asynchronous() {
    let url = fresh_postgres_db("multihost").await;
    // The test's PostgreSQL named twice: the first accepts writes; it has no standby.
    let (head, db) = url.rsplit_once('/').unwrap();
    let host = head.rsplit_once('@').unwrap().1;
    let multi = format!("{head},{host}/{db}?target_session_attrs=read-write");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--keystore-url", &multi]);
    let api = s.client();
    let key = api.create_root("multi-host").await;
    let (_, ct, pt) = api.wrap(&key).await;
    let r = api.action(&key, "unwrap", json!({"ciphertext": ct})).await;
    assert_eq!(
        r.body["plaintext"].as_str(),
        Some(pt.as_str()),
        "{}",
        r.body
    );
    let log = s.log();
    assert!(
        log.contains("connected to the primary") && log.contains("replicates asynchronously"),
        "{log}"
    );
}
