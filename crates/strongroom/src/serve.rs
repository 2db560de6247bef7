//! `strongroom serve`: wiring of store, provider, vault and service (its configuration is
//! resolved in `config.rs`), the listeners (TLS via rustls unless `--dev`), dev-mode
//! bootstrap and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::CryptoProvider;
use strongroom_keystore::KeyStore;
use strongroom_keystore_sqlite::SqliteStore;
use strongroom_service::{Clock, OffsetClock, Service, ServiceConfig, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::config::*;
use crate::error::Error;
use crate::listen::{serve_loop, shutdown_signal, App};
use crate::node::{FileVault, NodeFiles};

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

async fn open_store(cfg: &Config) -> Result<Store, Error> {
    match &cfg.keystore_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let s = strongroom_keystore_postgres::PgStore::connect(url, &Default::default())
                .await
                .map_err(|e| {
                    Error::other(format!(
                        "cannot open the PostgreSQL keystore: {}",
                        describe(&e)
                    ))
                })?;
            Ok(Store::Postgres(Arc::new(s)))
        }
        Some(other) => Err(Error::usage(format!(
            "--keystore-url must be a postgres:// URL, not '{}'",
            other.split(':').next().unwrap_or("")
        ))),
        None => {
            let s = SqliteStore::open(&cfg.data_dir.join("keystore.db"))
                .await
                .map_err(|e| Error::other(format!("cannot open the keystore: {}", describe(&e))))?;
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

pub async fn run(cfg: Config) -> Result<(), Error> {
    let h = crate::harden::harden();
    match &h.memory_note {
        None => tracing::info!(
            core_dumps_off = h.core_dumps_off,
            memory_locked = h.memory_locked,
            "process hardened: no core dumps, memory locked out of swap"
        ),
        // A development server holds no real keys: the same words, without the warning.
        Some(why) if cfg.dev => tracing::info!(
            core_dumps_off = h.core_dumps_off,
            memory_locked = h.memory_locked,
            "memory is not locked: {why}"
        ),
        Some(why) => tracing::warn!(
            core_dumps_off = h.core_dumps_off,
            memory_locked = h.memory_locked,
            "memory is not locked: {why}"
        ),
    }
    let provider: Arc<dyn CryptoProvider> = Arc::new(AwsLcProvider);
    crate::node::create_private_dir(&cfg.data_dir).map_err(Error::context(format!(
        "cannot create data dir {}",
        cfg.data_dir.display()
    )))?;
    let node = NodeFiles::load_or_create(&cfg.data_dir, provider.as_ref())
        .map_err(Error::context("node files"))?;
    let secrets = node
        .secrets(provider.as_ref(), cfg.cluster_key_file.as_deref())
        .map_err(Error::context("node key"))?;
    let passphrase = match &cfg.unit_passphrase_file {
        Some(p) => Some(zeroize::Zeroizing::new(
            std::fs::read_to_string(p)
                .map_err(Error::context(format!(
                    "cannot read the unit passphrase file {}",
                    p.display()
                )))?
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
        .map_err(Error::context("unit files"))?,
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
            zone: cfg.zone.clone(),
            region: cfg.region.clone(),
            rsa_pkcs1_decryption: cfg.rsa_pkcs1_decryption,
            fips_policy: cfg.fips_policy,
        },
    )
    .await
    .map_err(Error::context("service start failed"))?;

    let listener = TcpListener::bind(cfg.http_addr)
        .await
        .map_err(Error::context(format!(
            "cannot listen on {}",
            cfg.http_addr
        )))?;
    let local = listener.local_addr().map_err(Error::from)?;
    let tls = match &cfg.tls {
        Some((c, k)) => Some(crate::tls::tls_acceptor(c, k, None, cfg.tls_groups)?),
        None => None,
    };
    // The GREP11 listener may additionally require client certificates.
    let grpc_tls = match (&cfg.tls, &cfg.grpc_client_ca) {
        (Some((c, k)), Some(ca)) => Some(crate::tls::tls_acceptor(c, k, Some(ca), cfg.tls_groups)?),
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
                .map_err(Error::context(format!("cannot listen on {a} (gRPC)")))?,
        ),
        None => None,
    };
    let grpc_local = match &grpc_listener {
        Some(l) => Some(l.local_addr().map_err(Error::from)?),
        None => None,
    };
    let bind = |addr: Option<SocketAddr>, what: &'static str| async move {
        match addr {
            Some(a) => TcpListener::bind(a)
                .await
                .map(Some)
                .map_err(Error::context(format!("cannot listen on {a} ({what})"))),
            None => Ok(None),
        }
    };
    let private_http = bind(cfg.private_http_addr, "private REST").await?;
    let private_grpc = bind(cfg.private_grpc_addr, "private GREP11").await?;
    let admin_listener = match cfg.admin_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(Error::context(format!("cannot listen on {a} (admin)")))?,
        ),
        None => None,
    };
    let admin_url = match &admin_listener {
        Some(l) => Some(format!(
            "{scheme}://{}",
            l.local_addr().map_err(Error::from)?
        )),
        None => None,
    };
    let kmip_listener = crate::kmip_serve::bind(cfg.kmip).await?;
    let kmip_local = match &kmip_listener {
        Some(l) => Some(l.local_addr().map_err(Error::from)?),
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
        return Err(Error::usage("the KMIP listener needs a certificate: pass --kmip-cert and --kmip-key (or --tls-cert and --tls-key), or --kmip-addr off"));
    }
    if cfg.dev {
        let kmip = match (&dev_kmip, kmip_local) {
            (Some(f), Some(addr)) => Some((f, addr)),
            _ => None,
        };
        crate::dev::dev_bootstrap(
            &svc,
            &cfg,
            &node,
            crate::dev::DevEndpoints {
                rest_url: &rest_url,
                admin_url: admin_url.as_deref(),
                private_rest_url: private_http
                    .as_ref()
                    .and_then(|l| l.local_addr().ok())
                    .map(|a| format!("{scheme}://{a}")),
                private_grpc_addr: private_grpc.as_ref().and_then(|l| l.local_addr().ok()),
                grpc_addr: grpc_local,
            },
            kmip,
        )
        .await?;
    }
    let kmip_task = match (kmip_listener, kmip_tls) {
        (Some(l), Some((cert, key))) => Some(crate::kmip_serve::start(l, &svc, &cert, &key, &cfg)?),
        _ => None,
    };
    let rest_options = strongroom_rest::RestOptions {
        max_body: cfg.max_body,
        test_clock,
        trace_requests: cfg.otlp_endpoint.is_some(),
        endpoints: strongroom_rest::Endpoints {
            grep11_port: grpc_local.map(|a| a.port()),
            grep11_tls: tls.is_some(),
            kmip_port: kmip_local.map(|a| a.port()),
        },
    };
    let frontend = Arc::new(strongroom_rest::Frontend::new(
        Arc::clone(&svc),
        rest_options.clone(),
    ));
    // The other listeners' front ends share the API's metrics. Each exists only with its
    // listener: a front end holds the service, and the service must be gone at shutdown
    // for the audit writer to finish.
    let sibling =
        |surface, network| Arc::new(frontend.sibling(rest_options.clone(), surface, network));
    // The counter holds the metrics only: the service must be gone at shutdown.
    let counter = frontend.tls_counter();
    crate::tls::count_handshakes(Arc::new(move |l, g| counter.count(l, g)));
    tracing::info!(url = %rest_url, store = store.dyn_store().backend(), data_dir = %cfg.data_dir.display(), "strongroom is serving");
    if let Some(g) = grpc_local {
        tracing::info!(addr = %g, tls = grpc_tls.is_some(), mutual_tls = cfg.grpc_client_ca.is_some(), "GREP11 gRPC API is serving");
    }
    if let Some(u) = &admin_url {
        tracing::info!(url = %u, "admin API and /metrics are serving");
    }

    // Rotation policies, expiration, automatic purges and KMIP dates: checked every few minutes (Key
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
                    kmip_dates = run.kmip_dates,
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
    let backup_target = backup_target.map(Arc::new);
    if let Some(t) = &backup_target {
        svc.set_backup_catalog(Arc::clone(t) as Arc<dyn strongroom_service::backups::BackupCatalog>);
    }
    let backup_key = match &backup_target {
        Some(_) => crate::backup_target::archive_key(cfg.backup_key_file.as_deref(), true)?,
        None => {
            if cfg.backup_key_file.is_some() {
                tracing::warn!(
                    "--backup-key-file is set without --backup-dir: this node writes no archives"
                );
            }
            None
        }
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
                    Ok(true) => match crate::backup_target::write_backup(store.as_ref(), &target, None, backup_key.as_ref()).await {
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
            "grep11",
            grpc_tls.clone(),
            App::Router(router),
            true,
            stop_rx.clone(),
        ))
    });
    let mut private_tasks = Vec::new();
    if let Some(l) = private_http {
        tracing::info!(addr = ?l.local_addr().ok(), "REST API is serving on the private network");
        private_tasks.push(tokio::spawn(serve_loop(
            l,
            "rest-private",
            tls.clone(),
            App::Frontend(sibling(
                strongroom_rest::Surface::Api,
                strongroom_service::Network::Private,
            )),
            false,
            stop_rx.clone(),
        )));
    }
    if let Some(l) = private_grpc {
        tracing::info!(addr = ?l.local_addr().ok(), "GREP11 is serving on the private network");
        let router = strongroom_grep11::Grep11::new(Arc::clone(&svc))
            .on_network(strongroom_service::Network::Private)
            .router();
        private_tasks.push(tokio::spawn(serve_loop(
            l,
            "grep11-private",
            grpc_tls.clone(),
            App::Router(router),
            true,
            stop_rx.clone(),
        )));
    }
    let admin_task = admin_listener.map(|l| {
        tokio::spawn(serve_loop(
            l,
            "admin",
            tls.clone(),
            App::Frontend(sibling(
                strongroom_rest::Surface::Admin,
                strongroom_service::Network::Private,
            )),
            false,
            stop_rx.clone(),
        ))
    });
    serve_loop(
        listener,
        "rest",
        tls,
        App::Frontend(frontend),
        false,
        stop_rx,
    )
    .await;
    if let Some(t) = grpc_task {
        let _ = t.await;
    }
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    for t in private_tasks {
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
        assert!(e.to_string().contains("--dev-allow-non-loopback"), "{e}");
        let e = resolve(args(&["--dev", "--grpc-addr", "[::]:9000"])).unwrap_err();
        assert!(e.to_string().contains("[::]:9000"), "{e}");
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
        assert!(e.to_string().contains("--jobs-every"), "{e}");
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
        assert!(resolve(args(&[]))
            .unwrap_err()
            .to_string()
            .contains("TLS is required"));
        assert!(resolve(args(&["--dev", "--grpc-client-ca", "ca.pem"]))
            .unwrap_err()
            .to_string()
            .contains("needs --tls-cert"));
        assert!(resolve(args(&["--dev", "--audit-sync", "sometimes"]))
            .unwrap_err()
            .to_string()
            .contains("--audit-sync"));
        assert!(resolve(args(&["--dev", "--token-ttl", "5"]))
            .unwrap_err()
            .to_string()
            .contains("--token-ttl"));
        assert!(resolve(args(&["--test-clock"])).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "colour = \"blue\"\n").unwrap();
        assert!(
            resolve(args(&["--dev", "--config", file.to_str().unwrap()]))
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
    }
}
