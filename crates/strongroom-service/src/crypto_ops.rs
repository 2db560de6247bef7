//! Stateless cryptographic operations of the EP11 API (GREP11 front end): random bytes,
//! digests and every key operation of [`strongroom_engine::ep11`] on the instance's crypto
//! unit. Audited (action `ep11.<verb>`, never any data or key material) and metered like
//! every other call.

use crate::action::Action;
use std::sync::Arc;

use strongroom_engine::ep11::{consts::ckr, Ep11, Ep11Error};
use strongroom_engine::{CryptoUnit, DigestAlg};
use strongroom_model::Role;

use crate::{Ctx, ErrorKind, Result, Service, ServiceError};

/// Most random bytes one call returns (as HPCS).
pub const MAX_RANDOM: u64 = 1_000_000;
/// Largest input of one single-part call.
pub const MAX_DATA: usize = 4 * 1024 * 1024;

fn pkcs11(e: Ep11Error) -> ServiceError {
    ServiceError::new(ErrorKind::Pkcs11(e.ckr), e.detail)
}

/// How an EP11 call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ep11Cost {
    /// Microseconds to a few milliseconds: on the request's task.
    Inline,
    /// Long (RSA key generation): on the blocking pool.
    Blocking,
}

impl Service {
    /// Runs an EP11 operation on the instance's crypto unit: role check, audit record
    /// `action` (no data), metering. Engine errors come back as [`ErrorKind::Pkcs11`].
    pub async fn ep11<T, F>(
        &self,
        ctx: &Ctx,
        action: Action,
        role: Role,
        cost: Ep11Cost,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Ep11<'_>) -> std::result::Result<T, Ep11Error> + Send + 'static,
    {
        self.audited(ctx, action, role, None, async {
            let unit = self.unit(ctx.instance).map_err(|_| {
                ServiceError::new(
                    ErrorKind::Pkcs11(ckr::IBM_WK_NOT_INITIALIZED),
                    "the instance's crypto unit holds no master key (load one with the ceremony)",
                )
            })?;
            // The security officer of EP11 (who alone may make keys CKA_TRUSTED) is a
            // Manager of the whole instance, as C_InitToken needs.
            let officer =
                ctx.principal.roles.grants(Role::Manager) && ctx.principal.key_rings.is_none();
            match cost {
                Ep11Cost::Inline => f(unit.ep11().as_officer(officer)).map_err(pkcs11),
                Ep11Cost::Blocking => {
                    let unit: Arc<CryptoUnit> = unit;
                    tokio::task::spawn_blocking(move || f(unit.ep11().as_officer(officer)))
                        .await
                        .map_err(|_| ServiceError::new(ErrorKind::Internal, "operation aborted"))?
                        .map_err(pkcs11)
                }
            }
        })
        .await
    }

    /// `len` bytes from the system's CSPRNG (aws-lc).
    pub async fn generate_random(&self, ctx: &Ctx, len: u64) -> Result<Vec<u8>> {
        self.audited(ctx, Action::Ep11Random, Role::Reader, None, async {
            if len == 0 || len > MAX_RANDOM {
                return Err(ServiceError::new(
                    ErrorKind::InvalidField,
                    format!("Len must be between 1 and {MAX_RANDOM} bytes"),
                ));
            }
            let mut out = vec![0u8; usize::try_from(len).unwrap_or(0)];
            self.provider
                .fill_random(&mut out)
                .map_err(|_| ServiceError::new(ErrorKind::Internal, "random generator failed"))?;
            Ok(out)
        })
        .await
    }

    /// The digest of `data`.
    pub async fn digest(&self, ctx: &Ctx, alg: DigestAlg, data: &[u8]) -> Result<Vec<u8>> {
        self.audited(ctx, Action::Ep11Digest, Role::Reader, None, async {
            if data.len() > MAX_DATA {
                return Err(ServiceError::new(
                    ErrorKind::InvalidField,
                    format!("Data is larger than {MAX_DATA} bytes"),
                ));
            }
            Ok(self.provider.digest(alg, data))
        })
        .await
    }
}
