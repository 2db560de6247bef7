//! The JSON answers of key actions, the administrator's API, registrations and rings.

use super::*;

/// The answer of `wrap`: the ciphertext, the key version, and a generated DEK's plaintext.
pub fn wrapped_json(w: &strongroom_service::Wrapped) -> Value {
    let mut out =
        json!({"ciphertext": b64(&w.ciphertext), "keyVersion": version_json(&w.key_version)});
    if let Some(p) = &w.generated {
        out["plaintext"] = json!(b64(p));
    }
    out
}

/// The answer of `unwrap`, with the rewrapped ciphertext when the key was rotated since.
pub fn unwrapped_json(u: &strongroom_service::Unwrapped) -> Value {
    let mut out =
        json!({"plaintext": b64(&u.plaintext), "keyVersion": {"id": u.key_version.id.to_string()}});
    if let Some((c, v)) = &u.rewrapped {
        out["ciphertext"] = json!(b64(c));
        out["rewrappedKeyVersion"] = json!({"id": v.id.to_string()});
    }
    out
}

/// The answer of `rewrap`.
pub fn rewrapped_json(r: &strongroom_service::Rewrapped) -> Value {
    json!({
        "ciphertext": b64(&r.ciphertext),
        "keyVersion": {"id": r.key_version.id.to_string()},
        "rewrappedKeyVersion": {"id": r.rewrapped_key_version.id.to_string()},
    })
}

/// An instance in the admin API.
pub fn instance_json(i: &strongroom_service::InstanceInfo) -> Value {
    json!({"id": i.id.to_string(), "name": i.name, "creationDate": ts(i.created_at)})
}

/// An API key in the admin API (never its secret).
pub fn api_key_json(r: &strongroom_service::ApiKeyInfo) -> Value {
    let mut v = json!({"id": r.id, "name": r.name, "instance": r.instance.to_string(), "creationDate": ts(r.created_at)});
    match &r.access {
        strongroom_service::Access::Roles(g) => {
            v["roles"] = json!(g.roles.names());
            v["key_rings"] = json!(g.key_rings);
        }
        strongroom_service::Access::ServiceId(sid) => v["service_id"] = json!(sid),
    }
    v
}

/// An instance's units across the cluster, with where they run and the advice.
pub fn placement_json(p: &strongroom_service::Placement) -> Value {
    let units: Vec<Value> = p
        .units
        .iter()
        .map(|u| json!({"unit": u.unit.to_string(), "kind": if u.recovery { "recovery" } else { "operational" }, "zone": u.zone, "region": u.region, "creationDate": ts(u.created_at)}))
        .collect();
    json!({"units": units, "advice": p.advice})
}

/// A service ID as the administrator sees it (`key_rings` null: the whole instance).
pub fn service_id_json(r: &strongroom_service::ServiceIdInfo) -> Value {
    json!({"id": r.id, "name": r.name, "instance": r.instance.to_string(), "roles": r.grant.roles.names(), "key_rings": r.grant.key_rings, "creationDate": ts(r.created_at)})
}

/// An instance's usage in a month, by crypto unit.
pub fn usage_json(
    instance: InstanceId,
    month: &str,
    from: UnixMillis,
    to: UnixMillis,
    usage: &strongroom_service::InstanceUsage,
) -> Value {
    let units: Vec<Value> = usage
        .units
        .iter()
        .map(|(u, n)| json!({"unit": u.to_string(), "api_calls": n}))
        .collect();
    json!({"instance": instance.to_string(), "month": month, "from": ts(from), "to": ts(to), "api_calls": usage.api_calls, "crypto_units": units})
}

/// A key ring (the default ring has only its id).
pub fn ring_json(id: &str, created_at: UnixMillis, created_by: &str) -> Value {
    if id == strongroom_service::DEFAULT_RING {
        json!({"id": id})
    } else {
        json!({"id": id, "creationDate": ts(created_at), "createdBy": created_by})
    }
}

/// A registration of a key by another resource.
pub fn registration_json(v: &strongroom_service::RegistrationView) -> Value {
    let r = &v.record;
    let mut kv = json!({"id": r.key_version.to_string()});
    if let Some(at) = v.key_version_created_at {
        kv["creationDate"] = json!(ts(at));
    }
    json!({
        "keyId": r.key.to_string(),
        "keyName": v.key_name,
        "resourceCrn": r.resource_crn,
        "createdBy": r.created_by,
        "creationDate": ts(r.created_at),
        "updatedBy": r.updated_by,
        "lastUpdated": ts(r.updated_at),
        "description": r.description,
        "registrationMetadata": r.metadata,
        "preventKeyDeletion": r.prevent_deletion,
        "keyVersion": kv,
    })
}

/// A key alias.
pub fn alias_json(key: strongroom_model::KeyId, alias: &str, at: UnixMillis, by: &str) -> Value {
    json!({"keyId": key.to_string(), "alias": alias, "creationDate": ts(at), "createdBy": by})
}

/// Adds `metadata.totalCount` to a list answer when the caller asked for it.
pub fn with_total(body: &mut Value, total: Option<u64>) {
    if let Some(t) = total {
        body["metadata"]["totalCount"] = json!(t);
    }
}
