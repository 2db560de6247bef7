//! HPCS's signing service, so that TKE set-ups that keep administrators' keys in one keep
//! working (spec/ceremony.md §3.8; IBM's "Using a signing service to manage signature
//! keys"). With `TKE_SIGNSERV_URL` set, the signature keys are those listed in
//! `SIGNSERVKEYS` in the workstation directory (`[{"key": …, "token"?: …}]`): P-521 EC keys
//! that the service holds. `GET /keys/:name` gives a key's public key (DER `SEQUENCE {X, Y}`),
//! `POST /sign/:name` with `{"hash_algorithm": "sha2-512", "input": <base64>}` signs (DER
//! `SEQUENCE {R, S}`); the key's token goes in the `Authorization` header. A token missing
//! from the file comes from the passwords file as `<key>.signserv: <token>`, else is asked.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use strongroom_engine::admin::{ski_of, CommandSigner};
use strongroom_engine::{CryptoProvider, EngineError, SigAlg};
use zeroize::Zeroizing;

use super::files::Passwords;
use crate::error::Error;

/// The variable that names the signing service, as IBM's TKE CLI plug-in reads it.
pub const URL_ENV: &str = "TKE_SIGNSERV_URL";
/// The file of the workstation directory that lists the service's keys.
pub const KEYS_FILE: &str = "SIGNSERVKEYS";
/// P-521 coordinates.
const COORD: usize = 66;

/// The signing service's URL, when one is configured.
pub fn url() -> Option<String> {
    std::env::var(URL_ENV)
        .ok()
        .map(|u| u.trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Listed {
    key: String,
    #[serde(default)]
    token: Option<String>,
}

/// One of the service's keys, with its token and public key.
pub struct ServiceKey {
    /// Its name at the service.
    pub name: String,
    token: Zeroizing<String>,
    /// Its public key, as an uncompressed point.
    pub public_key: Vec<u8>,
    /// Its SKI.
    pub ski: [u8; 32],
}

/// The keys `SIGNSERVKEYS` lists, each with its token.
pub fn listed(dir: &Path, pw: &Passwords) -> Result<Vec<(String, Zeroizing<String>)>, Error> {
    let path = dir.join(KEYS_FILE);
    let text = std::fs::read_to_string(&path).map_err(Error::context(format!(
        "{URL_ENV} is set, so the signature keys are listed in {}",
        path.display()
    )))?;
    let keys: Vec<Listed> = serde_json::from_str(&text).map_err(|e| {
        Error::usage(format!(
            "{}: not a list of {{\"key\", \"token\"?}}: {e}",
            path.display()
        ))
    })?;
    keys.into_iter()
        .map(|k| {
            let token = match k.token {
                Some(t) => Zeroizing::new(t),
                None => token_of(pw, &k.key)?,
            };
            Ok((k.key, token))
        })
        .collect()
}

/// A key's token from the passwords file, else asked.
pub fn token_of(pw: &Passwords, key: &str) -> Result<Zeroizing<String>, Error> {
    pw.get(
        &format!("{key}.signserv"),
        &format!("Token for signature key {key} of the signing service: "),
    )
}

/// Runs `f` on a thread of its own with a runtime of its own: the commands that sign are
/// synchronous, and may run inside the CLI's runtime.
fn blocking<T: Send>(
    f: impl std::future::Future<Output = Result<T, Error>> + Send,
) -> Result<T, Error> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::context(
                    "cannot start a runtime for the signing service",
                ))?
                .block_on(f)
        })
        .join()
        .map_err(|_| Error::other("the signing service's client failed"))?
    })
}

fn http() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(Error::context("cannot build the signing service's client"))
}

async fn call(url: &str, token: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
    let c = http()?;
    let req = match &body {
        Some(b) => c.post(format!("{url}{path}")).json(b),
        None => c.get(format!("{url}{path}")),
    };
    let r = req
        .header("authorization", token)
        .send()
        .await
        .map_err(Error::context(format!("signing service {url}")))?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Error::check(format!(
            "signing service {url}{path}: {status}{}",
            if status.as_u16() == 401 || status.as_u16() == 403 {
                " (is the key's token right?)"
            } else {
                ""
            }
        )));
    }
    serde_json::from_str(&text).map_err(|_| {
        Error::check(format!(
            "signing service {url}{path}: the answer is not JSON"
        ))
    })
}

/// Reads key `name`'s public key from the service.
pub fn open(
    p: &dyn CryptoProvider,
    url: &str,
    name: &str,
    token: Zeroizing<String>,
) -> Result<ServiceKey, Error> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(Error::usage(format!(
            "signature key name '{name}': the signing service takes unreserved characters only (RFC 3986 §2.3)"
        )));
    }
    let v = blocking(call(url, &token, &format!("/keys/{name}"), None))?;
    let der = v["publickey"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| {
            Error::check(format!(
                "signing service: key {name} has no base64 publickey"
            ))
        })?;
    let (x, y) = der_pair(&der).ok_or_else(|| {
        Error::check(format!(
            "signing service: key {name}'s public key is not a DER SEQUENCE of two P-521 coordinates"
        ))
    })?;
    let mut point = vec![0x04];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let ski = ski_of(p, SigAlg::EcdsaP521Sha512, &point);
    Ok(ServiceKey {
        name: name.to_string(),
        token,
        public_key: point,
        ski,
    })
}

/// A DER length at `d[*i]`.
fn der_len(d: &[u8], i: &mut usize) -> Option<usize> {
    let first = *d.get(*i)?;
    *i += 1;
    match first {
        n @ 0..=0x7f => Some(n as usize),
        0x81 => {
            let n = *d.get(*i)? as usize;
            *i += 1;
            (n >= 0x80).then_some(n)
        }
        0x82 => {
            let n = u16::from_be_bytes([*d.get(*i)?, *d.get(*i + 1)?]) as usize;
            *i += 2;
            (n >= 0x100).then_some(n)
        }
        _ => None,
    }
}

/// `SEQUENCE { INTEGER, INTEGER }` with non-negative integers that fit a P-521 coordinate,
/// each left-padded to 66 bytes.
fn der_pair(d: &[u8]) -> Option<([u8; COORD], [u8; COORD])> {
    let mut i = 0;
    if *d.first()? != 0x30 {
        return None;
    }
    i += 1;
    let len = der_len(d, &mut i)?;
    if i + len != d.len() {
        return None;
    }
    let mut int = || -> Option<[u8; COORD]> {
        if *d.get(i)? != 0x02 {
            return None;
        }
        i += 1;
        let n = der_len(d, &mut i)?;
        let v = d.get(i..i + n)?;
        i += n;
        if v.is_empty() || v[0] & 0x80 != 0 {
            return None;
        }
        let v = match v {
            [0, rest @ ..] if !rest.is_empty() => rest,
            v => v,
        };
        if v.len() > COORD {
            return None;
        }
        let mut out = [0u8; COORD];
        out[COORD - v.len()..].copy_from_slice(v);
        Some(out)
    };
    let x = int()?;
    let y = int()?;
    (i == d.len()).then_some((x, y))
}

/// Signs with a key of the signing service.
pub struct ServiceSigner<'a> {
    url: &'a str,
    key: &'a ServiceKey,
    failure: std::cell::RefCell<Option<Error>>,
}

impl<'a> ServiceSigner<'a> {
    /// `key` at the service `url`.
    pub fn new(url: &'a str, key: &'a ServiceKey) -> Self {
        ServiceSigner {
            url,
            key,
            failure: std::cell::RefCell::new(None),
        }
    }

    /// Why the last signature failed.
    pub fn take_failure(&self) -> Option<Error> {
        self.failure.borrow_mut().take()
    }

    fn try_sign(&self, p: &dyn CryptoProvider, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let body = json!({"hash_algorithm": "sha2-512", "input": B64.encode(msg)});
        let path = format!("/sign/{}", self.key.name);
        let v = blocking(call(self.url, &self.key.token, &path, Some(body)))?;
        let sig = v["signature"]
            .as_str()
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| Error::check("signing service: the answer has no base64 signature"))?;
        // A signature the unit would refuse is named here, with the key that made it.
        if !p.sig_verify(SigAlg::EcdsaP521Sha512, &self.key.public_key, msg, &sig) {
            return Err(Error::check(format!(
                "signing service: the signature of key {} does not verify with its public key",
                self.key.name
            )));
        }
        Ok(sig)
    }
}

impl CommandSigner for ServiceSigner<'_> {
    fn alg(&self) -> SigAlg {
        SigAlg::EcdsaP521Sha512
    }
    fn ski(&self) -> [u8; 32] {
        self.key.ski
    }
    fn sign(&self, p: &dyn CryptoProvider, msg: &[u8]) -> Result<Vec<u8>, EngineError> {
        self.try_sign(p, msg).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            EngineError::Crypto
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_two_der_integers_padded_to_p521_coordinates() {
        // SEQUENCE { INTEGER 0x01, INTEGER 0x00ff } (a leading zero keeps 0xff positive).
        let (x, y) = der_pair(&[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0xff]).unwrap();
        assert_eq!(x[COORD - 1], 1);
        assert!(x[..COORD - 1].iter().all(|&b| b == 0));
        assert_eq!(y[COORD - 1], 0xff);
        // A full-width coordinate (66 bytes, long-form length).
        let mut d = vec![0x30, 0x81, 2 * (2 + COORD) as u8];
        for _ in 0..2 {
            d.extend_from_slice(&[0x02, COORD as u8, 0x01]);
            d.extend_from_slice(&[0xab; COORD - 1]);
        }
        let (x, _) = der_pair(&d).unwrap();
        assert_eq!(x[0], 1);
        // Refused: trailing bytes, a negative integer, a third integer, a short sequence,
        // a coordinate too long, a non-minimal length.
        assert!(der_pair(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]).is_none());
        assert!(der_pair(&[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01]).is_none());
        assert!(der_pair(&[0x30, 0x09, 0x02, 0x01, 1, 0x02, 0x01, 1, 0x02, 0x01, 1]).is_none());
        assert!(der_pair(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_none());
        let mut long = vec![0x30, 0x81, (2 + 67 + 3) as u8, 0x02, 67, 0x01];
        long.extend_from_slice(&[0; 66]);
        long.extend_from_slice(&[0x02, 0x01, 0x01]);
        assert!(der_pair(&long).is_none());
        assert!(der_pair(&[0x30, 0x81, 0x06, 0x02, 0x01, 1, 0x02, 0x01, 1]).is_none());
        assert!(der_pair(&[]).is_none());
    }
}
