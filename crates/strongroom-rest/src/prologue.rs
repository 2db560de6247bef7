//! The prologue every handler shares (headers, body limits, content type, authentication,
//! the response), the Key Protect path extractor, and the fallbacks for unknown paths and
//! methods.

use crate::*;

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn correlation_id(h: &HeaderMap) -> String {
    ["correlation-id", "x-correlation-id", "x-request-id"]
        .iter()
        .find_map(|n| header(h, n))
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

pub(crate) fn respond(
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

pub(crate) async fn body_bytes(
    body: Body,
    max: usize,
    what: &'static str,
) -> Result<Bytes, ApiError> {
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
pub(crate) fn check_content_type(
    h: &HeaderMap,
    body: &[u8],
    what: &'static str,
) -> Result<(), ApiError> {
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

/// One call of the key API, once its caller is authenticated: the audit action it is
/// recorded under and the words its errors start with ("Key could not be created"), said
/// once per handler. A refusal found while reading the request goes through
/// [`Call::accept`], so that it is audited as the call's refusal, like the service's own.
pub(crate) struct Call {
    pub(crate) ctx: Ctx,
    action: Action,
    what: &'static str,
}

impl Call {
    /// Authenticates the caller (`Authorization`, `Bluemix-Instance`, allowedIP already
    /// checked by the front end); a refusal is audited under `action`.
    pub(crate) async fn begin(
        st: &AppState,
        h: &HeaderMap,
        action: Action,
        what: &'static str,
    ) -> Result<Call, ApiError> {
        let ctx = auth(st, h, action, what).await?;
        Ok(Call { ctx, action, what })
    }

    /// A call that carries a JSON body: reads the body (refused above the configured size),
    /// authenticates the caller, checks the content type and parses the body with `parse`. A
    /// body that is refused is audited as the call's refusal (for key `key`).
    pub(crate) async fn with_body<T>(
        st: &AppState,
        h: &HeaderMap,
        body: Body,
        action: Action,
        what: &'static str,
        key: Option<&str>,
        parse: impl FnOnce(&[u8]) -> Result<T, ServiceError>,
    ) -> Result<(Call, T), ApiError> {
        let body = body_bytes(body, st.opts.max_body, what).await?;
        let call = Call::begin(st, h, action, what).await?;
        let parsed = check_content_type(h, &body, what)
            .map_err(|e| e.err)
            .and_then(|()| parse(&body));
        let v = call.accept(st, parsed, key).await?;
        Ok((call, v))
    }

    /// The parsed request, or its refusal recorded in the audit log (for key `key`).
    pub(crate) async fn accept<T>(
        &self,
        st: &AppState,
        parsed: Result<T, ServiceError>,
        key: Option<&str>,
    ) -> Result<T, ApiError> {
        match parsed {
            Ok(v) => Ok(v),
            Err(e) => Err(self.refuse(st, e, key).await),
        }
    }

    /// A refusal of the request, recorded in the audit log (for key `key`).
    pub(crate) async fn refuse(
        &self,
        st: &AppState,
        e: ServiceError,
        key: Option<&str>,
    ) -> ApiError {
        ApiError::new(
            st.svc.record_rejected(&self.ctx, self.action, key, e).await,
            self.what,
        )
    }

    /// The call's answer: `status`, `content_type` and `body`, with its correlation id.
    pub(crate) fn respond(
        &self,
        status: StatusCode,
        content_type: &'static str,
        body: Option<Value>,
    ) -> Response {
        respond(status, content_type, body, &self.ctx.correlation_id)
    }

    /// A one-key answer (a `key+json` collection of one). `payload` is a standard key's
    /// material (key reads); `now`, when given, adds a deleted key's deletion flags.
    pub(crate) fn key(
        &self,
        status: StatusCode,
        rec: &strongroom_service::KeyMetadata,
        payload: Option<&[u8]>,
        now: Option<strongroom_model::UnixMillis>,
    ) -> Response {
        let mut j = key_json(rec, payload);
        if let Some(now) = now {
            add_deletion_flags(&mut j, rec, now);
        }
        self.respond(status, KEY_JSON, Some(collection(KEY_JSON, vec![j])))
    }

    /// A collection of one item of `media_type`.
    pub(crate) fn one(
        &self,
        status: StatusCode,
        media_type: &'static str,
        item: Value,
    ) -> Response {
        self.respond(status, media_type, Some(collection(media_type, vec![item])))
    }

    /// Awaits the service's answer; a refusal becomes the call's error answer.
    pub(crate) async fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ApiError> {
        f.await.map_err(|e| ApiError::new(e, self.what))
    }

    /// The optional `force` query parameter of a delete (false when absent); a bad value is
    /// the call's refusal (for key `key`).
    pub(crate) async fn force(
        &self,
        st: &AppState,
        q: &HashMap<String, String>,
        key: Option<&str>,
    ) -> Result<bool, ApiError> {
        let parsed = q
            .get("force")
            .map(|s| parse_bool_param("force", s))
            .transpose();
        Ok(self.accept(st, parsed, key).await?.unwrap_or(false))
    }
}

async fn auth(
    st: &AppState,
    h: &HeaderMap,
    action: Action,
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

pub(crate) fn prefer_minimal(h: &HeaderMap) -> bool {
    header(h, "prefer").is_some_and(|p| p.to_ascii_lowercase().contains("return=minimal"))
}

pub(crate) fn aad_of(f: &Fields) -> Result<Vec<String>, ServiceError> {
    f.strings("aad", "aad")
}

pub(crate) async fn not_found() -> Response {
    ApiError::new(
        ServiceError::new(ErrorKind::KeyNotFound, "no such endpoint"),
        "Resource could not be found",
    )
    .into_response()
}

pub(crate) async fn method_not_allowed(method: Method) -> Response {
    error_map::RequestRefusal::MethodNotAllowed(method).into_response()
}

/// Path parameters, refused in the Key Protect envelope when they do not decode (`%ff`)
/// instead of axum's plain-text rejection.
pub(crate) struct Path<T>(pub(crate) T);

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
