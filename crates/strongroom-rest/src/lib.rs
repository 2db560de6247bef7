//! The REST front end: the Key Protect v2 key API, the IAM API-key token exchange, the
//! service-administrator API, `/health` and `/ready`. A thin adapter: it converts JSON
//! (in [`convert`]) and maps errors (in [`error_map`]); every decision is the service's.
#![forbid(unsafe_code)]

pub mod convert;
pub mod error_map;
mod metrics;
mod prologue;
mod routes;
mod strict_json;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde_json::{json, Value};
use strongroom_model::{InstanceId, KeyFilter, KeyKind, KeyState, Page, Role, Roles, UnitId};
use strongroom_service::{
    Access, AdminCtx, CreateKey, Ctx, ErrorKind, Grant, OffsetClock, Service, ServiceError,
    SignedCommand, UnitLayout,
};

use convert::*;
use error_map::ApiError;
use prologue::*;
use routes::*;
use strongroom_service::Action;

/// Options of the REST front end.
#[derive(Clone)]
pub struct RestOptions {
    /// Largest accepted request body, in bytes.
    pub max_body: usize,
    /// When set, `POST /admin/v1/test/clock` moves this clock forward (tests only).
    pub test_clock: Option<Arc<OffsetClock>>,
    /// Wrap each request in a tracing span (exported over OpenTelemetry by the server),
    /// continuing the caller's trace from a W3C `traceparent` header.
    pub trace_requests: bool,
    /// The node's other listeners, as the console shows them (`/ui/endpoints.json`).
    pub endpoints: Endpoints,
}

/// Where clients of the node's other interfaces connect, for the console's integration
/// page: ports only (the browser knows the host it reached), never a credential.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    /// The GREP11 gRPC listener's port.
    pub grep11_port: Option<u16>,
    /// Whether the GREP11 listener speaks TLS.
    pub grep11_tls: bool,
    /// The KMIP listener's port.
    pub kmip_port: Option<u16>,
}

impl Default for RestOptions {
    fn default() -> Self {
        RestOptions {
            max_body: 64 * 1024,
            test_clock: None,
            trace_requests: false,
            endpoints: Endpoints::default(),
        }
    }
}

#[derive(Clone)]
struct AppState {
    svc: Arc<Service>,
    opts: RestOptions,
    metrics: Arc<metrics::Metrics>,
}

type ApiResult = Result<Response, ApiError>;

/// Builds the router.
/// The front end as the server runs it: the allowedIP check and metrics around the router,
/// without per-request middleware boxing.
pub struct Frontend {
    router: Router,
    network: strongroom_service::Network,
    svc: Arc<Service>,
    metrics: Arc<metrics::Metrics>,
    trace_requests: bool,
}

impl Frontend {
    /// Builds the front end of the API listener.
    pub fn new(svc: Arc<Service>, opts: RestOptions) -> Self {
        Self::with_surface(
            svc,
            opts,
            Arc::new(metrics::Metrics::new()),
            Surface::Api,
            strongroom_service::Network::Public,
        )
    }

    /// Where any of this node's listeners (REST, GREP11, KMIP, admin) records its TLS
    /// handshakes, in the metrics `/metrics` serves. It holds the metrics only, not the
    /// service, so it may outlive the front end.
    pub fn tls_counter(&self) -> TlsCounter {
        TlsCounter(Arc::clone(&self.metrics))
    }

    /// The front end of another listener of the same node, sharing this one's metrics:
    /// the admin listener (`Surface::Admin`) reports the API's traffic, and a private API
    /// listener (`Network::Private`) serves instances whose allowedNetwork is private-only.
    pub fn sibling(
        &self,
        opts: RestOptions,
        surface: Surface,
        network: strongroom_service::Network,
    ) -> Self {
        Self::with_surface(
            Arc::clone(&self.svc),
            opts,
            Arc::clone(&self.metrics),
            surface,
            network,
        )
    }

    fn with_surface(
        svc: Arc<Service>,
        opts: RestOptions,
        metrics: Arc<metrics::Metrics>,
        surface: Surface,
        network: strongroom_service::Network,
    ) -> Self {
        let trace_requests = opts.trace_requests;
        let router = router_with(Arc::clone(&svc), opts, Arc::clone(&metrics), surface);
        Frontend {
            router,
            network,
            svc,
            metrics,
            trace_requests,
        }
    }

    /// Answers one request from `peer`.
    pub async fn handle<B>(&self, req: http::Request<B>, peer: std::net::SocketAddr) -> Response
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        if !self.trace_requests {
            return self.answer(req, peer).await;
        }
        use opentelemetry::propagation::TextMapPropagator as _;
        use tracing::Instrument as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let route = metrics::route_class(req.uri().path());
        let span = tracing::info_span!(
            target: "strongroom::request",
            "request",
            otel.name = %format_args!("{} {route}", req.method()),
            otel.kind = "server",
            http.request.method = %req.method(),
            http.route = route,
            http.response.status_code = tracing::field::Empty,
            correlation_id = header(req.headers(), "correlation-id").unwrap_or(""),
        );
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .extract(&opentelemetry_http::HeaderExtractor(req.headers()));
        let _ = span.set_parent(parent);
        let resp = self.answer(req, peer).instrument(span.clone()).await;
        span.record("http.response.status_code", resp.status().as_u16());
        resp
    }

    async fn answer<B>(&self, req: http::Request<B>, peer: std::net::SocketAddr) -> Response
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let started = std::time::Instant::now();
        let route = metrics::route_class(req.uri().path());
        let method = req.method().clone();
        let allowed = self
            .svc
            .check_client_ip(
                header(req.headers(), "bluemix-instance"),
                peer.ip(),
                self.network,
                header(req.headers(), "correlation-id").unwrap_or(""),
            )
            .await;
        let mut req = req;
        if matches!(req.uri().path(), "/identity/token" | "/oidc/token") {
            // The token exchange applies the API key's instance's allowedIP policy itself.
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        let mut resp = match allowed {
            Err(e) => ApiError::new(e, "Request could not be processed").into_response(),
            Ok(()) => {
                match tower::ServiceExt::oneshot(self.router.clone(), req.map(Body::new)).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            }
        };
        no_store(&mut resp);
        self.metrics.record(
            route,
            method.as_str(),
            resp.status().as_str(),
            started.elapsed(),
        );
        resp
    }
}

/// Counts TLS handshakes by listener and negotiated key exchange group.
#[derive(Clone)]
pub struct TlsCounter(Arc<metrics::Metrics>);

impl TlsCounter {
    /// Records a completed handshake on `listener` that negotiated `group`.
    pub fn count(&self, listener: &str, group: &str) {
        self.0.tls_handshake(listener, group);
    }
}

/// The router alone (tests, tools), with the same `Cache-Control: no-store` on every answer
/// as the front end.
pub fn router(svc: Arc<Service>, opts: RestOptions) -> Router {
    router_with(svc, opts, Arc::new(metrics::Metrics::new()), Surface::All).layer(
        axum::middleware::map_response(|mut resp: Response| async move {
            no_store(&mut resp);
            resp
        }),
    )
}

/// Which routes a listener serves: the API (Key Protect's, Strongroom's extensions, the
/// token exchange) or the administrator's (`/admin/v1/...` and `/metrics`). Both answer
/// `/health` and `/ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The API listener (`--http-addr`, and `--private-http-addr`).
    Api,
    /// The admin listener (`--admin-addr`, loopback by default).
    Admin,
    /// Both (tools and in-process tests).
    All,
}

fn router_with(
    svc: Arc<Service>,
    opts: RestOptions,
    metrics: Arc<metrics::Metrics>,
    surface: Surface,
) -> Router {
    let state = AppState { svc, opts, metrics };
    let probes = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready));
    let router = match surface {
        Surface::Api => api_routes().merge(probes),
        Surface::Admin => admin_routes().merge(probes),
        Surface::All => api_routes().merge(admin_routes()).merge(probes),
    };
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

fn api_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v2/keys",
            get(list_keys).post(create_key).head(count_keys),
        )
        .route(
            "/api/v2/keys/{id}",
            get(get_key)
                .delete(delete_key)
                .post(legacy_action)
                .patch(patch_key),
        )
        .route(
            "/api/v2/keys/{id}/aliases/{alias}",
            post(create_alias).delete(delete_alias),
        )
        .route(
            "/api/v2/keys/{id}/policies",
            get(get_policies).put(put_policies),
        )
        .route(
            "/api/v2/import_token",
            get(get_import_token).post(post_import_token),
        )
        .route(
            "/api/v2/keys_with_policy_overrides",
            post(create_key_with_overrides),
        )
        .route("/api/v2/keys/registrations", get(list_all_registrations))
        .route(
            "/api/v2/keys/{id}/registrations",
            get(list_key_registrations),
        )
        .route(
            "/api/v2/keys/{id}/registrations/{crn}",
            post(write_registration)
                .put(write_registration)
                .patch(write_registration)
                .delete(delete_registration),
        )
        .route("/api/v2/event_ack", post(event_ack))
        .route(
            "/api/v2/instance/policies",
            get(get_instance_policies).put(put_instance_policies),
        )
        .route("/api/v2/instance/allowed_ip_port", get(allowed_ip_port))
        .route("/api/v2/key_rings", get(list_rings))
        .route("/api/v2/activity_events", get(list_activity))
        .route(
            "/api/v2/kmip_adapters",
            get(list_kmip_adapters).post(create_kmip_adapter),
        )
        .route(
            "/api/v2/kmip_adapters/{id}",
            get(get_kmip_adapter).delete(delete_kmip_adapter),
        )
        .route(
            "/api/v2/kmip_adapters/{id}/certificates",
            get(list_kmip_certificates).post(add_kmip_certificate),
        )
        .route(
            "/api/v2/kmip_adapters/{id}/certificates/{cert}",
            get(get_kmip_certificate).delete(delete_kmip_certificate),
        )
        .route(
            "/api/v2/kmip_adapters/{id}/kmip_objects",
            get(list_kmip_objects),
        )
        .route(
            "/api/v2/kmip_adapters/{id}/kmip_objects/{object}",
            get(get_kmip_object).delete(delete_kmip_object),
        )
        .route(
            "/api/v2/key_rings/{ring}",
            post(create_ring).delete(delete_ring),
        )
        .route("/api/v2/keys/{id}/metadata", get(get_metadata))
        .route("/api/v2/keys/{id}/versions", get(key_versions))
        .route("/api/v2/keys/{id}/purge", delete(purge_key))
        .route("/api/v2/keys/{id}/restore", post(restore_key))
        .route("/api/v2/keys/{id}/actions/{action}", post(action))
        .route("/api/v2/crypto_units", get(list_units))
        .route("/api/v2/crypto_units/reencrypt", post(reencrypt))
        .route("/api/v2/crypto_units/{unit}", get(get_unit))
        .route("/api/v2/crypto_units/{unit}/commands", post(unit_command))
        .route("/identity/token", post(identity_token))
        .route("/oidc/token", post(identity_token))
        .route("/api/v2/instance/usage", get(instance_usage))
        .route("/api/v2/instance/backups", get(instance_backups))
        .route("/ui", get(console_redirect))
        .route("/ui/", get(console_page))
        .route("/ui/endpoints.json", get(console_endpoints))
        .route("/ui/{asset}", get(console_asset))
}

fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/instances",
            get(admin_list_instances).post(admin_create_instance),
        )
        .route("/admin/v1/instances/{id}", delete(admin_delete_instance))
        .route(
            "/admin/v1/instances/{id}/api_keys",
            get(admin_list_api_keys).post(admin_create_api_key),
        )
        .route(
            "/admin/v1/instances/{id}/api_keys/{key_id}",
            delete(admin_delete_api_key),
        )
        .route(
            "/admin/v1/instances/{id}/service_ids",
            get(admin_list_service_ids).post(admin_create_service_id),
        )
        .route(
            "/admin/v1/instances/{id}/service_ids/{sid}",
            put(admin_update_service_id).delete(admin_delete_service_id),
        )
        .route("/admin/v1/instances/{id}/usage", get(admin_instance_usage))
        .route(
            "/admin/v1/instances/{id}/allowed_ip",
            delete(admin_clear_allowed_ip),
        )
        .route(
            "/admin/v1/instances/{id}/units",
            get(admin_list_units).post(admin_add_unit),
        )
        .route("/admin/v1/test/clock", post(test_clock))
        .route("/metrics", get(metrics_text))
}

/// No response of a key management service belongs in a cache: key payloads, generated
/// and unwrapped DEKs, tokens, and metadata an attacker could read back from a proxy.
fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .entry(http::header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
