//! Access: API keys exchanged for short-lived signed bearer tokens (JWT, HS256, signed with
//! a node key), roles per instance, and the node administrator token.
//!
//! Token claims: `sub` (principal), `iid` (instance id), `roles` (role names), `iat`, `exp`
//! (seconds), `iss` = "strongroom". The official IBM SDKs decode `exp`/`iat` without
//! checking the signature to schedule refreshes; the server always checks it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strongroom_engine::CryptoProvider;
use strongroom_model::{InstanceId, Role, Roles, UnixMillis};

use crate::error::{ErrorKind, Result, ServiceError};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Subject: API key id, `dev`, or `admin`.
    pub subject: String,
    /// The instance the credentials belong to (`None` for the node administrator).
    pub instance: Option<InstanceId>,
    /// Granted roles.
    pub roles: Roles,
    /// The key rings the roles apply to; `None` for the whole instance. A principal limited
    /// to key rings reaches only the keys of those rings, and no instance-wide action.
    pub key_rings: Option<Vec<String>>,
    /// The API key a token was exchanged for, when its subject does not name it (a service
    /// ID's key): requests with the token stop when that key is deleted.
    pub api_key_id: Option<String>,
}

impl Principal {
    /// A principal with `roles` over the whole of `instance`.
    pub fn instance_wide(subject: impl Into<String>, instance: InstanceId, roles: Roles) -> Self {
        Principal {
            subject: subject.into(),
            instance: Some(instance),
            roles,
            key_rings: None,
            api_key_id: None,
        }
    }
}

/// A request's context: who, which instance, and the correlation id for the audit log.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The authenticated caller.
    pub principal: Principal,
    /// The instance the request names.
    pub instance: InstanceId,
    /// Correlation id (from the request or generated).
    pub correlation_id: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    iid: String,
    roles: Vec<String>,
    /// The key rings the roles are limited to; absent for the whole instance (and in
    /// tokens of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rings: Option<Vec<String>>,
    /// The API key a service ID's token was exchanged for (absent in tokens of earlier
    /// releases, and where `sub` names the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    iat: i64,
    exp: i64,
    iss: String,
}

const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"HS256","typ":"JWT"}
/// The header of a token limited to key rings: `{"alg":"HS256","typ":"JWT","crit":["rings"],
/// "rings":true}`. The limit is a critical extension (RFC 7515 §4.1.11): a node of an earlier
/// release, which knows only [`HEADER_B64`], refuses the token instead of reading it as
/// instance-wide while a cluster is being upgraded.
const RINGS_HEADER_B64: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImNyaXQiOlsicmluZ3MiXSwicmluZ3MiOnRydWV9";

/// Signs and verifies bearer tokens with a node key.
pub struct TokenSigner {
    key: zeroize::Zeroizing<[u8; 32]>,
    /// Tokens whose signature was already checked, with their principal and expiry: a
    /// token is verified once, not on every request. Bounded; cleared when full.
    verified: std::sync::Mutex<std::collections::HashMap<String, (Principal, i64)>>,
}

const VERIFIED_CACHE_MAX: usize = 4096;

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(HS256, <redacted>)")
    }
}

impl TokenSigner {
    /// A signer with a 32-byte key.
    pub fn new(key: [u8; 32]) -> Self {
        TokenSigner {
            key: zeroize::Zeroizing::new(key),
            verified: Default::default(),
        }
    }

    /// Issues a token for `principal` valid for `ttl_secs` from `now`.
    pub fn issue(
        &self,
        p: &dyn CryptoProvider,
        principal: &Principal,
        now: UnixMillis,
        ttl_secs: i64,
    ) -> Result<(String, i64)> {
        let instance = principal.instance.ok_or_else(|| {
            ServiceError::new(ErrorKind::Internal, "tokens are issued for an instance")
        })?;
        let iat = now.0.div_euclid(1000);
        let exp = iat + ttl_secs;
        let claims = Claims {
            sub: principal.subject.clone(),
            iid: instance.to_string(),
            roles: principal
                .roles
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
            rings: principal.key_rings.clone(),
            kid: principal.api_key_id.clone(),
            iat,
            exp,
            iss: "strongroom".into(),
        };
        let payload = serde_json::to_vec(&claims)
            .map_err(|_| ServiceError::new(ErrorKind::Internal, "token encoding"))?;
        let header = if principal.key_rings.is_some() {
            RINGS_HEADER_B64
        } else {
            HEADER_B64
        };
        let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let sig = p.hmac_sha256(self.key.as_ref(), &[signing_input.as_bytes()]);
        Ok((
            format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)),
            exp,
        ))
    }

    /// Verifies a token and returns its principal.
    pub fn verify(
        &self,
        p: &dyn CryptoProvider,
        token: &str,
        now: UnixMillis,
    ) -> Result<Principal> {
        let now_secs = now.0.div_euclid(1000);
        if let Some((principal, exp)) = self
            .verified
            .lock()
            .ok()
            .and_then(|c| c.get(token).cloned())
        {
            if exp > now_secs {
                return Ok(principal);
            }
        }
        let (principal, exp) = self.verify_uncached(p, token, now)?;
        if let Ok(mut c) = self.verified.lock() {
            if c.len() >= VERIFIED_CACHE_MAX {
                c.clear();
            }
            c.insert(token.to_string(), (principal.clone(), exp));
        }
        Ok(principal)
    }

    fn verify_uncached(
        &self,
        p: &dyn CryptoProvider,
        token: &str,
        now: UnixMillis,
    ) -> Result<(Principal, i64)> {
        let malformed = || {
            ServiceError::new(
                ErrorKind::MalformedToken,
                "the bearer token cannot be parsed",
            )
        };
        let mut parts = token.split('.');
        let (Some(h), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| malformed())?;
        let signing_input = token
            .get(..h.len() + 1 + body.len())
            .ok_or_else(malformed)?;
        let expected = p.hmac_sha256(self.key.as_ref(), &[signing_input.as_bytes()]);
        if (h != HEADER_B64 && h != RINGS_HEADER_B64) || !p.ct_eq(&expected, &sig) {
            return Err(ServiceError::new(
                ErrorKind::Unauthenticated,
                "the bearer token is not valid",
            ));
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(malformed)?;
        // The header and the claims agree on whether the token is limited to key rings.
        if (h == RINGS_HEADER_B64) != claims.rings.is_some() {
            return Err(malformed());
        }
        if claims.exp <= now.0.div_euclid(1000) {
            return Err(ServiceError::new(
                ErrorKind::Unauthenticated,
                "the bearer token has expired",
            ));
        }
        let roles = claims
            .roles
            .iter()
            .filter_map(|r| r.parse::<Role>().ok())
            .collect::<Vec<_>>();
        let principal = Principal {
            subject: claims.sub,
            instance: Some(claims.iid.parse().map_err(|_| malformed())?),
            roles: Roles::of(&roles),
            key_rings: claims.rings,
            api_key_id: claims.kid,
        };
        Ok((principal, claims.exp))
    }
}

/// A parsed API key string: `sr1.<id>.<secret>`.
pub(crate) struct ApiKeyParts<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

pub(crate) fn parse_api_key(s: &str) -> Option<ApiKeyParts<'_>> {
    let mut it = s.trim().splitn(3, '.');
    match (it.next(), it.next(), it.next()) {
        (Some("sr1"), Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Some(ApiKeyParts { id, secret })
        }
        _ => None,
    }
}

/// Creates the secret part of an API key and its stored hash.
pub(crate) fn new_api_key_secret(p: &dyn CryptoProvider) -> Result<(String, String, [u8; 32])> {
    let mut id = [0u8; 8];
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    p.fill_random(&mut id)
        .map_err(|_| ServiceError::new(ErrorKind::Internal, "random generator failed"))?;
    p.fill_random(secret.as_mut())
        .map_err(|_| ServiceError::new(ErrorKind::Internal, "random generator failed"))?;
    let id_hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret_b64 = URL_SAFE_NO_PAD.encode(secret.as_ref());
    let hash = p.sha256(&[secret_b64.as_bytes()]);
    Ok((id_hex, secret_b64, hash))
}

/// Whether `supplied` matches the node administrator token (constant time).
pub(crate) fn admin_token_matches(p: &dyn CryptoProvider, expected: &[u8], supplied: &str) -> bool {
    let a = p.sha256(&[expected]);
    let b = p.sha256(&[supplied.as_bytes()]);
    p.ct_eq(&a, &b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use strongroom_crypto_awslc::AwsLcProvider;

    proptest! {
        /// Any principal survives a token: issued, verified, it is the same principal; any
        /// byte changed and the token is refused.
        #[test]
        fn tokens_round_trip_and_any_change_is_refused(
            subject in "[ -~]{1,40}",
            roles in 1_u8..32,
            rings in proptest::option::of(proptest::collection::vec("[a-z0-9-]{2,20}", 0..4)),
            ttl in 1_i64..86_400,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let signer = TokenSigner::new([7; 32]);
            let now = UnixMillis(1_800_000_000_000);
            let principal = Principal {
                subject,
                instance: Some(InstanceId::random()),
                roles: Roles(roles),
                key_rings: rings,
                api_key_id: None,
            };
            let (token, exp) = signer.issue(&AwsLcProvider, &principal, now, ttl).unwrap();
            prop_assert_eq!(exp, now.0 / 1000 + ttl);
            let back = signer.verify(&AwsLcProvider, &token, now).unwrap();
            prop_assert_eq!(&back.subject, &principal.subject);
            prop_assert_eq!(back.instance, principal.instance);
            prop_assert_eq!(back.roles, principal.roles);
            prop_assert_eq!(&back.key_rings, &principal.key_rings);
            let mut changed = token.clone().into_bytes();
            let i = at.index(changed.len());
            if changed[i] != byte {
                changed[i] = byte;
                let changed = String::from_utf8_lossy(&changed).into_owned();
                prop_assert!(signer.verify(&AwsLcProvider, &changed, now).is_err());
            }
        }
    }

    proptest! {
        /// An API key (v1) as handed out parses back to its id and secret, and the secret
        /// hashes to what the keystore holds; another prefix, a missing part or a changed
        /// character of the secret does not lead to the same key.
        #[test]
        fn api_keys_round_trip_and_a_changed_secret_does_not_match(
            at in any::<prop::sample::Index>(),
            to in "[A-Za-z0-9_-]",
            prefix in "[a-z0-9]{0,4}",
        ) {
            let (id, secret, hash) = new_api_key_secret(&AwsLcProvider).unwrap();
            prop_assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            prop_assert_eq!(secret.len(), 43);
            let key = format!("sr1.{id}.{secret}");
            let padded = format!(" {key}\n");
            let parts = parse_api_key(&padded).unwrap();
            prop_assert_eq!((parts.id, parts.secret), (id.as_str(), secret.as_str()));
            prop_assert_eq!(AwsLcProvider.sha256(&[parts.secret.as_bytes()]), hash);
            let other_prefix = format!("{prefix}.{id}.{secret}");
            if prefix != "sr1" {
                prop_assert!(parse_api_key(&other_prefix).is_none());
            }
            let no_secret = format!("sr1.{id}");
            let no_id = format!("sr1..{secret}");
            prop_assert!(parse_api_key(&no_secret).is_none());
            prop_assert!(parse_api_key(&no_id).is_none());
            let i = at.index(secret.len());
            let mut other = secret.clone();
            other.replace_range(i..=i, &to);
            let changed = format!("sr1.{id}.{other}");
            let parts = parse_api_key(&changed).unwrap();
            let same = AwsLcProvider.sha256(&[parts.secret.as_bytes()]) == hash;
            prop_assert_eq!(same, other == secret);
        }
    }

    fn signed(signer: &TokenSigner, header: &str, claims: serde_json::Value) -> String {
        let input = format!(
            "{header}.{}",
            URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
        );
        let sig = AwsLcProvider.hmac_sha256(signer.key.as_ref(), &[input.as_bytes()]);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn ring_limits_are_a_critical_header_that_earlier_releases_refuse() {
        let signer = TokenSigner::new([3; 32]);
        let p = &AwsLcProvider;
        let now = UnixMillis(1_800_000_000_000);
        let i = InstanceId::random();
        let limited = Principal {
            key_rings: Some(vec!["payments".into()]),
            ..Principal::instance_wide("apikey:1", i, Roles::of(&[Role::Writer]))
        };
        let (token, _) = signer.issue(p, &limited, now, 60).unwrap();
        // Earlier releases accept only the plain header: this token is not theirs to read.
        assert!(!token.starts_with(&format!("{HEADER_B64}.")));
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["crit"], serde_json::json!(["rings"]));
        assert_eq!(signer.verify(p, &token, now).unwrap(), limited);
        let whole = Principal::instance_wide("apikey:2", i, Roles::of(&[Role::Writer]));
        let (plain, _) = signer.issue(p, &whole, now, 60).unwrap();
        assert!(plain.starts_with(&format!("{HEADER_B64}.")));
        assert_eq!(signer.verify(p, &plain, now).unwrap(), whole);
        // A header and claims that disagree are refused, however well signed.
        let claims = |rings: Option<Vec<&str>>| {
            let mut c = serde_json::json!({"sub": "s", "iid": i.to_string(), "roles": ["Writer"],
                "iat": 1_800_000_000, "exp": 1_800_000_060, "iss": "strongroom"});
            if let Some(r) = rings {
                c["rings"] = serde_json::json!(r);
            }
            c
        };
        for forged in [
            signed(&signer, HEADER_B64, claims(Some(vec!["payments"]))),
            signed(&signer, RINGS_HEADER_B64, claims(None)),
        ] {
            assert_eq!(
                signer.verify(p, &forged, now).unwrap_err().kind,
                ErrorKind::MalformedToken
            );
        }
    }
}
