//! Tokens answer to their credential as it is now.
//!
//! A bearer token is exchanged for an API key, and names it: `apikey:<id>` as its subject,
//! or `serviceid:<id>` with the API key in the `kid` claim. Every request made with the
//! token acts with the grant the credential has *now*: the API key's roles and key rings,
//! or its service ID's. Deleting the API key or its service ID stops its tokens; narrowing
//! a service ID's grant narrows its tokens. The token's own `roles` claim is what the grant
//! was when it was issued, and no longer decides anything.
//!
//! A node reads a credential once and trusts what it read for [`RECHECK_MS`]. It forgets at
//! once what its own administrators change, and what other nodes change as soon as the
//! keystore announces it ([`strongroom_keystore::Change::Credentials`], PostgreSQL); the
//! recheck bounds the rest. A node that cannot read its keystore refuses the request with
//! the keystore's error, as it refuses every request it cannot audit.

use std::collections::HashMap;
use std::sync::RwLock;

use strongroom_keystore::StoreError;
use strongroom_model::{InstanceId, Roles, UnixMillis};

use crate::auth::Principal;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// How long a node trusts what it read of a credential before reading it again.
pub(crate) const RECHECK_MS: i64 = 5_000;

/// What this node last read of the credentials tokens were issued for.
#[derive(Default)]
pub(crate) struct Credentials {
    inner: RwLock<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Subject → what was read of its credentials (one per instance and API key, so one
    /// in practice), found by the token's subject without building a key.
    standing: HashMap<String, Vec<Seen1>>,
    /// Bumped by every [`Credentials::forget`]: a read that started before a change is not
    /// kept after it.
    generation: u64,
}

/// What was read of one credential, and when.
struct Seen1 {
    instance: InstanceId,
    api_key_id: Option<String>,
    read_at: UnixMillis,
    standing: Standing,
}

impl Seen1 {
    fn is(&self, c: Credential<'_>) -> bool {
        // ct-exempt: an API key's id is public (it is in the audit log), not its secret
        self.instance == c.instance && self.api_key_id.as_deref() == c.api_key_id
    }
}

const SEEN_MAX: usize = 65_536;

/// A credential as the keystore holds it now.
#[derive(Debug, Clone)]
enum Standing {
    Valid {
        roles: Roles,
        key_rings: Option<Vec<String>>,
    },
    Revoked(&'static str),
}

/// One credential: the token's subject, its instance, and the API key it names.
#[derive(Clone, Copy)]
struct Credential<'a> {
    subject: &'a str,
    instance: InstanceId,
    api_key_id: Option<&'a str>,
}

impl Credentials {
    /// Forgets what was read of `instance`'s credentials (of every instance with `None`).
    pub(crate) fn forget(&self, instance: Option<InstanceId>) {
        if let Ok(mut seen) = self.inner.write() {
            seen.generation += 1;
            match instance {
                Some(i) => seen.standing.retain(|_, v| {
                    v.retain(|s| s.instance != i);
                    !v.is_empty()
                }),
                None => seen.standing.clear(),
            }
        }
    }

    fn recall(&self, c: Credential<'_>, now: UnixMillis) -> (Option<Standing>, u64) {
        let Ok(seen) = self.inner.read() else {
            return (None, 0);
        };
        let fresh = seen
            .standing
            .get(c.subject)
            .and_then(|v| v.iter().find(|s| s.is(c)))
            .filter(|s| (0..RECHECK_MS).contains(&(now.0 - s.read_at.0)))
            .map(|s| s.standing.clone());
        (fresh, seen.generation)
    }

    fn remember(
        &self,
        c: Credential<'_>,
        read_at: UnixMillis,
        generation: u64,
        standing: Standing,
    ) {
        let Ok(mut seen) = self.inner.write() else {
            return;
        };
        if seen.generation != generation {
            return;
        }
        if seen.standing.len() >= SEEN_MAX {
            seen.standing.clear();
        }
        let entries = seen.standing.entry(c.subject.to_string()).or_default();
        entries.retain(|s| !s.is(c));
        entries.push(Seen1 {
            instance: c.instance,
            api_key_id: c.api_key_id.map(str::to_string),
            read_at,
            standing,
        });
    }
}

impl Service {
    /// Gives the principal of a verified token of `instance` its credential's grant of now,
    /// or answers `Unauthenticated` if the credential is gone. Principals that no API key
    /// stands behind (the dev token) are left as they are.
    pub(crate) async fn as_credential_stands(
        &self,
        principal: &mut Principal,
        instance: InstanceId,
    ) -> Result<()> {
        let service_id = principal.subject.strip_prefix("serviceid:");
        let api_key_id = principal
            .api_key_id
            .as_deref()
            .or_else(|| principal.subject.strip_prefix("apikey:"));
        if service_id.is_none() && api_key_id.is_none() {
            return Ok(());
        }
        let credential = Credential {
            subject: &principal.subject,
            instance,
            api_key_id,
        };
        let now = self.clock.now();
        let standing = match self.credentials.recall(credential, now) {
            (Some(s), _) => s,
            (None, generation) => {
                let s = self.read_standing(instance, service_id, api_key_id).await?;
                self.credentials
                    .remember(credential, now, generation, s.clone());
                s
            }
        };
        match standing {
            Standing::Valid { roles, key_rings } => {
                principal.roles = roles;
                principal.key_rings = key_rings;
                Ok(())
            }
            Standing::Revoked(why) => Err(ServiceError::new(ErrorKind::Unauthenticated, why)),
        }
    }

    async fn read_standing(
        &self,
        instance: InstanceId,
        service_id: Option<&str>,
        api_key_id: Option<&str>,
    ) -> Result<Standing> {
        const KEY_GONE: &str = "the bearer token is no longer valid: the API key it was issued for has been deleted; exchange a current API key for a new token";
        const SERVICE_ID_GONE: &str = "the bearer token is no longer valid: the service ID it was issued for has been deleted; exchange a current API key for a new token";
        let mut standing = None;
        if let Some(id) = api_key_id {
            match self.store.get_api_key(id).await {
                Ok(rec) if rec.instance == instance && rec.service_id.as_deref() == service_id => {
                    standing = Some(Standing::Valid {
                        roles: rec.roles,
                        key_rings: rec.key_rings,
                    });
                }
                Ok(_) | Err(StoreError::NotFound) => return Ok(Standing::Revoked(KEY_GONE)),
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(id) = service_id {
            match self.store.get_service_id(instance, id).await {
                Ok(rec) => {
                    standing = Some(Standing::Valid {
                        roles: rec.roles,
                        key_rings: rec.key_rings,
                    });
                }
                Err(StoreError::NotFound) => return Ok(Standing::Revoked(SERVICE_ID_GONE)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(standing.unwrap_or(Standing::Revoked(KEY_GONE)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_model::Role;

    fn valid() -> Standing {
        Standing::Valid {
            roles: Roles::of(&[Role::Writer]),
            key_rings: None,
        }
    }

    #[test]
    fn a_read_that_started_before_a_change_is_not_kept_and_reads_age_out() {
        let seen = Credentials::default();
        let (i, other) = (InstanceId::random(), InstanceId::random());
        let c = Credential {
            subject: "apikey:1",
            instance: i,
            api_key_id: Some("1"),
        };
        let at = UnixMillis(1_000_000);
        // A read raced by a change of the instance's credentials is dropped.
        let (nothing, generation) = seen.recall(c, at);
        assert!(nothing.is_none());
        seen.forget(Some(i));
        seen.remember(c, at, generation, valid());
        assert!(seen.recall(c, at).0.is_none());
        // Kept otherwise, for the recheck time and not past it.
        let (_, generation) = seen.recall(c, at);
        seen.remember(c, at, generation, valid());
        assert!(seen
            .recall(c, UnixMillis(at.0 + RECHECK_MS - 1))
            .0
            .is_some());
        assert!(seen.recall(c, UnixMillis(at.0 + RECHECK_MS)).0.is_none());
        assert!(
            seen.recall(c, UnixMillis(at.0 - 1)).0.is_none(),
            "clock went back"
        );
        // The same subject elsewhere, or with another API key, is another credential.
        for c in [
            Credential {
                instance: other,
                ..c
            },
            Credential {
                api_key_id: None,
                ..c
            },
        ] {
            assert!(seen.recall(c, at).0.is_none());
        }
        // Forgetting another instance keeps it; forgetting its own or all drops it.
        seen.forget(Some(other));
        assert!(seen.recall(c, at).0.is_some());
        seen.forget(None);
        assert!(seen.recall(c, at).0.is_none());
    }
}
