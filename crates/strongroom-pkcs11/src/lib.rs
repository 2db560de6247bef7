//! Strongroom's PKCS#11 library, `libstrongroom_pkcs11.so`: PKCS#11 3.0 (with the 2.40
//! function list) for applications that use Strongroom as their HSM — OpenSSL, nginx,
//! Java's SunPKCS11, databases, signing tools. It is a client of Strongroom's GREP11 API
//! configured by IBM's `grep11client.yaml` (path in `EP11CLIENT_CFG`, else
//! `/etc/ep11client/grep11client.yaml`). Keys travel as blobs sealed by the instance's
//! crypto units; token objects live in the server's keystores, session objects in memory.
//!
//! Layers: [`ffi`] (the only `unsafe` code: C types, `catch_unwind`) over [`library`]
//! (sessions, login, objects), [`crypto`] (key management) and [`ops`] (operations in
//! progress), all GREP11 calls, over [`remote`] (endpoints, TLS, tokens) and [`config`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod crypto;
pub mod der;
pub mod engines;
pub mod ffi;
pub mod library;
pub mod log;
pub mod object;
pub mod ops;
pub mod remote;
pub mod sealed;
