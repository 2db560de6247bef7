//! Strongroom's KMIP front end. [`ttlv`] is the codec (no I/O); the operations convert
//! KMIP requests into calls on the service and its answers into KMIP responses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ttlv;
