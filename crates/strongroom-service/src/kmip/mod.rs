//! KMIP: adapters (an instance's KMIP endpoints, each bound to a root key), the client
//! certificates that authenticate connections to them, and KMIP managed objects. Every
//! KMIP object is an object of the instance's keystore: its material is wrapped under
//! the adapter's root key (whose blob is sealed under the instance's master key), bound
//! to the object's id. Key Protect's management API (REST) and the KMIP protocol both
//! come here.

mod admin;
mod cache;
mod crypto;
mod dates;
pub mod model;
mod objects;
mod usage;

pub use admin::*;
pub(crate) use cache::KmipCache;
pub use model::*;
pub use objects::*;
pub use usage::{usage_mask, KeyUse, UsageLimits, UsageUnit};
