//! The REST front end: the Key Protect v2 key API, the IAM API-key token exchange, the
//! service-administrator API, `/health` and `/ready`. A thin adapter: it converts JSON
//! (in [`convert`]) and maps errors (in [`error_map`]); every decision is the service's.
#![forbid(unsafe_code)]

pub mod convert;
pub mod error_map;
mod metrics;
mod strict_json;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Value};
use strongroom_keystore::{KeyFilter, Page};
use strongroom_model::{InstanceId, KeyKind, KeyState, Role, Roles, UnitId};
use strongroom_service::{
    AdminCtx, CreateKey, Ctx, ErrorKind, OffsetClock, Service, ServiceError, SignedCommand,
    UnitLayout,
};

use convert::*;
use error_map::ApiError;

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
}

impl Default for RestOptions {
    fn default() -> Self {
        RestOptions {
            max_body: 64 * 1024,
            test_clock: None,
            trace_requests: false,
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
    svc: Arc<Service>,
    metrics: Arc<metrics::Metrics>,
    trace_requests: bool,
}

impl Frontend {
    /// Builds the front end.
    pub fn new(svc: Arc<Service>, opts: RestOptions) -> Self {
        let metrics = Arc::new(metrics::Metrics::new());
        let trace_requests = opts.trace_requests;
        let router = router_with(Arc::clone(&svc), opts, Arc::clone(&metrics));
        Frontend {
            router,
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
                header(req.headers(), "correlation-id").unwrap_or(""),
            )
            .await;
        let resp = match allowed {
            Err(e) => ApiError::new(e, "Request could not be processed").into_response(),
            Ok(()) => {
                match tower::ServiceExt::oneshot(self.router.clone(), req.map(Body::new)).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            }
        };
        self.metrics.record(
            route,
            method.as_str(),
            resp.status().as_str(),
            started.elapsed(),
        );
        resp
    }
}

/// The router alone (tests, tools).
pub fn router(svc: Arc<Service>, opts: RestOptions) -> Router {
    router_with(svc, opts, Arc::new(metrics::Metrics::new()))
}

fn router_with(svc: Arc<Service>, opts: RestOptions, metrics: Arc<metrics::Metrics>) -> Router {
    let state = AppState { svc, opts, metrics };
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
            post(create_registration)
                .put(replace_registration)
                .patch(update_registration)
                .delete(delete_registration),
        )
        .route("/api/v2/event_ack", post(event_ack))
        .route(
            "/api/v2/instance/policies",
            get(get_instance_policies).put(put_instance_policies),
        )
        .route("/api/v2/instance/allowed_ip_port", get(allowed_ip_port))
        .route("/api/v2/key_rings", get(list_rings))
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
        .route("/admin/v1/instances/{id}/usage", get(admin_instance_usage))
        .route(
            "/admin/v1/instances/{id}/allowed_ip",
            delete(admin_clear_allowed_ip),
        )
        .route("/admin/v1/instances/{id}/units", post(admin_add_unit))
        .route("/admin/v1/test/clock", post(test_clock))
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

/// No response of a key management service belongs in a cache: key payloads, generated
/// and unwrapped DEKs, tokens, and metadata an attacker could read back from a proxy.
async fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .entry(http::header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

// ---------------------------------------------------------------- plumbing

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn correlation_id(h: &HeaderMap) -> String {
    ["correlation-id", "x-correlation-id", "x-request-id"]
        .iter()
        .find_map(|n| header(h, n))
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Option<Value>,
    corr: &str,
) -> Response {
    let mut resp = match body {
        Some(v) => (status, v.to_string()).into_response(),
        None => status.into_response(),
    };
    let h = resp.headers_mut();
    if status != StatusCode::NO_CONTENT {
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
    }
    if let Ok(v) = HeaderValue::from_str(corr) {
        h.insert("correlation-id", v);
    }
    resp
}

async fn body_bytes(body: Body, max: usize, what: &'static str) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            ServiceError::new(
                ErrorKind::BadBody,
                format!(
                    "Invalid body data was passed: the request body is larger than {max} bytes"
                ),
            ),
            what,
        )
    })
}

/// Clients send JSON with many content types (vendor types, none at all from the Go
/// client). Anything that is not JSON-like is refused.
fn check_content_type(h: &HeaderMap, body: &[u8], what: &'static str) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    match header(h, "content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
        None => Ok(()),
        Some(ct) if ct.is_empty() || ct == "application/json" || ct.ends_with("+json") || ct == "*/*" => Ok(()),
        Some(ct) => Err(ApiError::new(
            ServiceError::new(ErrorKind::BadBody, format!("Invalid body data was passed: Content-Type '{ct}' is not supported; send application/json")),
            what,
        )),
    }
}

async fn auth(
    st: &AppState,
    h: &HeaderMap,
    action: &'static str,
    what: &'static str,
) -> Result<Ctx, ApiError> {
    st.svc
        .authenticate(
            header(h, "authorization"),
            header(h, "bluemix-instance"),
            correlation_id(h),
            action,
        )
        .await
        .map_err(|e| ApiError::new(e, what))
}

fn prefer_minimal(h: &HeaderMap) -> bool {
    header(h, "prefer").is_some_and(|p| p.to_ascii_lowercase().contains("return=minimal"))
}

fn aad_of(f: &Fields) -> Result<Vec<String>, ServiceError> {
    f.strings("aad", "aad")
}

// ---------------------------------------------------------------- keys

const CREATE_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "aliases",
    "tags",
    "expirationdate",
    "extractable",
    "payload",
    "encryptednonce",
    "iv",
    "encryptionalgorithm",
    "keyringid",
    "rotation",
    "dualauthdelete",
];

async fn create_key(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    create_key_with(st, h, body, false).await
}

async fn create_key_with_overrides(
    State(st): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    create_key_with(st, h, body, true).await
}

async fn create_key_with(
    st: AppState,
    h: HeaderMap,
    body: Body,
    with_overrides: bool,
) -> ApiResult {
    const WHAT: &str = "Key could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = auth(&st, &h, "kms.secrets.create", WHAT).await?;
    let parsed = (|| {
        check_content_type(&h, &body, WHAT).map_err(|e| e.err)?;
        let obj = parse_object(&body)?
            .ok_or_else(|| ServiceError::new(ErrorKind::NoBody, "Missing body in request"))?;
        let f = Fields::new(single_resource(obj)?, CREATE_FIELDS)?;
        let secure = parse_secure_import(&f)?;
        let overrides = parse_policy_overrides(&f, with_overrides)?;
        // The ring comes from X-Kms-Key-Ring (as Key Protect does); a keyRingID in the
        // body must agree with it.
        let header_ring = header(&h, "x-kms-key-ring").map(String::from);
        let body_ring = f.string("keyringid", "keyRingID")?;
        let key_ring = match (header_ring, body_ring) {
            (Some(a), Some(b)) if a != b => {
                return Err(ServiceError::field(
                    ErrorKind::InvalidField,
                    "keyRingID",
                    "keyRingID and the X-Kms-Key-Ring header name different key rings",
                ));
            }
            (a, b) => a.or(b),
        };
        let name = f.string("name", "name")?.ok_or_else(|| {
            ServiceError::field(
                ErrorKind::InvalidField,
                "name",
                "The field 'name' is required",
            )
        })?;
        let extractable = f.bool("extractable", "extractable")?.unwrap_or(false);
        let payload = f
            .string("payload", "payload")?
            .map(|p| b64_field("payload", &p))
            .transpose()?;
        let expiration = f
            .string("expirationdate", "expirationDate")?
            .map(|s| parse_ts("expirationDate", &s))
            .transpose()?;
        Ok(CreateKey {
            name,
            description: f.string("description", "description")?,
            aliases: f.strings("aliases", "aliases")?,
            kind: if extractable {
                KeyKind::Standard
            } else {
                KeyKind::Root
            },
            payload,
            expiration,
            key_ring,
            secure,
            overrides,
        })
    })();
    let req = match parsed {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.secrets.create", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    let view = st
        .svc
        .create_key(&ctx, req)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let payload = if prefer_minimal(&h) {
        None
    } else {
        view.payload.as_deref().map(|p| p.as_slice())
    };
    let body = collection(KEY_JSON, vec![key_json(&view.record, payload)]);
    Ok(respond(
        StatusCode::CREATED,
        KEY_JSON,
        Some(body),
        &ctx.correlation_id,
    ))
}

fn list_filter(
    q: &HashMap<String, String>,
    h: &HeaderMap,
) -> Result<(KeyFilter, strongroom_service::ListQuery), ServiceError> {
    // The IBM Python SDK sends `state=` (empty) when no state is asked for.
    let states = match q.get("state").filter(|s| !s.is_empty()) {
        Some(s) => parse_states(s)?,
        None => vec![
            KeyState::PreActivation,
            KeyState::Active,
            KeyState::Suspended,
            KeyState::Deactivated,
        ],
    };
    let extractable = q
        .get("extractable")
        .map(|s| parse_bool_param("extractable", s))
        .transpose()?;
    let key_ring = header(h, "x-kms-key-ring").map(String::from);
    let filter = KeyFilter {
        states,
        extractable,
        key_ring,
    };
    Ok((filter, list_query(q)?))
}

fn list_query(q: &HashMap<String, String>) -> Result<strongroom_service::ListQuery, ServiceError> {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
    let search = get("search")
        .map(|s| strongroom_service::Search::parse(s))
        .transpose()?;
    let sort = get("sort")
        .map(|s| strongroom_service::parse_sort(s))
        .transpose()?
        .unwrap_or_default();
    let filter = match get("filter") {
        Some(f) => strongroom_service::parse_filter(f, &|t| parse_ts("filter", t).ok())?,
        None => vec![],
    };
    let has = |p: fn(&strongroom_service::FilterTerm) -> bool| filter.iter().any(p);
    if (get("state").is_some() && has(|t| matches!(t, strongroom_service::FilterTerm::States(_))))
        || (get("extractable").is_some()
            && has(|t| matches!(t, strongroom_service::FilterTerm::Extractable(_))))
    {
        return Err(ServiceError::new(
            ErrorKind::InvalidQueryParam,
            "state and extractable cannot be given both in 'filter' and as query parameters",
        ));
    }
    Ok(strongroom_service::ListQuery {
        search,
        sort,
        filter,
    })
}

fn query_is_plain(q: &strongroom_service::ListQuery) -> bool {
    q.search.is_none() && q.sort.is_empty() && q.filter.is_empty()
}

async fn list_keys(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Keys could not be listed";
    let ctx = auth(&st, &h, "kms.secrets.list", WHAT).await?;
    let parsed = (|| {
        let filter = list_filter(&q, &h)?;
        let limit = q
            .get("limit")
            .map(|s| parse_u32_param("limit", s, 1, 5000))
            .transpose()?
            .unwrap_or(200);
        let offset = q
            .get("offset")
            .map(|s| parse_u32_param("offset", s, 0, u32::MAX))
            .transpose()?
            .unwrap_or(0);
        Ok((filter, Page { limit, offset }))
    })();
    let ((filter, query), page) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.secrets.list", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    let (keys, incomplete) = if query_is_plain(&query) {
        (
            st.svc
                .list_keys(&ctx, &filter, page)
                .await
                .map_err(|e| ApiError::new(e, WHAT))?,
            false,
        )
    } else {
        let out = st
            .svc
            .search_keys(&ctx, &filter, &query, page)
            .await
            .map_err(|e| ApiError::new(e, WHAT))?;
        (out.keys, out.incomplete)
    };
    let now = st.svc.now();
    let resources = keys
        .iter()
        .map(|k| {
            let mut j = key_json(k, None);
            add_deletion_flags(&mut j, k, now);
            j
        })
        .collect();
    let mut body = collection(KEY_JSON, resources);
    if let Some(s) = &query.search {
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
    Ok(respond(
        StatusCode::OK,
        KEY_JSON,
        Some(body),
        &ctx.correlation_id,
    ))
}

async fn count_keys(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Keys could not be counted";
    let ctx = auth(&st, &h, "kms.secrets.head", WHAT).await?;
    let (filter, query) = match list_filter(&q, &h) {
        Ok(f) => f,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.secrets.head", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    let n = if query_is_plain(&query) {
        st.svc
            .count_keys(&ctx, &filter)
            .await
            .map_err(|e| ApiError::new(e, WHAT))?
    } else {
        let all = Page {
            limit: strongroom_service::SEARCH_SPACE,
            offset: 0,
        };
        st.svc
            .search_keys(&ctx, &filter, &query, all)
            .await
            .map_err(|e| ApiError::new(e, WHAT))?
            .keys
            .len() as u64
    };
    let mut resp = respond(StatusCode::OK, KEY_JSON, None, &ctx.correlation_id);
    if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
        resp.headers_mut().insert("key-total", v);
    }
    Ok(resp)
}

async fn get_key(State(st): State<AppState>, Path(id): Path<String>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Key could not be retrieved";
    let ctx = auth(&st, &h, "kms.secrets.read", WHAT).await?;
    let view = st
        .svc
        .get_key(&ctx, &id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let mut j = key_json(&view.record, view.payload.as_deref().map(|p| p.as_slice()));
    add_deletion_flags(&mut j, &view.record, st.svc.now());
    Ok(respond(
        StatusCode::OK,
        KEY_JSON,
        Some(collection(KEY_JSON, vec![j])),
        &ctx.correlation_id,
    ))
}

async fn get_metadata(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key metadata could not be retrieved";
    let ctx = auth(&st, &h, "kms.secrets.readmetadata", WHAT).await?;
    let rec = st
        .svc
        .get_key_metadata(&ctx, &id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let mut j = key_json(&rec, None);
    add_deletion_flags(&mut j, &rec, st.svc.now());
    Ok(respond(
        StatusCode::OK,
        KEY_JSON,
        Some(collection(KEY_JSON, vec![j])),
        &ctx.correlation_id,
    ))
}

async fn key_versions(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key versions could not be listed";
    let ctx = auth(&st, &h, "kms.secrets.listkeyversions", WHAT).await?;
    let parsed = (|| {
        let limit = q
            .get("limit")
            .map(|s| parse_u32_param("limit", s, 1, 5000))
            .transpose()?
            .unwrap_or(200);
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
        let all = q
            .get("allKeyStates")
            .map(|s| parse_bool_param("allKeyStates", s))
            .transpose()?
            .unwrap_or(false);
        Ok((Page { limit, offset }, total, all))
    })();
    let (page, want_total, all) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.secrets.listkeyversions", Some(&id), e)
                    .await,
                WHAT,
            ))
        }
    };
    let (versions, total) = st
        .svc
        .key_versions(&ctx, &id, page, all)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let mut body = collection(VERSION_JSON, versions.iter().map(version_json).collect());
    if want_total {
        body["metadata"]["totalCount"] = json!(total);
    }
    Ok(respond(
        StatusCode::OK,
        VERSION_JSON,
        Some(body),
        &ctx.correlation_id,
    ))
}

async fn delete_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key could not be deleted";
    let ctx = auth(&st, &h, "kms.secrets.delete", WHAT).await?;
    let force = match q
        .get("force")
        .map(|s| parse_bool_param("force", s))
        .transpose()
    {
        Ok(f) => f.unwrap_or(false),
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.secrets.delete", Some(&id), e)
                    .await,
                WHAT,
            ))
        }
    };
    let rec = st
        .svc
        .delete(&ctx, &id, force)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    if prefer_minimal(&h) {
        return Ok(respond(
            StatusCode::NO_CONTENT,
            KEY_JSON,
            None,
            &ctx.correlation_id,
        ));
    }
    let mut j = key_json(&rec, None);
    add_deletion_flags(&mut j, &rec, st.svc.now());
    Ok(respond(
        StatusCode::OK,
        KEY_JSON,
        Some(collection(KEY_JSON, vec![j])),
        &ctx.correlation_id,
    ))
}

async fn purge_key(State(st): State<AppState>, Path(id): Path<String>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Key could not be purged";
    let ctx = auth(&st, &h, "kms.secrets.purge", WHAT).await?;
    let rec = st
        .svc
        .purge(&ctx, &id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    if prefer_minimal(&h) {
        return Ok(respond(
            StatusCode::NO_CONTENT,
            KEY_JSON,
            None,
            &ctx.correlation_id,
        ));
    }
    Ok(respond(
        StatusCode::OK,
        KEY_JSON,
        Some(collection(KEY_JSON, vec![key_json(&rec, None)])),
        &ctx.correlation_id,
    ))
}

async fn restore_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key could not be restored";
    let ctx = auth(&st, &h, "kms.secrets.restore", WHAT).await?;
    let rec = st
        .svc
        .restore(&ctx, &id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::CREATED,
        KEY_JSON,
        Some(collection(KEY_JSON, vec![key_json(&rec, None)])),
        &ctx.correlation_id,
    ))
}

async fn action(
    State(st): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    run_action(st, id, action, h, body).await
}

async fn legacy_action(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    let Some(action) = q.get("action").cloned() else {
        let e = ServiceError::new(ErrorKind::InvalidQueryParam, "POST /api/v2/keys/{id} needs ?action=<wrap|unwrap|rewrap|rotate|disable|enable|restore>");
        return Err(ApiError::new(e, "Key action could not be performed"));
    };
    run_action(st, id, action, h, body).await
}

fn action_audit_name(action: &str) -> (&'static str, &'static str) {
    match action {
        "wrap" => ("kms.secrets.wrap", "Key could not be wrapped"),
        "unwrap" => ("kms.secrets.unwrap", "Key could not be unwrapped"),
        "rewrap" => ("kms.secrets.rewrap", "Key could not be rewrapped"),
        "rotate" => ("kms.secrets.rotate", "Key could not be rotated"),
        "disable" => ("kms.secrets.disable", "Key could not be disabled"),
        "enable" => ("kms.secrets.enable", "Key could not be enabled"),
        "restore" => ("kms.secrets.restore", "Key could not be restored"),
        "setKeyForDeletion" => (
            "kms.secrets.setkeyfordeletion",
            "Key could not be set for deletion",
        ),
        "unsetKeyForDeletion" => (
            "kms.secrets.unsetkeyfordeletion",
            "Key could not be unset for deletion",
        ),
        _ => ("kms.secrets.action", "Key action could not be performed"),
    }
}

async fn run_action(
    st: AppState,
    id: String,
    action: String,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    let (audit_name, what) = action_audit_name(&action);
    let body = body_bytes(body, st.opts.max_body, what).await?;
    let ctx = auth(&st, &h, audit_name, what).await?;
    let corr = ctx.correlation_id.clone();
    let parsed = (|| {
        check_content_type(&h, &body, what).map_err(|e| e.err)?;
        let obj = parse_object(&body)?;
        let known: &[&str] = match action.as_str() {
            "wrap" => &["plaintext", "aad"],
            "unwrap" | "rewrap" => &["ciphertext", "aad"],
            "rotate" => &["payload", "encryptednonce", "iv", "encryptionalgorithm"],
            "disable" | "enable" | "restore" => &[],
            "setKeyForDeletion" | "unsetKeyForDeletion" | "sync" => &[],
            other => {
                return Err(ServiceError::new(
                    ErrorKind::InvalidQueryParam,
                    format!("unknown action '{other}'"),
                ))
            }
        };
        let f = match obj {
            Some(o) => Some(Fields::new(o, known)?),
            None => None,
        };
        Ok(f)
    })();
    let fields = match parsed {
        Ok(f) => f,
        Err(e) => {
            return Err(ApiError::new(
                st.svc.record_rejected(&ctx, audit_name, Some(&id), e).await,
                what,
            ))
        }
    };
    let svc = &st.svc;
    let fail = |e: ServiceError| ApiError::new(e, what);
    match action.as_str() {
        "wrap" => {
            let (plaintext, aad) = match &fields {
                Some(f) => {
                    let p = f
                        .string("plaintext", "plaintext")
                        .and_then(|p| p.map(|p| b64_field("plaintext", &p)).transpose());
                    let aad = aad_of(f);
                    match (p, aad) {
                        (Ok(p), Ok(a)) => (p, a),
                        (Err(e), _) | (_, Err(e)) => {
                            return Err(fail(
                                svc.record_rejected(&ctx, audit_name, Some(&id), e).await,
                            ))
                        }
                    }
                }
                None => (None, vec![]),
            };
            let w = svc.wrap(&ctx, &id, plaintext, &aad).await.map_err(fail)?;
            let mut out = json!({"ciphertext": b64(&w.ciphertext), "keyVersion": version_json(&w.key_version)});
            if let Some(p) = &w.generated {
                out["plaintext"] = json!(b64(p));
            }
            Ok(respond(StatusCode::OK, KEY_ACTION_JSON, Some(out), &corr))
        }
        "unwrap" | "rewrap" => {
            let parsed = (|| {
                let f = fields.as_ref().ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::NoBody,
                        "Missing body in request: 'ciphertext' is required",
                    )
                })?;
                let ct = f.string("ciphertext", "ciphertext")?.ok_or_else(|| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        "ciphertext",
                        "The field 'ciphertext' is required",
                    )
                })?;
                let ct = b64_field("ciphertext", &ct)?;
                Ok((ct, aad_of(f)?))
            })();
            let (ct, aad) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    return Err(fail(
                        svc.record_rejected(&ctx, audit_name, Some(&id), e).await,
                    ))
                }
            };
            if action == "unwrap" {
                let u = svc.unwrap(&ctx, &id, &ct, &aad).await.map_err(fail)?;
                let mut out = json!({"plaintext": b64(&u.plaintext), "keyVersion": {"id": u.key_version.id.to_string()}});
                if let Some((c, v)) = &u.rewrapped {
                    out["ciphertext"] = json!(b64(c));
                    out["rewrappedKeyVersion"] = json!({"id": v.id.to_string()});
                }
                Ok(respond(StatusCode::OK, KEY_ACTION_JSON, Some(out), &corr))
            } else {
                let r = svc.rewrap(&ctx, &id, &ct, &aad).await.map_err(fail)?;
                let out = json!({
                    "ciphertext": b64(&r.ciphertext),
                    "keyVersion": {"id": r.key_version.id.to_string()},
                    "rewrappedKeyVersion": {"id": r.rewrapped_key_version.id.to_string()},
                });
                Ok(respond(StatusCode::OK, KEY_ACTION_JSON, Some(out), &corr))
            }
        }
        "rotate" => {
            let (payload, secure) = match &fields {
                Some(f) => {
                    let p = (|| {
                        let secure = parse_secure_import(f)?;
                        let payload = f
                            .string("payload", "payload")?
                            .map(|p| b64_field("payload", &p))
                            .transpose()?;
                        Ok::<_, ServiceError>((payload, secure))
                    })();
                    match p {
                        Ok(p) => p,
                        Err(e) => {
                            return Err(fail(
                                svc.record_rejected(&ctx, audit_name, Some(&id), e).await,
                            ))
                        }
                    }
                }
                None => (None, None),
            };
            svc.rotate(&ctx, &id, payload, secure).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "disable" => {
            svc.disable(&ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "enable" => {
            svc.enable(&ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "setKeyForDeletion" => {
            svc.set_key_for_deletion(&ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "unsetKeyForDeletion" => {
            svc.unset_key_for_deletion(&ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "sync" => {
            svc.sync_key(&ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        _ => {
            let rec = svc.restore(&ctx, &id).await.map_err(fail)?;
            Ok(respond(
                StatusCode::CREATED,
                KEY_JSON,
                Some(collection(KEY_JSON, vec![key_json(&rec, None)])),
                &corr,
            ))
        }
    }
}

// ---------------------------------------------------------------- aliases, rings, policies

async fn create_alias(
    State(st): State<AppState>,
    Path((id, alias)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key alias could not be created";
    let ctx = auth(&st, &h, "kms.secrets.createalias", WHAT).await?;
    let (key_id, at) = st
        .svc
        .create_key_alias(&ctx, &id, &alias)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let res = json!({"keyId": key_id.to_string(), "alias": alias, "creationDate": ts(at), "createdBy": ctx.principal.subject});
    Ok(respond(
        StatusCode::CREATED,
        ALIAS_JSON,
        Some(collection(ALIAS_JSON, vec![res])),
        &ctx.correlation_id,
    ))
}

async fn delete_alias(
    State(st): State<AppState>,
    Path((id, alias)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key alias could not be deleted";
    let ctx = auth(&st, &h, "kms.secrets.deletealias", WHAT).await?;
    st.svc
        .delete_key_alias(&ctx, &id, &alias)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        ALIAS_JSON,
        None,
        &ctx.correlation_id,
    ))
}

async fn list_rings(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key rings could not be listed";
    let ctx = auth(&st, &h, "kms.keyrings.list", WHAT).await?;
    let parsed = (|| {
        let limit = q
            .get("limit")
            .map(|s| parse_u32_param("limit", s, 1, 5000))
            .transpose()?
            .unwrap_or(100);
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
    })();
    let (limit, offset, want_total) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.keyrings.list", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    let rings = st
        .svc
        .list_key_rings(&ctx)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let total = rings.len();
    let page: Vec<Value> = rings
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|r| {
            if r.id == strongroom_service::DEFAULT_RING {
                json!({"id": r.id})
            } else {
                json!({"id": r.id, "creationDate": ts(r.created_at), "createdBy": r.created_by})
            }
        })
        .collect();
    let mut body = collection(KEY_RING_JSON, page);
    if want_total {
        body["metadata"]["totalCount"] = json!(total);
    }
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &ctx.correlation_id,
    ))
}

async fn create_ring(
    State(st): State<AppState>,
    Path(ring): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key ring could not be created";
    let ctx = auth(&st, &h, "kms.keyrings.create", WHAT).await?;
    st.svc
        .create_key_ring(&ctx, &ring)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::CREATED,
        KEY_RING_JSON,
        None,
        &ctx.correlation_id,
    ))
}

async fn delete_ring(
    State(st): State<AppState>,
    Path(ring): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key ring could not be deleted";
    let ctx = auth(&st, &h, "kms.keyrings.delete", WHAT).await?;
    let force = match q
        .get("force")
        .map(|s| parse_bool_param("force", s))
        .transpose()
    {
        Ok(f) => f.unwrap_or(false),
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.keyrings.delete", Some(&ring), e)
                    .await,
                WHAT,
            ))
        }
    };
    st.svc
        .delete_key_ring(&ctx, &ring, force)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        KEY_RING_JSON,
        None,
        &ctx.correlation_id,
    ))
}

async fn patch_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Key could not be updated";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = auth(&st, &h, "kms.secrets.patch", WHAT).await?;
    let target = (|| {
        check_content_type(&h, &body, WHAT).map_err(|e| e.err)?;
        let obj = parse_object(&body)?.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::NoBody,
                "Missing body in request: {\"keyRingID\": ...} is required",
            )
        })?;
        let f = Fields::new(obj, &["keyringid"])?;
        f.string("keyringid", "keyRingID")?.ok_or_else(|| {
            ServiceError::field(
                ErrorKind::InvalidField,
                "keyRingID",
                "The field 'keyRingID' is required",
            )
        })
    })();
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.secrets.patch", Some(&id), e)
                    .await,
                WHAT,
            ))
        }
    };
    let rec = st
        .svc
        .move_key(&ctx, &id, header(&h, "x-kms-key-ring"), &target)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        KEY_JSON,
        Some(collection(KEY_JSON, vec![key_json(&rec, None)])),
        &ctx.correlation_id,
    ))
}

fn policy_filter(q: &HashMap<String, String>) -> Result<Option<&str>, ServiceError> {
    match q.get("policy").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(p @ ("rotation" | "dualAuthDelete")) => Ok(Some(p)),
        Some(other) => Err(ServiceError::new(
            ErrorKind::InvalidQueryParam,
            format!("'policy' must be rotation or dualAuthDelete, not '{other}'"),
        )),
    }
}

async fn get_policies(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key policies could not be retrieved";
    let ctx = auth(&st, &h, "kms.policies.read", WHAT).await?;
    let which = match policy_filter(&q) {
        Ok(w) => w,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.policies.read", Some(&id), e)
                    .await,
                WHAT,
            ))
        }
    };
    let (key, p) = st
        .svc
        .get_key_policies(&ctx, &id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(policies_json(ctx.instance, key, &p, which)),
        &ctx.correlation_id,
    ))
}

async fn put_policies(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Key policies could not be updated";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = auth(&st, &h, "kms.policies.write", WHAT).await?;
    let parsed = (|| {
        check_content_type(&h, &body, WHAT).map_err(|e| e.err)?;
        let which = policy_filter(&q)?;
        let obj = parse_object(&body)?
            .ok_or_else(|| ServiceError::new(ErrorKind::NoBody, "Missing body in request"))?;
        parse_policy_body(obj, which)
    })();
    let (rotation, dual) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.policies.write", Some(&id), e)
                    .await,
                WHAT,
            ))
        }
    };
    let (key, p) = st
        .svc
        .put_key_policies(&ctx, &id, rotation, dual)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(policies_json(ctx.instance, key, &p, None)),
        &ctx.correlation_id,
    ))
}

// ---------------------------------------------------------------- import tokens

async fn post_import_token(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    const WHAT: &str = "Import token could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = auth(&st, &h, "kms.importtoken.create", WHAT).await?;
    let parsed = (|| {
        check_content_type(&h, &body, WHAT).map_err(|e| e.err)?;
        let Some(obj) = parse_object(&body)? else {
            return Ok((None, None));
        };
        let f = Fields::new(obj, &["expiration", "maxallowedretrievals"])?;
        Ok((
            f.int("expiration", "expiration")?,
            f.int("maxallowedretrievals", "maxAllowedRetrievals")?,
        ))
    })();
    let (expiration, retrievals) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.importtoken.create", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    let t = st
        .svc
        .create_import_token(&ctx, expiration, retrievals)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(import_token_json(&t)),
        &ctx.correlation_id,
    ))
}

async fn get_import_token(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Import Token could not be retrieved";
    let ctx = auth(&st, &h, "kms.importtoken.read", WHAT).await?;
    let t = st
        .svc
        .get_import_token(&ctx)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(import_token_json(&t)),
        &ctx.correlation_id,
    ))
}

// ---------------------------------------------------------------- instance policies

async fn put_instance_policies(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Instance policies could not be updated";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = auth(&st, &h, "kms.instancepolicies.write", WHAT).await?;
    let only = q.get("policy").filter(|p| !p.is_empty()).cloned();
    let parsed = (|| {
        check_content_type(&h, &body, WHAT).map_err(|e| e.err)?;
        let obj = parse_object(&body)?
            .ok_or_else(|| ServiceError::new(ErrorKind::NoBody, "Missing body in request"))?;
        parse_instance_policies(obj)
    })();
    let inputs = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.instancepolicies.write", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    st.svc
        .put_instance_policies(&ctx, inputs, only.as_deref())
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        POLICY_JSON,
        None,
        &ctx.correlation_id,
    ))
}

async fn get_instance_policies(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Instance policies could not be retrieved";
    let ctx = auth(&st, &h, "kms.instancepolicies.read", WHAT).await?;
    let only = q.get("policy").filter(|p| !p.is_empty()).cloned();
    let list = st
        .svc
        .get_instance_policies(&ctx, only.as_deref())
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let resources: Vec<Value> = list.iter().map(instance_policy_json).collect();
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(collection(POLICY_JSON, resources)),
        &ctx.correlation_id,
    ))
}

/// Strongroom has no private endpoint: the list is empty (documented in docs/compatibility.md).
async fn allowed_ip_port(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Allowed IP port could not be retrieved";
    let ctx = auth(&st, &h, "kms.instancepolicies.read", WHAT).await?;
    st.svc
        .get_instance_policies(&ctx, Some("allowedIP"))
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(collection(
            "application/vnd.ibm.kms.allowed_ip_metadata+json",
            vec![],
        )),
        &ctx.correlation_id,
    ))
}

// ---------------------------------------------------------------- registrations

fn registration_json(v: &strongroom_service::RegistrationView) -> Value {
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

async fn list_registrations_common(
    st: AppState,
    key: Option<String>,
    q: HashMap<String, String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Registrations could not be listed";
    let ctx = auth(&st, &h, "kms.registrations.list", WHAT).await?;
    let parsed = (|| {
        let limit = q
            .get("limit")
            .map(|s| parse_u32_param("limit", s, 1, 5000))
            .transpose()?
            .unwrap_or(200);
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
        let prevent = q
            .get("preventKeyDeletion")
            .map(|s| parse_bool_param("preventKeyDeletion", s))
            .transpose()?;
        let crn = q
            .get("urlEncodedResourceCRNQuery")
            .filter(|c| !c.is_empty())
            .cloned();
        if key.is_none() {
            if let Some(c) = &crn {
                if c.split(':').take(8).any(|seg| seg.contains('*')) {
                    return Err(ServiceError::new(ErrorKind::InvalidQueryParam, "urlEncodedResourceCRNQuery may use '*' only after the eighth CRN segment when listing all keys"));
                }
            }
        }
        Ok((Page { limit, offset }, total, prevent, crn))
    })();
    let (page, want_total, prevent, crn) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.registrations.list", key.as_deref(), e)
                    .await,
                WHAT,
            ))
        }
    };
    let (list, total) = st
        .svc
        .list_registrations(&ctx, key.as_deref(), crn.as_deref(), prevent, page)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let mut body = collection(
        REGISTRATION_JSON,
        list.iter().map(registration_json).collect(),
    );
    if want_total {
        body["metadata"]["totalCount"] = json!(total);
    }
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &ctx.correlation_id,
    ))
}

async fn list_all_registrations(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    list_registrations_common(st, None, q, h).await
}

async fn list_key_registrations(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    list_registrations_common(st, Some(id), q, h).await
}

async fn write_registration_common(
    st: AppState,
    id: String,
    crn: String,
    h: HeaderMap,
    body: Body,
    mode: strongroom_service::RegistrationWrite,
) -> ApiResult {
    const WHAT: &str = "Registration could not be written";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let action = match mode {
        strongroom_service::RegistrationWrite::Create => "kms.registrations.create",
        strongroom_service::RegistrationWrite::Replace => "kms.registrations.replace",
        strongroom_service::RegistrationWrite::Update => "kms.registrations.update",
    };
    let ctx = auth(&st, &h, action, WHAT).await?;
    let input = (|| {
        check_content_type(&h, &body, WHAT).map_err(|e| e.err)?;
        let Some(obj) = parse_object(&body)? else {
            return Ok(strongroom_service::RegistrationInput::default());
        };
        let f = Fields::new(
            single_resource(obj)?,
            &[
                "preventkeydeletion",
                "description",
                "registrationmetadata",
                "keyversionid",
            ],
        )?;
        let key_version = f
            .string("keyversionid", "keyVersionId")?
            .map(|v| {
                v.parse().map_err(|_| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        "keyVersionId",
                        "keyVersionId must be a key version id",
                    )
                })
            })
            .transpose()?;
        Ok::<_, ServiceError>(strongroom_service::RegistrationInput {
            prevent_key_deletion: f.bool("preventkeydeletion", "preventKeyDeletion")?,
            description: f.string("description", "description")?,
            metadata: f.string("registrationmetadata", "registrationMetadata")?,
            key_version,
        })
    })();
    let input = match input {
        Ok(i) => i,
        Err(e) => {
            return Err(ApiError::new(
                st.svc.record_rejected(&ctx, action, Some(&id), e).await,
                WHAT,
            ))
        }
    };
    let rec = st
        .svc
        .write_registration(&ctx, &id, &crn, input, mode)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let view = strongroom_service::RegistrationView {
        record: rec,
        key_name: String::new(),
        key_version_created_at: None,
    };
    let status = if mode == strongroom_service::RegistrationWrite::Create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond(
        status,
        "application/json",
        Some(collection(
            REGISTRATION_JSON,
            vec![registration_json(&view)],
        )),
        &ctx.correlation_id,
    ))
}

async fn create_registration(
    State(st): State<AppState>,
    Path((id, crn)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    write_registration_common(
        st,
        id,
        crn,
        h,
        body,
        strongroom_service::RegistrationWrite::Create,
    )
    .await
}

async fn replace_registration(
    State(st): State<AppState>,
    Path((id, crn)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    write_registration_common(
        st,
        id,
        crn,
        h,
        body,
        strongroom_service::RegistrationWrite::Replace,
    )
    .await
}

async fn update_registration(
    State(st): State<AppState>,
    Path((id, crn)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    write_registration_common(
        st,
        id,
        crn,
        h,
        body,
        strongroom_service::RegistrationWrite::Update,
    )
    .await
}

async fn delete_registration(
    State(st): State<AppState>,
    Path((id, crn)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Registration could not be deleted";
    let ctx = auth(&st, &h, "kms.registrations.delete", WHAT).await?;
    st.svc
        .delete_registration(&ctx, &id, &crn)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        REGISTRATION_JSON,
        None,
        &ctx.correlation_id,
    ))
}

/// `POST /api/v2/event_ack`: an integrated service acknowledges a key lifecycle event.
async fn event_ack(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    const WHAT: &str = "Event could not be acknowledged";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = auth(&st, &h, "kms.secrets.eventack", WHAT).await?;
    let parsed = (|| {
        check_content_type(&h, &body, WHAT).map_err(|e| e.err)?;
        let obj = parse_object(&body)?
            .ok_or_else(|| ServiceError::new(ErrorKind::NoBody, "Missing body in request"))?;
        let f = Fields::new(
            obj,
            &[
                "eventid",
                "adopterkeystate",
                "timestamp",
                "keystatedata",
                "deleteregistration",
            ],
        )?;
        let event = f.string("eventid", "eventId")?.ok_or_else(|| {
            ServiceError::field(ErrorKind::InvalidField, "eventId", "eventId is required")
        })?;
        if let Some(t) = f.string("timestamp", "timestamp")? {
            parse_ts("timestamp", &t)?;
        }
        let version = match f.get("keystatedata") {
            Some(Value::Object(d)) => d
                .get("keyVersion")
                .and_then(Value::as_str)
                .map(String::from),
            _ => None,
        };
        Ok::<_, ServiceError>((event, version))
    })();
    let (event, version) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "kms.secrets.eventack", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    st.svc
        .acknowledge_event(&ctx, &event, version.as_deref())
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        "application/json",
        None,
        &ctx.correlation_id,
    ))
}

// ---------------------------------------------------------------- identity

fn iam_error(status: StatusCode, code: &str, msg: &str) -> Response {
    let body = json!({"errorCode": code, "errorMessage": msg, "context": {"requestId": uuid::Uuid::new_v4().to_string()}});
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `POST /identity/token`: the IAM API-key grant, so IBM SDK authenticators work as-is.
async fn identity_token(
    State(st): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    h: HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024).await else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "BXNIM0109E",
            "Request body too large",
        );
    };
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("urn:ibm:params:oauth:grant-type:apikey")
    {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "BXNIM0109E",
            "Property 'grant_type' must be 'urn:ibm:params:oauth:grant-type:apikey'",
        );
    }
    let Some(apikey) = form.get("apikey") else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "BXNIM0109E",
            "Property 'apikey' is missing",
        );
    };
    match st
        .svc
        .issue_token(apikey, peer.map(|p| p.0 .0.ip()), &correlation_id(&h))
        .await
    {
        Ok(t) => {
            let body = json!({
                "access_token": t.access_token,
                "refresh_token": "not_supported",
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "expiration": t.expiration,
                "scope": "ibm openid",
            });
            let mut r = (StatusCode::OK, body.to_string()).into_response();
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) if e.kind == ErrorKind::Unauthenticated => iam_error(
            StatusCode::BAD_REQUEST,
            "BXNIM0415E",
            "Provided API key could not be found",
        ),
        Err(e) => {
            let (status, _) = error_map::status_and_code(e.kind);
            iam_error(status, "BXNIM0001E", &e.message)
        }
    }
}

// ---------------------------------------------------------------- administration

async fn admin(
    st: &AppState,
    h: &HeaderMap,
    action: &'static str,
    what: &'static str,
) -> Result<AdminCtx, ApiError> {
    st.svc
        .authenticate_admin(header(h, "authorization"), correlation_id(h), action)
        .await
        .map_err(|e| ApiError::new(e, what))
}

fn instance_json(i: &strongroom_keystore::InstanceRecord) -> Value {
    json!({"id": i.id.to_string(), "name": i.name, "creationDate": ts(i.created_at)})
}

fn parse_instance_id(s: &str, what: &'static str) -> Result<InstanceId, ApiError> {
    s.parse().map_err(|_| {
        ApiError::new(
            ServiceError::new(ErrorKind::InstanceNotFound, "instance does not exist"),
            what,
        )
    })
}

async fn admin_create_instance(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    const WHAT: &str = "Instance could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = admin(&st, &h, "admin.instances.create", WHAT).await?;
    let name = parse_object(&body)
        .and_then(|o| {
            o.ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::NoBody,
                    "Missing body in request: {\"name\": ...} is required",
                )
            })
        })
        .and_then(|o| Fields::new(o, &["name", "units", "recovery_units", "dev_master_key"]))
        .and_then(|f| {
            let name = f.string("name", "name")?.ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "name",
                    "The field 'name' is required",
                )
            })?;
            let count = |field: &'static str, default: i64| -> Result<u8, ServiceError> {
                let n = f.int(field, field)?.unwrap_or(default);
                u8::try_from(n).map_err(|_| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        field,
                        "must be a small non-negative number",
                    )
                })
            };
            let layout = UnitLayout {
                operational: count("units", 1)?,
                recovery: count("recovery_units", 0)?,
                dev_master_key: f.bool("dev_master_key", "dev_master_key")?.unwrap_or(false),
            };
            Ok((name, layout))
        })
        .map_err(|e| ApiError::new(e, WHAT))?;
    let (name, layout) = name;
    let rec = st
        .svc
        .create_instance(&ctx, &name, layout)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::CREATED,
        "application/json",
        Some(instance_json(&rec)),
        &correlation_id(&h),
    ))
}

/// `POST /admin/v1/instances/{id}/units` `{"kind": "operational"|"recovery"}`: a new unit
/// of the instance on this node, in imprint mode.
async fn admin_add_unit(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Crypto unit could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = admin(&st, &h, "admin.units.create", WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let kind = parse_object(&body)
        .and_then(|o| Fields::new(o.unwrap_or_default(), &["kind"]))
        .and_then(|f| f.string("kind", "kind"))
        .and_then(|k| {
            let k = k.unwrap_or_else(|| "operational".into());
            strongroom_service::parse_unit_kind(&k).ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "kind",
                    "kind must be 'operational' or 'recovery'",
                )
            })
        })
        .map_err(|e| ApiError::new(e, WHAT))?;
    let unit = st
        .svc
        .add_unit(&ctx, instance, kind)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::CREATED,
        "application/json",
        Some(json!({"unit": unit.to_string(), "instance": instance.to_string()})),
        &correlation_id(&h),
    ))
}

// ---------------------------------------------------------------- crypto units

/// `GET /api/v2/crypto_units`: the signed status of each unit of the instance on this node.
async fn list_units(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Crypto units could not be listed";
    let ctx = auth(&st, &h, "crypto_units.list", WHAT).await?;
    let list = st
        .svc
        .list_units(&ctx)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!({"units": list})),
        &correlation_id(&h),
    ))
}

fn parse_unit_id(s: &str, what: &'static str) -> Result<UnitId, ApiError> {
    s.parse().map_err(|_| {
        ApiError::new(
            ServiceError::new(ErrorKind::UnitNotFound, "crypto unit ids are UUIDs"),
            what,
        )
    })
}

/// `GET /api/v2/crypto_units/{unit}`: one unit's signed status.
async fn get_unit(State(st): State<AppState>, Path(unit): Path<String>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Crypto unit could not be read";
    let ctx = auth(&st, &h, "crypto_units.read", WHAT).await?;
    let unit = parse_unit_id(&unit, WHAT)?;
    let r = st
        .svc
        .query_unit(&ctx, unit)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!(r)),
        &correlation_id(&h),
    ))
}

/// `POST /api/v2/crypto_units/{unit}/commands`: a signed administrative command.
async fn unit_command(
    State(st): State<AppState>,
    Path(unit): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Crypto unit command was refused";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = auth(&st, &h, "crypto_units.command", WHAT).await?;
    let unit = parse_unit_id(&unit, WHAT)?;
    let cmd: SignedCommand = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            let err = ServiceError::new(
                ErrorKind::UnitCommandMalformed,
                format!("the body is not a signed command ({{\"body\": base64, \"signatures\": [...]}}): {e}"),
            );
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "crypto_units.command", Some(&unit.to_string()), err)
                    .await,
                WHAT,
            ));
        }
    };
    let r = st
        .svc
        .unit_command(&ctx, unit, &cmd)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!(r)),
        &correlation_id(&h),
    ))
}

/// `POST /api/v2/crypto_units/reencrypt?batch=N`: re-encrypts up to N key blobs of the
/// instance under the new master key (rotation in progress); answers the progress.
async fn reencrypt(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key storage could not be re-encrypted";
    let ctx = auth(&st, &h, "crypto_units.reencrypt", WHAT).await?;
    let batch = match q
        .get("batch")
        .map(|s| parse_u32_param("batch", s, 1, 5000))
        .transpose()
    {
        Ok(b) => b.unwrap_or(1000),
        Err(e) => {
            return Err(ApiError::new(
                st.svc
                    .record_rejected(&ctx, "crypto_units.reencrypt", None, e)
                    .await,
                WHAT,
            ))
        }
    };
    let r = st
        .svc
        .reencrypt(&ctx, batch)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!(r)),
        &correlation_id(&h),
    ))
}

async fn admin_list_instances(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Instances could not be listed";
    let ctx = admin(&st, &h, "admin.instances.list", WHAT).await?;
    let list = st
        .svc
        .list_instances(&ctx)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let body = json!({"instances": list.iter().map(instance_json).collect::<Vec<_>>()});
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

async fn admin_delete_instance(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Instance could not be deleted";
    let ctx = admin(&st, &h, "admin.instances.delete", WHAT).await?;
    let id = parse_instance_id(&id, WHAT)?;
    st.svc
        .delete_instance(&ctx, id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        "application/json",
        None,
        &correlation_id(&h),
    ))
}

fn api_key_json(r: &strongroom_keystore::ApiKeyRecord) -> Value {
    json!({"id": r.id, "name": r.name, "instance": r.instance.to_string(), "roles": r.roles.names(), "creationDate": ts(r.created_at)})
}

/// `GET /admin/v1/instances/{id}/usage[?month=YYYY-MM]`: API calls in a calendar month (UTC).
async fn admin_instance_usage(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Usage could not be retrieved";
    let ctx = admin(&st, &h, "admin.instances.usage", WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let (from, to, month) = month_bounds(q.get("month").map(String::as_str), st.svc.now())
        .map_err(|e| ApiError::new(e, WHAT))?;
    let usage = st
        .svc
        .instance_usage(&ctx, instance, from, to, &month)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let units: Vec<Value> = usage
        .units
        .iter()
        .map(|(u, n)| json!({"unit": u.to_string(), "api_calls": n}))
        .collect();
    let body = json!({"instance": instance.to_string(), "month": month, "from": ts(from), "to": ts(to), "api_calls": usage.api_calls, "crypto_units": units});
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

async fn admin_create_api_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "API key could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = admin(&st, &h, "admin.apikeys.create", WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let (name, roles) = (|| {
        let o = parse_object(&body)?.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::NoBody,
                "Missing body in request: {\"name\", \"roles\"} is required",
            )
        })?;
        let f = Fields::new(o, &["name", "roles"])?;
        let name = f
            .string("name", "name")?
            .unwrap_or_else(|| "api key".into());
        let roles = f
            .strings("roles", "roles")?
            .iter()
            .map(|r| {
                r.parse::<Role>()
                    .map_err(|e| ServiceError::field(ErrorKind::InvalidField, "roles", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ServiceError>((name, Roles::of(&roles)))
    })()
    .map_err(|e| ApiError::new(e, WHAT))?;
    let created = st
        .svc
        .create_api_key(&ctx, instance, &name, roles)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let mut body = api_key_json(&created.record);
    body["apikey"] = json!(created.api_key);
    Ok(respond(
        StatusCode::CREATED,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

async fn admin_list_api_keys(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "API keys could not be listed";
    let ctx = admin(&st, &h, "admin.apikeys.list", WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let list = st
        .svc
        .list_api_keys(&ctx, instance)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let body = json!({"api_keys": list.iter().map(api_key_json).collect::<Vec<_>>()});
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

async fn admin_delete_api_key(
    State(st): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "API key could not be deleted";
    let ctx = admin(&st, &h, "admin.apikeys.delete", WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    st.svc
        .delete_api_key(&ctx, instance, &key_id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        "application/json",
        None,
        &correlation_id(&h),
    ))
}

/// `DELETE /admin/v1/instances/{id}/allowed_ip`: turns the instance's allowedIP policy off,
/// for an instance whose Managers locked themselves out. Answers whether a policy was on.
async fn admin_clear_allowed_ip(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "allowedIP policy could not be cleared";
    let ctx = admin(&st, &h, "admin.instances.allowedip.clear", WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let was_enabled = st
        .svc
        .admin_clear_allowed_ip(&ctx, instance)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!({"instance": id, "allowedIP_was_enabled": was_enabled})),
        &correlation_id(&h),
    ))
}

/// `POST /admin/v1/test/clock {"advance_seconds": n}`: only when the server runs with
/// `--dev --test-clock`; moves the service clock forward so timing rules can be tested.
async fn test_clock(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    const WHAT: &str = "Clock could not be advanced";
    let Some(clock) = st.opts.test_clock.clone() else {
        return Ok(not_found().await);
    };
    let body = body_bytes(body, 1024, WHAT).await?;
    admin(&st, &h, "admin.testclock.advance", WHAT).await?;
    let secs = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("advance_seconds").and_then(Value::as_i64))
        .ok_or_else(|| {
            ApiError::new(
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "advance_seconds",
                    "advance_seconds must be an integer",
                ),
                WHAT,
            )
        })?;
    clock.advance(secs);
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!({"now": ts(st.svc.now())})),
        &correlation_id(&h),
    ))
}

// ---------------------------------------------------------------- probes and fallbacks

/// `GET /metrics`: Prometheus text format (aggregate counts only; no tenant identifiers).
async fn metrics_text(State(st): State<AppState>) -> Response {
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

async fn health() -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn ready(State(st): State<AppState>) -> Response {
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

async fn not_found() -> Response {
    ApiError::new(
        ServiceError::new(ErrorKind::KeyNotFound, "no such endpoint"),
        "Resource could not be found",
    )
    .into_response()
}

async fn method_not_allowed(method: Method) -> Response {
    error_map::RequestRefusal::MethodNotAllowed(method).into_response()
}

/// Path parameters, refused in the Key Protect envelope when they do not decode (`%ff`)
/// instead of axum's plain-text rejection.
struct Path<T>(T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = error_map::RequestRefusal;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(error_map::RequestRefusal::BadPath(e.body_text())),
        }
    }
}
