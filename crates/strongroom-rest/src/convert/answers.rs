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
pub fn ring_json(r: &strongroom_service::KeyRing) -> Value {
    match &r.created {
        None => json!({"id": r.id}),
        Some((at, by)) => json!({"id": r.id, "creationDate": ts(*at), "createdBy": by}),
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

/// A listing of the admin API: `{"<name>": [items]}`.
pub fn admin_list_json<T>(name: &str, items: &[T], each: impl Fn(&T) -> Value) -> Value {
    let mut o = serde_json::Map::new();
    o.insert(name.into(), items.iter().map(each).collect());
    Value::Object(o)
}

/// A created API key: its record and, this once, the key itself.
pub fn api_key_created_json(c: &strongroom_service::ApiKeyCreated) -> Value {
    let mut body = api_key_json(&c.record);
    body["apikey"] = json!(c.api_key);
    body
}

/// The instance's units on this node, with the node's zone and region.
pub fn local_units_json<T: serde::Serialize>(
    units: &T,
    zone: Option<&str>,
    region: Option<&str>,
) -> Value {
    json!({"units": units, "zone": zone, "region": region})
}

/// A unit added to an instance by the administrator.
pub fn unit_added_json(
    unit: strongroom_model::UnitId,
    instance: strongroom_model::InstanceId,
) -> Value {
    json!({"unit": unit.to_string(), "instance": instance.to_string()})
}

/// The answer to clearing an instance's allowedIP policy.
pub fn allowed_ip_cleared_json(instance: &str, was_enabled: bool) -> Value {
    json!({"instance": instance, "allowedIP_was_enabled": was_enabled})
}

/// The service clock's time (dev test clock).
pub fn clock_json(now: UnixMillis) -> Value {
    json!({"now": ts(now)})
}

/// A search's echo in a key listing's metadata.
pub fn with_search(body: &mut Value, s: &strongroom_service::Search, incomplete: bool) {
    let mut scopes = vec![];
    if s.name {
        scopes.push("name");
    }
    if s.alias {
        scopes.push("alias");
    }
    body["metadata"]["incompleteSearch"] = json!(incomplete);
    body["metadata"]["searchQuery"] =
        json!({"query": s.query, "scopes": scopes, "not": s.not, "exact": s.exact});
}

/// The cursor of the next page of activity events.
pub fn with_next(body: &mut Value, next: Option<i64>) {
    if let Some(n) = next {
        body["metadata"]["next"] = json!(n.to_string());
    }
}

/// An IAM error in IAM's own format.
pub fn iam_error_json(code: &str, msg: &str) -> Value {
    json!({"errorCode": code, "errorMessage": msg, "context": {"requestId": uuid::Uuid::new_v4().to_string()}})
}

/// An IAM token answer, as IBM's IAM gives it.
pub fn iam_token_json(t: &strongroom_service::IssuedToken) -> Value {
    json!({
        "access_token": t.access_token,
        "refresh_token": "not_supported",
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "expiration": t.expiration,
        "scope": "ibm openid",
    })
}

/// The backups an instance's Manager sees.
pub fn backups_json(v: &strongroom_service::backups::BackupsView) -> Value {
    let archives: Vec<Value> = v
        .archives
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "creationDate": ts(a.created_at),
                "scope": if a.instance_only { "instance" } else { "node" },
            })
        })
        .collect();
    json!({
        "configured": v.configured,
        "lastScheduledBackup": v.last_scheduled.map(ts),
        "backups": archives,
    })
}

/// The console's `endpoints.json`: the ports of the node's GREP11 and KMIP listeners.
pub fn endpoints_json(e: &crate::Endpoints) -> Value {
    json!({
        "grep11": e.grep11_port.map(|p| json!({"port": p, "tls": e.grep11_tls})),
        "kmip": e.kmip_port.map(|p| json!({"port": p})),
    })
}

/// `/health`: whether the crypto runs in a FIPS 140 module in its approved mode (`fips`), and
/// whether only FIPS-approved mechanisms are offered (`fips_policy`, always with `fips`).
pub fn health_json(fips: bool, fips_policy: bool) -> Value {
    json!({"status": "ok", "fips": fips, "fips_policy": fips_policy})
}
