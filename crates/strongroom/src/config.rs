//! `strongroom serve`'s configuration: the flags, the config file (TOML), the
//! `STRONGROOM_*` environment, and their resolution into one [`Config`] (flags win over the
//! environment, which wins over the file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::error::Error;

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
    /// the embedded SQLite file `<data-dir>/keystore.db`). Several hosts,
    /// `postgres://user@h1:5432,h2:5432/db`, name the servers of a replicated database: the
    /// node uses the one that accepts writes and follows a failover by itself.
    #[arg(long, env = "STRONGROOM_KEYSTORE_URL", hide_env_values = true)]
    pub keystore_url: Option<String>,
    /// REST listener address (port 0 picks a free port). Default 127.0.0.1:8080 with
    /// --dev, else 127.0.0.1:8443. It also serves the web console at /ui/.
    #[arg(long, env = "STRONGROOM_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// GREP11 gRPC listener address (port 0 picks a free port). Default: a free loopback
    /// port with --dev (written to dev.json), else none.
    #[arg(long, env = "STRONGROOM_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// This node's availability zone (1-63 of a-z, 0-9, '-'), shown with its crypto units
    /// (`tke cryptounits`) so that an instance's units can be placed in distinct zones.
    #[arg(long, env = "STRONGROOM_ZONE")]
    pub zone: Option<String>,
    /// This node's region (same characters), shown with its crypto units.
    #[arg(long, env = "STRONGROOM_REGION")]
    pub region: Option<String>,
    /// A REST listener on the private network: like --http-addr, and the only one an
    /// instance whose allowedNetwork policy is private-only accepts.
    #[arg(long, env = "STRONGROOM_PRIVATE_HTTP_ADDR")]
    pub private_http_addr: Option<SocketAddr>,
    /// A GREP11 listener on the private network (see --private-http-addr).
    #[arg(long, env = "STRONGROOM_PRIVATE_GRPC_ADDR")]
    pub private_grpc_addr: Option<SocketAddr>,
    /// The network the KMIP listener serves: public (default) or private (then
    /// private-only instances accept KMIP connections).
    #[arg(long, env = "STRONGROOM_KMIP_NETWORK")]
    pub kmip_network: Option<String>,
    /// TLS key exchange groups of every listener: hybrid (default: X25519MLKEM768 and
    /// SecP256r1MLKEM768 preferred, X25519, P-256 and P-384 kept for older clients) or
    /// pq-only (post-quantum groups only). `/metrics` counts handshakes by group.
    #[arg(long, value_enum, env = "STRONGROOM_TLS_GROUPS")]
    pub tls_groups: Option<crate::tls::TlsGroups>,
    /// Admin listener address: the administrator's API (`/admin/v1/...`) and `/metrics`
    /// (both need the admin token), apart from the API so that neither is reachable where
    /// clients are. TLS as the REST listener. Default: a free loopback port with --dev
    /// (written to dev.json as admin_url), else 127.0.0.1:8444. `off` disables it.
    #[arg(long, env = "STRONGROOM_ADMIN_ADDR")]
    pub admin_addr: Option<String>,
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
    /// Lifetime of bearer tokens issued at /identity/token, in seconds (default 3600). A
    /// token stops sooner, within seconds, when its API key or service ID is deleted.
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
    /// A file of at least 32 secret bytes, kept apart from the archives, that authenticates
    /// the daily archives (an HMAC in each; created with 32 random bytes if absent). A
    /// restore with the same file refuses an archive someone changed. Without it the
    /// archives carry only a checksum, which finds damage but not changes.
    #[arg(long, env = "STRONGROOM_BACKUP_KEY_FILE")]
    pub backup_key_file: Option<PathBuf>,
    /// When a response waits for its audit record to be committed: `changes` (default:
    /// requests that changed state; reads, wraps and refusals are queued and committed
    /// within milliseconds) or `all` (every request; slower).
    #[arg(long, env = "STRONGROOM_AUDIT_SYNC")]
    pub audit_sync: Option<String>,
    /// Whether CKM_RSA_PKCS (PKCS#1 v1.5) decrypts and unwraps over GREP11 and the PKCS#11
    /// library: `allow` (default, for applications that need it) or `refuse` (recommended:
    /// a PKCS#1 v1.5 padding oracle, Bleichenbacher and Marvin, needs only that; signing
    /// with CKM_RSA_PKCS stays, OAEP is unaffected, and the mechanism list then shows
    /// CKM_RSA_PKCS without CKF_DECRYPT and CKF_UNWRAP).
    #[arg(long, env = "STRONGROOM_RSA_PKCS1_DECRYPTION")]
    pub rsa_pkcs1_decryption: Option<String>,
    /// Offer and serve only what FIPS 140-3 approves, on every interface: GREP11 and the
    /// PKCS#11 library list only approved mechanisms and refuse the others with
    /// CKR_MECHANISM_INVALID (secp256k1, X25519 and BLS keys with CKR_CURVE_NOT_SUPPORTED);
    /// SHA-1 signatures, DSA and Triple-DES only verify and decrypt what exists. A FIPS build
    /// (`--features fips`) always does this; the flag gives the same policy on other builds,
    /// without the validated module. The table is in docs/fips.md.
    #[arg(long, env = "STRONGROOM_FIPS_POLICY")]
    pub fips_policy: bool,
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
    /// Seconds between runs of the background jobs: rotation policies, expiration, the
    /// automatic purge of keys deleted 90 days ago, and the recording of KMIP objects whose
    /// Activation or Deactivation Date came (1-3600; default 300). With several nodes, one
    /// node holds each job's lease.
    #[arg(long, env = "STRONGROOM_JOBS_EVERY")]
    pub jobs_every: Option<u64>,
    /// Testing only (with --dev): lets POST /admin/v1/test/clock move the service clock.
    #[arg(long, hide = true)]
    pub test_clock: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) keystore_url: Option<String>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    private_http_addr: Option<SocketAddr>,
    private_grpc_addr: Option<SocketAddr>,
    kmip_network: Option<String>,
    tls_groups: Option<crate::tls::TlsGroups>,
    zone: Option<String>,
    region: Option<String>,
    admin_addr: Option<String>,
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
    rsa_pkcs1_decryption: Option<String>,
    fips_policy: Option<bool>,
    max_keys_per_instance: Option<u64>,
    rate_limit_per_instance: Option<u32>,
    backup_dir: Option<PathBuf>,
    backup_keep: Option<usize>,
    backup_key_file: Option<PathBuf>,
    unit_passphrase_file: Option<PathBuf>,
    pub(crate) cluster_key_file: Option<PathBuf>,
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
    /// The admin listener, or none.
    pub admin_addr: Option<SocketAddr>,
    /// The private REST and GREP11 listeners, if any.
    pub private_http_addr: Option<SocketAddr>,
    pub private_grpc_addr: Option<SocketAddr>,
    /// The network of the KMIP listener.
    pub kmip_network: strongroom_service::Network,
    /// Key exchange groups of every TLS listener.
    pub tls_groups: crate::tls::TlsGroups,
    /// This node's zone and region.
    pub zone: Option<String>,
    pub region: Option<String>,
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
    pub rsa_pkcs1_decryption: bool,
    pub fips_policy: bool,
    pub max_keys_per_instance: Option<u64>,
    pub rate_limit_per_instance: Option<u32>,
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: usize,
    pub backup_key_file: Option<PathBuf>,
    pub unit_passphrase_file: Option<PathBuf>,
    pub cluster_key_file: Option<PathBuf>,
    pub otlp_endpoint: Option<String>,
    pub jobs_every: Duration,
}

/// Reads a `serve` configuration file (TOML), or the defaults without one.
pub(crate) fn read_config_file(path: Option<&std::path::Path>) -> Result<FileConfig, Error> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(Error::context(format!(
                "cannot read config file {}",
                p.display()
            )))?;
            toml::from_str(&text).map_err(Error::context(format!("config file {}", p.display())))
        }
        None => Ok(FileConfig::default()),
    }
}

pub fn resolve(a: ServeArgs) -> Result<Config, Error> {
    let file = read_config_file(a.config.as_deref())?;
    let default_addr: SocketAddr = if a.dev {
        "127.0.0.1:8080"
    } else {
        "127.0.0.1:8443"
    }
    .parse()
    .map_err(|_| Error::other("bad default"))?;
    let tls = match (a.tls_cert.or(file.tls_cert), a.tls_key.or(file.tls_key)) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(Error::usage(
                "--tls-cert and --tls-key must be given together",
            ))
        }
    };
    let grpc_client_ca = a.grpc_client_ca.or(file.grpc_client_ca);
    if grpc_client_ca.is_some() && tls.is_none() {
        return Err(Error::usage(
            "--grpc-client-ca (mutual TLS for GREP11) needs --tls-cert and --tls-key",
        ));
    }
    if !a.dev && tls.is_none() {
        return Err(Error::usage("TLS is required outside development mode: pass --tls-cert and --tls-key (or run with --dev on a workstation)"));
    }
    if a.test_clock && !a.dev {
        return Err(Error::usage("--test-clock is only allowed with --dev"));
    }
    let log_format = a
        .log_format
        .or(file.log_format)
        .unwrap_or_else(|| "text".into());
    if log_format != "text" && log_format != "json" {
        return Err(Error::usage(format!(
            "--log-format must be text or json, not '{log_format}'"
        )));
    }
    let key_cache_size = a.key_cache_size.or(file.key_cache_size).unwrap_or(10_000);
    if key_cache_size == 0 {
        return Err(Error::usage("--key-cache-size must be at least 1"));
    }
    let audit_sync = a
        .audit_sync
        .or(file.audit_sync)
        .unwrap_or_else(|| "changes".into());
    if audit_sync != "changes" && audit_sync != "all" {
        return Err(Error::usage(format!(
            "--audit-sync must be 'changes' or 'all', not '{audit_sync}'"
        )));
    }
    let rsa_pkcs1_decryption = match a
        .rsa_pkcs1_decryption
        .or(file.rsa_pkcs1_decryption)
        .as_deref()
    {
        None | Some("allow") => true,
        Some("refuse") => false,
        Some(other) => {
            return Err(Error::usage(format!(
                "--rsa-pkcs1-decryption must be 'allow' or 'refuse', not '{other}'"
            )))
        }
    };
    let http_addr = a.http_addr.or(file.http_addr).unwrap_or(default_addr);
    let grpc_addr = a.grpc_addr.or(file.grpc_addr);
    let admin_addr = match a.admin_addr.or(file.admin_addr).as_deref() {
        Some("off") => None,
        Some(addr) => Some(addr.parse::<SocketAddr>().map_err(|_| {
            Error::usage(format!(
                "--admin-addr must be host:port or 'off', not '{addr}'"
            ))
        })?),
        None if a.dev => Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        None => Some(SocketAddr::from(([127, 0, 0, 1], 8444))),
    };
    let placement = |v: Option<String>, flag: &str| -> Result<Option<String>, Error> {
        match v {
            Some(z)
                if z.is_empty()
                    || z.len() > 63
                    || !z
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
            {
                Err(Error::usage(format!(
                    "{flag} is 1-63 of a-z, 0-9 and '-', not '{z}'"
                )))
            }
            v => Ok(v),
        }
    };
    let zone = placement(a.zone.or(file.zone), "--zone")?;
    let region = placement(a.region.or(file.region), "--region")?;
    let private_http_addr = a.private_http_addr.or(file.private_http_addr);
    let private_grpc_addr = a.private_grpc_addr.or(file.private_grpc_addr);
    let kmip_network = match a.kmip_network.or(file.kmip_network).as_deref() {
        None | Some("public") => strongroom_service::Network::Public,
        Some("private") => strongroom_service::Network::Private,
        Some(other) => {
            return Err(Error::usage(format!(
                "--kmip-network must be 'public' or 'private', not '{other}'"
            )))
        }
    };
    if a.dev {
        let remote: Vec<String> = std::iter::once(http_addr)
            .chain(grpc_addr)
            .chain(admin_addr)
            .chain(private_http_addr)
            .chain(private_grpc_addr)
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect();
        if !remote.is_empty() && !a.dev_allow_non_loopback {
            return Err(Error::usage(format!(
                "--dev listens on loopback only, and {} is not a loopback address: development \
                 mode serves a RANDOM master key and a Manager token over plain HTTP. Use \
                 127.0.0.1, or pass --dev-allow-non-loopback if you really mean it",
                remote.join(", ")
            )));
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
        Some(addr) => KmipListen::At(addr.parse().map_err(|_| {
            Error::usage(format!(
                "--kmip-addr must be host:port or 'off', not '{addr}'"
            ))
        })?),
        None if a.dev => KmipListen::At(SocketAddr::from(([127, 0, 0, 1], 0))),
        None => KmipListen::Default(SocketAddr::from(([127, 0, 0, 1], 5696))),
    };
    if a.dev {
        if let KmipListen::At(k) = kmip {
            if !k.ip().is_loopback() && !a.dev_allow_non_loopback {
                return Err(Error::usage(format!(
                    "--dev listens on loopback only, and the KMIP address {k} is not a loopback \
                     address; use 127.0.0.1 or pass --dev-allow-non-loopback"
                )));
            }
        }
    }
    let kmip_tls = match (a.kmip_cert.or(file.kmip_cert), a.kmip_key.or(file.kmip_key)) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => tls.clone(),
        _ => {
            return Err(Error::usage(
                "--kmip-cert and --kmip-key must be given together",
            ))
        }
    };
    let kmip_max_connections = a
        .kmip_max_connections
        .or(file.kmip_max_connections)
        .unwrap_or(1000);
    if kmip_max_connections == 0 {
        return Err(Error::usage("--kmip-max-connections must be at least 1"));
    }
    let kmip_idle_timeout = a
        .kmip_idle_timeout
        .or(file.kmip_idle_timeout)
        .unwrap_or(300);
    let kmip_io_timeout = a.kmip_io_timeout.or(file.kmip_io_timeout).unwrap_or(10);
    if !(1..=86_400).contains(&kmip_idle_timeout) || !(1..=600).contains(&kmip_io_timeout) {
        return Err(Error::usage(
            "--kmip-idle-timeout must be 1 to 86400 seconds and --kmip-io-timeout 1 to 600",
        ));
    }
    let jobs_every = a.jobs_every.or(file.jobs_every).unwrap_or(JOBS_EVERY_SECS);
    if !(1..=3600).contains(&jobs_every) {
        return Err(Error::usage(
            "--jobs-every must be between 1 and 3600 seconds",
        ));
    }
    let token_ttl = a.token_ttl.or(file.token_ttl).unwrap_or(3600);
    if !(60..=86_400).contains(&token_ttl) {
        return Err(Error::usage(
            "--token-ttl must be between 60 and 86400 seconds",
        ));
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
        admin_addr,
        private_http_addr,
        private_grpc_addr,
        kmip_network,
        tls_groups: a.tls_groups.or(file.tls_groups).unwrap_or_default(),
        zone,
        region,
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
        rsa_pkcs1_decryption,
        fips_policy: a.fips_policy || file.fips_policy.unwrap_or(false),
        max_keys_per_instance: a.max_keys_per_instance.or(file.max_keys_per_instance),
        rate_limit_per_instance: a.rate_limit_per_instance.or(file.rate_limit_per_instance),
        backup_dir: a.backup_dir.or(file.backup_dir),
        backup_keep: a.backup_keep.or(file.backup_keep).unwrap_or(7).max(1),
        backup_key_file: a.backup_key_file.or(file.backup_key_file),
        unit_passphrase_file: a.unit_passphrase_file.or(file.unit_passphrase_file),
        cluster_key_file: a.cluster_key_file.or(file.cluster_key_file),
        otlp_endpoint: a.otlp_endpoint.or(file.otlp_endpoint),
        jobs_every: Duration::from_secs(jobs_every),
    })
}
