//! `/metrics`, `/health` and `/ready`.

use crate::*;

/// `GET /metrics`: Prometheus text format (aggregate counts only; no tenant identifiers).
/// `/metrics` (admin listener): Prometheus text, for the administrator's token only.
pub(crate) async fn metrics_text(State(st): State<AppState>, h: HeaderMap) -> Response {
    const WHAT: &str = "Metrics could not be read";
    if let Err(e) = admin(&st, &h, Action::AdminMetricsRead, WHAT).await {
        return e.into_response();
    }
    st.metrics.cached_keys.set(st.svc.cached_keys() as i64);
    let o = st.svc.ops_stats();
    for (name, v) in [
        ("key_cache_hits", o.cache_hits as i64),
        ("key_cache_misses", o.cache_misses as i64),
        ("reencrypted_blobs", o.reencrypted as i64),
        ("reencrypt_remaining", o.reencrypt_remaining as i64),
        ("last_backup_seconds", o.last_backup_ms / 1000),
        ("last_backup_keys", o.last_backup_keys as i64),
    ] {
        st.metrics.ops.with_label_values(&[name]).set(v);
    }
    st.metrics.crypto_units.reset();
    for (labels, n) in st.svc.unit_states().await {
        let l: Vec<&str> = labels.iter().map(String::as_str).collect();
        st.metrics.crypto_units.with_label_values(&l).set(n);
    }
    let mut buf = String::new();
    let families = st.metrics.registry.gather();
    if prometheus::TextEncoder::new()
        .encode_utf8(&families, &mut buf)
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buf,
    )
        .into_response()
}

pub(crate) async fn health(State(st): State<AppState>) -> Response {
    let body = health_json(st.svc.fips_mode(), st.svc.mechanism_policy().fips);
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `/ready`: the keystore answers. `/ready?instance=<id>`: this node can also serve that
/// instance (one of its units holds the instance's master key), for a load balancer's
/// per-instance health check.
pub(crate) async fn ready(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(i) = q.get("instance") {
        let json = [(http::header::CONTENT_TYPE, "application/json")];
        let Ok(id) = i.parse::<InstanceId>() else {
            return (
                StatusCode::BAD_REQUEST,
                json,
                r#"{"status":"instance is not a UUID"}"#,
            )
                .into_response();
        };
        return match st.svc.ready_for(id).await {
            Ok(()) => (StatusCode::OK, json, r#"{"status":"ready"}"#).into_response(),
            Err(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json,
                r#"{"status":"this node cannot serve the instance"}"#,
            )
                .into_response(),
        };
    }
    match st.svc.ready().await {
        Ok(()) => (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(http::header::CONTENT_TYPE, "application/json")],
            r#"{"status":"keystore unavailable"}"#,
        )
            .into_response(),
    }
}
