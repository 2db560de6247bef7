//! A small client for Strongroom's REST API. It speaks JSON values (the wire shapes are
//! documented in the Key Protect API notes), authenticates with a bearer token or an API
//! key (exchanged at `/identity/token`), and tries each configured endpoint in turn when
//! one cannot be reached.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

#[cfg(feature = "grep11")]
pub mod coalesce;
#[cfg(feature = "grep11")]
pub mod grep11;
mod iam;
mod trust;
pub use iam::{iam_token, IamToken};
pub use trust::{certificate_problem, ClientIdentity, Trust, TrustError};

pub use reqwest::Method;
use serde_json::Value;

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error envelope.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Reason code (`KEY_NOT_FOUND_ERR`).
        code: String,
        /// Reason message.
        message: String,
    },
    /// No endpoint could be reached.
    #[error("cannot reach {endpoints}: {source}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A server's TLS certificate was refused.
    #[error("{endpoint}: {problem}; to trust a node whose certificate comes from a private CA, pass --ca-file <CA PEM> (or set STRONGROOM_CA_FILE)")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// The certificate problem, in words.
        problem: String,
    },
    /// The trust configuration (CA file) is unusable.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Bad configuration or an unexpected answer.
    #[error("{0}")]
    Other(String),
}

/// How requests authenticate.
#[derive(Clone)]
pub enum Auth {
    /// A bearer token.
    Token(String),
    /// An API key, exchanged for a token on first use.
    ApiKey(String),
    /// The node administrator token.
    Admin(String),
    /// None.
    None,
}

/// A response: status, headers of interest and JSON body (Null when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The `Key-Total` header, when present.
    pub key_total: Option<u64>,
    /// Body.
    pub body: Value,
}

/// The client.
#[derive(Clone)]
pub struct Client {
    endpoints: Vec<String>,
    http: reqwest::Client,
    auth: Auth,
    instance: Option<String>,
    /// Where API keys are exchanged: IBM's IAM (`https://iam.cloud.ibm.com`), or, when
    /// `None`, the server itself (`/identity/token` on each endpoint in turn).
    iam_url: Option<String>,
    /// The token an API key was exchanged for, and its lifetime.
    token: std::sync::Arc<std::sync::Mutex<Option<(IamToken, Duration)>>>,
}

impl Client {
    /// A client for one or more endpoints (comma-separated URLs are split), verifying
    /// servers as `trust` says.
    pub fn new(
        endpoints: &str,
        auth: Auth,
        instance: Option<String>,
        trust: &Trust,
    ) -> Result<Self, ClientError> {
        let endpoints: Vec<String> = endpoints
            .split(',')
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(ClientError::Other(
                "no server URL given (use --url or STRONGROOM_URL)".into(),
            ));
        }
        let builder = match trust.rustls_config()? {
            Some(config) => reqwest::Client::builder().use_preconfigured_tls(config),
            None => reqwest::Client::builder().danger_accept_invalid_certs(true),
        };
        let http = builder
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Other(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            endpoints,
            http,
            auth,
            instance,
            iam_url: None,
            token: Default::default(),
        })
    }

    /// Exchanges the API key at `iam_url` (IBM's IAM, for example) instead of the server.
    pub fn with_iam_url(mut self, iam_url: Option<String>) -> Self {
        self.iam_url = iam_url.map(|u| u.trim_end_matches('/').to_string());
        self
    }

    /// The bearer token this client sends (an API key's token, exchanged or refreshed as
    /// needed), for calls to the same service over another protocol (GREP11).
    pub async fn bearer_token(&self) -> Result<Option<String>, ClientError> {
        self.bearer(false).await
    }

    /// The instance the calls name (`Bluemix-Instance`).
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// The bearer token to send: an API key's token is exchanged on first use and again
    /// shortly before it expires (or when `stale`, after the server refused it).
    async fn bearer(&self, stale: bool) -> Result<Option<String>, ClientError> {
        let key = match &self.auth {
            Auth::Token(t) | Auth::Admin(t) => return Ok(Some(t.clone())),
            Auth::None => return Ok(None),
            Auth::ApiKey(k) => k,
        };
        if !stale {
            if let Some((t, life)) = self.token.lock().ok().and_then(|t| t.clone()) {
                if !t.needs_refresh(life) {
                    return Ok(Some(t.access_token));
                }
            }
        }
        let iam = self.iam_url.iter().chain(&self.endpoints);
        let mut last = None;
        for endpoint in iam.take(if self.iam_url.is_some() {
            1
        } else {
            usize::MAX
        }) {
            match iam_token(&self.http, endpoint, key).await {
                Ok((t, life)) => {
                    let access = t.access_token.clone();
                    if let Ok(mut slot) = self.token.lock() {
                        *slot = Some((t, life));
                    }
                    return Ok(Some(access));
                }
                // An endpoint that cannot be reached: the next one may exchange the key.
                Err(e @ ClientError::Unreachable { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Other("no endpoint".into())))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
        bearer: Option<&str>,
        extra: &[(&str, String)],
    ) -> Result<Reply, ClientError> {
        let mut last = None;
        for ep in &self.endpoints {
            let mut req = self.http.request(method.clone(), format!("{ep}{path}"));
            if let Some(t) = bearer {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            if let Some(i) = &self.instance {
                req = req.header("bluemix-instance", i);
            }
            req = req.header("correlation-id", uuid::Uuid::new_v4().to_string());
            for (k, v) in extra {
                req = req.header(*k, v);
            }
            if let Some((ct, b)) = &body {
                req = req.header("content-type", *ct).body(b.clone());
            }
            match req.send().await {
                Ok(resp) => return decode(resp).await,
                Err(e) if certificate_problem(&e).is_some() => {
                    return Err(ClientError::Tls {
                        endpoint: ep.clone(),
                        problem: certificate_problem(&e).unwrap_or_default(),
                    })
                }
                // Connection failures mean the request never reached that node: try the next.
                Err(e) if e.is_connect() => last = Some(e),
                Err(e) => {
                    return Err(ClientError::Unreachable {
                        endpoints: ep.clone(),
                        source: e,
                    })
                }
            }
        }
        match last {
            Some(source) => Err(ClientError::Unreachable {
                endpoints: self.endpoints.join(", "),
                source,
            }),
            None => Err(ClientError::Other("no endpoint".into())),
        }
    }

    /// `GET path`, authenticated.
    pub async fn get(&self, path: &str) -> Result<Reply, ClientError> {
        self.request(Method::GET, path, None, &[]).await
    }

    /// `DELETE path`, authenticated.
    pub async fn delete(&self, path: &str) -> Result<Reply, ClientError> {
        self.request(Method::DELETE, path, None, &[]).await
    }

    /// `POST path` with an optional JSON body, authenticated.
    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Reply, ClientError> {
        self.request(Method::POST, path, body, &[]).await
    }

    /// `PUT path` with an optional JSON body, authenticated.
    pub async fn put(&self, path: &str, body: Option<Value>) -> Result<Reply, ClientError> {
        self.request(Method::PUT, path, body, &[]).await
    }

    /// Sends a request with authentication; `body` is JSON.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, String)],
    ) -> Result<Reply, ClientError> {
        let body = body.map(|b| ("application/json", b.to_string()));
        let bearer = self.bearer(false).await?;
        match self
            .send(method.clone(), path, body.clone(), bearer.as_deref(), extra)
            .await
        {
            // A token that expired or was revoked early: exchange the API key again, once.
            Err(ClientError::Api { status: 401, .. }) if matches!(self.auth, Auth::ApiKey(_)) => {
                let bearer = self.bearer(true).await?;
                self.send(method, path, body, bearer.as_deref(), extra)
                    .await
            }
            r => r,
        }
    }
}

/// Percent-encodes `s` for a path segment or a form value (RFC 3986's unreserved
/// characters stay as they are).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn serde_urlencoded_form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn decode(resp: reqwest::Response) -> Result<Reply, ClientError> {
    let status = resp.status();
    let key_total = resp
        .headers()
        .get("key-total")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = resp.text().await.unwrap_or_default();
    let body: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if status.is_success() {
        return Ok(Reply {
            status: status.as_u16(),
            key_total,
            body,
        });
    }
    let reason = &body["resources"][0]["reasons"][0];
    let (code, message) = match (reason["code"].as_str(), reason["message"].as_str()) {
        (Some(c), Some(m)) => (c.to_string(), m.to_string()),
        _ => (
            body["errorCode"]
                .as_str()
                .unwrap_or(status.canonical_reason().unwrap_or("ERROR"))
                .to_string(),
            body["errorMessage"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| body.to_string()),
        ),
    };
    Err(ClientError::Api {
        status: status.as_u16(),
        code,
        message,
    })
}
