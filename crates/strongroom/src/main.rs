//! `strongroom`: the server (`serve`) and the command-line client (`key`, `instance`,
//! `audit`, `bench`) in one binary.
#![forbid(unsafe_code)]

mod backup_target;
mod bench;
mod card;
mod cli;
mod config;
mod dev;
mod error;
mod harden;
mod kmip_serve;
mod listen;
mod logging;
mod migrate;
mod node;
mod serve;
mod tke;
mod tls;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: measurably faster than the system allocator for the many small, short-lived
/// allocations of request handling (see the README's performance section).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Strongroom: a self-hosted, keep-your-own-key HSM and key management service that speaks
/// the IBM Key Protect API.
///
/// Quick start: `strongroom serve --dev` in one terminal, then `strongroom key create demo`
/// in another (the CLI finds ./strongroom-data/dev.json by itself).
#[derive(Parser, Debug)]
#[command(
    name = "strongroom",
    version,
    propagate_version = true,
    after_help = "Exit status: 0 success; 1 a local failure (files, keystore, listeners); 2 wrong \
                  arguments or configuration; 3 the server refused the request; 4 the server \
                  cannot be reached or failed; 5 a check failed (audit chain, verification \
                  pattern, signature, file integrity)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the server.
    Serve(Box<serve::ServeArgs>),
    /// Manage keys of an instance (create, list, show, wrap, unwrap, rotate, ...).
    #[command(subcommand_required = true)]
    Key(cli::KeyArgs),
    /// KMIP adapters, their client certificates and KMIP objects (docs/kmip.md).
    #[command(subcommand_required = true)]
    Kmip(cli::KmipArgs),
    /// Administer crypto units: administrators, thresholds, master key ceremony, rotation
    /// and recovery (the HPCS TKE command names; docs/runbooks/ceremony.md).
    #[command(subcommand_required = true)]
    Tke(tke::TkeArgs),
    /// Administrators' smart cards and USB tokens (PKCS#11), as IBM's Management Utilities:
    /// zone CA and backup CA cards, EP11 cards certified in a zone with signature keys and
    /// master key parts generated on them, card copy within a zone, PIN changes
    /// (docs/runbooks/ceremony-smart-cards.md).
    #[command(subcommand_required = true)]
    Card(card::cli::CardArgs),
    /// Manage instances and their API keys (service administrator).
    #[command(subcommand_required = true)]
    Instance(cli::InstanceArgs),
    /// Check the audit log.
    #[command(subcommand_required = true)]
    Audit(cli::AuditArgs),
    /// Read the instance's activity events, or export them to a file or webhook as they
    /// happen (CADF events, as IBM's Activity Tracker delivers Key Protect's).
    #[command(subcommand_required = true)]
    Activity(cli::ActivityArgs),
    /// Back up and restore a node's keystore (key material stays sealed under the master keys).
    #[command(subcommand_required = true)]
    Backup(cli::BackupArgs),
    /// The PKCS#11 library's keystores, from its grep11client.yaml: `seal-keystore` moves
    /// objects written without a password into a password-protected keystore.
    #[command(subcommand_required = true)]
    Pkcs11(cli::Pkcs11Args),
    /// Move an instance from IBM Key Protect or HPCS (or another Strongroom) to this one:
    /// `plan` reads the source and says what will happen to each key; `run` carries the plan
    /// out, resumably, rewrapping the data keys you give (docs/runbooks/leaving-ibm.md).
    #[command(subcommand_required = true)]
    Migrate(migrate::MigrateArgs),
    /// Load generator and baseline server used by scripts/bench.
    #[command(subcommand_required = true, hide = true)]
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Serve(a) => {
                let cfg = serve::resolve(*a)?;
                let traces = logging::init_logging(cfg.log_json, cfg.otlp_endpoint.as_deref())?;
                let r = serve::run(cfg).await;
                if let Some(t) = traces {
                    // Flushes the spans still queued (blocking: the exporter has its own thread).
                    let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
                }
                r
            }
            Cmd::Key(a) => cli::key(a).await,
            Cmd::Instance(a) => cli::instance(a).await,
            Cmd::Kmip(a) => cli::kmip(a).await,
            Cmd::Tke(a) => tke::tke(a).await,
            Cmd::Card(a) => card::cli::card(a),
            Cmd::Audit(a) => cli::audit(a).await,
            Cmd::Activity(a) => cli::activity(a).await,
            Cmd::Backup(a) => cli::backup(a).await,
            Cmd::Pkcs11(a) => cli::pkcs11(a).await,
            Cmd::Migrate(a) => migrate::migrate(a).await,
            Cmd::Bench(a) => bench::run(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
