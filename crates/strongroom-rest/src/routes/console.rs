//! The web console (`/ui/`): static assets compiled into the binary. The console is a
//! client of the REST API like any other: it holds no credentials of its own, and every
//! action it offers goes through the same routes, roles and policies as `curl` would.

use crate::*;

/// One embedded file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../../console/index.html"),
};

const ASSETS: [Asset; 3] = [
    INDEX,
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../console/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../console/app.css"),
    },
];

/// The console's content security policy: scripts and styles from this origin only (no
/// inline code), requests to this origin only, never framed.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

fn serve(asset: &Asset) -> Response {
    let mut r = (StatusCode::OK, asset.body).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        ("content-type", asset.content_type),
        ("content-security-policy", CONSOLE_CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ),
    ] {
        h.insert(
            http::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    r
}

/// `GET /ui`: the console lives under `/ui/`, so its relative asset paths resolve.
pub(crate) async fn console_redirect() -> Response {
    let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
    r.headers_mut()
        .insert(http::header::LOCATION, HeaderValue::from_static("/ui/"));
    r
}

/// `GET /ui/`: the console's page.
pub(crate) async fn console_page() -> Response {
    serve(&INDEX)
}

/// `GET /ui/endpoints.json`: the ports of the node's GREP11 and KMIP listeners, for the
/// integration page's connection details and its `grep11client.yaml`.
pub(crate) async fn console_endpoints(State(st): State<AppState>) -> Response {
    let body = endpoints_json(&st.opts.endpoints);
    let mut r = (StatusCode::OK, body.to_string()).into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `GET /ui/{asset}`: a script or style sheet of the console.
pub(crate) async fn console_asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => serve(a),
        None => not_found().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_no_inline_script_or_style() {
        let page = INDEX.body;
        for tag in page.match_indices("<script") {
            let rest = &page[tag.0..];
            let end = rest.find('>').unwrap_or(rest.len());
            assert!(rest[..end].contains("src="), "inline script in index.html");
        }
        assert!(!page.contains("<style"), "inline style in index.html");
        assert!(!page.contains(" style="), "style attribute in index.html");
        assert!(!page.contains("http://") && !page.contains("https://"));
        for a in ASSETS {
            assert!(
                !a.body.contains("https://"),
                "{} loads from another host",
                a.name
            );
        }
    }
}
