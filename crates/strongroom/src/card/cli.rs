//! `strongroom card …`: the Management Utilities' flows for the administrators' cards.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use strongroom_crypto_awslc::AwsLcProvider;

use super::{module_path, pin, Card, CardUri};
use crate::cli::{print, Output};
use crate::error::Error;
use crate::tke::Passwords;

#[derive(Args, Debug)]
pub struct CardArgs {
    /// The cards' PKCS#11 module (OpenSC: /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so;
    /// default: the URI's module-path).
    #[arg(long, env = "STRONGROOM_PKCS11_MODULE", global = true)]
    pkcs11_module: Option<PathBuf>,
    /// A file of PINs for automation, one '<token label>.card: <PIN>' per line (the same
    /// file as `tke --passwords`). Without it, PINs are asked on the terminal.
    #[arg(long, env = "STRONGROOM_TKE_PASSWORDS", global = true)]
    passwords: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, global = true, default_value = "human")]
    output: Output,
    #[command(subcommand)]
    cmd: CardCmd,
}

#[derive(Subcommand, Debug)]
enum CardCmd {
    /// Make a card an EP11 card for an administrator: generate the administrator's
    /// signature key on it (ECDSA P-256; private, sensitive, never extractable). Then
    /// `strongroom tke cryptounit-admin-add <card URI>` installs the administrator.
    Init {
        /// The card, as a pkcs11: URI (pkcs11:token=<label>).
        #[arg(long)]
        card: String,
        /// The administrator's name (1-30 characters).
        #[arg(long)]
        name: String,
    },
    /// The administrators' signature keys a card holds, and their protection; without
    /// --card, the cards inserted in the module's readers (no PIN asked).
    List {
        #[arg(long)]
        card: Option<String>,
    },
    /// Change a card's user PIN (the new PIN is asked twice, or read from the passwords
    /// file as '<token label>.card-new: <PIN>').
    PinChange {
        #[arg(long)]
        card: String,
    },
}

/// Runs `strongroom card …`.
pub fn card(a: CardArgs) -> Result<(), Error> {
    let p = AwsLcProvider;
    let pw = Passwords::load(a.passwords.as_deref())?;
    let open = |uri: &str| -> Result<Card, Error> {
        let uri: CardUri = uri.parse()?;
        let module = module_path(a.pkcs11_module.as_deref(), &uri)?;
        Card::open(&module, &uri, || pin(&pw, &uri))
    };
    match &a.cmd {
        CardCmd::Init { card, name } => {
            let name = name.trim();
            let c = open(card)?;
            let key = c.generate_sigkey(&p, name)?;
            let ski = hex::encode(key.ski);
            print(
                a.output,
                format!(
                    "card {}: signature key of {name} generated on the card (ECDSA P-256, never extractable)\n  SKI {ski}\ninstall it with `strongroom tke cryptounit-admin-add {}`",
                    c.uri(),
                    c.uri()
                ),
                &json!({"card": c.uri().to_string(), "name": name, "alg": "ecdsa-p256-sha256", "ski": ski}),
            );
        }
        CardCmd::List { card: None } => {
            let module = a.pkcs11_module.clone().ok_or_else(|| {
                Error::usage("give --pkcs11-module (or STRONGROOM_PKCS11_MODULE) to list its cards")
            })?;
            let cards = super::inserted(&module)?;
            let human = if cards.is_empty() {
                "no card inserted".to_string()
            } else {
                cards
                    .iter()
                    .map(|c| {
                        format!(
                            "pkcs11:token={}  serial {}  ({} {})",
                            super::uri::encode(&c.label),
                            c.serial,
                            c.manufacturer,
                            c.model
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let rows: Vec<_> = cards
                .iter()
                .map(|c| json!({"label": c.label, "serial": c.serial, "manufacturer": c.manufacturer, "model": c.model}))
                .collect();
            print(a.output, human, &json!({"cards": rows}));
        }
        CardCmd::List { card: Some(card) } => {
            let c = open(card)?;
            let mut rows = Vec::new();
            let mut human = format!("card {}:", c.uri());
            for name in c.sigkey_names()? {
                let Some(key) = c.sigkey(&p, &name)? else {
                    continue;
                };
                let (sensitive, extractable) = c.protection(&key)?;
                human.push_str(&format!(
                    "\n  signature key of {name}  SKI {}  {}",
                    hex::encode(key.ski),
                    if sensitive && !extractable {
                        "sensitive, never extractable"
                    } else {
                        "WARNING: readable from the card"
                    }
                ));
                rows.push(json!({"name": name, "ski": hex::encode(key.ski), "sensitive": sensitive, "extractable": extractable}));
            }
            if rows.is_empty() {
                human.push_str("\n  no administrator signature key (`strongroom card init`)");
            }
            print(
                a.output,
                human,
                &json!({"card": c.uri().to_string(), "sigkeys": rows}),
            );
        }
        CardCmd::PinChange { card } => {
            let uri: CardUri = card.parse()?;
            let module = module_path(a.pkcs11_module.as_deref(), &uri)?;
            let mut old = None;
            let c = Card::open(&module, &uri, || {
                let p = pin(&pw, &uri)?;
                old = Some(p.clone());
                Ok(p)
            })?;
            let old = old.unwrap_or_default();
            let label = format!("{}.card-new", uri.token_name());
            let new = pw.get(&label, "New PIN: ")?;
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) || pw.has(&label) {
                // From the passwords file: no second entry to compare.
            } else {
                let again = pw.get(&label, "Repeat the new PIN: ")?;
                if again != new {
                    return Err(Error::check("the PINs differ; nothing changed"));
                }
            }
            c.change_pin(&old, &new)?;
            print(
                a.output,
                format!("card {uri}: PIN changed"),
                &json!({"card": uri.to_string(), "pin_changed": true}),
            );
        }
    }
    Ok(())
}
