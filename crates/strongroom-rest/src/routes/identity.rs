//! The IAM API-key grant (`/identity/token`), answered in IAM's own error format.

use crate::*;

pub(crate) fn iam_error(status: StatusCode, code: &str, msg: &str) -> Response {
    let body = iam_error_json(code, msg);
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `POST /identity/token`: the IAM API-key grant, so IBM SDK authenticators work as-is.
pub(crate) async fn identity_token(
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
            let body = iam_token_json(&t);
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
