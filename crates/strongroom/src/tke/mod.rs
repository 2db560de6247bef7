//! `strongroom tke …`: the crypto unit administration commands, with the names of IBM's TKE
//! CLI plug-in so HPCS runbooks transfer (spec/ceremony.md §2). Workstation files (signature
//! keys, key parts) stay on this machine; commands are signed here and sent to the units,
//! whose signed responses are checked against their pinned identity keys.

mod files;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::json;
use strongroom_client::{Client, Method};
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::admin::{
    admin_add_command, admin_add_command_by, required_signatures, seal_part, sign_command_by,
    verify_response, vp_of, CardPart, Cmd, CommandBody, CommandSigner, Mode, Output as UnitOutput,
    ResponseBody, RosterEntry, SignedResponse, Signer, StatusView, Which, WIRE_VERSION,
};
use strongroom_engine::{CryptoProvider, SigAlg, MASTER_KEY_LEN};
use strongroom_model::{InstanceId, UnitId};
use zeroize::Zeroizing;

use crate::cli::{print, urlencode, Conn, Output};
pub(crate) use files::Passwords;
use files::{PinnedUnit, SigKey, Workstation};

/// `strongroom tke`.
mod args;
mod cards;
mod session;
mod signserv;
mod units;
mod workstation;

use crate::error::Error;
pub use args::TkeArgs;
use args::*;
use session::*;

/// Runs `strongroom tke …`.
pub async fn tke(a: TkeArgs) -> Result<(), Error> {
    let p = AwsLcProvider;
    let dir = a.files.clone();
    std::fs::create_dir_all(&dir)
        .map_err(Error::context(format!("cannot create {}", dir.display())))?;
    let pw = Passwords::load(a.passwords.as_deref())?;
    let mut ws = Workstation::load(&dir)?;
    let out = a.conn.output();
    // Workstation-only commands need no server.
    let module = a.pkcs11_module.clone();
    if workstation::workstation_command(&a.cmd, &p, &dir, &pw, &mut ws, out, module.as_deref())? {
        return Ok(());
    }

    let (clients, instance) = a.conn.endpoint_clients()?;
    let instance: InstanceId = instance
        .parse()
        .map_err(|_| Error::usage("the instance id is not a UUID"))?;
    let mut t = Tke {
        p,
        dir,
        ws,
        pw,
        plan: a.plan,
        yes: a.yes,
        out,
        clients,
        instance,
        keys: None,
        module,
        cards: None,
        service: None,
        last_signed: None,
        known: Vec::new(),
    };
    units::unit_command(&mut t, a.cmd, instance).await
}

/// Whether two verification patterns (hex, from signed statuses or key part files) are the
/// same, compared in constant time.
pub(crate) fn same_vp(a: Option<&str>, b: Option<&str>) -> bool {
    use strongroom_engine::CryptoProvider as _;
    match (a, b) {
        (Some(a), Some(b)) => {
            strongroom_crypto_awslc::AwsLcProvider.ct_eq(a.as_bytes(), b.as_bytes())
        }
        _ => false,
    }
}
