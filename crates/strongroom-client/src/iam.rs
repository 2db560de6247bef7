//! The IAM API-key grant: an API key exchanged for a bearer token that expires.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::ClientError;

/// A bearer token and when it stops being accepted.
#[derive(Clone)]
pub struct IamToken {
    /// The token.
    pub access_token: String,
    /// When it expires (by this process's clock).
    pub expires_at: Instant,
}

impl std::fmt::Debug for IamToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl IamToken {
    /// Whether the token should be replaced: it expires within a tenth of its lifetime
    /// or a minute, whichever is shorter.
    pub fn needs_refresh(&self, lifetime: Duration) -> bool {
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        Instant::now() + margin >= self.expires_at
    }
}

#[derive(Deserialize)]
struct Grant {
    access_token: String,
    expires_in: u64,
}

/// Exchanges `apikey` at `<endpoint>/identity/token` (IBM IAM's API-key grant, which
/// Strongroom's REST listener answers). Returns the token and its lifetime.
pub async fn iam_token(
    http: &reqwest::Client,
    endpoint: &str,
    apikey: &str,
) -> Result<(IamToken, Duration), ClientError> {
    let url = format!("{}/identity/token", endpoint.trim_end_matches('/'));
    let form = [
        ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
        ("apikey", apikey),
    ];
    let body = crate::serde_urlencoded_form(&form);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|source| ClientError::Unreachable {
            endpoints: url.clone(),
            source,
        })?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|source| ClientError::Unreachable {
            endpoints: url.clone(),
            source,
        })?;
    if !status.is_success() {
        // IAM's error body names the reason (never the key).
        let body = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
        let field = |k: &str| body.get(k).and_then(|m| m.as_str()).map(String::from);
        return Err(ClientError::Api {
            status: status.as_u16(),
            code: field("errorCode").unwrap_or_else(|| "IAM_TOKEN".into()),
            message: field("errorMessage").unwrap_or_else(|| status.to_string()),
        });
    }
    let grant: Grant = serde_json::from_str(&text)
        .map_err(|e| ClientError::Other(format!("token exchange answered no token: {e}")))?;
    let lifetime = Duration::from_secs(grant.expires_in.max(1));
    Ok((
        IamToken {
            access_token: grant.access_token,
            expires_at: Instant::now() + lifetime,
        },
        lifetime,
    ))
}
