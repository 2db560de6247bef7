//! Strongroom's KMIP front end. [`ttlv`] is the codec (no I/O); the operations convert
//! KMIP requests into calls on the service and its answers into KMIP responses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[allow(missing_docs)]
mod codes;
mod convert;
pub mod error_map;
pub mod listener;
pub mod message;
mod ops;
pub mod ttlv;

pub use listener::{serve, KmipConfig};
pub use message::handle_message;
