//! IBM's `grep11client.yaml`, read unchanged: YAML anchors and merge keys (`<<: *template`)
//! as IBM's samples use them, `tokens.N` for slot N, and `users.0` (security officer),
//! `users.1` (normal user, private keystore) and `users.2` (anonymous, public keystore).
//!
//! Strongroom reads one extension: `address` may list several hosts separated by commas;
//! the library uses them in turn when one cannot be reached.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;
use uuid::Uuid;

/// Where the configuration is read from when `EP11CLIENT_CFG` is not set.
pub const DEFAULT_PATH: &str = "/etc/ep11client/grep11client.yaml";

/// Why a configuration cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file cannot be read.
    Read(PathBuf, std::io::Error),
    /// The file is not valid YAML, or a field has the wrong type.
    Parse(PathBuf, String),
    /// A field is missing or out of range.
    Invalid(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            ConfigError::Parse(p, e) => {
                write!(f, "{} is not a valid grep11client.yaml: {e}", p.display())
            }
            ConfigError::Invalid(e) => write!(f, "grep11client.yaml: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// TLS towards the GREP11 endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// TLS on (IBM's endpoints require it; a loopback dev server may not).
    pub enabled: bool,
    /// Present a client certificate.
    pub mutual: bool,
    /// The CA certificate file (PEM); the system's roots when absent.
    pub cacert: Option<PathBuf>,
    /// The client certificate (PEM), with `mutual`.
    pub certfile: Option<PathBuf>,
    /// The client key (PEM), with `mutual`.
    pub keyfile: Option<PathBuf>,
}

/// One GREP11 endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// How a user authenticates: an API key exchanged for a token at an IAM endpoint.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IamAuth {
    /// Whether IAM authentication is on.
    pub enabled: bool,
    /// The IAM endpoint (`https://iam.cloud.ibm.com`, or a Strongroom REST URL).
    pub endpoint: String,
    /// The API key, when the file gives one (the anonymous user's).
    pub apikey: Option<String>,
    /// The instance id sent as `Bluemix-Instance`.
    pub instance: Option<String>,
}

impl std::fmt::Debug for IamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamAuth")
            .field("enabled", &self.enabled)
            .field("endpoint", &self.endpoint)
            .field("apikey", &self.apikey.as_ref().map(|_| "<set>"))
            .field("instance", &self.instance)
            .finish()
    }
}

/// The password of a keystore (`sessionauth.tokenspaceIDPassword`): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeystorePassword(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for KeystorePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeystorePassword(<set>)")
    }
}

/// The shortest keystore password the library takes (IBM's lower bound).
pub const MIN_KEYSTORE_PASSWORD: usize = 6;
/// The longest keystore password the library takes.
pub const MAX_KEYSTORE_PASSWORD: usize = 256;

/// One of the three users of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// Display name.
    pub name: String,
    /// The keystore this user's token objects live in.
    pub tokenspace: Option<Uuid>,
    /// The keystore's password, when `sessionauth` is enabled (IBM's authenticated
    /// keystores): the server refuses calls without its proof, and the objects are
    /// encrypted under a key derived from it.
    pub password: Option<KeystorePassword>,
    /// Authentication.
    pub iam: IamAuth,
}

/// One token (slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The slot id (the `tokens` key).
    pub slot: u64,
    /// Endpoints, tried in order.
    pub endpoints: Vec<Endpoint>,
    /// TLS settings, shared by the endpoints.
    pub tls: Tls,
    /// Token objects (`CKA_TOKEN=true`) are kept in the server's keystores.
    pub remotestore: bool,
    /// The security officer (`users.0`).
    pub so: User,
    /// The normal user (`users.1`): the private keystore.
    pub user: User,
    /// The anonymous user (`users.2`): the public keystore.
    pub anonymous: User,
}

/// Logging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logging {
    /// `panic`, `fatal`, `error`, `warning`/`warn`, `info`, `debug`, `trace`.
    pub level: String,
    /// The log file; standard error when absent.
    pub path: Option<PathBuf>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tokens by slot id.
    pub tokens: Vec<Token>,
    /// Logging.
    pub logging: Logging,
}

// The YAML shapes, loose where IBM's samples are (ports as strings or numbers, empty
// values for absent ones).
#[derive(Deserialize, Default)]
#[serde(default)]
struct YTls {
    enabled: Option<bool>,
    mutual: Option<bool>,
    cacert: Option<String>,
    certfile: Option<String>,
    keyfile: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YConn {
    address: Option<String>,
    port: Option<Value>,
    tls: YTls,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YIam {
    enabled: Option<bool>,
    endpoint: Option<String>,
    apikey: Option<String>,
    instance: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YSessionAuth {
    enabled: Option<bool>,
    // A string, or a number when the file leaves digits unquoted.
    #[serde(rename = "tokenspaceIDPassword")]
    password: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YUser {
    name: Option<String>,
    #[serde(rename = "tokenspaceID")]
    tokenspace_id: Option<String>,
    iamauth: Option<YIam>,
    sessionauth: Option<YSessionAuth>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YRemote {
    enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YStorage {
    remotestore: YRemote,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YToken {
    grep11connection: YConn,
    storage: YStorage,
    users: BTreeMap<u64, YUser>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YLogging {
    loglevel: Option<String>,
    logpath: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct YConfig {
    tokens: BTreeMap<u64, YToken>,
    logging: YLogging,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn port_of(v: Option<Value>, slot: u64) -> Result<u16, ConfigError> {
    let bad = || {
        ConfigError::Invalid(format!(
            "tokens.{slot}.grep11connection.port must be a port number"
        ))
    };
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A user's keystore password: `None` unless `sessionauth.enabled`.
fn password_of(
    y: Option<YSessionAuth>,
    has_keystore: bool,
    who: &str,
    slot: u64,
) -> Result<Option<KeystorePassword>, ConfigError> {
    let Some(y) = y.filter(|a| a.enabled == Some(true)) else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        ConfigError::Invalid(format!(
            "tokens.{slot}.users ({who}): sessionauth is enabled, but {why}"
        ))
    };
    if !has_keystore {
        return Err(invalid("the user names no keystore (tokenspaceID)"));
    }
    let password = match y.password {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let password = zeroize::Zeroizing::new(password);
    let chars = password.chars().count();
    if !(MIN_KEYSTORE_PASSWORD..=MAX_KEYSTORE_PASSWORD).contains(&chars) {
        return Err(invalid(&format!(
            "tokenspaceIDPassword must be {MIN_KEYSTORE_PASSWORD} to {MAX_KEYSTORE_PASSWORD} characters"
        )));
    }
    Ok(Some(KeystorePassword(password)))
}

/// A user of `users.N`; `keeps_objects` for the two users with a keystore (the security
/// officer has none, and its `sessionauth`, if any, is ignored).
fn user_of(
    y: Option<YUser>,
    who: &str,
    slot: u64,
    keeps_objects: bool,
) -> Result<User, ConfigError> {
    let y = y.unwrap_or_default();
    let iam = y.iamauth.unwrap_or_default();
    let tokenspace = match nonempty(y.tokenspace_id) {
        None => None,
        Some(s) => Some(Uuid::parse_str(&s).map_err(|_| {
            ConfigError::Invalid(format!(
                "tokens.{slot}.users ({who}): tokenspaceID {s:?} is not a UUID"
            ))
        })?),
    };
    let password = match keeps_objects {
        true => password_of(y.sessionauth, tokenspace.is_some(), who, slot)?,
        false => None,
    };
    Ok(User {
        name: nonempty(y.name).unwrap_or_else(|| who.to_string()),
        tokenspace,
        password,
        iam: IamAuth {
            enabled: iam.enabled.unwrap_or(false),
            endpoint: nonempty(iam.endpoint).unwrap_or_default(),
            apikey: nonempty(iam.apikey),
            instance: nonempty(iam.instance),
        },
    })
}

impl Config {
    /// The path the library reads: `EP11CLIENT_CFG`, else [`DEFAULT_PATH`].
    pub fn path() -> PathBuf {
        std::env::var_os("EP11CLIENT_CFG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse(_, m) => ConfigError::Parse(path.into(), m),
            other => other,
        })
    }

    /// Parses a configuration.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let perr = |e: serde_norway::Error| ConfigError::Parse(PathBuf::new(), e.to_string());
        let mut value: Value = serde_norway::from_str(text).map_err(perr)?;
        value.apply_merge().map_err(perr)?;
        let y: YConfig = serde_norway::from_value(value).map_err(perr)?;
        if y.tokens.is_empty() {
            return Err(ConfigError::Invalid("no tokens are configured".into()));
        }
        let mut tokens = Vec::new();
        for (slot, mut t) in y.tokens {
            let address = nonempty(t.grep11connection.address.take()).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "tokens.{slot}.grep11connection.address is required"
                ))
            })?;
            let port = port_of(t.grep11connection.port.take(), slot)?;
            let endpoints = address
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| Endpoint {
                    host: h.to_string(),
                    port,
                })
                .collect();
            let tls = &t.grep11connection.tls;
            let path = |p: &Option<String>| nonempty(p.clone()).map(PathBuf::from);
            let tls = Tls {
                enabled: tls.enabled.unwrap_or(true),
                mutual: tls.mutual.unwrap_or(false),
                cacert: path(&tls.cacert),
                certfile: path(&tls.certfile),
                keyfile: path(&tls.keyfile),
            };
            if tls.mutual && (tls.certfile.is_none() || tls.keyfile.is_none()) {
                return Err(ConfigError::Invalid(format!(
                    "tokens.{slot}.grep11connection.tls: mutual TLS needs certfile and keyfile"
                )));
            }
            let so = user_of(t.users.remove(&0), "security officer", slot, false)?;
            let user = user_of(t.users.remove(&1), "user", slot, true)?;
            let anonymous = user_of(t.users.remove(&2), "anonymous", slot, true)?;
            if let (Some(a), Some(b)) = (user.tokenspace, anonymous.tokenspace) {
                if a == b {
                    return Err(ConfigError::Invalid(format!(
                        "tokens.{slot}.users: the private and public keystores need different tokenspaceIDs"
                    )));
                }
            }
            tokens.push(Token {
                slot,
                endpoints,
                tls,
                remotestore: t.storage.remotestore.enabled.unwrap_or(false),
                so,
                user,
                anonymous,
            });
        }
        Ok(Config {
            tokens,
            logging: Logging {
                level: nonempty(y.logging.loglevel).unwrap_or_else(|| "warning".into()),
                path: nonempty(y.logging.logpath).map(PathBuf::from),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape of IBM's documented sample, with anchors and a merge key.
    const IBM_SAMPLE: &str = r#"
iamcredentialtemplate: &defaultiamcredential
  enabled: true
  endpoint: "https://iam.cloud.ibm.com"
  apikey:
  instance: "5a0e2c2a-3b7d-4a55-9a0f-7d1bbfe0c001"

sessionauthtemplate: &defaultsessionauth
  enabled: false
  tokenspaceIDPassword:

tokens:
  0:
    grep11connection:
      address: "ep11.us-south.hs-crypto.cloud.ibm.com, ep11b.example"
      port: "9876"
      tls:
        enabled: true
        mutual: false
        cacert:
        certfile:
        keyfile:
    storage:
      remotestore:
        enabled: true
    users:
      0:
        name: "Administrator"
        iamauth: *defaultiamcredential
      1:
        name: "Normal user"
        tokenspaceID: "f00db2f1-4421-4032-a505-465bedfa845b"
        iamauth: *defaultiamcredential
        sessionauth: *defaultsessionauth
      2:
        name: "Anonymous"
        tokenspaceID: "ca22be26-b798-4fdf-8c83-3e3a492dc215"
        iamauth:
          <<: *defaultiamcredential
          apikey: "anonymous-key"
        sessionauth: *defaultsessionauth
logging:
  loglevel: debug
  logpath: /tmp/grep11client.log
"#;

    #[test]
    fn reads_ibm_sample_with_anchors_and_merge_keys() {
        let c = Config::parse(IBM_SAMPLE).unwrap();
        assert_eq!(c.tokens.len(), 1);
        let t = &c.tokens[0];
        assert_eq!(t.slot, 0);
        assert_eq!(
            t.endpoints,
            vec![
                Endpoint {
                    host: "ep11.us-south.hs-crypto.cloud.ibm.com".into(),
                    port: 9876
                },
                Endpoint {
                    host: "ep11b.example".into(),
                    port: 9876
                },
            ]
        );
        assert!(t.tls.enabled && !t.tls.mutual && t.tls.cacert.is_none());
        assert!(t.remotestore);
        assert_eq!(t.so.name, "Administrator");
        assert_eq!(
            t.user.tokenspace,
            Uuid::parse_str("f00db2f1-4421-4032-a505-465bedfa845b").ok()
        );
        assert_eq!(t.anonymous.iam.apikey.as_deref(), Some("anonymous-key"));
        assert_eq!(t.anonymous.iam.endpoint, "https://iam.cloud.ibm.com");
        assert_eq!(
            t.anonymous.iam.instance.as_deref(),
            Some("5a0e2c2a-3b7d-4a55-9a0f-7d1bbfe0c001")
        );
        assert_eq!(
            t.user.iam.apikey, None,
            "the template's empty apikey stays empty"
        );
        assert_eq!(c.logging.level, "debug");
    }

    #[test]
    fn refuses_what_cannot_work_with_the_field_named() {
        let cases = [
            ("tokens: {}", "no tokens"),
            ("tokens: {0: {grep11connection: {port: 1}}}", "address is required"),
            ("tokens: {0: {grep11connection: {address: a, port: x}}}", "port"),
            ("tokens: {0: {grep11connection: {address: a, port: 70000}}}", "port"),
            ("tokens: {0: {grep11connection: {address: a, port: 1, tls: {mutual: true}}}}", "certfile"),
            ("tokens: {0: {grep11connection: {address: a, port: 1}, users: {1: {tokenspaceID: nope}}}}", "not a UUID"),
            ("tokens: [", "not a valid"),
            ("tokens: {0: {grep11connection: {address: a, port: 1}, users: {1: {tokenspaceID: f00db2f1-4421-4032-a505-465bedfa845b, sessionauth: {enabled: true}}}}}", "tokenspaceIDPassword must be 6 to 256"),
            ("tokens: {0: {grep11connection: {address: a, port: 1}, users: {1: {tokenspaceID: f00db2f1-4421-4032-a505-465bedfa845b, sessionauth: {enabled: true, tokenspaceIDPassword: abcde}}}}}", "tokenspaceIDPassword must be 6 to 256"),
            ("tokens: {0: {grep11connection: {address: a, port: 1}, users: {2: {sessionauth: {enabled: true, tokenspaceIDPassword: abcdef}}}}}", "names no keystore"),
        ];
        for (yaml, want) in cases {
            let e = Config::parse(yaml).unwrap_err().to_string();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }

    #[test]
    fn keystore_passwords_come_from_enabled_sessionauth_only() {
        let yaml = |so: &str, user: &str, anon: &str| {
            format!(
                "tokens: {{0: {{grep11connection: {{address: a, port: 1}}, users: {{\
                 0: {{sessionauth: {so}}}, \
                 1: {{tokenspaceID: f00db2f1-4421-4032-a505-465bedfa845b, sessionauth: {user}}}, \
                 2: {{tokenspaceID: ca22be26-b798-4fdf-8c83-3e3a492dc215, sessionauth: {anon}}}}}}}}}"
            )
        };
        let c = Config::parse(&yaml(
            "{enabled: true, tokenspaceIDPassword: ignored}",
            "{enabled: true, tokenspaceIDPassword: \"pw-of-user\"}",
            "{enabled: true, tokenspaceIDPassword: 123456}",
        ))
        .unwrap();
        let t = &c.tokens[0];
        assert_eq!(t.so.password, None, "the security officer has no keystore");
        let pw = |u: &User| u.password.as_ref().map(|p| p.0.to_string());
        assert_eq!(pw(&t.user).as_deref(), Some("pw-of-user"));
        assert_eq!(
            pw(&t.anonymous).as_deref(),
            Some("123456"),
            "digits left unquoted"
        );
        assert!(!format!("{t:?}").contains("pw-of-user"), "never printed");
        let off = Config::parse(&yaml(
            "{}",
            "{enabled: false, tokenspaceIDPassword: \"pw-of-user\"}",
            "{}",
        ))
        .unwrap();
        assert_eq!(off.tokens[0].user.password, None);
        assert_eq!(off.tokens[0].anonymous.password, None);
    }
}
