//! Prometheus metrics of the REST front end: requests by route, method and status, request
//! latency by route, and the number of keys held unwrapped in memory.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

use crate::AppState;

pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub cached_keys: IntGauge,
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
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(cached_keys.clone()))
            .expect("unique metric");
        Metrics {
            registry,
            requests,
            latency,
            cached_keys,
        }
    }
}

/// Records each request's route, status and latency.
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    st.metrics
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    st.metrics
        .latency
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    resp
}
