//! `strongroom migrate`: moves an instance's keys, key rings, aliases, policies,
//! registrations, KMIP adapters and wrapped data keys from a Key Protect-compatible service
//! (IBM Key Protect, Hyper Protect Crypto Services, or another Strongroom) to this one,
//! through the public API only. `plan` reads and changes nothing; `run` carries a plan out,
//! resumably. docs/runbooks/leaving-ibm.md walks through it.

mod blobs;
mod deks;
mod journal;
mod plan;
mod run;
mod source;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use strongroom_client::{Auth, Client};
use zeroize::Zeroizing;

use crate::cli::{print, Conn};
use crate::error::Error;
use plan::{Material, Plan, SourceInfo};

/// `strongroom migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(subcommand)]
    cmd: MigrateCmd,
    /// The destination: this Strongroom (`--url`, `--instance`, `--api-key`, …).
    #[command(flatten)]
    conn: Conn,
}

/// How to reach the source. Its API key never comes from the command line: it is read
/// from `--from-api-key-file`, else from STRONGROOM_MIGRATE_FROM_API_KEY.
#[derive(Args, Debug, Clone)]
struct FromArgs {
    /// File holding the source's API key (else STRONGROOM_MIGRATE_FROM_API_KEY).
    #[arg(long, value_name = "FILE")]
    from_api_key_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for the source and its IAM endpoint, in
    /// addition to the system's trust store (IBM's endpoints need none).
    #[arg(long, value_name = "PEM")]
    from_ca_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum MigrateCmd {
    /// Read the source and write a plan: every key and what will happen to it (copy,
    /// import, recreate and rewrap, or cannot move, with the reason), the key rings,
    /// policies, registrations and KMIP adapters. Changes nothing anywhere.
    Plan {
        /// The source's Key Protect API URL (IBM Key Protect:
        /// https://<region>.kms.cloud.ibm.com; HPCS: the instance's key management URL).
        #[arg(long = "from", value_name = "URL")]
        from: String,
        /// The source instance's id.
        #[arg(long, value_name = "ID")]
        from_instance: String,
        /// Where the source's API key is exchanged for a token (IBM Cloud:
        /// https://iam.cloud.ibm.com). Without it, the source itself is asked
        /// (`/identity/token`), as a Strongroom source answers.
        #[arg(long, value_name = "URL")]
        from_iam_url: Option<String>,
        #[command(flatten)]
        from_args: FromArgs,
        /// Root key material you hold, to import rather than recreate: a directory of
        /// files named by the key's id or an alias, each holding the key in base64.
        #[arg(long, value_name = "DIR")]
        material: Option<PathBuf>,
        /// Where to write the plan (JSON).
        #[arg(long, value_name = "FILE", default_value = "migration-plan.json")]
        out: PathBuf,
    },
    /// Carry a plan out into the destination: key rings, keys with their names, aliases,
    /// rings and policies, registrations, KMIP adapters and certificates, the wrapped DEKs
    /// given, suspended keys suspended, and last the instance policies. A journal next to
    /// the plan records each step: run it again after a failure or a kill, and it goes on
    /// where it stopped without doing anything twice.
    Run {
        /// The plan `migrate plan` wrote.
        #[arg(long, value_name = "FILE", default_value = "migration-plan.json")]
        plan: PathBuf,
        #[command(flatten)]
        from_args: FromArgs,
        /// The material directory given to `migrate plan` (for keys planned as imports).
        #[arg(long, value_name = "DIR")]
        material: Option<PathBuf>,
        /// Wrapped DEKs to rewrap: JSON lines of {"key", "ciphertext", "aad"?}, or a
        /// directory of such files. Repeatable.
        #[arg(long, value_name = "PATH")]
        deks: Vec<PathBuf>,
        /// Where the DEK map goes: one JSON line per DEK with its old and new ciphertext.
        /// Default: the plan's name with `.deks.jsonl`.
        #[arg(long, value_name = "FILE")]
        deks_out: Option<PathBuf>,
        /// DEKs rewrapped at a time.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Move GREP11 key blobs that your applications keep, from HPCS's GREP11 (or another
    /// Strongroom's) to Strongroom's. Extractable keys travel wrapped under a transport key
    /// created in Strongroom, and each is checked by use at both ends; keys that are not
    /// extractable are listed with the re-key procedure. The new blobs are appended to
    /// `--out`; run again after a failure or a kill, and blobs already moved are skipped.
    Blobs {
        /// The source's GREP11 endpoint: host:port or https://host:port (TLS), or
        /// http://host:port (plain, loopback test servers).
        #[arg(long = "from-grep11", value_name = "ENDPOINT")]
        from_grep11: String,
        /// The source instance's id (HPCS's Bluemix-Instance header).
        #[arg(long, value_name = "ID")]
        from_instance: String,
        /// Where the source's API key is exchanged for a token (IBM Cloud:
        /// https://iam.cloud.ibm.com).
        #[arg(long, value_name = "URL")]
        from_iam_url: Option<String>,
        /// The source's Key Protect API URL: a Strongroom source exchanges the API key
        /// there when --from-iam-url is not given.
        #[arg(long = "from", value_name = "URL")]
        from: Option<String>,
        #[command(flatten)]
        from_args: FromArgs,
        /// Strongroom's GREP11 endpoint (default: the dev server's, from dev.json).
        #[arg(long = "to-grep11", value_name = "ENDPOINT")]
        to_grep11: Option<String>,
        /// The blobs: JSON lines of {"name": "...", "blob": "<base64 of the blob>"}.
        #[arg(long, value_name = "FILE")]
        blobs: PathBuf,
        /// Where the new blobs go, one JSON line each, with how each move was checked.
        /// Default: the input's name with `.moved.jsonl`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only say which blobs would move and which cannot; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// An indicatif bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "  {{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

impl FromArgs {
    /// The source's API key: from the file, else from the environment.
    fn api_key(&self) -> Result<Zeroizing<String>, Error> {
        if let Some(f) = &self.from_api_key_file {
            let k = Zeroizing::new(
                std::fs::read_to_string(f)
                    .map_err(Error::context(format!("cannot read {}", f.display())))?,
            );
            return Ok(Zeroizing::new(k.trim().to_string()));
        }
        std::env::var("STRONGROOM_MIGRATE_FROM_API_KEY")
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::usage(
                    "no API key for the source: give --from-api-key-file FILE or set \
                     STRONGROOM_MIGRATE_FROM_API_KEY (never on the command line)",
                )
            })
    }

    fn client(&self, url: &str, instance: &str, iam: Option<String>) -> Result<Client, Error> {
        let trust = strongroom_client::Trust {
            ca_file: self.from_ca_file.clone(),
            insecure: false,
        };
        let key = self.api_key()?;
        Ok(Client::new(
            url,
            Auth::ApiKey(key.to_string()),
            Some(instance.into()),
            &trust,
        )?
        .with_iam_url(iam))
    }
}

/// `strongroom migrate …`.
pub async fn migrate(a: MigrateArgs) -> Result<(), Error> {
    let output = a.conn.output();
    match a.cmd {
        MigrateCmd::Blobs {
            from_grep11,
            from_instance,
            from_iam_url,
            from,
            from_args,
            to_grep11,
            blobs,
            out,
            dry_run,
        } => {
            let token_url = from.or_else(|| from_iam_url.clone()).ok_or_else(|| {
                Error::usage(
                    "give --from-iam-url (IBM Cloud: https://iam.cloud.ibm.com), or --from with \
                     the source's Key Protect URL, where its API key is exchanged",
                )
            })?;
            let trust = strongroom_client::Trust {
                ca_file: from_args.from_ca_file.clone(),
                insecure: false,
            };
            let source_rest = from_args.client(&token_url, &from_instance, from_iam_url)?;
            let src = blobs::Side::connect("the source", &from_grep11, trust, source_rest).await?;
            let to = to_grep11.or_else(|| a.conn.dev_grep11()).ok_or_else(|| {
                Error::usage("give --to-grep11 host:port, Strongroom's GREP11 endpoint")
            })?;
            let dst =
                blobs::Side::connect("Strongroom", &to, a.conn.server_trust(), a.conn.client()?)
                    .await?;
            let out = out.unwrap_or_else(|| blobs.with_extension("moved.jsonl"));
            let report = blobs::move_blobs(&src, &dst, &blobs, &out, dry_run).await?;
            let json = serde_json::to_value(&report)?;
            print(output, report.human(&out), &json);
            if report.failures() > 0 {
                return Err(Error::check(format!(
                    "{} blob(s) failed to move (listed above); run again once the cause is \
                     fixed: blobs already moved are skipped",
                    report.failures()
                )));
            }
            Ok(())
        }
        MigrateCmd::Plan {
            from,
            from_instance,
            from_iam_url,
            from_args,
            material,
            out,
        } => {
            let source = from_args.client(&from, &from_instance, from_iam_url.clone())?;
            let info = SourceInfo {
                url: from,
                iam_url: from_iam_url,
                instance: from_instance,
                key_rings: vec![],
                instance_policies: vec![],
                kmip_adapters: vec![],
            };
            let plan = source::read_plan(&source, info, &Material(material)).await?;
            plan.save(&out)?;
            print(
                output,
                format!("{}\n\nplan written to {}", plan.table(), out.display()),
                &serde_json::to_value(&plan)?,
            );
            Ok(())
        }
        MigrateCmd::Run {
            plan,
            from_args,
            material,
            deks,
            deks_out,
            concurrency,
        } => {
            let p = Plan::load(&plan)?;
            let source =
                from_args.client(&p.source.url, &p.source.instance, p.source.iam_url.clone())?;
            let dest = a.conn.client()?;
            let deks_out = deks_out.unwrap_or_else(|| plan.with_extension("deks.jsonl"));
            let report = run::run(
                &p,
                run::Paths {
                    journal: plan.with_extension("journal"),
                    deks,
                    deks_out: deks_out.clone(),
                },
                source,
                dest,
                &Material(material),
                concurrency,
            )
            .await?;
            let json = serde_json::to_value(&report)?;
            std::fs::write(
                plan.with_extension("report.json"),
                serde_json::to_vec_pretty(&json)?,
            )?;
            print(output, report.human(&deks_out), &json);
            if report.failures() > 0 {
                return Err(Error::check(format!(
                    "{} step(s) failed (listed above and in {}); run `migrate run` again once \
                     their cause is fixed: what is done stays done",
                    report.failures(),
                    plan.with_extension("report.json").display()
                )));
            }
            Ok(())
        }
    }
}
