//! Tenants' activity events: the instance's own audit records, for the instance's Readers,
//! Writers and Managers, by time, action, outcome and key. The query is always scoped to
//! the caller's instance: no filter can reach another tenant's records.

use strongroom_keystore::{AuditQuery, AuditRecord};
use strongroom_model::{Role, UnixMillis};

use crate::action::Action;
use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// The most events one read returns.
pub const MAX_ACTIVITY_PAGE: u32 = 1000;

/// Which of its instance's events a caller reads. Every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Only events after this one (the `seq` of the last event already read; 0 = from the
    /// start). Reading on from the last `seq` returned follows the log without gaps.
    pub after: i64,
    /// Only events at or after this time.
    pub from: Option<UnixMillis>,
    /// Only events before this time.
    pub to: Option<UnixMillis>,
    /// Only this action (`kms.secrets.wrap`).
    pub action: Option<String>,
    /// Only this outcome: `success`, or an error code (`key_not_found`).
    pub outcome: Option<String>,
    /// Only failed calls.
    pub failures: bool,
    /// Only events naming this key (as the caller named it: id or alias).
    pub key: Option<String>,
    /// At most this many events (1 to [`MAX_ACTIVITY_PAGE`]).
    pub limit: u32,
}

/// One event of the instance's activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEvent {
    /// Position in the node's audit chain (increasing; the cursor for the next read).
    pub seq: i64,
    /// When.
    pub at: UnixMillis,
    /// Who (`apikey:<id>`, `scheduler`, a token's subject).
    pub principal: String,
    /// What (`kms.secrets.wrap`).
    pub action: String,
    /// The key as named in the call, if any.
    pub key: Option<String>,
    /// `success` or the error kind's code.
    pub outcome: String,
    /// The outcome's class (HTTP numbering; see [`crate::StatusClass`]).
    pub status: u16,
    /// The request's correlation id.
    pub correlation_id: String,
}

impl ActivityEvent {
    fn of(r: AuditRecord) -> Self {
        ActivityEvent {
            seq: r.seq,
            at: r.at,
            principal: r.principal,
            action: r.action,
            key: r.key,
            outcome: r.outcome,
            status: r.status,
            correlation_id: r.correlation_id,
        }
    }
}

impl Service {
    /// The caller's instance's activity events matching `q`, oldest first. Needs the
    /// Reader role (Managers and Writers have it); the read is itself audited.
    pub async fn activity(&self, ctx: &Ctx, q: ActivityQuery) -> Result<Vec<ActivityEvent>> {
        let op = async {
            if !(1..=MAX_ACTIVITY_PAGE).contains(&q.limit) {
                return Err(ServiceError::field(
                    ErrorKind::InvalidQueryParam,
                    "limit",
                    format!("must be 1 to {MAX_ACTIVITY_PAGE}"),
                ));
            }
            if let (Some(f), Some(t)) = (q.from, q.to) {
                if f.0 >= t.0 {
                    return Err(ServiceError::field(
                        ErrorKind::InvalidQueryParam,
                        "from",
                        "must be before to",
                    ));
                }
            }
            let query = AuditQuery {
                after: q.after.max(0),
                from: q.from,
                to: q.to,
                action: q.action,
                outcome: q.outcome,
                failures: q.failures,
                key: q.key,
                limit: q.limit,
            };
            let records = self.store.read_instance_audit(ctx.instance, &query).await?;
            Ok(records.into_iter().map(ActivityEvent::of).collect())
        };
        self.audited(ctx, Action::ActivityRead, Role::Reader, None, op)
            .await
    }
}
