//! Prometheus metrics of the REST front end: requests by route, method and status, request
//! latency by route, the number of keys held unwrapped in memory, and the crypto units of
//! this node by kind and state (no tenant identifiers).

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub cached_keys: IntGauge,
    pub crypto_units: IntGaugeVec,
    /// Operational counters of the service, refreshed at each scrape.
    pub ops: IntGaugeVec,
    /// TLS handshakes by listener and negotiated key exchange group.
    tls_handshakes: IntCounterVec,
}

impl Metrics {
    // The metric definitions are constants known to be valid: failing here is a programming
    // error caught by every test run.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("strongroom".into()), None).expect("valid registry prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "REST requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid counter");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "REST request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
            &["route"],
        )
        .expect("valid histogram");
        let cached_keys =
            IntGauge::new("cached_keys", "keys held unwrapped in memory").expect("valid gauge");
        let crypto_units = IntGaugeVec::new(
            Opts::new(
                "crypto_units",
                "crypto units hosted by this node, by kind, mode, register states and rotation",
            ),
            &["kind", "mode", "current", "new", "rotating"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(crypto_units.clone()))
            .expect("unique metric");
        let ops = IntGaugeVec::new(
            Opts::new(
                "node",
                "this node's counters: key cache hits and misses (since start), key blobs re-encrypted and still to re-encrypt (master key rotation), time (Unix seconds) and keys of the last scheduled backup",
            ),
            &["counter"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(ops.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(cached_keys.clone()))
            .expect("unique metric");
        let tls_handshakes = IntCounterVec::new(
            Opts::new(
                "tls_handshakes_total",
                "TLS handshakes completed, by listener and negotiated key exchange group (X25519MLKEM768 is the hybrid post-quantum one)",
            ),
            &["listener", "group"],
        )
        .expect("valid counter");
        registry
            .register(Box::new(tls_handshakes.clone()))
            .expect("unique metric");
        Metrics {
            tls_handshakes,
            registry,
            requests,
            latency,
            cached_keys,
            crypto_units,
            ops,
        }
    }
}

impl Metrics {
    /// Records a completed TLS handshake on `listener` that negotiated `group`.
    pub fn tls_handshake(&self, listener: &str, group: &str) {
        self.tls_handshakes
            .with_label_values(&[listener, group])
            .inc();
    }

    /// Records one request.
    pub fn record(&self, route: &str, method: &str, status: &str, took: std::time::Duration) {
        self.requests
            .with_label_values(&[route, method, status])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
    }
}

/// The route template of a path, without allocating (ids and aliases become `{id}`).
pub fn route_class(path: &str) -> &'static str {
    let mut it = path.trim_end_matches('/').split('/').skip(1);
    let seg: [Option<&str>; 7] = [
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ];
    match seg {
        [Some("api"), Some("v2"), Some("keys"), None, ..] => "/api/v2/keys",
        [Some("api"), Some("v2"), Some("keys"), Some("registrations"), None, ..] => {
            "/api/v2/keys/registrations"
        }
        [Some("api"), Some("v2"), Some("keys"), Some(_), None, ..] => "/api/v2/keys/{id}",
        [Some("api"), Some("v2"), Some("keys"), Some(_), Some("actions"), Some(a), None] => match a
        {
            "wrap" => "/api/v2/keys/{id}/actions/wrap",
            "unwrap" => "/api/v2/keys/{id}/actions/unwrap",
            "rewrap" => "/api/v2/keys/{id}/actions/rewrap",
            "rotate" => "/api/v2/keys/{id}/actions/rotate",
            "disable" => "/api/v2/keys/{id}/actions/disable",
            "enable" => "/api/v2/keys/{id}/actions/enable",
            _ => "/api/v2/keys/{id}/actions/{action}",
        },
        [Some("api"), Some("v2"), Some("keys"), Some(_), Some(sub), None, ..] => match sub {
            "metadata" => "/api/v2/keys/{id}/metadata",
            "versions" => "/api/v2/keys/{id}/versions",
            "purge" => "/api/v2/keys/{id}/purge",
            "restore" => "/api/v2/keys/{id}/restore",
            "policies" => "/api/v2/keys/{id}/policies",
            "registrations" => "/api/v2/keys/{id}/registrations",
            _ => "other",
        },
        [Some("api"), Some("v2"), Some("keys"), Some(_), Some("aliases"), Some(_), None] => {
            "/api/v2/keys/{id}/aliases/{alias}"
        }
        [Some("api"), Some("v2"), Some("keys"), Some(_), Some("registrations"), Some(_), None] => {
            "/api/v2/keys/{id}/registrations/{crn}"
        }
        [Some("api"), Some("v2"), Some("key_rings"), ..] => "/api/v2/key_rings",
        [Some("api"), Some("v2"), Some("activity_events"), None, ..] => "/api/v2/activity_events",
        [Some("api"), Some("v2"), Some("import_token"), None, ..] => "/api/v2/import_token",
        [Some("api"), Some("v2"), Some("instance"), ..] => "/api/v2/instance",
        [Some("api"), Some("v2"), ..] => "/api/v2/other",
        [Some("identity"), Some("token"), None, ..] => "/identity/token",
        [Some("admin"), ..] => "/admin",
        [Some("metrics"), None, ..] => "/metrics",
        [Some("health"), None, ..] => "/health",
        [Some("ready"), None, ..] => "/ready",
        [Some("ui"), ..] => "/ui",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::route_class;

    #[test]
    fn routes_are_classified_without_ids() {
        assert_eq!(route_class("/api/v2/keys"), "/api/v2/keys");
        assert_eq!(
            route_class("/api/v2/keys/9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01/actions/wrap"),
            "/api/v2/keys/{id}/actions/wrap"
        );
        assert_eq!(
            route_class("/api/v2/keys/my-alias/metadata"),
            "/api/v2/keys/{id}/metadata"
        );
        assert_eq!(
            route_class("/api/v2/keys/registrations"),
            "/api/v2/keys/registrations"
        );
        assert_eq!(
            route_class("/api/v2/keys/x/actions/explode"),
            "/api/v2/keys/{id}/actions/{action}"
        );
        assert_eq!(route_class("/nope/at/all"), "other");
    }
}
