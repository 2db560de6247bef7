//! `strongroom serve`: configuration (file, `STRONGROOM_*` environment, flags), wiring of
//! store, provider, vault and service, the HTTP listener (TLS via rustls unless `--dev`),
//! dev-mode bootstrap and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use serde::Deserialize;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::CryptoProvider;
use strongroom_keystore::KeyStore;
use strongroom_keystore_sqlite::SqliteStore;
use strongroom_service::{Clock, OffsetClock, Service, ServiceConfig, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::coalesce::Coalesce;
use crate::node::{FileVault, NodeFiles};

/// How often, by default, the scheduler looks for keys whose rotation policy is due, whose
/// expiration date has passed, or whose purge date has come.
const JOBS_EVERY_SECS: u64 = 300;

/// Options of `strongroom serve`. Each can also come from the config file (same name with
/// underscores) or from a `STRONGROOM_*` environment variable; flags win over the
/// environment, which wins over the file.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Development mode: plain HTTP on loopback, an instance "dev" whose crypto unit gets a
    /// RANDOM master key, and dev.json (instance id, token, URLs) in the data directory.
    #[arg(long)]
    pub dev: bool,
    /// TOML configuration file.
    #[arg(long, env = "STRONGROOM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the node keeps its keystore, node key and crypto unit files.
    #[arg(long, env = "STRONGROOM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keystore: a `postgres://user@host:port/db` URL to share keys between nodes (default:
    /// the embedded SQLite file `<data-dir>/keystore.db`).
    #[arg(long, env = "STRONGROOM_KEYSTORE_URL", hide_env_values = true)]
    pub keystore_url: Option<String>,
    /// REST listener address (port 0 picks a free port). Default 127.0.0.1:8080 with
    /// --dev, else 127.0.0.1:8443.
    #[arg(long, env = "STRONGROOM_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// GREP11 gRPC listener address (port 0 picks a free port). Default: a free loopback
    /// port with --dev (written to dev.json), else none.
    #[arg(long, env = "STRONGROOM_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// KMIP listener address (mutual TLS; clients authenticate with a certificate
    /// registered to a KMIP adapter). Default: a free loopback port with --dev (written to
    /// dev.json), else 127.0.0.1:5696 when that port is free. `off` disables it.
    #[arg(long, env = "STRONGROOM_KMIP_ADDR")]
    pub kmip_addr: Option<String>,
    /// PEM certificate chain of the KMIP listener (default: --tls-cert).
    #[arg(long, env = "STRONGROOM_KMIP_CERT")]
    pub kmip_cert: Option<PathBuf>,
    /// PEM private key of the KMIP listener (default: --tls-key).
    #[arg(long, env = "STRONGROOM_KMIP_KEY")]
    pub kmip_key: Option<PathBuf>,
    /// Most KMIP connections open at once (default 1000); more are closed on accept.
    #[arg(long, env = "STRONGROOM_KMIP_MAX_CONNECTIONS")]
    pub kmip_max_connections: Option<usize>,
    /// Seconds a KMIP connection may stay silent before it is closed (default 300).
    #[arg(long, env = "STRONGROOM_KMIP_IDLE_TIMEOUT")]
    pub kmip_idle_timeout: Option<u64>,
    /// Seconds a KMIP TLS handshake, or one message once its first byte arrived, may take
    /// (default 10): slow senders are cut off.
    #[arg(long, env = "STRONGROOM_KMIP_IO_TIMEOUT")]
    pub kmip_io_timeout: Option<u64>,
    /// PEM certificate chain for TLS (required without --dev).
    #[arg(long, env = "STRONGROOM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (required without --dev).
    #[arg(long, env = "STRONGROOM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS on the GREP11 listener (as the on-premises GREP11 server offers): PEM
    /// certificates of the CAs whose client certificates are accepted. Clients without a
    /// certificate from one of them cannot connect; the bearer token is still required.
    /// Needs --tls-cert and --tls-key.
    #[arg(long, env = "STRONGROOM_GRPC_CLIENT_CA")]
    pub grpc_client_ca: Option<PathBuf>,
    /// Maximum number of keys kept unwrapped in memory (default 10000).
    #[arg(long, env = "STRONGROOM_KEY_CACHE_SIZE")]
    pub key_cache_size: Option<usize>,
    /// Lifetime of bearer tokens issued at /identity/token, in seconds (default 3600).
    #[arg(long, env = "STRONGROOM_TOKEN_TTL")]
    pub token_ttl: Option<i64>,
    /// Largest accepted request body in bytes (default 65536).
    #[arg(long, env = "STRONGROOM_MAX_BODY")]
    pub max_body: Option<usize>,
    /// Log format: text or json.
    #[arg(long, env = "STRONGROOM_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Requests per second one instance may make on this node (bursts up to twice that;
    /// default: no limit). Refused requests get 429 TOO_MANY_REQUESTS_ERR.
    #[arg(long, env = "STRONGROOM_RATE_LIMIT_PER_INSTANCE")]
    pub rate_limit_per_instance: Option<u32>,
    /// Most keys (in any state) one instance may hold, and most live KMIP objects (default:
    /// no limit; HPCS allows 50,000).
    #[arg(long, env = "STRONGROOM_MAX_KEYS_PER_INSTANCE")]
    pub max_keys_per_instance: Option<u64>,
    /// Write a backup archive of the keystore into this directory, or to an S3-compatible
    /// store given as s3://bucket/prefix (credentials from AWS_* variables,
    /// STRONGROOM_S3_ENDPOINT for a non-AWS store), every day (and one minute after start),
    /// keeping the newest `--backup-keep` archives.
    #[arg(long, env = "STRONGROOM_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Number of daily archives to keep (default 7).
    #[arg(long, env = "STRONGROOM_BACKUP_KEEP")]
    pub backup_keep: Option<usize>,
    /// When a response waits for its audit record to be committed: `changes` (default:
    /// requests that changed state; reads, wraps and refusals are queued and committed
    /// within milliseconds) or `all` (every request; slower).
    #[arg(long, env = "STRONGROOM_AUDIT_SYNC")]
    pub audit_sync: Option<String>,
    /// A file of at least 32 secret bytes shared by the nodes of a cluster: the keys that sign
    /// bearer tokens and chain the audit log are derived from it, so any node accepts a token
    /// another node issued and all nodes extend one audit chain (created with 32 random bytes
    /// if absent; copy it to the other nodes). Default: derived from `node.key`, which then
    /// has to be the same on every node.
    #[arg(long, env = "STRONGROOM_CLUSTER_KEY_FILE")]
    pub cluster_key_file: Option<PathBuf>,
    /// Export a tracing span per request (OpenTelemetry, OTLP over HTTP/protobuf) to this
    /// collector URL, e.g. http://127.0.0.1:4318/v1/traces. Incoming W3C `traceparent`
    /// headers are continued. Default: no export.
    #[arg(long, env = "STRONGROOM_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// File holding a passphrase from which the key that seals the crypto unit state files
    /// is derived (Argon2id); without it the seal key is derived from `node.key`. With a
    /// passphrase, a copy of the data directory alone does not open the units.
    #[arg(long, env = "STRONGROOM_UNIT_PASSPHRASE_FILE")]
    pub unit_passphrase_file: Option<PathBuf>,
    /// Development mode on an address other than loopback (the dev instance's token and
    /// key operations then reach the network, over plain HTTP). Refused without this flag,
    /// and loudly warned about with it.
    #[arg(long)]
    pub dev_allow_non_loopback: bool,
    /// Seconds between runs of the background jobs: rotation policies, expiration, and the
    /// automatic purge of keys deleted 90 days ago (1-3600; default 300). With several
    /// nodes, one node holds each job's lease.
    #[arg(long, env = "STRONGROOM_JOBS_EVERY")]
    pub jobs_every: Option<u64>,
    /// Testing only (with --dev): lets POST /admin/v1/test/clock move the service clock.
    #[arg(long, hide = true)]
    pub test_clock: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    keystore_url: Option<String>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    kmip_addr: Option<String>,
    kmip_cert: Option<PathBuf>,
    kmip_key: Option<PathBuf>,
    kmip_max_connections: Option<usize>,
    kmip_idle_timeout: Option<u64>,
    kmip_io_timeout: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    grpc_client_ca: Option<PathBuf>,
    key_cache_size: Option<usize>,
    token_ttl: Option<i64>,
    max_body: Option<usize>,
    log_format: Option<String>,
    audit_sync: Option<String>,
    max_keys_per_instance: Option<u64>,
    rate_limit_per_instance: Option<u32>,
    backup_dir: Option<PathBuf>,
    backup_keep: Option<usize>,
    unit_passphrase_file: Option<PathBuf>,
    cluster_key_file: Option<PathBuf>,
    otlp_endpoint: Option<String>,
    jobs_every: Option<u64>,
}

/// Where the KMIP listener goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmipListen {
    /// No KMIP listener.
    Off,
    /// This address; failing to bind it is an error.
    At(SocketAddr),
    /// The default port, if it is free (a warning otherwise).
    Default(SocketAddr),
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub dev: bool,
    pub data_dir: PathBuf,
    pub keystore_url: Option<String>,
    pub http_addr: SocketAddr,
    pub grpc_addr: Option<SocketAddr>,
    pub kmip: KmipListen,
    pub kmip_tls: Option<(PathBuf, PathBuf)>,
    pub kmip_max_connections: usize,
    pub kmip_idle_timeout: Duration,
    pub kmip_io_timeout: Duration,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub grpc_client_ca: Option<PathBuf>,
    pub key_cache_size: usize,
    pub token_ttl: i64,
    pub max_body: usize,
    pub log_json: bool,
    pub test_clock: bool,
    pub audit_sync_all: bool,
    pub max_keys_per_instance: Option<u64>,
    pub rate_limit_per_instance: Option<u32>,
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: usize,
    pub unit_passphrase_file: Option<PathBuf>,
    pub cluster_key_file: Option<PathBuf>,
    pub otlp_endpoint: Option<String>,
    pub jobs_every: Duration,
}

pub fn resolve(a: ServeArgs) -> Result<Config, String> {
    let file: FileConfig = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read config file {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let default_addr: SocketAddr = if a.dev {
        "127.0.0.1:8080"
    } else {
        "127.0.0.1:8443"
    }
    .parse()
    .map_err(|_| "bad default")?;
    let tls = match (a.tls_cert.or(file.tls_cert), a.tls_key.or(file.tls_key)) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key must be given together".into()),
    };
    let grpc_client_ca = a.grpc_client_ca.or(file.grpc_client_ca);
    if grpc_client_ca.is_some() && tls.is_none() {
        return Err(
            "--grpc-client-ca (mutual TLS for GREP11) needs --tls-cert and --tls-key".into(),
        );
    }
    if !a.dev && tls.is_none() {
        return Err("TLS is required outside development mode: pass --tls-cert and --tls-key (or run with --dev on a workstation)".into());
    }
    if a.test_clock && !a.dev {
        return Err("--test-clock is only allowed with --dev".into());
    }
    let log_format = a
        .log_format
        .or(file.log_format)
        .unwrap_or_else(|| "text".into());
    if log_format != "text" && log_format != "json" {
        return Err(format!(
            "--log-format must be text or json, not '{log_format}'"
        ));
    }
    let key_cache_size = a.key_cache_size.or(file.key_cache_size).unwrap_or(10_000);
    if key_cache_size == 0 {
        return Err("--key-cache-size must be at least 1".into());
    }
    let audit_sync = a
        .audit_sync
        .or(file.audit_sync)
        .unwrap_or_else(|| "changes".into());
    if audit_sync != "changes" && audit_sync != "all" {
        return Err(format!(
            "--audit-sync must be 'changes' or 'all', not '{audit_sync}'"
        ));
    }
    let http_addr = a.http_addr.or(file.http_addr).unwrap_or(default_addr);
    let grpc_addr = a.grpc_addr.or(file.grpc_addr);
    if a.dev {
        let remote: Vec<String> = std::iter::once(http_addr)
            .chain(grpc_addr)
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect();
        if !remote.is_empty() && !a.dev_allow_non_loopback {
            return Err(format!(
                "--dev listens on loopback only, and {} is not a loopback address: development \
                 mode serves a RANDOM master key and a Manager token over plain HTTP. Use \
                 127.0.0.1, or pass --dev-allow-non-loopback if you really mean it",
                remote.join(", ")
            ));
        }
        if !remote.is_empty() {
            eprintln!(
                "WARNING: development mode is listening on {} beyond loopback, over plain HTTP, \
                 with a dev token in dev.json: anyone who can reach it can use the dev instance",
                remote.join(", ")
            );
        }
    }
    let kmip = match a.kmip_addr.or(file.kmip_addr).as_deref() {
        Some("off") => KmipListen::Off,
        Some(addr) => KmipListen::At(
            addr.parse()
                .map_err(|_| format!("--kmip-addr must be host:port or 'off', not '{addr}'"))?,
        ),
        None if a.dev => KmipListen::At(SocketAddr::from(([127, 0, 0, 1], 0))),
        None => KmipListen::Default(SocketAddr::from(([127, 0, 0, 1], 5696))),
    };
    if a.dev {
        if let KmipListen::At(k) = kmip {
            if !k.ip().is_loopback() && !a.dev_allow_non_loopback {
                return Err(format!(
                    "--dev listens on loopback only, and the KMIP address {k} is not a loopback \
                     address; use 127.0.0.1 or pass --dev-allow-non-loopback"
                ));
            }
        }
    }
    let kmip_tls = match (a.kmip_cert.or(file.kmip_cert), a.kmip_key.or(file.kmip_key)) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => tls.clone(),
        _ => return Err("--kmip-cert and --kmip-key must be given together".into()),
    };
    let kmip_max_connections = a
        .kmip_max_connections
        .or(file.kmip_max_connections)
        .unwrap_or(1000);
    if kmip_max_connections == 0 {
        return Err("--kmip-max-connections must be at least 1".into());
    }
    let kmip_idle_timeout = a
        .kmip_idle_timeout
        .or(file.kmip_idle_timeout)
        .unwrap_or(300);
    let kmip_io_timeout = a.kmip_io_timeout.or(file.kmip_io_timeout).unwrap_or(10);
    if !(1..=86_400).contains(&kmip_idle_timeout) || !(1..=600).contains(&kmip_io_timeout) {
        return Err(
            "--kmip-idle-timeout must be 1 to 86400 seconds and --kmip-io-timeout 1 to 600".into(),
        );
    }
    let jobs_every = a.jobs_every.or(file.jobs_every).unwrap_or(JOBS_EVERY_SECS);
    if !(1..=3600).contains(&jobs_every) {
        return Err("--jobs-every must be between 1 and 3600 seconds".into());
    }
    let token_ttl = a.token_ttl.or(file.token_ttl).unwrap_or(3600);
    if !(60..=86_400).contains(&token_ttl) {
        return Err("--token-ttl must be between 60 and 86400 seconds".into());
    }
    Ok(Config {
        dev: a.dev,
        keystore_url: a.keystore_url.or(file.keystore_url),
        data_dir: a
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./strongroom-data")),
        http_addr,
        grpc_addr,
        kmip,
        kmip_tls,
        kmip_max_connections,
        kmip_idle_timeout: Duration::from_secs(kmip_idle_timeout),
        kmip_io_timeout: Duration::from_secs(kmip_io_timeout),
        tls,
        grpc_client_ca,
        key_cache_size,
        token_ttl,
        max_body: a
            .max_body
            .or(file.max_body)
            .unwrap_or(64 * 1024)
            .clamp(1024, 16 * 1024 * 1024),
        log_json: log_format == "json",
        test_clock: a.test_clock,
        audit_sync_all: audit_sync == "all",
        max_keys_per_instance: a.max_keys_per_instance.or(file.max_keys_per_instance),
        rate_limit_per_instance: a.rate_limit_per_instance.or(file.rate_limit_per_instance),
        backup_dir: a.backup_dir.or(file.backup_dir),
        backup_keep: a.backup_keep.or(file.backup_keep).unwrap_or(7).max(1),
        unit_passphrase_file: a.unit_passphrase_file.or(file.unit_passphrase_file),
        cluster_key_file: a.cluster_key_file.or(file.cluster_key_file),
        otlp_endpoint: a.otlp_endpoint.or(file.otlp_endpoint),
        jobs_every: Duration::from_secs(jobs_every),
    })
}

/// The keystore a node runs on.
pub enum Store {
    /// Embedded SQLite.
    Sqlite(Arc<SqliteStore>),
    /// Shared PostgreSQL.
    Postgres(Arc<strongroom_keystore_postgres::PgStore>),
}

impl Store {
    fn dyn_store(&self) -> Arc<dyn KeyStore> {
        match self {
            Store::Sqlite(s) => s.clone(),
            Store::Postgres(s) => s.clone(),
        }
    }
    async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

fn describe(e: &strongroom_keystore::StoreError) -> String {
    match std::error::Error::source(e) {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

async fn open_store(cfg: &Config) -> Result<Store, String> {
    match &cfg.keystore_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let s = strongroom_keystore_postgres::PgStore::connect(url, &Default::default())
                .await
                .map_err(|e| format!("cannot open the PostgreSQL keystore: {}", describe(&e)))?;
            Ok(Store::Postgres(Arc::new(s)))
        }
        Some(other) => Err(format!(
            "--keystore-url must be a postgres:// URL, not '{}'",
            other.split(':').next().unwrap_or("")
        )),
        None => {
            let s = SqliteStore::open(&cfg.data_dir.join("keystore.db"))
                .await
                .map_err(|e| format!("cannot open the keystore: {}", describe(&e)))?;
            Ok(Store::Sqlite(Arc::new(s)))
        }
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn init_logging(
    json: bool,
    otlp: Option<&str>,
) -> Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>, String> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let (otel, provider) = match otlp {
        None => (None, None),
        Some(url) => {
            use opentelemetry::trace::TracerProvider as _;
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .build()
                .map_err(|e| format!("--otlp-endpoint {url}: {e}"))?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("strongroom")
                        .build(),
                )
                .build();
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("strongroom"))
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("strongroom::request", tracing::Level::INFO),
                );
            (Some(layer), Some(provider))
        }
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    Ok(provider)
}

pub async fn run(cfg: Config) -> Result<(), String> {
    let provider: Arc<dyn CryptoProvider> = Arc::new(AwsLcProvider);
    crate::node::create_private_dir(&cfg.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", cfg.data_dir.display()))?;
    let node = NodeFiles::load_or_create(&cfg.data_dir, provider.as_ref())
        .map_err(|e| format!("node files: {e}"))?;
    let secrets = node
        .secrets(provider.as_ref(), cfg.cluster_key_file.as_deref())
        .map_err(|e| format!("node key: {e}"))?;
    let passphrase = match &cfg.unit_passphrase_file {
        Some(p) => Some(zeroize::Zeroizing::new(
            std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the unit passphrase file {}: {e}", p.display()))?
                .trim_end_matches(['\r', '\n'])
                .as_bytes()
                .to_vec(),
        )),
        None => None,
    };
    let vault = Arc::new(
        FileVault::new(
            &cfg.data_dir,
            &node.node_key,
            passphrase.as_deref().map(|p| p.as_slice()),
            Arc::clone(&provider),
        )
        .map_err(|e| format!("unit files: {e}"))?,
    );
    let store = open_store(&cfg).await?;
    let store_dyn: Arc<dyn KeyStore> = store.dyn_store();
    let test_clock = cfg.test_clock.then(|| Arc::new(OffsetClock::default()));
    let clock: Arc<dyn Clock> = match &test_clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let (svc, audit_task) = Service::start(
        store_dyn,
        Arc::clone(&provider),
        vault,
        clock,
        secrets,
        ServiceConfig {
            key_cache_capacity: cfg.key_cache_size,
            token_ttl_secs: cfg.token_ttl,
            audit_sync_all: cfg.audit_sync_all,
            max_keys_per_instance: cfg.max_keys_per_instance,
            rate_limit_per_instance: cfg.rate_limit_per_instance,
            dev: cfg.dev,
        },
    )
    .await
    .map_err(|e| format!("service start failed: {e}"))?;

    let listener = TcpListener::bind(cfg.http_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.http_addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let tls = match &cfg.tls {
        Some((c, k)) => Some(crate::tls::tls_acceptor(c, k, None)?),
        None => None,
    };
    // The GREP11 listener may additionally require client certificates.
    let grpc_tls = match (&cfg.tls, &cfg.grpc_client_ca) {
        (Some((c, k)), Some(ca)) => Some(crate::tls::tls_acceptor(c, k, Some(ca))?),
        _ => tls.clone(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let rest_url = format!("{scheme}://{local}");

    // The GREP11 gRPC listener: with --grpc-addr, and in dev mode on a free loopback port.
    let grpc_addr = cfg
        .grpc_addr
        .or_else(|| cfg.dev.then(|| SocketAddr::from(([127, 0, 0, 1], 0))));
    let grpc_listener = match grpc_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| format!("cannot listen on {a} (gRPC): {e}"))?,
        ),
        None => None,
    };
    let grpc_local = match &grpc_listener {
        Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
        None => None,
    };
    let kmip_listener = crate::kmip_serve::bind(cfg.kmip).await?;
    let kmip_local = match &kmip_listener {
        Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
        None => None,
    };
    let dev_kmip = if cfg.dev && kmip_listener.is_some() {
        Some(crate::kmip_serve::DevKmipFiles::load_or_create(
            &cfg.data_dir.join("kmip"),
        )?)
    } else {
        None
    };
    let kmip_tls = match (&dev_kmip, &cfg.kmip_tls) {
        (Some(f), _) => Some((f.server_cert.clone(), f.server_key.clone())),
        (None, t) => t.clone(),
    };
    if kmip_listener.is_some() && kmip_tls.is_none() {
        return Err("the KMIP listener needs a certificate: pass --kmip-cert and --kmip-key (or --tls-cert and --tls-key), or --kmip-addr off".into());
    }
    if cfg.dev {
        let kmip = match (&dev_kmip, kmip_local) {
            (Some(f), Some(addr)) => Some((f, addr)),
            _ => None,
        };
        crate::dev::dev_bootstrap(&svc, &cfg, &node, &rest_url, grpc_local, kmip).await?;
    }
    let kmip_task = match (kmip_listener, kmip_tls) {
        (Some(l), Some((cert, key))) => Some(crate::kmip_serve::start(l, &svc, &cert, &key, &cfg)?),
        _ => None,
    };
    let frontend = Arc::new(strongroom_rest::Frontend::new(
        Arc::clone(&svc),
        strongroom_rest::RestOptions {
            max_body: cfg.max_body,
            test_clock,
            trace_requests: cfg.otlp_endpoint.is_some(),
        },
    ));
    tracing::info!(url = %rest_url, store = store.dyn_store().backend(), data_dir = %cfg.data_dir.display(), "strongroom is serving");
    if let Some(g) = grpc_local {
        tracing::info!(addr = %g, tls = grpc_tls.is_some(), mutual_tls = cfg.grpc_client_ca.is_some(), "GREP11 gRPC API is serving");
    }

    // Rotation policies, expiration and automatic purges: checked every few minutes (Key
    // Protect promises rotation "within a 24-hour window" of the due time).
    let scheduler_svc = Arc::downgrade(&svc);
    let node_id = format!("node-{}", uuid::Uuid::new_v4());
    let scheduler_node = node_id.clone();
    let jobs_every = cfg.jobs_every;
    let scheduler = tokio::spawn(async move {
        let node_id = scheduler_node;
        let mut tick = tokio::time::interval(jobs_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The lease outlives one period so that the holder keeps it; another node takes
        // over once a holder stops renewing.
        let lease_ms = i64::try_from(jobs_every.as_millis() * 3 / 2).unwrap_or(i64::MAX);
        loop {
            tick.tick().await;
            let Some(svc) = scheduler_svc.upgrade() else {
                break;
            };
            match svc.run_background_jobs(&node_id, lease_ms).await {
                Ok(run) if run == Default::default() => {}
                Ok(run) => tracing::info!(
                    rotated = run.rotated,
                    deactivated = run.expired,
                    purged = run.purged,
                    "background jobs applied"
                ),
                Err(e) => tracing::warn!(error = %e, "background jobs failed"),
            }
        }
    });

    let backup_target = match &cfg.backup_dir {
        Some(d) => Some(crate::backup_target::Target::parse(&d.to_string_lossy())?),
        None => None,
    };
    let backups = backup_target.map(|target| {
        let store = store.dyn_store();
        let svc_for_backups = Arc::downgrade(&svc);
        let keep = cfg.backup_keep;
        let node = node_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(86_400));
            loop {
                tick.tick().await;
                let now = strongroom_model::UnixMillis(chrono_now_ms());
                match store.claim_job("daily-backup", &node, now, 23 * 3_600_000).await {
                    Ok(true) => match crate::cli::write_backup(store.as_ref(), &target, None).await {
                        Ok((location, sum)) => {
                            tracing::info!(archive = %location, keys = sum.keys, "daily backup written");
                            if let Some(svc) = svc_for_backups.upgrade() {
                                svc.record_backup(sum.keys);
                            }
                            target.prune(keep).await;
                        }
                        Err(e) => tracing::error!(error = %e, "daily backup failed"),
                    },
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "daily backup lease check failed"),
                }
            }
        })
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    let grpc_task = grpc_listener.map(|l| {
        let router = strongroom_grep11::Grep11::new(Arc::clone(&svc)).router();
        tokio::spawn(serve_loop(
            l,
            grpc_tls.clone(),
            App::Router(router),
            true,
            stop_rx.clone(),
        ))
    });
    serve_loop(listener, tls, App::Frontend(frontend), false, stop_rx).await;
    if let Some(t) = grpc_task {
        let _ = t.await;
    }
    scheduler.abort();
    if let Some(k) = kmip_task {
        k.abort();
    }
    if let Some(b) = backups {
        b.abort();
    }
    if let Err(e) = svc.flush_unit_usage().await {
        tracing::error!(error = %e, "per-unit usage counts of the last seconds could not be written");
    }
    drop(svc);
    // The audit writer ends once the last service handle is gone, after flushing.
    if tokio::time::timeout(Duration::from_secs(10), audit_task)
        .await
        .is_err()
    {
        tracing::error!("the audit writer did not finish within 10 s");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Accepts connections until `stop` flips, then waits (up to 30 s) for open connections
/// to finish their requests.
/// What a listener serves: the Strongroom front end, or a bare router (the bench baseline).
#[derive(Clone)]
pub enum App {
    /// The REST front end (allowedIP check, metrics, router).
    Frontend(Arc<strongroom_rest::Frontend>),
    /// A bare router.
    Router(axum::Router),
}

/// `coalesce`: small HTTP/2 frames leave in one write (the GREP11 listener; see
/// `coalesce.rs`).
pub async fn serve_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: App,
    coalesce: bool,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    let resp = match app {
                        // The REST front end takes the peer as an argument (allowedIP before
                        // routing; it hands it on to the token exchange).
                        App::Frontend(f) => f.handle(req, peer).await,
                        App::Router(r) => {
                            // GREP11 reads the peer's address from here (allowedIP).
                            req.extensions_mut()
                                .insert(axum::extract::ConnectInfo(peer));
                            match tower::ServiceExt::oneshot(r, req.map(axum::body::Body::new))
                                .await
                            {
                                Ok(resp) => resp,
                                Err(never) => match never {},
                            }
                        }
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
        let builder = builder.clone();
        match &tls {
            None => {
                let conn = builder
                    .serve_connection(TokioIo::new(Coalesce::new(stream, coalesce)), svc)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(Coalesce::new(stream, coalesce)), svc)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 30 s; closing them");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ServeArgs,
    }

    fn args(v: &[&str]) -> ServeArgs {
        T::parse_from(std::iter::once("serve").chain(v.iter().copied())).a
    }

    #[test]
    fn dev_mode_beyond_loopback_needs_the_explicit_flag() {
        let e = resolve(args(&["--dev", "--http-addr", "0.0.0.0:8080"])).unwrap_err();
        assert!(e.contains("--dev-allow-non-loopback"), "{e}");
        let e = resolve(args(&["--dev", "--grpc-addr", "[::]:9000"])).unwrap_err();
        assert!(e.contains("[::]:9000"), "{e}");
        let c = resolve(args(&[
            "--dev",
            "--dev-allow-non-loopback",
            "--http-addr",
            "0.0.0.0:8080",
        ]))
        .unwrap();
        assert!(!c.http_addr.ip().is_loopback());
        assert!(resolve(args(&["--dev", "--http-addr", "[::1]:0"])).is_ok());
        let e = resolve(args(&["--dev", "--jobs-every", "0"])).unwrap_err();
        assert!(e.contains("--jobs-every"), "{e}");
    }

    #[test]
    fn flags_override_the_config_file_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "http_addr = \"127.0.0.1:9000\"\nkey_cache_size = 5\ntoken_ttl = 120\naudit_sync = \"all\"\n").unwrap();
        let f = file.to_str().unwrap();
        let c = resolve(args(&["--dev", "--config", f])).unwrap();
        assert_eq!(
            (
                c.http_addr.port(),
                c.key_cache_size,
                c.token_ttl,
                c.audit_sync_all
            ),
            (9000, 5, 120, true)
        );
        let c = resolve(args(&[
            "--dev",
            "--config",
            f,
            "--http-addr",
            "127.0.0.1:9100",
            "--key-cache-size",
            "7",
        ]))
        .unwrap();
        assert_eq!((c.http_addr.port(), c.key_cache_size), (9100, 7));
        let c = resolve(args(&["--dev"])).unwrap();
        assert_eq!(
            (c.http_addr.port(), c.key_cache_size, c.audit_sync_all),
            (8080, 10_000, false)
        );
    }

    #[test]
    fn bad_settings_are_refused_with_a_clear_message() {
        assert!(resolve(args(&[])).unwrap_err().contains("TLS is required"));
        assert!(resolve(args(&["--dev", "--grpc-client-ca", "ca.pem"]))
            .unwrap_err()
            .contains("needs --tls-cert"));
        assert!(resolve(args(&["--dev", "--audit-sync", "sometimes"]))
            .unwrap_err()
            .contains("--audit-sync"));
        assert!(resolve(args(&["--dev", "--token-ttl", "5"]))
            .unwrap_err()
            .contains("--token-ttl"));
        assert!(resolve(args(&["--test-clock"])).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "colour = \"blue\"\n").unwrap();
        assert!(
            resolve(args(&["--dev", "--config", file.to_str().unwrap()]))
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
