//! Conversions between Key Protect JSON and service types. Field names are matched
//! case-insensitively (the real service is written in Go, and Go clients send `KeyRingID`
//! or `Tags`); unknown fields are refused so that typos do not pass silently.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use strongroom_model::{InstanceId, KeyKind, KeyState, UnixMillis};
use strongroom_service::KeyMetadata;
use strongroom_service::{
    ErrorKind, ServiceError, VersionInfo, AUTO_PURGE_SECS, PURGE_AFTER_SECS, RESTORE_WITHIN_SECS,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub const KEY_JSON: &str = "application/vnd.ibm.kms.key+json";
pub const KEY_ACTION_JSON: &str = "application/vnd.ibm.kms.key_action+json";
pub const VERSION_JSON: &str = "application/vnd.ibm.kms.key.version+json";
pub const ALIAS_JSON: &str = "application/vnd.ibm.kms.alias+json";
pub const KEY_RING_JSON: &str = "application/vnd.ibm.kms.key_ring+json";
pub const POLICY_JSON: &str = "application/vnd.ibm.kms.policy+json";
pub const REGISTRATION_JSON: &str = "application/vnd.ibm.kms.registration+json";

fn bad_body(msg: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::BadBody, msg)
}

/// Formats a time as RFC 3339 in UTC with `Z` and whole seconds (what Go clients parse).
pub fn ts(t: UnixMillis) -> String {
    let secs = t.0.div_euclid(1000);
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| {
            d.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Parses an RFC 3339 time stamp.
pub fn parse_ts(field: &'static str, s: &str) -> Result<UnixMillis, ServiceError> {
    let d = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        ServiceError::field(
            ErrorKind::InvalidField,
            field,
            format!(
                "The field '{field}' must be an RFC 3339 date and time, e.g. 2030-01-01T00:00:00Z"
            ),
        )
    })?;
    let ms = d.unix_timestamp_nanos() / 1_000_000;
    Ok(UnixMillis(i64::try_from(ms).unwrap_or(i64::MAX)))
}

/// Decodes base64 (standard alphabet, padding optional).
pub fn b64_field(field: &'static str, s: &str) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(s.trim()).map(Zeroizing::new).map_err(|e| {
        ServiceError::field(
            ErrorKind::InvalidField,
            field,
            format!("The field '{field}' must be: base64 encoded data: {e}"),
        )
    })
}

pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Parses a request body that must be a JSON object; an empty one is refused with `NoBody`
/// and `missing` as its message.
pub fn required_object(body: &[u8], missing: &str) -> Result<Map<String, Value>, ServiceError> {
    parse_object(body)?.ok_or_else(|| ServiceError::new(ErrorKind::NoBody, missing))
}

/// Parses a request body into a JSON object (empty body → `None`).
pub fn parse_object(body: &[u8]) -> Result<Option<Map<String, Value>>, ServiceError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match crate::strict_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(bad_body(
            "Invalid body data was passed: the body must be a JSON object",
        )),
        Err(e) if e.is_data() => Err(bad_body(format!("Invalid body data was passed: {e}"))),
        Err(e) => Err(bad_body(format!(
            "Invalid body data was passed: malformed JSON at line {} column {}",
            e.line(),
            e.column()
        ))),
    }
}

/// A JSON object with case-folded field names, checked against a list of known fields.
pub struct Fields(HashMap<String, Value>);

impl Fields {
    pub fn new(obj: Map<String, Value>, known: &[&str]) -> Result<Self, ServiceError> {
        let mut out = HashMap::new();
        for (k, v) in obj {
            let lk = k.to_ascii_lowercase();
            if !known.contains(&lk.as_str()) {
                return Err(bad_body(format!(
                    "Invalid body data was passed: unknown field \"{k}\""
                )));
            }
            if out.insert(lk, v).is_some() {
                return Err(bad_body(format!(
                    "Invalid body data was passed: field \"{k}\" appears twice"
                )));
            }
        }
        Ok(Fields(out))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str, field: &'static str) -> Result<Option<String>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ServiceError::field(
                ErrorKind::InvalidField,
                field,
                format!("The field '{field}' must be a string"),
            )),
        }
    }

    pub fn bool(&self, name: &str, field: &'static str) -> Result<Option<bool>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ServiceError::field(
                ErrorKind::InvalidField,
                field,
                format!("The field '{field}' must be true or false"),
            )),
        }
    }

    pub fn int(&self, name: &str, field: &'static str) -> Result<Option<i64>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    field,
                    format!("The field '{field}' must be an integer"),
                )
            }),
        }
    }

    pub fn strings(&self, name: &str, field: &'static str) -> Result<Vec<String>, ServiceError> {
        let err = || {
            ServiceError::field(
                ErrorKind::InvalidField,
                field,
                format!("The field '{field}' must be a list of strings"),
            )
        };
        match self.get(name) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(String::from).ok_or_else(err))
                .collect(),
            Some(_) => Err(err()),
        }
    }
}

/// The resources of a Key Protect collection envelope `{metadata, resources}`: at least
/// `min` of them, else `refusal`; a `collectiontotal` must count them.
fn collection_resources(
    obj: Map<String, Value>,
    min: usize,
    refusal: &'static str,
) -> Result<Vec<Value>, ServiceError> {
    let f = Fields::new(obj, &["metadata", "resources"])?;
    let resources = match f.get("resources") {
        Some(Value::Array(r)) if r.len() >= min => r.clone(),
        _ => return Err(bad_body(refusal)),
    };
    if let Some(Value::Object(meta)) = f.get("metadata") {
        let meta = Fields::new(meta.clone(), &["collectiontype", "collectiontotal"])?;
        if let Some(total) = meta.get("collectiontotal") {
            if total.as_u64() != Some(resources.len() as u64) {
                return Err(ServiceError::new(
                    ErrorKind::CollectionTotalMismatch,
                    "Collection total does not match number of resources",
                ));
            }
        }
    }
    Ok(resources)
}

/// Opens a Key Protect collection envelope and returns its single resource.
pub fn single_resource(obj: Map<String, Value>) -> Result<Map<String, Value>, ServiceError> {
    let resources = collection_resources(
        obj,
        0,
        "Invalid body data was passed: 'resources' must be a list with one key",
    )?;
    if resources.len() != 1 {
        return Err(bad_body(
            "Invalid body data was passed: exactly one resource is required",
        ));
    }
    match resources.into_iter().next() {
        Some(Value::Object(r)) => Ok(r),
        _ => Err(bad_body(
            "Invalid body data was passed: the resource must be a JSON object",
        )),
    }
}

pub fn crn(instance: InstanceId, key: &str) -> String {
    format!("crn:v1:strongroom:local:kms:local:a/strongroom:{instance}:key:{key}")
}

/// The Key Protect JSON of a key.
pub fn key_json(r: &KeyMetadata, payload: Option<&[u8]>) -> Value {
    let mut k = json!({
        "type": KEY_JSON,
        "id": r.id.to_string(),
        "name": r.name,
        "aliases": r.aliases,
        "state": r.state.code(),
        "extractable": r.kind.extractable(),
        "crn": crn(r.instance, &r.id.to_string()),
        "imported": r.imported,
        "creationDate": ts(r.created_at),
        "createdBy": r.created_by,
        "algorithmType": "AES",
        "algorithmMetadata": {"bitLength": r.bits.to_string(), "mode": if r.kind == KeyKind::Root { "GCM" } else { "N/A" }},
        "algorithmBitSize": r.bits,
        "algorithmMode": if r.kind == KeyKind::Root { "GCM" } else { "N/A" },
        "lastUpdateDate": ts(r.updated_at),
        "keyVersion": {"id": r.current_version.to_string(), "creationDate": ts(r.current_version_at)},
        "dualAuthDelete": dual_auth_json(r),
        "deleted": r.state == KeyState::Destroyed,
        "keyRingID": r.key_ring,
    });
    let obj = k.as_object_mut();
    if let Some(o) = obj {
        if let Some(d) = &r.description {
            o.insert("description".into(), json!(d));
        }
        if let Some(e) = r.expiration {
            o.insert("expirationDate".into(), json!(ts(e)));
        }
        if let Some(t) = r.last_rotated_at {
            o.insert("lastRotateDate".into(), json!(ts(t)));
        }
        if let Some(d) = r.deleted_at {
            o.insert("deletionDate".into(), json!(ts(d)));
            o.insert("deletedBy".into(), json!(r.deleted_by));
            o.insert(
                "restoreExpirationDate".into(),
                json!(ts(d.plus_secs(RESTORE_WITHIN_SECS))),
            );
            o.insert(
                "purgeAllowedFrom".into(),
                json!(ts(d.plus_secs(PURGE_AFTER_SECS))),
            );
            o.insert(
                "purgeScheduledOn".into(),
                json!(ts(d.plus_secs(AUTO_PURGE_SECS))),
            );
        }
        if let Some(p) = payload {
            o.insert("payload".into(), json!(b64(p)));
        }
        if let Some(rot) = &r.rotation {
            o.insert(
                "rotation".into(),
                json!({"enabled": rot.enabled, "interval_month": rot.interval_month}),
            );
        }
    }
    k
}

/// Deleted-key flags that depend on the current time.
pub fn add_deletion_flags(k: &mut Value, r: &KeyMetadata, now: UnixMillis) {
    if let (Some(d), Some(o)) = (r.deleted_at, k.as_object_mut()) {
        let age = now.secs_since(d);
        o.insert(
            "restoreAllowed".into(),
            json!(age <= RESTORE_WITHIN_SECS && r.expiration.is_none_or(|e| e > now)),
        );
        o.insert("purgeAllowed".into(), json!(age >= PURGE_AFTER_SECS));
    }
}

pub fn collection(collection_type: &str, resources: Vec<Value>) -> Value {
    json!({
        "metadata": {"collectionType": collection_type, "collectionTotal": resources.len()},
        "resources": resources,
    })
}

pub fn version_json(v: &VersionInfo) -> Value {
    json!({"id": v.id.to_string(), "creationDate": ts(v.created_at)})
}

/// Parses a `state` query list (`0,1,2,3,5`).
pub fn parse_states(s: &str) -> Result<Vec<KeyState>, ServiceError> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<i64>()
                .ok()
                .and_then(KeyState::from_code)
                .ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::InvalidQueryParam,
                        format!(
                            "'state' must be a comma-separated list of 0, 1, 2, 3, 5; got '{p}'"
                        ),
                    )
                })
        })
        .collect()
}

/// Booleans as Go's `strconv.ParseBool` reads them (Python clients send `True`).
pub fn parse_bool_param(name: &str, s: &str) -> Result<bool, ServiceError> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ServiceError::new(
            ErrorKind::InvalidQueryParam,
            format!("'{name}' must be true or false"),
        )),
    }
}

pub fn parse_u32_param(name: &str, s: &str, min: u32, max: u32) -> Result<u32, ServiceError> {
    s.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::InvalidQueryParam,
                format!("'{name}' must be an integer from {min} to {max}"),
            )
        })
}

fn dual_auth_json(r: &KeyMetadata) -> Value {
    let enabled = r.dual_auth.as_ref().is_some_and(|d| d.enabled);
    let mut v = json!({"enabled": enabled});
    if enabled {
        v["keySetForDeletion"] = json!(r.deletion_auth.is_some());
        if let Some(a) = &r.deletion_auth {
            v["authExpiration"] = json!(ts(a.at.plus_secs(strongroom_service::DELETION_AUTH_SECS)));
        }
    }
    v
}

/// The Key Protect JSON of a key's policies (`which` limits it to one type).
pub fn policies_json(
    instance: InstanceId,
    key: strongroom_model::KeyId,
    p: &strongroom_service::KeyPolicies,
    which: Option<&str>,
) -> Value {
    let policy_id = |kind: &str| uuid::Uuid::new_v5(&key.0, kind.as_bytes()).to_string();
    let base = |kind: &str, at: UnixMillis, by: &str| {
        json!({
            "id": policy_id(kind),
            "crn": crn(instance, &key.to_string()),
            "type": POLICY_JSON,
            "creationDate": ts(at),
            "createdBy": by,
            "lastUpdateDate": ts(at),
            "updatedBy": by,
        })
    };
    let mut resources = Vec::new();
    if let Some(r) = p
        .rotation
        .as_ref()
        .filter(|_| which.is_none_or(|w| w == "rotation"))
    {
        let mut v = base("rotation", r.updated_at, &r.updated_by);
        v["rotation"] = json!({"enabled": r.enabled, "interval_month": r.interval_month});
        resources.push(v);
    }
    if let Some(d) = p
        .dual_auth
        .as_ref()
        .filter(|_| which.is_none_or(|w| w == "dualAuthDelete"))
    {
        let mut v = base("dualAuthDelete", d.updated_at, &d.updated_by);
        v["dualAuthDelete"] = json!({"enabled": d.enabled});
        resources.push(v);
    }
    if resources.is_empty() {
        return json!({"metadata": {"collectionType": POLICY_JSON, "collectionTotal": 0}});
    }
    collection(POLICY_JSON, resources)
}

/// Parses a `PUT /keys/{id}/policies` body.
pub fn parse_policy_body(
    obj: Map<String, Value>,
    which: Option<&str>,
) -> Result<(Option<strongroom_service::RotationChange>, Option<bool>), ServiceError> {
    let resources = collection_resources(
        obj,
        1,
        "Invalid body data was passed: 'resources' must list at least one policy",
    )?;
    let (mut rotation, mut dual) = (None, None);
    for r in resources {
        let Value::Object(o) = r else {
            return Err(bad_body(
                "Invalid body data was passed: each policy must be an object",
            ));
        };
        let pf = Fields::new(o, &["type", "rotation", "dualauthdelete"])?;
        if let Some(Value::Object(rot)) = pf.get("rotation") {
            let rf = Fields::new(rot.clone(), &["enabled", "interval_month"])?;
            let interval_month = match rf.get("interval_month") {
                None => None,
                Some(v) => Some(v.as_i64().ok_or_else(|| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        "interval_month",
                        "interval_month must be an integer between 1 to 12",
                    )
                })?),
            };
            rotation = Some(strongroom_service::RotationChange {
                enabled: rf.bool("enabled", "enabled")?,
                interval_month,
            });
        } else if let Some(Value::Object(d)) = pf.get("dualauthdelete") {
            let df = Fields::new(d.clone(), &["enabled"])?;
            dual = Some(df.bool("enabled", "enabled")?.ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "dualAuthDelete",
                    "dualAuthDelete.enabled is required",
                )
            })?);
        } else {
            return Err(bad_body("Invalid body data was passed: a policy needs a 'rotation' or 'dualAuthDelete' object"));
        }
    }
    match which {
        Some("rotation") if dual.is_some() || rotation.is_none() => Err(bad_body(
            "Data in body does not match data required by the 'policy' query parameter",
        )),
        Some("dualAuthDelete") if rotation.is_some() || dual.is_none() => Err(bad_body(
            "Data in body does not match data required by the 'policy' query parameter",
        )),
        _ => Ok((rotation, dual)),
    }
}

/// Reads the secure-import fields of a create or rotate resource.
pub fn parse_secure_import(
    f: &Fields,
) -> Result<Option<strongroom_service::SecureImport>, ServiceError> {
    let nonce = f.string("encryptednonce", "encryptedNonce")?;
    let iv = f.string("iv", "iv")?;
    let alg = f.string("encryptionalgorithm", "encryptionAlgorithm")?;
    let Some(nonce) = nonce else {
        if iv.is_some() || alg.is_some() {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "encryptedNonce",
                "secure import needs 'encryptedNonce' with 'iv' and 'encryptionAlgorithm'",
            ));
        }
        return Ok(None);
    };
    let iv = iv.ok_or_else(|| {
        ServiceError::field(
            ErrorKind::InvalidField,
            "iv",
            "secure import needs the 'iv' used to encrypt the nonce",
        )
    })?;
    let algorithm = match alg.as_deref() {
        None | Some("RSAES_OAEP_SHA_256") => ImportAlgorithm::RsaOaep(OaepHash::Sha256),
        Some("RSAES_OAEP_SHA_1") => ImportAlgorithm::RsaOaep(OaepHash::Sha1),
        Some("ML_KEM_AES_256_KWP") => ImportAlgorithm::MlKemAesKwp,
        Some(other) => {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "encryptionAlgorithm",
                format!(
                "encryptionAlgorithm must be RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 or ML_KEM_AES_256_KWP, not '{other}'"
            ),
            ))
        }
    };
    Ok(Some(strongroom_service::SecureImport {
        encrypted_nonce: b64_field("encryptedNonce", &nonce)?.to_vec(),
        iv: b64_field("iv", &iv)?.to_vec(),
        algorithm,
    }))
}

use strongroom_service::{ImportAlgorithm, OaepHash, TransportKey};

/// Reads `transportKeyAlgorithm` of an import token request (a Strongroom extension:
/// `RSA_4096`, Key Protect's, by default; `ML_KEM_768` or `ML_KEM_1024`).
pub fn parse_transport_key(f: &Fields) -> Result<TransportKey, ServiceError> {
    match f.string("transportkeyalgorithm", "transportKeyAlgorithm")? {
        None => Ok(TransportKey::default()),
        Some(name) => TransportKey::parse(&name).ok_or_else(|| {
            ServiceError::field(
                ErrorKind::InvalidField,
                "transportKeyAlgorithm",
                format!(
                    "transportKeyAlgorithm must be RSA_4096, ML_KEM_768 or ML_KEM_1024, not '{name}'"
                ),
            )
        }),
    }
}

/// The JSON of an import token (`payload` is base64 of the PEM public key).
pub fn import_token_json(t: &strongroom_service::ImportTokenInfo) -> Value {
    let mut v = json!({
        "creationDate": ts(t.created_at),
        "expirationDate": ts(t.expires_at),
        "expiration": t.expiration_secs,
        "maxAllowedRetrievals": t.max_retrievals,
        "remainingRetrievals": t.remaining,
        "transportKeyAlgorithm": t.transport.name(),
    });
    if let Some(spki) = &t.public_key {
        let body = STANDARD.encode(spki);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        v["payload"] = json!(b64(pem.as_bytes()));
    }
    if let Some(n) = &t.nonce {
        v["nonce"] = json!(b64(n));
    }
    v
}

/// Reads `rotation` / `dualAuthDelete` of a create resource; only the overrides route
/// accepts them.
pub fn parse_policy_overrides(
    f: &Fields,
    allowed: bool,
) -> Result<Option<strongroom_service::PolicyOverrides>, ServiceError> {
    let rotation = f.get("rotation").cloned();
    let dual = f.get("dualauthdelete").cloned();
    if rotation.is_none() && dual.is_none() {
        return Ok(None);
    }
    if !allowed {
        return Err(bad_body("Invalid body data was passed: per-key policies are accepted at /api/v2/keys_with_policy_overrides"));
    }
    let mut o = strongroom_service::PolicyOverrides::default();
    if let Some(Value::Object(r)) = rotation {
        let rf = Fields::new(r, &["enabled", "interval_month"])?;
        let m = rf.int("interval_month", "interval_month")?.ok_or_else(|| {
            ServiceError::field(
                ErrorKind::InvalidField,
                "interval_month",
                "interval_month must be between 1 to 12",
            )
        })?;
        o.rotation = Some((rf.bool("enabled", "enabled")?.unwrap_or(true), m));
    } else if rotation.is_some() {
        return Err(ServiceError::field(
            ErrorKind::InvalidField,
            "rotation",
            "rotation must be an object",
        ));
    }
    if let Some(Value::Object(d)) = dual {
        let df = Fields::new(d, &["enabled"])?;
        o.dual_auth = Some(df.bool("enabled", "enabled")?.unwrap_or(false));
    } else if dual.is_some() {
        return Err(ServiceError::field(
            ErrorKind::InvalidField,
            "dualAuthDelete",
            "dualAuthDelete must be an object",
        ));
    }
    Ok(Some(o))
}

/// Parses a `PUT /instance/policies` body.
pub fn parse_instance_policies(
    obj: Map<String, Value>,
) -> Result<Vec<strongroom_service::InstancePolicyInput>, ServiceError> {
    let resources = collection_resources(
        obj,
        0,
        "Invalid body data was passed: 'resources' must list the policies",
    )?;
    resources
        .into_iter()
        .map(|r| {
            let Value::Object(o) = r else {
                return Err(bad_body(
                    "Invalid body data was passed: each policy must be an object",
                ));
            };
            // Instance policy fields are snake_case on the wire; match them exactly.
            for k in o.keys() {
                if k != "policy_type" && k != "policy_data" {
                    return Err(bad_body(format!(
                        "Invalid body data was passed: json: unknown field \"{k}\""
                    )));
                }
            }
            let policy_type = o
                .get("policy_type")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_body("Invalid body data was passed: 'policy_type' is required"))?
                .to_string();
            let Some(Value::Object(data)) = o.get("policy_data") else {
                return Err(bad_body(
                    "Invalid body data was passed: 'policy_data' is required",
                ));
            };
            for k in data.keys() {
                if k != "enabled" && k != "attributes" {
                    return Err(bad_body(format!(
                        "Invalid body data was passed: json: unknown field \"{k}\""
                    )));
                }
            }
            let enabled = data
                .get("enabled")
                .and_then(Value::as_bool)
                .ok_or_else(|| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        "enabled",
                        "policy_data.enabled must be true or false",
                    )
                })?;
            let attributes = match data.get("attributes") {
                None | Some(Value::Null) => None,
                Some(Value::Object(a)) => Some(a.clone()),
                Some(_) => {
                    return Err(ServiceError::field(
                        ErrorKind::InvalidField,
                        "attributes",
                        "policy_data.attributes must be an object",
                    ))
                }
            };
            Ok(strongroom_service::InstancePolicyInput {
                policy_type,
                enabled,
                attributes,
            })
        })
        .collect()
}

pub fn instance_policy_json(p: &strongroom_service::InstancePolicy) -> Value {
    let attrs: Value = serde_json::from_str(&p.attributes).unwrap_or(Value::Null);
    let mut data = json!({"enabled": p.enabled});
    if attrs.as_object().is_some_and(|a| !a.is_empty()) {
        data["attributes"] = attrs;
    }
    json!({
        "creationDate": ts(p.created_at),
        "createdBy": p.created_by,
        "updatedBy": p.updated_by,
        "lastUpdated": ts(p.updated_at),
        "policy_type": p.policy_type,
        "policy_data": data,
    })
}

/// The bounds of a calendar month in UTC (`YYYY-MM`; the current month by default).
pub fn month_bounds(
    month: Option<&str>,
    now: UnixMillis,
) -> Result<(UnixMillis, UnixMillis, String), ServiceError> {
    let bad = || ServiceError::new(ErrorKind::InvalidQueryParam, "'month' must be YYYY-MM");
    let (y, m) = match month {
        Some(s) => {
            let (y, m) = s.split_once('-').ok_or_else(bad)?;
            (
                y.parse::<i32>().map_err(|_| bad())?,
                m.parse::<u8>().map_err(|_| bad())?,
            )
        }
        None => {
            let d =
                OffsetDateTime::from_unix_timestamp(now.0.div_euclid(1000)).map_err(|_| bad())?;
            (d.year(), u8::from(d.month()))
        }
    };
    let start = |y: i32, m: u8| -> Result<UnixMillis, ServiceError> {
        let month = time::Month::try_from(m).map_err(|_| bad())?;
        let d = time::Date::from_calendar_date(y, month, 1).map_err(|_| bad())?;
        Ok(UnixMillis(
            d.midnight().assume_utc().unix_timestamp() * 1000,
        ))
    };
    let from = start(y, m)?;
    let to = if m == 12 {
        start(y + 1, 1)?
    } else {
        start(y, m + 1)?
    };
    Ok((from, to, format!("{y:04}-{m:02}")))
}

/// The paging of a list: `limit` (1 to 5,000, `default_limit` when absent), `offset`, and
/// whether `totalCount` was asked for.
pub fn paging(
    q: &HashMap<String, String>,
    default_limit: u32,
) -> Result<(u32, u32, bool), ServiceError> {
    let limit = q
        .get("limit")
        .map(|s| parse_u32_param("limit", s, 1, 5000))
        .transpose()?
        .unwrap_or(default_limit);
    let offset = q
        .get("offset")
        .map(|s| parse_u32_param("offset", s, 0, u32::MAX))
        .transpose()?
        .unwrap_or(0);
    let total = q
        .get("totalCount")
        .map(|s| parse_bool_param("totalCount", s))
        .transpose()?
        .unwrap_or(false);
    Ok((limit, offset, total))
}

// ---- KMIP management (Key Protect's field names are snake_case here) ----

pub const KMIP_ADAPTER_JSON: &str = "application/vnd.ibm.kms.kmip_adapter+json";
pub const KMIP_CERTIFICATE_JSON: &str = "application/vnd.ibm.kms.kmip_client_certificate+json";
pub const KMIP_OBJECT_JSON: &str = "application/vnd.ibm.kms.kmip_object+json";

pub fn kmip_adapter_json(a: &strongroom_service::kmip::KmipAdapter) -> Value {
    let mut v = json!({
        "id": a.id.to_string(),
        "name": a.name,
        "profile": a.profile,
        "profile_data": {"crk_id": a.crk_id.to_string()},
        "created_at": ts(a.created_at),
        "created_by": a.created_by,
        "updated_at": ts(a.updated_at),
        "updated_by": a.updated_by,
    });
    if let Some(d) = &a.description {
        v["description"] = json!(d);
    }
    v
}

/// A certificate; with `full`, its PEM too (a get; listings leave it out).
pub fn kmip_certificate_json(c: &strongroom_service::kmip::KmipCertificate, full: bool) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "name": c.name,
        "created_at": ts(c.created_at),
        "created_by": c.created_by,
    });
    if full {
        v["certificate"] = json!(c.certificate);
    }
    v
}

pub fn kmip_object_json(o: &strongroom_service::kmip::KmipObjectInfo) -> Value {
    let mut v = json!({
        "id": o.id.to_string(),
        "kmip_object_type": o.object_type,
        "state": o.state,
        "created_at": ts(o.created_at),
        "updated_at": ts(o.updated_at),
    });
    let cert = |c: Option<uuid::Uuid>| c.map(|c| c.to_string());
    if let Some(c) = cert(o.created_by_cert) {
        v["created_by_kmip_client_cert_id"] = json!(c);
    }
    if let Some(c) = cert(o.updated_by_cert) {
        v["updated_by_kmip_client_cert_id"] = json!(c);
    }
    if let Some(t) = o.destroyed_at {
        v["destroyed_at"] = json!(ts(t));
    }
    if let Some(c) = cert(o.destroyed_by_cert) {
        v["destroyed_by_kmip_client_cert_id"] = json!(c);
    }
    v
}

/// A list answer with `totalCount`, as Key Protect's KMIP lists give it.
pub fn counted_collection(collection_type: &str, resources: Vec<Value>, total: u64) -> Value {
    let mut body = collection(collection_type, resources);
    body["metadata"]["totalCount"] = json!(total);
    body
}

/// The body of `POST /api/v2/kmip_adapters`.
pub fn parse_kmip_adapter(
    body: &[u8],
    allow_expiring_key: bool,
) -> Result<strongroom_service::kmip::NewKmipAdapter, ServiceError> {
    let obj = required_object(body, "Request body is required")?;
    let r = Fields::new(
        single_resource(obj)?,
        &["name", "description", "profile", "profile_data", "type"],
    )?;
    let profile = r.string("profile", "profile")?.ok_or_else(|| {
        ServiceError::field(
            ErrorKind::InvalidField,
            "profile",
            "The field 'profile' is required",
        )
    })?;
    let crk_id = match r.get("profile_data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(pd)) => {
            Fields::new(pd.clone(), &["crk_id"])?.string("crk_id", "crk_id")?
        }
        Some(_) => return Err(bad_body("'profile_data' must be an object")),
    };
    Ok(strongroom_service::kmip::NewKmipAdapter {
        name: r.string("name", "name")?,
        description: r.string("description", "description")?,
        profile,
        crk_id,
        allow_expiring_key,
    })
}

/// The body of `POST …/certificates`: (name, PEM).
pub fn parse_kmip_certificate(body: &[u8]) -> Result<(Option<String>, String), ServiceError> {
    let obj = required_object(body, "Request body is required")?;
    let r = Fields::new(single_resource(obj)?, &["name", "certificate", "type"])?;
    let pem = r.string("certificate", "certificate")?.ok_or_else(|| {
        ServiceError::field(
            ErrorKind::InvalidField,
            "certificate",
            "The field 'certificate' is required",
        )
    })?;
    Ok((r.string("name", "name")?, pem))
}

/// `state=1,2` of a KMIP object listing.
pub fn parse_kmip_states(s: &str) -> Result<Vec<u32>, ServiceError> {
    s.split(',')
        .map(|p| {
            p.trim().parse::<u32>().ok().filter(|n| (1..=6).contains(n)).ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::InvalidQueryParam,
                    "The query parameter 'state' must be: a comma-separated list of KMIP states 1 to 6",
                )
            })
        })
        .collect()
}

mod activity;
mod answers;
pub use activity::*;
pub use answers::*;
