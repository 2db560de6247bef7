//! `strongroom audit`: offline verification of the audit chain on the node.

use super::*;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// Verify the hash chain of the audit log (offline, on the node: needs the data
    /// directory's keystore.db and node.key). Exits non-zero if a record was changed,
    /// inserted or removed.
    Verify {
        #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
        data_dir: PathBuf,
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

pub async fn audit(a: AuditArgs) -> Result<(), String> {
    match a.cmd {
        AuditCmd::Verify {
            data_dir,
            output,
            keystore_url,
            cluster_key_file,
        } => {
            use strongroom_engine::CryptoProvider;
            let provider = strongroom_crypto_awslc::AwsLcProvider;
            let node_key =
                crate::node::NodeFiles::load_key(&data_dir).map_err(|e| e.to_string())?;
            if let Some(f) = &cluster_key_file {
                if !f.exists() {
                    return Err(format!("{} does not exist", f.display()));
                }
            }
            let audit_key = zeroize::Zeroizing::new(
                crate::node::NodeFiles::shared_key(
                    &provider,
                    &node_key,
                    cluster_key_file.as_deref(),
                    "audit",
                )
                .map_err(|e| e.to_string())?,
            );
            let store: Arc<dyn strongroom_keystore::KeyStore> = match keystore_url {
                Some(url) => Arc::new(
                    strongroom_keystore_postgres::PgStore::connect(&url, &Default::default())
                        .await
                        .map_err(|e| format!("cannot open the PostgreSQL keystore: {e}"))?,
                ),
                None => {
                    let db = data_dir.join("keystore.db");
                    Arc::new(
                        strongroom_keystore_sqlite::SqliteStore::open_read_only(&db)
                            .await
                            .map_err(|e| format!("cannot open {}: {e}", db.display()))?,
                    )
                }
            };
            let _ = provider.name();
            let report =
                strongroom_service::verify_chain(store.as_ref(), &provider, audit_key.as_ref())
                    .await
                    .map_err(|e| e.to_string())?;
            let v = json!({"records": report.records, "ok": report.problem.is_none(), "problem": report.problem.as_ref().map(|(s, m)| json!({"seq": s, "message": m}))});
            match &report.problem {
                None => print(
                    output,
                    format!("audit log OK: {} records, chain intact", report.records),
                    &v,
                ),
                Some((seq, msg)) => {
                    print(output, format!("audit log BROKEN at record {seq}: {msg} ({} records verified before it)", report.records), &v);
                    return Err("audit verification failed".into());
                }
            }
        }
    }
    Ok(())
}
