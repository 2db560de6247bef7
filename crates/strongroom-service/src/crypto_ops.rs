//! Stateless cryptographic operations of the EP11 API (GREP11 front end): random bytes and
//! digests so far. Audited and metered like every other call, without any data in the record.

use strongroom_engine::DigestAlg;
use strongroom_model::Role;

use crate::{Ctx, ErrorKind, Result, Service, ServiceError};

/// Most random bytes one call returns (as HPCS).
pub const MAX_RANDOM: u64 = 1_000_000;
/// Largest input of one single-part call.
pub const MAX_DATA: usize = 4 * 1024 * 1024;

impl Service {
    /// `len` bytes from the system's CSPRNG (aws-lc).
    pub async fn generate_random(&self, ctx: &Ctx, len: u64) -> Result<Vec<u8>> {
        self.audited(ctx, "ep11.random", Role::Reader, None, async {
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
        self.audited(ctx, "ep11.digest", Role::Reader, None, async {
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
