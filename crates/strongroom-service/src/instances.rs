//! Instances (tenants) and their API keys: the service-administrator side, plus the
//! exchange of API keys for bearer tokens.

use crate::action::Action;
use strongroom_keystore::{ApiKeyRecord, InstanceRecord, StoreError};
use strongroom_model::{InstanceId, Role, Roles};

use crate::audit::AuditEvent;
use crate::auth::{admin_token_matches, new_api_key_secret, parse_api_key, Ctx, Principal};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::units::{UnitLayout, MAX_OPERATIONAL_UNITS, MAX_RECOVERY_UNITS};
use crate::Service;

/// Metering of an instance for one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceUsage {
    /// API calls (allowed or refused), from the audit log.
    pub api_calls: u64,
    /// API calls served by each crypto unit.
    pub units: Vec<(strongroom_model::UnitId, u64)>,
}

/// A newly created API key. `api_key` is shown once and never stored.
pub struct ApiKeyCreated {
    /// The stored record.
    pub record: crate::ApiKeyInfo,
    /// The full API key string (`sr1.<id>.<secret>`).
    pub api_key: String,
}

impl std::fmt::Debug for ApiKeyCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyCreated")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// A bearer token issued to a caller.
#[derive(Clone)]
pub struct IssuedToken {
    /// The token.
    pub access_token: String,
    /// Seconds of validity.
    pub expires_in: i64,
    /// Expiry, seconds since the epoch.
    pub expiration: i64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedToken(expires {})", self.expiration)
    }
}

/// The context of an authenticated node administrator.
#[derive(Debug, Clone)]
pub struct AdminCtx {
    correlation_id: String,
}

fn not_found_instance() -> ServiceError {
    ServiceError::new(ErrorKind::InstanceNotFound, "instance does not exist")
}

impl Service {
    /// The instance's record, or `InstanceNotFound`.
    pub(crate) async fn require_instance(&self, id: InstanceId) -> Result<InstanceRecord> {
        self.store.get_instance(id).await.map_err(|e| match e {
            StoreError::NotFound => not_found_instance(),
            other => other.into(),
        })
    }

    /// Authenticates the node administrator token.
    pub async fn authenticate_admin(
        &self,
        authorization: Option<&str>,
        correlation_id: String,
        action: Action,
    ) -> Result<AdminCtx> {
        let token = authorization
            .map(|a| a.trim())
            .map(|a| a.strip_prefix("Bearer ").unwrap_or(a).trim());
        match token {
            Some(t)
                if admin_token_matches(self.provider.as_ref(), self.admin_token.as_bytes(), t) =>
            {
                Ok(AdminCtx { correlation_id })
            }
            _ => {
                let e = ServiceError::new(
                    ErrorKind::Unauthenticated,
                    "the service administrator token is missing or wrong",
                );
                self.audit_failure(None, "anonymous", action, None, &e, &correlation_id)
                    .await?;
                Err(e)
            }
        }
    }

    pub(crate) async fn admin_audited<T>(
        &self,
        ctx: &AdminCtx,
        action: Action,
        instance: Option<InstanceId>,
        result: Result<T>,
    ) -> Result<T> {
        let outcome = crate::audit::Outcome::of(&result);
        self.audit
            .record(
                AuditEvent {
                    instance,
                    principal: "admin".into(),
                    action,
                    key: None,
                    outcome,
                    correlation_id: ctx.correlation_id.clone(),
                },
                true,
            )
            .await?;
        result
    }

    /// Creates an instance and its crypto units on this node. Outside development the units
    /// start in imprint mode with empty registers: key operations fail with "crypto unit not
    /// initialized" until the administrators' ceremony (`strongroom tke`) loads a master key.
    pub async fn create_instance(
        &self,
        ctx: &AdminCtx,
        name: &str,
        layout: UnitLayout,
    ) -> Result<crate::InstanceInfo> {
        let r = self
            .create_instance_inner(name, None, layout)
            .await
            .map(crate::InstanceInfo::from);
        let id = r.as_ref().ok().map(|i| i.id);
        self.admin_audited(ctx, Action::AdminInstancesCreate, id, r)
            .await
    }

    /// Creates the dev instance (`serve --dev`) without an administrator request, or
    /// returns the existing one of that name.
    pub async fn ensure_dev_instance(&self, name: &str) -> Result<crate::InstanceInfo> {
        if let Some(existing) = self
            .store
            .list_instances()
            .await?
            .into_iter()
            .find(|i| i.name == name)
        {
            return Ok(existing.into());
        }
        self.create_instance_inner(name, None, UnitLayout::dev())
            .await
            .map(crate::InstanceInfo::from)
    }

    async fn create_instance_inner(
        &self,
        name: &str,
        id: Option<InstanceId>,
        layout: UnitLayout,
    ) -> Result<InstanceRecord> {
        let name = name.trim();
        crate::text::check_display_text("name", name, 100, true)?;
        let rec = InstanceRecord {
            id: id.unwrap_or_else(InstanceId::random),
            name: name.to_string(),
            created_at: self.clock.now(),
        };
        if layout.dev_master_key && !self.config.dev {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "dev_master_key",
                "a random master key without a ceremony is only allowed on a server started with --dev",
            ));
        }
        let total = usize::from(layout.operational) + usize::from(layout.recovery);
        if !layout.dev_master_key
            && (!(1..=MAX_OPERATIONAL_UNITS).contains(&usize::from(layout.operational))
                || usize::from(layout.recovery) > MAX_RECOVERY_UNITS
                || total == 0)
        {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "units",
                format!("an instance has 1 to {MAX_OPERATIONAL_UNITS} operational units and 0 to {MAX_RECOVERY_UNITS} recovery units"),
            ));
        }
        if layout.operational > 1 && !layout.allow_same_zone {
            let zone = self.config.zone.as_deref().unwrap_or("unnamed");
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "units",
                format!(
                    "{} operational units would all be on this node, in one zone ({zone}), and fail together: create the instance with one unit here and add the others on nodes in other zones (strongroom instance add-unit), or allow_same_zone for a test set-up",
                    layout.operational
                ),
            ));
        }
        if !layout.allow_same_zone && !layout.dev_master_key {
            self.check_recovery_region(rec.id, usize::from(layout.recovery))
                .await?;
        }
        // The units are persisted before the instance exists, so an instance never exists
        // without them; a crash in between leaves only orphan unit files.
        self.create_units(rec.id, layout).await?;
        if let Err(e) = self.store.create_instance(&rec).await {
            let _ = self.destroy_units(rec.id).await;
            return Err(match e {
                StoreError::AlreadyExists(_) => ServiceError::new(
                    ErrorKind::AlreadyExists,
                    format!("an instance named '{name}' already exists"),
                ),
                other => other.into(),
            });
        }
        tracing::info!(instance = %rec.id, operational = layout.operational, recovery = layout.recovery, dev = layout.dev_master_key, "instance created");
        Ok(rec)
    }

    /// Lists the node's instances.
    pub async fn list_instances(&self, ctx: &AdminCtx) -> Result<Vec<crate::InstanceInfo>> {
        let r = self
            .store
            .list_instances()
            .await
            .map(|l| l.into_iter().map(crate::InstanceInfo::from).collect())
            .map_err(ServiceError::from);
        self.admin_audited(ctx, Action::AdminInstancesList, None, r)
            .await
    }

    /// Deletes an instance: refused while it holds keys in any state; otherwise its API
    /// keys are erased and its master key destroyed (crypto-shredding anything left, such
    /// as blobs in old backups).
    pub async fn delete_instance(&self, ctx: &AdminCtx, id: InstanceId) -> Result<()> {
        let r = async {
            self.require_instance(id).await?;
            self.store
                .delete_instance(id, false, self.clock.now())
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => not_found_instance(),
                    other => other.into(),
                })?;
            self.cache.remove_instance(id);
            self.kmip_cache.clear(Some(id));
            self.credentials.forget(Some(id));
            self.destroy_units(id).await?;
            Ok(())
        }
        .await;
        self.admin_audited(ctx, Action::AdminInstancesDelete, Some(id), r)
            .await
    }

    /// Creates an API key for `instance` with its own grant, or as one of a service ID's
    /// keys.
    pub async fn create_api_key(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
        name: &str,
        access: crate::Access,
    ) -> Result<ApiKeyCreated> {
        let r = async {
            crate::text::check_display_text("name", name, 100, true)?;
            self.require_instance(instance).await?;
            let (roles, key_rings, service_id) = match access {
                crate::Access::Roles(grant) => {
                    self.check_grant(instance, &grant).await?;
                    (grant.roles, grant.key_rings, None)
                }
                crate::Access::ServiceId(sid) => {
                    self.service_id_record(instance, &sid).await?;
                    (Roles(0), None, Some(sid))
                }
            };
            let (id, secret, hash) = new_api_key_secret(self.provider.as_ref())?;
            let record = ApiKeyRecord {
                id: id.clone(),
                instance,
                name: name.to_string(),
                roles,
                secret_hash: hash,
                created_at: self.clock.now(),
                service_id,
                key_rings,
            };
            self.store
                .create_api_key(&record)
                .await
                // NotFound: the service ID was deleted meanwhile.
                .map_err(crate::service_ids::service_id_error)?;
            Ok(ApiKeyCreated {
                record: crate::ApiKeyInfo::from(&record),
                api_key: format!("sr1.{id}.{secret}"),
            })
        }
        .await;
        self.admin_audited(ctx, Action::AdminApiKeysCreate, Some(instance), r)
            .await
    }

    /// Lists an instance's API keys (never their secrets).
    pub async fn list_api_keys(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
    ) -> Result<Vec<crate::ApiKeyInfo>> {
        let r = self
            .store
            .list_api_keys(instance)
            .await
            .map(|keys| keys.iter().map(crate::ApiKeyInfo::from).collect())
            .map_err(ServiceError::from);
        self.admin_audited(ctx, Action::AdminApiKeysList, Some(instance), r)
            .await
    }

    /// Deletes an API key. Tokens already issued for it stop working: at once on this node,
    /// and on the others as soon as they hear of it ([`crate::credentials`]).
    pub async fn delete_api_key(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
        id: &str,
    ) -> Result<()> {
        let r = self
            .store
            .delete_api_key(instance, id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ServiceError::new(ErrorKind::ApiKeyNotFound, "API key does not exist")
                }
                other => other.into(),
            });
        self.credentials.forget(Some(instance));
        self.admin_audited(ctx, Action::AdminApiKeysDelete, Some(instance), r)
            .await
    }

    /// API calls of an instance (allowed or refused) with `from <= time < to`, counted from
    /// the audit log: the metering HPCS prices by.
    pub async fn instance_usage(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
        from: strongroom_model::UnixMillis,
        to: strongroom_model::UnixMillis,
        month: &str,
    ) -> Result<InstanceUsage> {
        let r = async {
            self.require_instance(instance).await?;
            self.usage_of(instance, from, to, month).await
        }
        .await;
        self.admin_audited(ctx, Action::AdminInstancesUsage, Some(instance), r)
            .await
    }

    /// The caller's own instance's API calls in `[from, to)` and its crypto units' counts
    /// for `month`: what the administrator's usage report says, for the instance's Readers
    /// and Managers (the console's usage chart).
    pub async fn usage(
        &self,
        ctx: &Ctx,
        from: strongroom_model::UnixMillis,
        to: strongroom_model::UnixMillis,
        month: &str,
    ) -> Result<InstanceUsage> {
        let op = self.usage_of(ctx.instance, from, to, month);
        self.audited(ctx, Action::UsageRead, Role::Reader, None, op)
            .await
    }

    async fn usage_of(
        &self,
        instance: InstanceId,
        from: strongroom_model::UnixMillis,
        to: strongroom_model::UnixMillis,
        month: &str,
    ) -> Result<InstanceUsage> {
        // This node's counts so far; other nodes add theirs every few seconds.
        self.flush_unit_usage().await?;
        Ok(InstanceUsage {
            api_calls: self.store.audit_usage(instance, from, to).await?,
            units: self
                .store
                .unit_usage(instance, month)
                .await?
                .into_iter()
                .map(|u| (u.unit, u.calls))
                .collect(),
        })
    }

    /// Exchanges an API key for a bearer token (the IAM apikey grant). The key's instance's
    /// allowedIP policy applies to `client_ip` as it does to every other request.
    pub async fn issue_token(
        &self,
        api_key: &str,
        client_ip: Option<std::net::IpAddr>,
        correlation_id: &str,
    ) -> Result<IssuedToken> {
        let denied = || {
            ServiceError::new(
                ErrorKind::Unauthenticated,
                "Provided API key could not be found",
            )
        };
        let r = async {
            let parts = parse_api_key(api_key).ok_or_else(denied)?;
            let rec = match self.store.get_api_key(parts.id).await {
                Ok(r) => r,
                Err(StoreError::NotFound) => return Err(denied()),
                Err(e) => return Err(e.into()),
            };
            let hash = self.provider.sha256(&[parts.secret.as_bytes()]);
            if !self.provider.ct_eq(&hash, &rec.secret_hash) {
                return Err(denied());
            }
            // The token exchange stands for IBM's IAM, which allowedNetwork does not govern:
            // only allowedIP applies here.
            if let Some(refused) = self
                .allowed_ip_refusal(rec.instance, client_ip, crate::Network::Private)
                .await?
            {
                return Err(refused);
            }
            let principal = match &rec.service_id {
                None => Principal {
                    subject: format!("apikey:{}", rec.id),
                    instance: Some(rec.instance),
                    roles: rec.roles,
                    key_rings: rec.key_rings.clone(),
                    api_key_id: None,
                },
                // A service ID's keys act as the service ID, with its grant of now.
                Some(sid) => match self.store.get_service_id(rec.instance, sid).await {
                    Ok(s) => Principal {
                        subject: format!("serviceid:{}", s.id),
                        instance: Some(rec.instance),
                        roles: s.roles,
                        key_rings: s.key_rings,
                        api_key_id: Some(rec.id.clone()),
                    },
                    Err(StoreError::NotFound) => return Err(denied()),
                    Err(e) => return Err(e.into()),
                },
            };
            let token = self.token_for(&principal, self.config.token_ttl_secs)?;
            Ok((rec, token))
        }
        .await;
        let subject = parse_api_key(api_key)
            .map(|p| format!("apikey:{}", p.id))
            .unwrap_or_else(|| "anonymous".into());
        match r {
            Ok((rec, token)) => {
                self.audit
                    .record(
                        AuditEvent {
                            instance: Some(rec.instance),
                            principal: subject,
                            action: Action::IamTokenCreate,
                            key: None,
                            outcome: crate::audit::Outcome::Success,
                            correlation_id: correlation_id.to_string(),
                        },
                        true,
                    )
                    .await?;
                Ok(token)
            }
            Err(e) => {
                self.audit_failure(
                    None,
                    &subject,
                    Action::IamTokenCreate,
                    None,
                    &e,
                    correlation_id,
                )
                .await?;
                Err(e)
            }
        }
    }

    /// Issues a token for a principal (dev mode prints one at start-up).
    pub fn token_for(&self, principal: &Principal, ttl_secs: i64) -> Result<IssuedToken> {
        let (access_token, expiration) = self.tokens.issue(
            self.provider.as_ref(),
            principal,
            self.clock.now(),
            ttl_secs,
        )?;
        Ok(IssuedToken {
            access_token,
            expires_in: ttl_secs,
            expiration,
        })
    }
}
