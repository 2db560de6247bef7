//! The binary's error type. Each variant says what kind of failure it is, so that `main`
//! can answer with an exit status a script can act on (documented in `--help` and the
//! README's "Exit status" table), and keeps its cause as a source rather than flattening
//! it into a string.

use std::process::ExitCode;

use strongroom_client::ClientError;

/// A boxed cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments, the environment or the configuration are missing or wrong.
    #[error("{0}")]
    Usage(String),
    /// A server answered with a refusal, or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A check failed: a broken audit chain, a verification pattern that does not match,
    /// a signature or file that does not verify, a refusal the operator must look at.
    #[error("{0}")]
    Check(String),
    /// A local operation failed: a file, the keystore, a listener.
    #[error("{context}: {source}")]
    Failed {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Cause,
    },
    /// A local operation failed for a reason with no error value of its own.
    #[error("{0}")]
    Other(String),
    /// The service refused or failed (commands that open the keystore themselves).
    #[error(transparent)]
    Service(#[from] strongroom_service::ServiceError),
    /// The keystore failed (commands that open it themselves).
    #[error(transparent)]
    Store(#[from] strongroom_keystore::StoreError),
}

impl Error {
    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// A failed check.
    pub fn check(msg: impl Into<String>) -> Self {
        Error::Check(msg.into())
    }

    /// A local failure with no error value of its own.
    pub fn other(msg: impl Into<String>) -> Self {
        Error::Other(msg.into())
    }

    /// A closure for `map_err` that keeps `source` under `context`.
    pub fn context<E>(context: impl Into<String>) -> impl FnOnce(E) -> Self
    where
        E: Into<Cause>,
    {
        let context = context.into();
        move |source| Error::Failed {
            context,
            source: source.into(),
        }
    }

    /// The process exit status for this error: 2 for usage, 3 for a server's refusal, 4
    /// for a server that cannot be reached or failed, 5 for a failed check, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Error::Usage(_) => 2,
            Error::Client(ClientError::Api { status, .. }) if *status < 500 => 3,
            Error::Client(ClientError::Api { .. } | ClientError::Unreachable { .. }) => 4,
            Error::Client(_) => 2,
            Error::Check(_) => 5,
            Error::Failed { .. } | Error::Other(_) | Error::Service(_) | Error::Store(_) => 1,
        })
    }
}

impl From<strongroom_engine::admin::files::FileError> for Error {
    fn from(e: strongroom_engine::admin::files::FileError) -> Self {
        use strongroom_engine::admin::files::FileError;
        match e {
            FileError::Check(m) => Error::Check(m),
            FileError::Other(m) => Error::Other(m),
        }
    }
}

/// Errors of libraries the commands call, each kept as the source under the name of what
/// failed (call sites that know more use [`Error::context`]).
macro_rules! failed_from {
    ($($ty:ty => $what:literal,)*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error::Failed { context: $what.into(), source: e.into() }
            }
        }
    )*};
}

failed_from! {
    std::io::Error => "I/O",
    serde_json::Error => "JSON",
    strongroom_engine::EngineError => "cryptography",
    rustls::Error => "TLS",
    rustls::pki_types::InvalidDnsNameError => "TLS server name",
    hyper::Error => "HTTP",
    hyper::http::Error => "HTTP",
    tonic::transport::Error => "gRPC connection",
    tonic::Status => "gRPC",
    tokio::task::JoinError => "task",
    strongroom_engine::ep11::Ep11Error => "EP11",
    strongroom_kmip::ttlv::DecodeError => "TTLV",
    object_store::Error => "object store",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_follows_the_kind_of_failure() {
        let api = |status| {
            Error::Client(ClientError::Api {
                status,
                code: "KEY_NOT_FOUND_ERR".into(),
                message: "not found".into(),
            })
        };
        assert_eq!(Error::usage("no server").exit_code(), ExitCode::from(2));
        assert_eq!(api(404).exit_code(), ExitCode::from(3));
        assert_eq!(api(503).exit_code(), ExitCode::from(4));
        assert_eq!(Error::check("chain broken").exit_code(), ExitCode::from(5));
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Error::context("cannot read /x")(io);
        assert_eq!(e.exit_code(), ExitCode::from(1));
        assert_eq!(e.to_string(), "cannot read /x: gone");
        assert!(std::error::Error::source(&e).is_some());
    }
}
