//! Instance policies: dual authorization delete and rotation defaults for new keys,
//! keyCreateImportAccess (which creations and imports are allowed), allowedIP (which client
//! addresses may call), and the stored-only allowedNetwork and metrics.

use crate::action::Action;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value};
use strongroom_keystore::{DualAuthPolicy, InstancePolicyRecord, RotationPolicy};
use strongroom_model::{InstanceId, Role, UnixMillis};

use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// The instance policy types.
pub const INSTANCE_POLICY_TYPES: [&str; 6] = [
    "allowedIP",
    "allowedNetwork",
    "dualAuthDelete",
    "keyCreateImportAccess",
    "metrics",
    "rotation",
];

/// One policy as a caller sends it.
#[derive(Debug, Clone)]
pub struct InstancePolicyInput {
    /// The type (one of [`INSTANCE_POLICY_TYPES`]).
    pub policy_type: String,
    /// On or off.
    pub enabled: bool,
    /// Attributes, if any.
    pub attributes: Option<Map<String, Value>>,
}

/// Per-key policies given at creation (`keys_with_policy_overrides`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyOverrides {
    /// Rotation: (enabled, interval_month).
    pub rotation: Option<(bool, i64)>,
    /// Dual authorization delete.
    pub dual_auth: Option<bool>,
}

/// keyCreateImportAccess attributes (all default to allowed, `enforce_token` to false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateImportAccess {
    /// Generated root keys allowed.
    pub create_root_key: bool,
    /// Generated standard keys allowed.
    pub create_standard_key: bool,
    /// Imported root keys allowed.
    pub import_root_key: bool,
    /// Imported standard keys allowed.
    pub import_standard_key: bool,
    /// Root key imports must use an import token.
    pub enforce_token: bool,
}

/// The policies that take effect, parsed once per change.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// allowedNetwork is private-only: requests must come through a private listener.
    pub(crate) private_only: bool,
    pub(crate) dual_auth_delete: bool,
    pub(crate) rotation_interval: Option<u8>,
    pub(crate) create_import: Option<CreateImportAccess>,
    pub(crate) allowed_ip: Option<Vec<(IpAddr, u8)>>,
}

fn bad(field: &'static str, msg: impl Into<String>) -> ServiceError {
    ServiceError::field(ErrorKind::InvalidField, field, msg)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok()?),
        None => (s, if s.contains(':') { 128 } else { 32 }),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn in_cidr(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Validates one policy and returns its normalised attributes (omitted attributes reset to
/// their defaults, as Key Protect does).
fn normalise(p: &InstancePolicyInput) -> Result<Map<String, Value>> {
    let attrs = p.attributes.clone().unwrap_or_default();
    let only = |allowed: &[&str]| -> Result<()> {
        match attrs.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ServiceError::new(
                ErrorKind::BadBody,
                format!(
                    "Invalid body data was passed: unknown attribute '{k}' for policy {}",
                    p.policy_type
                ),
            )),
            None => Ok(()),
        }
    };
    let mut out = Map::new();
    match p.policy_type.as_str() {
        "dualAuthDelete" | "metrics" => only(&[])?,
        "rotation" => {
            only(&["interval_month"])?;
            match (p.enabled, attrs.get("interval_month")) {
                (true, Some(v)) => {
                    let m = v.as_i64().filter(|m| (1..=12).contains(m)).ok_or_else(|| {
                        bad("interval_month", "interval_month must be between 1 to 12")
                    })?;
                    out.insert("interval_month".into(), Value::from(m));
                }
                (true, None) => {
                    return Err(bad(
                        "interval_month",
                        "interval_month is required when enabling the rotation policy",
                    ))
                }
                (false, Some(_)) => {
                    return Err(bad(
                        "interval_month",
                        "interval_month must be absent when disabling the rotation policy",
                    ))
                }
                (false, None) => {}
            }
        }
        "keyCreateImportAccess" => {
            let names = [
                "create_root_key",
                "create_standard_key",
                "import_root_key",
                "import_standard_key",
                "enforce_token",
            ];
            only(&names)?;
            for n in names {
                let default = n != "enforce_token";
                let v = match attrs.get(n) {
                    None => default,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(bad("attributes", format!("{n} must be true or false"))),
                };
                out.insert(n.into(), Value::Bool(v));
            }
        }
        "allowedNetwork" => {
            only(&["allowed_network"])?;
            match attrs.get("allowed_network").and_then(Value::as_str) {
                Some(n @ ("public-and-private" | "private-only")) => {
                    out.insert("allowed_network".into(), Value::from(n));
                }
                _ if !p.enabled && attrs.is_empty() => {}
                _ => {
                    return Err(bad(
                        "allowed_network",
                        "allowed_network must be 'public-and-private' or 'private-only'",
                    ))
                }
            }
        }
        "allowedIP" => {
            only(&["allowed_ip"])?;
            match attrs.get("allowed_ip") {
                Some(Value::Array(list)) if p.enabled && !list.is_empty() => {
                    for item in list {
                        let s = item.as_str().unwrap_or("");
                        if parse_cidr(s).is_none() {
                            return Err(bad("allowed_ip", format!("'{s}' is not an IPv4 or IPv6 address or CIDR block")));
                        }
                    }
                    out.insert("allowed_ip".into(), Value::Array(list.clone()));
                }
                None if !p.enabled => {}
                _ => return Err(bad("allowed_ip", "allowed_ip must list at least one CIDR block when enabled, and be absent when disabled")),
            }
        }
        other => {
            return Err(ServiceError::new(
                ErrorKind::InvalidQueryParam,
                format!(
                    "unknown policy type '{other}' (expected one of {})",
                    INSTANCE_POLICY_TYPES.join(", ")
                ),
            ))
        }
    }
    Ok(out)
}

fn effective(recs: &[InstancePolicyRecord]) -> Effective {
    let mut e = Effective::default();
    for r in recs.iter().filter(|r| r.enabled) {
        let attrs: Map<String, Value> = serde_json::from_str(&r.attributes).unwrap_or_default();
        let flag = |n: &str, d: bool| attrs.get(n).and_then(Value::as_bool).unwrap_or(d);
        match r.policy_type.as_str() {
            "dualAuthDelete" => e.dual_auth_delete = true,
            "rotation" => {
                e.rotation_interval = attrs
                    .get("interval_month")
                    .and_then(Value::as_u64)
                    .and_then(|m| u8::try_from(m).ok())
            }
            "keyCreateImportAccess" => {
                e.create_import = Some(CreateImportAccess {
                    create_root_key: flag("create_root_key", true),
                    create_standard_key: flag("create_standard_key", true),
                    import_root_key: flag("import_root_key", true),
                    import_standard_key: flag("import_standard_key", true),
                    enforce_token: flag("enforce_token", false),
                })
            }
            "allowedNetwork" => {
                e.private_only =
                    attrs.get("allowed_network").and_then(Value::as_str) == Some("private-only")
            }
            "allowedIP" => {
                e.allowed_ip = attrs.get("allowed_ip").and_then(Value::as_array).map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().and_then(parse_cidr))
                        .collect()
                })
            }
            _ => {}
        }
    }
    e
}

/// Whether the instance's keyCreateImportAccess policy (in `e`) allows making a key of
/// `kind`, generated or `imported` (with an import token: `secure`).
fn check_create_import(
    e: &Effective,
    kind: strongroom_model::KeyKind,
    imported: bool,
    secure: bool,
) -> Result<()> {
    use strongroom_model::KeyKind::*;
    let Some(a) = e.create_import else {
        return Ok(());
    };
    let (allowed, what) = match (kind, imported) {
        (Root, false) => (a.create_root_key, "creating root keys"),
        (Standard, false) => (a.create_standard_key, "creating standard keys"),
        (Root, true) => (
            a.import_root_key && (!a.enforce_token || secure),
            if a.enforce_token && !secure {
                "importing root keys without an import token"
            } else {
                "importing root keys"
            },
        ),
        (Standard, true) => (a.import_standard_key, "importing standard keys"),
        (TransportKey, _) => (false, "this key kind"),
    };
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::new(
            ErrorKind::CreateImportAccessDenied,
            format!("KeyCreateImportAccess instance policy does not allow {what}"),
        ))
    }
}

impl Service {
    pub(crate) async fn effective_policies(&self, instance: InstanceId) -> Result<Arc<Effective>> {
        if let Some(e) = self
            .instance_policies
            .read()
            .ok()
            .and_then(|m| m.get(&instance).cloned())
        {
            return Ok(e);
        }
        let e = Arc::new(effective(
            &self.store.list_instance_policies(instance).await?,
        ));
        if e.allowed_ip.is_some() || e.private_only {
            self.allowed_ip_in_use
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Ok(mut m) = self.instance_policies.write() {
            m.insert(instance, Arc::clone(&e));
        }
        Ok(e)
    }

    /// Sets instance policies. With `only`, exactly one policy of that type is expected.
    pub async fn put_instance_policies(
        &self,
        ctx: &Ctx,
        inputs: Vec<InstancePolicyInput>,
        only: Option<&str>,
    ) -> Result<()> {
        let op = async {
            if let Some(t) = only {
                if inputs.len() != 1 {
                    return Err(ServiceError::new(ErrorKind::BadBody, "Only a single instance policy may be set when the 'policy' query parameter is used"));
                }
                if inputs.first().map(|p| p.policy_type.as_str()) != Some(t) {
                    return Err(ServiceError::new(
                        ErrorKind::BadBody,
                        "Data in body does not match data required by the 'policy' query parameter",
                    ));
                }
            }
            if inputs.is_empty() {
                return Err(ServiceError::new(
                    ErrorKind::BadBody,
                    "Invalid body data was passed: no policy given",
                ));
            }
            let now = self.clock.now();
            let existing = self.store.list_instance_policies(ctx.instance).await?;
            let mut recs = Vec::new();
            for p in &inputs {
                let attributes = normalise(p)?;
                let first = existing.iter().find(|e| e.policy_type == p.policy_type);
                recs.push(InstancePolicyRecord {
                    policy_type: p.policy_type.clone(),
                    enabled: p.enabled,
                    attributes: Value::Object(attributes).to_string(),
                    created_at: first.map_or(now, |f| f.created_at),
                    created_by: first
                        .map_or_else(|| ctx.principal.subject.clone(), |f| f.created_by.clone()),
                    updated_at: now,
                    updated_by: ctx.principal.subject.clone(),
                });
            }
            self.store
                .put_instance_policies(ctx.instance, &recs)
                .await?;
            if let Ok(mut m) = self.instance_policies.write() {
                m.remove(&ctx.instance);
            }
            // Reload at once, so that an allowedIP policy applies to the next request.
            self.effective_policies(ctx.instance).await?;
            Ok(())
        };
        self.audited(ctx, Action::InstancePoliciesWrite, Role::Manager, None, op)
            .await
    }

    /// Reads instance policies (all, or one type).
    pub async fn get_instance_policies(
        &self,
        ctx: &Ctx,
        only: Option<&str>,
    ) -> Result<Vec<crate::InstancePolicy>> {
        let op = async {
            if let Some(t) = only {
                if !INSTANCE_POLICY_TYPES.contains(&t) {
                    return Err(ServiceError::new(
                        ErrorKind::InvalidQueryParam,
                        format!("unknown policy type '{t}'"),
                    ));
                }
            }
            let all = self.store.list_instance_policies(ctx.instance).await?;
            Ok(all
                .into_iter()
                .filter(|p| only.is_none_or(|t| p.policy_type == t))
                .map(crate::InstancePolicy::from)
                .collect())
        };
        self.audited(ctx, Action::InstancePoliciesRead, Role::Manager, None, op)
            .await
    }

    /// Refuses a request from an address outside the allowedIP policy of the instance its
    /// `Bluemix-Instance` header names (the REST front end, before routing).
    pub async fn check_client_ip(
        &self,
        instance_header: Option<&str>,
        ip: IpAddr,
        network: Network,
        correlation_id: &str,
    ) -> Result<()> {
        if !self.allowed_ip_policy_in_use() {
            return Ok(());
        }
        let Some(instance) = instance_header.and_then(|h| h.trim().parse::<InstanceId>().ok())
        else {
            return Ok(());
        };
        if self.unit(instance).is_err() {
            return Ok(()); // not an instance of this node: authentication refuses it
        }
        self.check_instance_ip(instance, Some(ip), network, correlation_id)
            .await
    }

    /// Refuses a caller of `instance` whose address is outside the instance's allowedIP
    /// policy, or who came through a public listener to an instance whose allowedNetwork
    /// policy is private-only, recording the refusal. Every front end calls this once it
    /// knows the instance (REST through [`Service::check_client_ip`], GREP11 after
    /// authentication, KMIP on connection, the token exchange after the API key matched).
    /// `ip` is `None` when the front end could not learn the peer's address: refused
    /// whenever the instance has an allowedIP policy.
    pub async fn check_instance_ip(
        &self,
        instance: InstanceId,
        ip: Option<IpAddr>,
        network: Network,
        correlation_id: &str,
    ) -> Result<()> {
        match self.allowed_ip_refusal(instance, ip, network).await? {
            None => Ok(()),
            Some(err) => {
                self.audit_failure(
                    Some(instance),
                    "anonymous",
                    Action::RequestIp,
                    None,
                    &err,
                    correlation_id,
                )
                .await?;
                Err(err)
            }
        }
    }

    fn allowed_ip_policy_in_use(&self) -> bool {
        self.allowed_ip_in_use
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The refusal of `ip` (reaching this node through `network`) by `instance`'s allowedIP
    /// and allowedNetwork policies, if they refuse it.
    pub(crate) async fn allowed_ip_refusal(
        &self,
        instance: InstanceId,
        ip: Option<IpAddr>,
        network: Network,
    ) -> Result<Option<ServiceError>> {
        if !self.allowed_ip_policy_in_use() {
            return Ok(None);
        }
        let e = self.effective_policies(instance).await?;
        if e.private_only && network == Network::Public {
            return Ok(Some(ServiceError::new(
                ErrorKind::Forbidden,
                "The instance's allowedNetwork policy is private-only: send requests to the private endpoint",
            )));
        }
        let Some(nets) = &e.allowed_ip else {
            return Ok(None);
        };
        Ok(match ip {
            Some(ip) if nets.iter().any(|n| in_cidr(ip, *n)) => None,
            Some(ip) => Some(ServiceError::new(
                ErrorKind::Forbidden,
                format!("The instance's allowedIP policy does not allow requests from {ip}"),
            )),
            None => Some(ServiceError::new(
                ErrorKind::Forbidden,
                "The instance has an allowedIP policy and the client's address is unknown",
            )),
        })
    }

    /// Turns off an instance's allowedIP policy: the service administrator's way back in for
    /// an instance that locked itself out. The policy's record stays (disabled), so the
    /// instance's Managers see who lifted it and when.
    pub async fn admin_clear_allowed_ip(
        &self,
        ctx: &crate::instances::AdminCtx,
        instance: InstanceId,
    ) -> Result<bool> {
        let r = async {
            self.require_instance(instance).await?;
            let existing = self.store.list_instance_policies(instance).await?;
            let Some(current) = existing
                .into_iter()
                .find(|p| p.policy_type == "allowedIP" && p.enabled)
            else {
                return Ok(false);
            };
            let now = self.clock.now();
            let rec = InstancePolicyRecord {
                enabled: false,
                attributes: "{}".into(),
                updated_at: now,
                updated_by: "admin".into(),
                ..current
            };
            self.store.put_instance_policies(instance, &[rec]).await?;
            if let Ok(mut m) = self.instance_policies.write() {
                m.remove(&instance);
            }
            self.effective_policies(instance).await?;
            Ok(true)
        }
        .await;
        self.admin_audited(ctx, Action::AdminInstancesAllowedIpClear, Some(instance), r)
            .await
    }

    /// Applies keyCreateImportAccess to a key another interface makes in the instance's
    /// keystore: a KMIP object is a standard key (its value can be retrieved), `imported`
    /// when the client supplies its material (Register).
    pub(crate) async fn check_key_creation(&self, ctx: &Ctx, imported: bool) -> Result<()> {
        let e = self.effective_policies(ctx.instance).await?;
        check_create_import(&e, strongroom_model::KeyKind::Standard, imported, false)
    }

    /// Applies keyCreateImportAccess and fills in inherited or overriding policies of a new key.
    pub(crate) async fn apply_creation_policies(
        &self,
        ctx: &Ctx,
        kind: strongroom_model::KeyKind,
        imported: bool,
        secure: bool,
        overrides: Option<PolicyOverrides>,
        now: UnixMillis,
    ) -> Result<(Option<RotationPolicy>, Option<DualAuthPolicy>)> {
        use strongroom_model::KeyKind::*;
        let e = self.effective_policies(ctx.instance).await?;
        check_create_import(&e, kind, imported, secure)?;
        let by = ctx.principal.subject.clone();
        let mut rotation = match e.rotation_interval {
            Some(m) if kind == Root && !imported => Some(RotationPolicy {
                enabled: true,
                interval_month: m,
                updated_at: now,
                updated_by: by.clone(),
            }),
            _ => None,
        };
        let mut dual = e.dual_auth_delete.then(|| DualAuthPolicy {
            enabled: true,
            updated_at: now,
            updated_by: by.clone(),
        });
        if let Some(o) = overrides {
            if let Some((enabled, m)) = o.rotation {
                if kind != Root {
                    return Err(ServiceError::new(
                        ErrorKind::RootKeyRequired,
                        "Rotation policies apply to root keys only",
                    ));
                }
                let m = u8::try_from(m)
                    .ok()
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(|| {
                        bad("interval_month", "interval_month must be between 1 to 12")
                    })?;
                if enabled && imported {
                    return Err(bad(
                        "rotation",
                        "Automatic rotation is not available for imported keys",
                    ));
                }
                rotation = Some(RotationPolicy {
                    enabled,
                    interval_month: m,
                    updated_at: now,
                    updated_by: by.clone(),
                });
            }
            if let Some(d) = o.dual_auth {
                dual = Some(DualAuthPolicy {
                    enabled: d,
                    updated_at: now,
                    updated_by: by.clone(),
                });
            }
        }
        Ok((rotation, dual))
    }
}

#[cfg(test)]
mod cidr_tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let net = parse_cidr("10.1.0.0/16").unwrap();
        assert!(in_cidr("10.1.200.3".parse().unwrap(), net));
        assert!(!in_cidr("10.2.0.1".parse().unwrap(), net));
        assert!(
            in_cidr("::ffff:10.1.0.9".parse().unwrap(), net),
            "IPv4-mapped IPv6 matches IPv4 blocks"
        );
        let v6 = parse_cidr("2001:db8::/32").unwrap();
        assert!(in_cidr("2001:db8::1".parse().unwrap(), v6));
        assert!(!in_cidr("2001:db9::1".parse().unwrap(), v6));
        assert!(in_cidr(
            "127.0.0.1".parse().unwrap(),
            parse_cidr("127.0.0.1").unwrap()
        ));
        assert!(in_cidr(
            "8.8.8.8".parse().unwrap(),
            parse_cidr("0.0.0.0/0").unwrap()
        ));
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::/129"] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }
}

/// Which network a request came through: a public listener (`--http-addr`, `--grpc-addr`)
/// or a private one (`--private-http-addr`, `--private-grpc-addr`, or a KMIP listener
/// declared private). An instance whose allowedNetwork policy is `private-only` accepts
/// requests from private listeners only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Network {
    /// A public listener.
    #[default]
    Public,
    /// A private listener.
    Private,
}
