//! The command-line client: `key`, `instance` and `audit` subcommands. Human output by
//! default, `--output json` for scripts. Connection settings come from flags, then
//! `STRONGROOM_*` variables, then `<data-dir>/dev.json` when a dev server runs locally.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use strongroom_client::Client;
use strongroom_client::Method;

mod activity;
mod audit;
mod backup;
mod conn;
mod instance;
mod key;
mod kmip;
mod output;
mod pkcs11;

pub use activity::{activity, ActivityArgs};
pub use audit::{audit, AuditArgs};
pub(crate) use backup::now_ms;
pub use backup::{backup, BackupArgs};
pub(crate) use conn::Conn;
pub use instance::{instance, InstanceArgs};
pub use key::{key, KeyArgs};
pub use kmip::{kmip, KmipArgs};
pub(crate) use output::print;
pub use output::Output;
pub use pkcs11::{pkcs11, Pkcs11Args};
pub(crate) use strongroom_client::urlencode;
