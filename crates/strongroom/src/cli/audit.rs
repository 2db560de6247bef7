//! `strongroom audit`: offline verification of the audit chain on the node.

use super::*;
use crate::error::Error;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// Verify the hash chain of the audit log (offline, on the node: needs the data
    /// directory's keystore.db and node.key). Exits with status 5 if a record was changed,
    /// inserted or removed, and with status 2 if the key is wrong (no record verifies: a
    /// missing or different cluster key, or another node's data directory).
    Verify {
        /// The configuration file the node serves with (`serve --config`): its data_dir,
        /// keystore_url and cluster_key_file apply unless given here.
        #[arg(long, env = "STRONGROOM_CONFIG")]
        config: Option<PathBuf>,
        /// The node's data directory [default: ./strongroom-data].
        #[arg(long, env = "STRONGROOM_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The node's PostgreSQL keystore, when it runs on one.
        #[arg(long, env = "STRONGROOM_KEYSTORE_URL", hide_env_values = true)]
        keystore_url: Option<String>,
        /// The cluster key file the nodes run with (`serve --cluster-key-file`), if any.
        #[arg(long, env = "STRONGROOM_CLUSTER_KEY_FILE")]
        cluster_key_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
    },
}

pub async fn audit(a: AuditArgs) -> Result<(), Error> {
    match a.cmd {
        AuditCmd::Verify {
            config,
            data_dir,
            output,
            keystore_url,
            cluster_key_file,
        } => {
            let file = crate::serve::read_config_file(config.as_deref())?;
            let data_dir = data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./strongroom-data"));
            let keystore_url = keystore_url.or(file.keystore_url);
            let cluster_key_file = cluster_key_file.or(file.cluster_key_file);
            use strongroom_engine::CryptoProvider;
            let provider = strongroom_crypto_awslc::AwsLcProvider;
            let node_key = crate::node::NodeFiles::load_key(&data_dir).map_err(Error::from)?;
            if let Some(f) = &cluster_key_file {
                if !f.exists() {
                    return Err(Error::other(format!("{} does not exist", f.display())));
                }
            }
            let audit_key = zeroize::Zeroizing::new(
                crate::node::NodeFiles::shared_key(
                    &provider,
                    &node_key,
                    cluster_key_file.as_deref(),
                    "audit",
                )
                .map_err(Error::from)?,
            );
            let store: Arc<dyn strongroom_keystore::KeyStore> = match keystore_url {
                Some(url) => Arc::new(
                    strongroom_keystore_postgres::PgStore::connect(&url, &Default::default())
                        .await
                        .map_err(Error::context("cannot open the PostgreSQL keystore"))?,
                ),
                None => {
                    let db = data_dir.join("keystore.db");
                    Arc::new(
                        strongroom_keystore_sqlite::SqliteStore::open_read_only(&db)
                            .await
                            .map_err(Error::context(format!("cannot open {}", db.display())))?,
                    )
                }
            };
            let _ = provider.name();
            let report =
                strongroom_service::verify_chain(store.as_ref(), &provider, audit_key.as_ref())
                    .await?;
            let v = json!({"records": report.records, "ok": report.problem.is_none(), "wrong_key": report.wrong_key, "problem": report.problem.as_ref().map(|(s, m)| json!({"seq": s, "message": m}))});
            match &report.problem {
                None => print(
                    output,
                    format!("audit log OK: {} records, chain intact", report.records),
                    &v,
                ),
                Some((_, msg)) if report.wrong_key => {
                    print(output, format!("audit log NOT CHECKED: {msg}"), &v);
                    return Err(Error::usage("wrong audit key: nothing was verified"));
                }
                Some((seq, msg)) => {
                    print(output, format!("audit log BROKEN at record {seq}: {msg} ({} records verified before it)", report.records), &v);
                    return Err(Error::check("audit verification failed"));
                }
            }
        }
    }
    Ok(())
}
