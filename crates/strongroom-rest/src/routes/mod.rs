//! One module per resource group of the REST API. Every handler starts with the shared
//! prologue (`crate::prologue`) and answers through `crate::convert` and
//! `crate::error_map`.

mod actions;
mod activity;
mod admin;
mod aliases;
mod console;
mod identity;
mod import_tokens;
mod instance_policies;
mod keys;
mod kmip;
mod policies;
mod probes;
mod registrations;
mod rings;
mod units;

pub(crate) use actions::*;
pub(crate) use activity::*;
pub(crate) use admin::*;
pub(crate) use aliases::*;
pub(crate) use console::*;
pub(crate) use identity::*;
pub(crate) use import_tokens::*;
pub(crate) use instance_policies::*;
pub(crate) use keys::*;
pub(crate) use kmip::*;
pub(crate) use policies::*;
pub(crate) use probes::*;
pub(crate) use registrations::*;
pub(crate) use rings::*;
pub(crate) use units::*;
