//! The connection to a token's GREP11 endpoints: TLS as configured, failover between the
//! listed hosts, and the API key exchanged for a bearer token that is refreshed before it
//! expires. Every failure comes back as the CK_RV the application sees.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strongroom_client::grep11::grep11_error_of;
use strongroom_client::grep11::unary::{Connection, Unary};
use strongroom_client::grep11::{ConnectError, Timeouts, Transport};
use strongroom_client::{iam_token, IamToken};
use strongroom_client::{ClientIdentity, Trust};
use strongroom_model::pkcs11::{ckr, Ckr};
use tonic::codegen::http::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

use crate::config;

/// Who the calls authenticate as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// No login: the anonymous user's API key, if the file gives one.
    Anonymous,
    /// `C_Login(CKU_USER)`.
    User,
    /// `C_Login(CKU_SO)`.
    SecurityOfficer,
}

/// An `authorization` header value, parsed once per token.
type Bearer = HeaderValue;

struct Auth {
    who: Who,
    apikey: Option<Zeroizing<String>>,
    token: Option<(IamToken, Duration, Bearer)>,
}

fn bearer_of(t: (IamToken, Duration)) -> Result<(IamToken, Duration, Bearer), CallError> {
    let v = format!("Bearer {}", t.0.access_token)
        .parse()
        .map_err(|_| {
            CallError::device("the IAM endpoint answered a token that is not a header value")
        })?;
    Ok((t.0, t.1, v))
}

/// One token's server.
pub struct Remote {
    cfg: config::Token,
    http: reqwest::Client,
    /// Each engine's connection (see [`crate::engines`]), to the endpoint in use.
    channels: Mutex<HashMap<usize, Link>>,
    /// `Bluemix-Instance`, parsed once.
    instance: Option<HeaderValue>,
    auth: Mutex<Auth>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not make the token unusable: the data stays consistent
    // because every critical section here only replaces whole values.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instance id the configuration names (any user's IAM settings).
fn cfg_instance(cfg: &config::Token) -> Option<String> {
    [&cfg.user.iam, &cfg.anonymous.iam, &cfg.so.iam]
        .iter()
        .find_map(|i| i.instance.clone())
}

/// The servers a token trusts: the system's roots and the configuration's `cacert`.
fn trust_of(cfg: &config::Token) -> Trust {
    Trust {
        ca_file: cfg.tls.cacert.clone(),
        insecure: false,
    }
}

/// One engine's connection: the endpoint (its index in the configuration), the connection,
/// and when it was last used.
struct Link {
    index: usize,
    conn: Connection,
    used: Instant,
}

/// A connection idle this long is opened again before its next call, rather than trusted
/// to have survived the network in between (its engine sends no pings while idle).
const IDLE: Duration = Duration::from_secs(60);

/// Why a call failed, as PKCS#11 says it.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The CK_RV.
    pub ckr: Ckr,
    /// What the server or the transport said (for the log; never secret).
    pub detail: String,
}

impl CallError {
    /// `CKR_DEVICE_ERROR`: the server or the way to it failed.
    pub fn device(detail: impl Into<String>) -> Self {
        CallError {
            ckr: ckr::DEVICE_ERROR,
            detail: detail.into(),
        }
    }
}

impl Remote {
    /// A remote for `cfg`; nothing is connected until the first call.
    pub fn new(cfg: config::Token) -> Result<Self, String> {
        // No idle connections are kept: a pooled connection's task belongs to the engine
        // that opened it, and another engine would wait on it (see `crate::engines`).
        // The IAM endpoint is trusted as the GREP11 servers are, post-quantum group first.
        let tls = trust_of(&cfg)
            .verifying_config(None)
            .map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .use_preconfigured_tls(tls)
            .build()
            .map_err(|e| format!("cannot build the IAM client: {e}"))?;
        let apikey = cfg.anonymous.iam.apikey.clone().map(Zeroizing::new);
        let instance = cfg_instance(&cfg).and_then(|i| i.parse().ok());
        Ok(Remote {
            cfg,
            http,
            channels: Mutex::new(HashMap::new()),
            instance,
            auth: Mutex::new(Auth {
                who: Who::Anonymous,
                apikey,
                token: None,
            }),
        })
    }

    /// The token's configuration.
    pub fn config(&self) -> &config::Token {
        &self.cfg
    }

    /// Who the calls authenticate as now.
    pub fn who(&self) -> Who {
        lock(&self.auth).who
    }

    fn iam_of(&self, who: Who) -> &config::IamAuth {
        match who {
            Who::SecurityOfficer => &self.cfg.so.iam,
            Who::User => &self.cfg.user.iam,
            Who::Anonymous => &self.cfg.anonymous.iam,
        }
    }

    /// Logs in as `who` with `apikey` (the PIN): the key is exchanged now, so that a wrong
    /// PIN is `CKR_PIN_INCORRECT` at `C_Login`.
    pub async fn login(&self, who: Who, apikey: Zeroizing<String>) -> Result<(), CallError> {
        let iam = self.iam_of(who).clone();
        let token = self
            .exchange(&iam, &apikey)
            .await?
            .map(bearer_of)
            .transpose()?;
        let mut a = lock(&self.auth);
        *a = Auth {
            who,
            apikey: Some(apikey),
            token,
        };
        Ok(())
    }

    /// Whether `pin` is the PIN (API key) the current login used, compared in constant time.
    pub fn pin_matches(&self, pin: &str) -> bool {
        use subtle::ConstantTimeEq;
        let a = lock(&self.auth);
        a.apikey
            .as_ref()
            .is_some_and(|k| bool::from(k.as_bytes().ct_eq(pin.as_bytes())))
    }

    /// Back to the anonymous user.
    pub fn logout(&self) {
        let mut a = lock(&self.auth);
        *a = Auth {
            who: Who::Anonymous,
            apikey: self.cfg.anonymous.iam.apikey.clone().map(Zeroizing::new),
            token: None,
        };
    }

    async fn exchange(
        &self,
        iam: &config::IamAuth,
        apikey: &str,
    ) -> Result<Option<(IamToken, Duration)>, CallError> {
        if !iam.enabled {
            return Ok(None);
        }
        match iam_token(&self.http, &iam.endpoint, apikey).await {
            Ok(t) => Ok(Some(t)),
            Err(strongroom_client::ClientError::Api {
                status, message, ..
            }) if (400..500).contains(&status) => Err(CallError {
                ckr: ckr::PIN_INCORRECT,
                detail: format!("the API key was refused: {message}"),
            }),
            Err(e) => Err(CallError::device(format!(
                "IAM endpoint {}: {e}",
                iam.endpoint
            ))),
        }
    }

    /// The bearer token to send, exchanged again when it is near its expiry.
    async fn bearer(&self, force: bool) -> Result<Option<Bearer>, CallError> {
        let (who, apikey) = {
            let a = lock(&self.auth);
            if let Some((t, life, header)) = &a.token {
                if !force && !t.needs_refresh(*life) {
                    return Ok(Some(header.clone()));
                }
            }
            (a.who, a.apikey.clone())
        };
        let Some(apikey) = apikey else {
            return Ok(None);
        };
        let iam = self.iam_of(who).clone();
        let token = self.exchange(&iam, &apikey).await.map_err(|e| {
            if e.ckr == ckr::PIN_INCORRECT {
                CallError {
                    ckr: ckr::USER_NOT_LOGGED_IN,
                    detail: e.detail,
                }
            } else {
                e
            }
        })?;
        let token = token.map(bearer_of).transpose()?;
        let header = token.as_ref().map(|(_, _, h)| h.clone());
        let mut a = lock(&self.auth);
        if a.who == who {
            a.token = token;
        }
        Ok(header)
    }

    fn transport(&self) -> Transport {
        let t = &self.cfg.tls;
        if !t.enabled {
            return Transport::Plain;
        }
        let identity = match (t.mutual, &t.certfile, &t.keyfile) {
            (true, Some(cert), Some(key)) => Some(ClientIdentity {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        Transport::Tls {
            trust: trust_of(&self.cfg),
            identity,
        }
    }

    async fn connect(&self, index: usize) -> Result<Connection, CallError> {
        let ep = &self.cfg.endpoints[index];
        let timeouts = Timeouts {
            connect: Duration::from_secs(3),
            call: Duration::from_secs(30),
        };
        Connection::open(&ep.host, ep.port, &self.transport(), timeouts)
            .await
            .map_err(|e| match e {
                ConnectError::Trust(t) => CallError {
                    ckr: ckr::GENERAL_ERROR,
                    detail: t.to_string(),
                },
                other => CallError::device(other.to_string()),
            })
    }

    /// The calling engine's connection to the endpoint in use, or a new one to the first
    /// endpoint that answers (the one other engines use first).
    async fn connection(&self) -> Result<(usize, Connection), CallError> {
        let engine = crate::engines::current();
        let preferred = {
            let mut links = lock(&self.channels);
            if let Some(l) = links.get_mut(&engine) {
                if l.used.elapsed() < IDLE && !l.conn.is_closed() {
                    l.used = Instant::now();
                    return Ok((l.index, l.conn.clone()));
                }
                links.remove(&engine);
            }
            links.values().next().map(|l| l.index)
        };
        let n = self.cfg.endpoints.len();
        let order = preferred
            .into_iter()
            .chain((0..n).filter(|&i| Some(i) != preferred));
        let mut last = CallError::device("no GREP11 endpoint is configured");
        for index in order {
            match self.connect(index).await {
                Ok(conn) => {
                    let link = Link {
                        index,
                        conn: conn.clone(),
                        used: Instant::now(),
                    };
                    lock(&self.channels).insert(engine, link);
                    return Ok((index, conn));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Forgets every engine's connection to endpoint `index`: the next calls reconnect,
    /// trying every endpoint.
    fn drop_channel(&self, index: usize) {
        lock(&self.channels).retain(|_, l| l.index != index);
    }

    /// The request headers of a call: the bearer token and the instance.
    fn metadata(&self, bearer: Option<&Bearer>) -> HeaderMap {
        let mut md = HeaderMap::with_capacity(2);
        if let Some(b) = bearer {
            md.insert("authorization", b.clone());
        }
        if let Some(i) = &self.instance {
            md.insert("bluemix-instance", i.clone());
        }
        md
    }

    /// Runs one GREP11 call (or one call of Strongroom's keystore for token objects): on
    /// an expired token it exchanges the key again and retries once; on a transport
    /// failure it forgets the connection (the next call reconnects, trying every endpoint)
    /// and answers `CKR_DEVICE_ERROR`.
    pub async fn call<M: Unary>(&self, msg: M) -> Result<M::Response, CallError> {
        let mut refreshed = false;
        loop {
            let bearer = self.bearer(refreshed).await?;
            let (index, mut conn) = self.connection().await?;
            match conn.call(&msg, &self.metadata(bearer.as_ref())).await {
                Ok(r) => return Ok(r),
                Err(st) => {
                    if let Some(e) = grep11_error_of(&st) {
                        if st.code() == tonic::Code::Unauthenticated
                            && !refreshed
                            && bearer.is_some()
                        {
                            refreshed = true;
                            continue;
                        }
                        return Err(CallError {
                            ckr: Ckr(e.code),
                            detail: e.detail,
                        });
                    }
                    match st.code() {
                        // A message over the size limit: the input is too long, the server is fine.
                        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => {
                            return Err(CallError {
                                ckr: ckr::DATA_LEN_RANGE,
                                detail: st.message().to_string(),
                            })
                        }
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                            return Err(CallError {
                                ckr: ckr::USER_NOT_LOGGED_IN,
                                detail: st.message().to_string(),
                            })
                        }
                        _ => {
                            self.drop_channel(index);
                            return Err(CallError::device(format!(
                                "GREP11 call failed: {}: {}",
                                st.code(),
                                st.message()
                            )));
                        }
                    }
                }
            }
        }
    }
}
