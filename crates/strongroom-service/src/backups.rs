//! The backup list an instance's Managers see: which archives exist where this node
//! writes its backups, and when this node last wrote a scheduled one. The node's backup
//! target is the server's (a directory or an object store); the service sees it through
//! [`BackupCatalog`].

use std::sync::Arc;

use async_trait::async_trait;
use strongroom_model::{InstanceId, Role, UnixMillis};

use crate::action::Action;
use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// Lists the archive names of the node's backup target.
#[async_trait]
pub trait BackupCatalog: Send + Sync + 'static {
    /// Every archive name (`strongroom-backup-<ms>[-<instance>].srbk`).
    async fn names(&self) -> std::io::Result<Vec<String>>;
}

/// One archive, as an instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    /// The archive's name in the backup target.
    pub name: String,
    /// When it was written (from its name).
    pub created_at: UnixMillis,
    /// Whether it holds only this instance (`backup create --instance`), not the node.
    pub instance_only: bool,
}

/// The backups an instance's Manager may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupsView {
    /// Whether this node writes scheduled backups (`serve --backup-dir`).
    pub configured: bool,
    /// When this node last wrote its scheduled backup.
    pub last_scheduled: Option<UnixMillis>,
    /// Archives holding this instance, newest first.
    pub archives: Vec<BackupEntry>,
}

/// Reads `strongroom-backup-<ms>.srbk` or `strongroom-backup-<ms>-<instance>.srbk`.
pub fn parse_archive_name(name: &str) -> Option<(UnixMillis, Option<InstanceId>)> {
    let stem = name
        .strip_prefix("strongroom-backup-")?
        .strip_suffix(".srbk")?;
    let (ms, instance) = match stem.split_once('-') {
        Some((ms, i)) => (ms, Some(i.parse().ok()?)),
        None => (stem, None),
    };
    Some((UnixMillis(ms.parse().ok()?), instance))
}

impl Service {
    /// Tells the service where this node writes its backups.
    pub fn set_backup_catalog(&self, catalog: Arc<dyn BackupCatalog>) {
        let _ = self.backup_catalog.set(catalog);
    }

    /// The archives that hold the caller's instance: whole-node archives and its own
    /// single-instance ones. Other instances' single-instance archives are not shown
    /// (their names carry those instances' ids).
    pub async fn backups(&self, ctx: &Ctx) -> Result<BackupsView> {
        let instance = ctx.instance;
        let op = async {
            let last = self.ops_stats().last_backup_ms;
            let last_scheduled = (last > 0).then_some(UnixMillis(last));
            let Some(catalog) = self.backup_catalog.get() else {
                return Ok(BackupsView {
                    configured: false,
                    last_scheduled,
                    archives: vec![],
                });
            };
            let names = catalog.names().await.map_err(|e| {
                tracing::warn!(error = %e, "backup target cannot be listed");
                ServiceError::new(
                    ErrorKind::Unavailable,
                    "the backup target cannot be listed right now",
                )
            })?;
            let mut archives: Vec<BackupEntry> = names
                .into_iter()
                .filter_map(|name| {
                    let (created_at, only) = parse_archive_name(&name)?;
                    match only {
                        Some(i) if i != instance => None,
                        _ => Some(BackupEntry {
                            name,
                            created_at,
                            instance_only: only.is_some(),
                        }),
                    }
                })
                .collect();
            archives.sort_by_key(|a| std::cmp::Reverse(a.created_at.0));
            Ok(BackupsView {
                configured: true,
                last_scheduled,
                archives,
            })
        };
        self.audited(ctx, Action::BackupsRead, Role::Manager, None, op)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_give_their_time_and_instance() {
        let i: InstanceId = "c83650f3-362a-4758-82ef-7a03e85ee03d".parse().unwrap();
        assert_eq!(
            parse_archive_name("strongroom-backup-1796416404000.srbk"),
            Some((UnixMillis(1_796_416_404_000), None))
        );
        assert_eq!(
            parse_archive_name(&format!("strongroom-backup-17-{i}.srbk")),
            Some((UnixMillis(17), Some(i)))
        );
        for bad in [
            "strongroom-backup-.srbk",
            "strongroom-backup-12.tar",
            "other-12.srbk",
            "strongroom-backup-12-notanid.srbk",
            "strongroom-backup-x.srbk",
        ] {
            assert_eq!(parse_archive_name(bad), None, "{bad}");
        }
    }
}
