//! Key Protect's KMIP management API: adapters, client certificates, and the listing of
//! KMIP objects, with Key Protect's limits and roles.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use strongroom_keystore::{
    KmipAdapterRecord, KmipCertificateRecord, KmipObjectFilter, KmipObjectRecord, StoreError,
};
use strongroom_model::{KeyId, KeyKind, KeyState, Role, UnixMillis};
use uuid::Uuid;

use crate::action::Action;
use crate::auth::{Ctx, Principal};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::keys::invalid;
use crate::Service;

use super::model::KmipState;

/// Most adapters per instance (Key Protect's limit).
pub const MAX_KMIP_ADAPTERS: u32 = 200;
/// Most client certificates per adapter (Key Protect's limit).
pub const MAX_KMIP_CERTIFICATES: u32 = 200;
/// The one profile Key Protect offers.
pub const KMIP_PROFILE_NATIVE: &str = "native_1.0";

/// A KMIP adapter as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipAdapter {
    /// Adapter id.
    pub id: Uuid,
    /// Name, unique in the instance.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Profile (`native_1.0`).
    pub profile: String,
    /// The root key its objects are wrapped under.
    pub crk_id: KeyId,
    /// Created.
    pub created_at: UnixMillis,
    /// By.
    pub created_by: String,
    /// Updated.
    pub updated_at: UnixMillis,
    /// By.
    pub updated_by: String,
}

/// A new adapter.
#[derive(Debug, Clone, Default)]
pub struct NewKmipAdapter {
    /// Name; generated when absent.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Profile; must be `native_1.0`.
    pub profile: String,
    /// Root key id (or alias) for `native_1.0`.
    pub crk_id: Option<String>,
    /// Accept a root key with an expiration date.
    pub allow_expiring_key: bool,
}

/// A client certificate as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipCertificate {
    /// Certificate id.
    pub id: Uuid,
    /// Name, unique in the adapter.
    pub name: String,
    /// The PEM certificate.
    pub certificate: String,
    /// SHA-256 of the DER certificate, hex.
    pub fingerprint: String,
    /// Added.
    pub created_at: UnixMillis,
    /// By.
    pub created_by: String,
}

/// A KMIP object as the management API shows it (never material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipObjectInfo {
    /// Object id (KMIP Unique Identifier).
    pub id: Uuid,
    /// The adapter.
    pub adapter: Uuid,
    /// KMIP Object Type.
    pub object_type: u32,
    /// KMIP State.
    pub state: u32,
    /// Created.
    pub created_at: UnixMillis,
    /// The certificate that created it.
    pub created_by_cert: Option<Uuid>,
    /// Updated.
    pub updated_at: UnixMillis,
    /// The certificate that changed it last.
    pub updated_by_cert: Option<Uuid>,
    /// Destroyed.
    pub destroyed_at: Option<UnixMillis>,
    /// The certificate that destroyed it.
    pub destroyed_by_cert: Option<Uuid>,
}

fn adapter_view(r: KmipAdapterRecord) -> KmipAdapter {
    KmipAdapter {
        id: r.id,
        name: r.name,
        description: r.description,
        profile: r.profile,
        crk_id: r.crk_id,
        created_at: r.created_at,
        created_by: r.created_by,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    }
}

fn certificate_view(r: KmipCertificateRecord) -> KmipCertificate {
    KmipCertificate {
        id: r.id,
        name: r.name,
        certificate: r.pem,
        fingerprint: r.fingerprint,
        created_at: r.created_at,
        created_by: r.created_by,
    }
}

/// An object's metadata, with its state at `now` (seconds): a date that has come moves it
/// on before the keystore's row does.
pub(crate) fn object_info(r: &KmipObjectRecord, now: i64) -> KmipObjectInfo {
    let stored = super::objects::stored(r).unwrap_or_default();
    KmipObjectInfo {
        id: r.id,
        adapter: r.adapter,
        object_type: r.object_type,
        state: KmipState::from_code(r.state).map_or(r.state, |s| stored.state_at(s, now).code()),
        created_at: r.created_at,
        created_by_cert: Uuid::parse_str(&r.created_by).ok(),
        updated_at: r.updated_at,
        updated_by_cert: stored.updated_by,
        destroyed_at: r.destroyed_at,
        destroyed_by_cert: stored.destroyed_by,
    }
}

pub(crate) fn adapter_not_found() -> ServiceError {
    ServiceError::new(
        ErrorKind::KmipAdapterNotFound,
        "KMIP adapter does not exist",
    )
}

fn certificate_not_found() -> ServiceError {
    ServiceError::new(
        ErrorKind::KmipCertificateNotFound,
        "KMIP client certificate does not exist",
    )
}

pub(crate) fn object_not_found() -> ServiceError {
    ServiceError::new(ErrorKind::KmipObjectNotFound, "KMIP object does not exist")
}

/// Key Protect's rule for adapter and certificate names: 2 to 100 of `A-Z a-z 0-9 - _`,
/// not a UUID.
fn check_name(field: &'static str, name: &str) -> Result<()> {
    let ok = (2..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && Uuid::parse_str(name).is_err();
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("The field '{field}' must be: 2 to 100 characters of letters, digits, '-' and '_', and not a UUID"),
        ))
    }
}

fn generated_name(prefix: &str) -> String {
    let id = Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// The DER of the one certificate in `pem`.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>> {
    let bad = || {
        invalid(
            "certificate",
            "The field 'certificate' must be: one X.509 certificate in PEM, between BEGIN CERTIFICATE and END CERTIFICATE lines",
        )
    };
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN CERTIFICATE-----")
        .and_then(|r| r.strip_suffix("-----END CERTIFICATE-----"))
        .ok_or_else(bad)?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad())?;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm, signature }
    let (_, tbs, rest) = strongroom_engine::der::expect(&der, 0x30)
        .filter(|(_, rest)| rest.is_empty())
        .and_then(|(content, _)| strongroom_engine::der::read_tlv(content))
        .ok_or_else(bad)?;
    if tbs.is_empty() || rest.is_empty() {
        return Err(bad());
    }
    Ok(der)
}

impl Service {
    /// Creates a KMIP adapter bound to a root key (Manager).
    pub async fn create_kmip_adapter(&self, ctx: &Ctx, req: NewKmipAdapter) -> Result<KmipAdapter> {
        let op = async {
            if req.profile != KMIP_PROFILE_NATIVE {
                return Err(invalid(
                    "profile",
                    "The field 'profile' must be: native_1.0",
                ));
            }
            let name = match req.name {
                Some(n) => {
                    check_name("name", &n)?;
                    n
                }
                None => generated_name("kmip_adapter"),
            };
            if let Some(d) = &req.description {
                crate::text::check_display_text("description", d, 240, false)?;
            }
            let crk = req.crk_id.ok_or_else(|| {
                invalid(
                    "profile_data",
                    "The field 'profile_data.crk_id' is required for profile native_1.0",
                )
            })?;
            let crk_id = self.resolve(ctx, &crk).await?;
            let k = self.load(ctx, crk_id).await?;
            if k.record.kind != KeyKind::Root {
                return Err(invalid(
                    "crk_id",
                    "The field 'profile_data.crk_id' must be: the id of a root key",
                ));
            }
            self.usable_for(&k, &[KeyState::Active], "protect KMIP objects")?;
            if k.record.expiration.is_some() && !req.allow_expiring_key {
                return Err(invalid(
                    "crk_id",
                    "The root key has an expiration date; pass allowExpiringKey=true to use it anyway",
                ));
            }
            let now = self.clock.now();
            let rec = KmipAdapterRecord {
                instance: ctx.instance,
                id: Uuid::new_v4(),
                name,
                description: req.description,
                profile: req.profile,
                crk_id,
                created_at: now,
                created_by: ctx.principal.subject.clone(),
                updated_at: now,
                updated_by: ctx.principal.subject.clone(),
            };
            self.store
                .create_kmip_adapter(&rec, MAX_KMIP_ADAPTERS)
                .await
                .map_err(|e| match e {
                    StoreError::QuotaExceeded(n) => ServiceError::new(
                        ErrorKind::LimitReached,
                        format!("The instance holds {n} KMIP adapters, the most allowed"),
                    ),
                    StoreError::AlreadyExists(_) => ServiceError::field(
                        ErrorKind::AlreadyExists,
                        "name",
                        "A KMIP adapter with this name already exists in the instance",
                    ),
                    other => other.into(),
                })?;
            Ok(adapter_view(rec))
        };
        self.audited(ctx, Action::KmipAdaptersCreate, Role::Manager, None, op)
            .await
    }

    /// The instance's adapters, optionally only those bound to `crk_id`.
    pub async fn list_kmip_adapters(
        &self,
        ctx: &Ctx,
        crk_id: Option<KeyId>,
    ) -> Result<Vec<KmipAdapter>> {
        let op = async {
            Ok(self
                .store
                .list_kmip_adapters(ctx.instance)
                .await?
                .into_iter()
                .filter(|a| crk_id.is_none_or(|k| a.crk_id == k))
                .map(adapter_view)
                .collect())
        };
        self.audited(ctx, Action::KmipAdaptersList, Role::Reader, None, op)
            .await
    }

    pub(crate) async fn find_kmip_adapter(
        &self,
        ctx: &Ctx,
        id_or_name: &str,
    ) -> Result<KmipAdapterRecord> {
        let id = Uuid::parse_str(id_or_name).ok();
        self.store
            .list_kmip_adapters(ctx.instance)
            .await?
            .into_iter()
            .find(|a| Some(a.id) == id || a.name == id_or_name)
            .ok_or_else(adapter_not_found)
    }

    /// One adapter, by id or name.
    pub async fn get_kmip_adapter(&self, ctx: &Ctx, id_or_name: &str) -> Result<KmipAdapter> {
        let op = async { Ok(adapter_view(self.find_kmip_adapter(ctx, id_or_name).await?)) };
        self.audited(ctx, Action::KmipAdaptersRead, Role::Reader, None, op)
            .await
    }

    /// Deletes an adapter and its certificates; refused while it holds objects that are
    /// not destroyed (Manager).
    pub async fn delete_kmip_adapter(&self, ctx: &Ctx, id_or_name: &str) -> Result<()> {
        let op = async {
            let a = self.find_kmip_adapter(ctx, id_or_name).await?;
            self.store
                .delete_kmip_adapter(ctx.instance, a.id)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => adapter_not_found(),
                    other => other.into(),
                })?;
            self.kmip_cache.clear(Some(ctx.instance));
            self.kmip_certificates_changed.notify_waiters();
            Ok(())
        };
        self.audited(ctx, Action::KmipAdaptersDelete, Role::Manager, None, op)
            .await
    }

    /// Registers a client certificate to an adapter (Manager).
    pub async fn add_kmip_certificate(
        &self,
        ctx: &Ctx,
        adapter: &str,
        name: Option<String>,
        pem: &str,
    ) -> Result<KmipCertificate> {
        let op = async {
            let a = self.find_kmip_adapter(ctx, adapter).await?;
            let name = match name {
                Some(n) => {
                    check_name("name", &n)?;
                    n
                }
                None => generated_name("kmip_cert"),
            };
            let der = certificate_der(pem)?;
            let rec = KmipCertificateRecord {
                instance: ctx.instance,
                adapter: a.id,
                id: Uuid::new_v4(),
                name,
                pem: pem.trim().to_string(),
                fingerprint: hex_of(&self.provider.sha256(&[&der])),
                created_at: self.clock.now(),
                created_by: ctx.principal.subject.clone(),
            };
            self.store
                .add_kmip_certificate(&rec, MAX_KMIP_CERTIFICATES)
                .await
                .map_err(|e| match e {
                    StoreError::QuotaExceeded(n) => ServiceError::new(
                        ErrorKind::LimitReached,
                        format!("The KMIP adapter holds {n} client certificates, the most allowed"),
                    ),
                    StoreError::AlreadyExists(_) => ServiceError::new(
                        ErrorKind::AlreadyExists,
                        "This certificate, or a certificate of this name, is already registered",
                    ),
                    StoreError::NotFound => adapter_not_found(),
                    other => other.into(),
                })?;
            self.kmip_certificates_changed.notify_waiters();
            Ok(certificate_view(rec))
        };
        self.audited(ctx, Action::KmipCertificatesCreate, Role::Manager, None, op)
            .await
    }

    /// An adapter's certificates.
    pub async fn list_kmip_certificates(
        &self,
        ctx: &Ctx,
        adapter: &str,
    ) -> Result<Vec<KmipCertificate>> {
        let op = async {
            let a = self.find_kmip_adapter(ctx, adapter).await?;
            Ok(self
                .store
                .list_kmip_certificates(ctx.instance, a.id)
                .await?
                .into_iter()
                .map(certificate_view)
                .collect())
        };
        self.audited(ctx, Action::KmipCertificatesList, Role::Reader, None, op)
            .await
    }

    async fn find_kmip_certificate(
        &self,
        ctx: &Ctx,
        adapter: &str,
        id_or_name: &str,
    ) -> Result<KmipCertificateRecord> {
        let a = self.find_kmip_adapter(ctx, adapter).await?;
        let id = Uuid::parse_str(id_or_name).ok();
        self.store
            .list_kmip_certificates(ctx.instance, a.id)
            .await?
            .into_iter()
            .find(|c| Some(c.id) == id || c.name == id_or_name)
            .ok_or_else(certificate_not_found)
    }

    /// One certificate, by id or name.
    pub async fn get_kmip_certificate(
        &self,
        ctx: &Ctx,
        adapter: &str,
        id_or_name: &str,
    ) -> Result<KmipCertificate> {
        let op = async {
            Ok(certificate_view(
                self.find_kmip_certificate(ctx, adapter, id_or_name).await?,
            ))
        };
        self.audited(ctx, Action::KmipCertificatesRead, Role::Reader, None, op)
            .await
    }

    /// Removes a certificate: connections with it are refused from then on (Manager).
    pub async fn delete_kmip_certificate(
        &self,
        ctx: &Ctx,
        adapter: &str,
        id_or_name: &str,
    ) -> Result<()> {
        let op = async {
            let c = self.find_kmip_certificate(ctx, adapter, id_or_name).await?;
            self.store
                .delete_kmip_certificate(ctx.instance, c.adapter, c.id)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => certificate_not_found(),
                    other => other.into(),
                })?;
            self.kmip_certificates_changed.notify_waiters();
            Ok(())
        };
        self.audited(ctx, Action::KmipCertificatesDelete, Role::Manager, None, op)
            .await
    }

    /// An adapter's objects in `states` (Key Protect's default: 1, 2, 3, 4), from
    /// `offset`, at most `limit`, with the total.
    pub async fn list_kmip_objects(
        &self,
        ctx: &Ctx,
        adapter: &str,
        states: Vec<u32>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<KmipObjectInfo>, u64)> {
        let op = async {
            let a = self.find_kmip_adapter(ctx, adapter).await?;
            if let Some(bad) = states.iter().find(|s| !(1..=6).contains(*s)) {
                return Err(ServiceError::new(
                    ErrorKind::InvalidQueryParam,
                    format!("state {bad} is not a KMIP state (1 to 6)"),
                ));
            }
            let filter = KmipObjectFilter {
                adapter: Some(a.id),
                states: if states.is_empty() {
                    vec![1, 2, 3, 4]
                } else {
                    states
                },
                ..KmipObjectFilter::default()
            };
            let rows = self
                .store
                .list_kmip_objects(ctx.instance, &filter, offset, limit)
                .await?;
            let total = self.store.count_kmip_objects(ctx.instance, &filter).await?;
            let now = self.kmip_now();
            let infos = rows.iter().map(|r| object_info(r, now)).collect();
            Ok((infos, total))
        };
        self.audited(ctx, Action::KmipObjectsList, Role::Reader, None, op)
            .await
    }

    async fn find_kmip_object(
        &self,
        ctx: &Ctx,
        adapter: &str,
        id: &str,
    ) -> Result<KmipObjectRecord> {
        let a = self.find_kmip_adapter(ctx, adapter).await?;
        self.adapter_object(ctx.instance, a.id, id).await
    }

    /// One object's metadata.
    pub async fn get_kmip_object(
        &self,
        ctx: &Ctx,
        adapter: &str,
        id: &str,
    ) -> Result<KmipObjectInfo> {
        let op = async {
            let r = self.find_kmip_object(ctx, adapter, id).await?;
            Ok(object_info(&r, self.kmip_now()))
        };
        self.audited(ctx, Action::KmipObjectsRead, Role::Reader, None, op)
            .await
    }

    /// Destroys an object from the management API (Manager): an Active object needs
    /// `force` (Key Protect's rule), any other state is destroyed at once.
    pub async fn delete_kmip_object(
        &self,
        ctx: &Ctx,
        adapter: &str,
        id: &str,
        force: bool,
    ) -> Result<()> {
        let op = async {
            let o = self.find_kmip_object(ctx, adapter, id).await?;
            self.destroy_kmip_record(o, force, None).await
        };
        self.audited(ctx, Action::KmipObjectsDelete, Role::Manager, None, op)
            .await
    }

    /// Authenticates a KMIP connection by the SHA-256 fingerprint of its client
    /// certificate: the certificate names its adapter and so its instance. The
    /// instance's allowedIP policy applies to `peer`.
    pub async fn kmip_connect(
        &self,
        fingerprint: &str,
        peer: Option<IpAddr>,
        network: crate::Network,
        correlation_id: String,
    ) -> Result<super::KmipSession> {
        let refused = |msg: &str| ServiceError::new(ErrorKind::Unauthenticated, msg);
        let cert = match self
            .store
            .kmip_certificate_by_fingerprint(fingerprint)
            .await
        {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                let e = refused("the client certificate is not registered to any KMIP adapter");
                self.audit_failure(
                    None,
                    "anonymous",
                    Action::KmipConnect,
                    None,
                    &e,
                    &correlation_id,
                )
                .await?;
                return Err(e);
            }
            Err(e) => return Err(e.into()),
        };
        let ctx = Ctx {
            principal: Principal::instance_wide(
                cert.id.to_string(),
                cert.instance,
                strongroom_model::Roles::of(&[Role::Manager]),
            ),
            instance: cert.instance,
            correlation_id,
        };
        self.check_instance_ip(cert.instance, peer, network, &ctx.correlation_id)
            .await?;
        let op = async {
            let adapter = self
                .store
                .list_kmip_adapters(cert.instance)
                .await?
                .into_iter()
                .find(|a| a.id == cert.adapter)
                .ok_or_else(adapter_not_found)?;
            Ok(super::KmipSession::new(
                ctx.clone(),
                adapter.id,
                cert.id,
                adapter.crk_id,
            ))
        };
        self.audited(&ctx, Action::KmipConnect, Role::Reader, None, op)
            .await
    }
}

impl Service {
    /// The fingerprints of every registered KMIP client certificate.
    pub async fn kmip_fingerprints(&self) -> Result<Vec<String>> {
        Ok(self.store.kmip_fingerprints().await?)
    }

    /// Woken whenever a certificate is added or removed on this node (the KMIP listener
    /// then reloads the fingerprints it admits).
    pub fn kmip_certificates_changed(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.kmip_certificates_changed)
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 fingerprint of a DER certificate as the keystore indexes it.
pub fn certificate_fingerprint(service: &Service, der: &[u8]) -> String {
    hex_of(&service.provider.sha256(&[der]))
}
