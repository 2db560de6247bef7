//! `strongroom card …`: the Management Utilities' flows for the administrators' cards.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use strongroom_crypto_awslc::AwsLcProvider;

use strongroom_engine::admin::{ski_of, Zone};
use strongroom_engine::SigAlg;

use super::zone::b64;
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
    /// Create a card zone: generate the zone CA key on a CA card (ECDSA P-256, never
    /// extractable). The CA card needs both of its PINs: the security officer's, then the
    /// user's. Units trust the zone with `strongroom tke cryptounit-zone-trust --ca <URI>`.
    ZoneCreate {
        /// The CA card, as a pkcs11: URI.
        #[arg(long)]
        ca: String,
        /// The zone's name (1-30 characters).
        #[arg(long)]
        zone: String,
    },
    /// Make a backup CA card: a second CA key of the zone, on another card. The zone then
    /// lists both keys; cards certified by either belong to it. Run
    /// `tke cryptounit-zone-trust` again so that units know the backup CA.
    CaBackup {
        /// The zone's CA card.
        #[arg(long)]
        ca: String,
        /// The backup CA card.
        #[arg(long)]
        backup: String,
    },
    /// Make a card an EP11 card: certify it in a zone (--ca: the card's own keys are
    /// generated on it and the zone CA card certifies them), and/or generate an
    /// administrator's signature key on it (--name; ECDSA P-256, private, sensitive). On a
    /// card of a zone the signature key can be copied to the zone's cards (`card copy`),
    /// wrapped under a key the card's security officer trusts; otherwise it never leaves
    /// the card. Then `strongroom tke cryptounit-admin-add <card URI>` installs the
    /// administrator.
    Init {
        /// The card, as a pkcs11: URI (pkcs11:token=<label>).
        #[arg(long)]
        card: String,
        /// The administrator's name (1-30 characters).
        #[arg(long, required_unless_present = "ca")]
        name: Option<String>,
        /// The zone's CA card, which certifies this card (its two PINs are asked).
        #[arg(long)]
        ca: Option<String>,
        /// Make the signature key never extractable even on a card of a zone: it can then
        /// never be copied; its backup is another administrator's key on another card.
        #[arg(long, requires = "name")]
        never_extractable: bool,
    },
    /// Copy a card's key parts and signature keys to another card of the same zone,
    /// encrypted card to card: the source's security officer authorises it, the target's
    /// officer then trusts the units the source trusts. A card outside the zone is refused.
    Copy {
        /// The source card.
        #[arg(long)]
        from: String,
        /// The target card, certified in the same zone.
        #[arg(long)]
        to: String,
    },
    /// What a card holds: administrators' signature keys and key parts with their
    /// protection, its zone, the units it trusts; without --card, the cards inserted in the
    /// module's readers (no PIN asked).
    List {
        #[arg(long)]
        card: Option<String>,
    },
    /// Change a card's user PIN (the new PIN is asked twice, or read from the passwords
    /// file as '<token label>.card-new: <PIN>'), or with --officer its security officer's
    /// PIN ('<token label>.card-so-new: <PIN>').
    PinChange {
        #[arg(long)]
        card: String,
        /// Change the security officer's PIN instead of the user's.
        #[arg(long)]
        officer: bool,
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
        CardCmd::ZoneCreate { ca, zone } => {
            let uri: CardUri = ca.parse()?;
            let c = super::open_ca(&module_path(a.pkcs11_module.as_deref(), &uri)?, &uri, &pw)?;
            if let Some(z) = c.zone()? {
                return Err(Error::other(format!(
                    "card {uri} already records zone {}: a CA card serves one zone",
                    z.name
                )));
            }
            let point = c.generate_ca(zone)?;
            let z = Zone {
                name: zone.clone(),
                ca_keys: vec![b64(&point)],
            };
            c.set_zone(&z)?;
            let ski = hex::encode(ski_of(&p, SigAlg::EcdsaP256Sha256, &point));
            print(
                a.output,
                format!("zone {zone} created: its CA key was generated on card {uri} (never extractable)\n  CA SKI {ski}\nnext: `strongroom card init --card <card> --ca {uri}` for each EP11 card, and `strongroom tke cryptounit-zone-trust --ca {uri}` for the units"),
                &json!({"zone": z, "ca_card": uri.to_string(), "ca_ski": ski}),
            );
        }
        CardCmd::CaBackup { ca, backup } => {
            let uri: CardUri = ca.parse()?;
            let c = super::open_ca(&module_path(a.pkcs11_module.as_deref(), &uri)?, &uri, &pw)?;
            let mut z = c.zone()?.ok_or_else(|| {
                Error::other(format!(
                    "card {uri} is not a zone CA card (`strongroom card zone-create`)"
                ))
            })?;
            if c.ca_key(&z.name)?.is_none() {
                return Err(Error::other(format!(
                    "card {uri} does not hold the CA key of zone {}",
                    z.name
                )));
            }
            let buri: CardUri = backup.parse()?;
            let b = super::open_ca(&module_path(a.pkcs11_module.as_deref(), &buri)?, &buri, &pw)?;
            if let Some(other) = b.zone()? {
                return Err(Error::other(format!(
                    "card {buri} already records zone {}: use an empty card as the backup CA card",
                    other.name
                )));
            }
            let point = b.generate_ca(&z.name)?;
            z.ca_keys.push(b64(&point));
            z.validate().map_err(Error::other)?;
            c.set_zone(&z)?;
            b.set_zone(&z)?;
            let ski = hex::encode(ski_of(&p, SigAlg::EcdsaP256Sha256, &point));
            print(
                a.output,
                format!("backup CA card {buri} of zone {}: CA SKI {ski}\nthe zone now has {} CA keys; run `strongroom tke cryptounit-zone-trust --ca {uri}` so that the units know it", z.name, z.ca_keys.len()),
                &json!({"zone": z, "backup_card": buri.to_string(), "ca_ski": ski}),
            );
        }
        CardCmd::Init {
            card,
            name,
            ca,
            never_extractable,
        } => {
            let c = open(card)?;
            let mut lines = Vec::new();
            let mut zone_name = None;
            if let Some(ca) = ca {
                let curi: CardUri = ca.parse()?;
                let cac =
                    super::open_ca(&module_path(a.pkcs11_module.as_deref(), &curi)?, &curi, &pw)?;
                let z = cac.zone()?.ok_or_else(|| {
                    Error::other(format!(
                        "card {curi} is not a zone CA card (`strongroom card zone-create`)"
                    ))
                })?;
                if let Ok((_, existing, _)) = c.certified(&p) {
                    if existing.name != z.name {
                        return Err(Error::other(format!(
                            "card {} is certified in zone {}, not {}: a card belongs to one zone",
                            c.uri(),
                            existing.name,
                            z.name
                        )));
                    }
                }
                let body = c.cert_body(&p, &z.name)?;
                let cert = cac.certify(&p, &body)?;
                c.set_certificate(&cert, &z)?;
                c.certified(&p)?;
                lines.push(format!(
                    "card {} certified in zone {} by CA card {curi}",
                    c.uri(),
                    z.name
                ));
                zone_name = Some(z.name);
            }
            let mut out = json!({"card": c.uri().to_string(), "zone": zone_name});
            if let Some(name) = name {
                let name = name.trim();
                let copyable = c.certificate()?.is_some() && !never_extractable;
                let key = c.generate_sigkey(&p, name, copyable)?;
                let ski = hex::encode(key.ski);
                lines.push(format!(
                    "signature key of {name} generated on the card (ECDSA P-256, {})\n  SKI {ski}\ninstall it with `strongroom tke cryptounit-admin-add {}`",
                    if copyable { "sensitive; it leaves the card only wrapped for a card of its zone" } else { "never extractable" },
                    c.uri()
                ));
                out["name"] = json!(name);
                out["alg"] = json!("ecdsa-p256-sha256");
                out["ski"] = json!(ski);
                out["copyable"] = json!(copyable);
            }
            print(a.output, lines.join("\n"), &out);
        }
        CardCmd::Copy { from, to } => {
            let suri: CardUri = from.parse()?;
            let turi: CardUri = to.parse()?;
            let target = open(to)?;
            let source =
                Card::open_public(&module_path(a.pkcs11_module.as_deref(), &suri)?, &suri)?;
            let copied = super::copy::copy(
                &p,
                &source,
                || super::officer_pin(&pw, &suri),
                || pin(&pw, &suri),
                &target,
            )?;
            // The target's officer trusts the units the source trusts.
            let units = source.trusted_units()?;
            if !units.is_empty() {
                target.login(super::Role::Officer, || super::officer_pin(&pw, &turi))?;
                for u in &units {
                    target.trust_unit(u.unit, &u.spki)?;
                }
                target.logout();
            }
            source.logout();
            let list = |what: &str, v: &[String]| {
                if v.is_empty() {
                    format!("no {what}")
                } else {
                    format!("{what} {}", v.join(", "))
                }
            };
            let skipped: Vec<String> = copied
                .skipped
                .iter()
                .map(|l| {
                    l.strip_prefix(super::zone::PART_LABEL)
                        .map(|n| format!("key part {n}"))
                        .or_else(|| {
                            l.strip_prefix(super::SIGKEY_LABEL)
                                .map(|n| format!("signature key of {n}"))
                        })
                        .unwrap_or_else(|| l.clone())
                })
                .collect();
            let human = format!(
                "card {suri} copied to card {turi}: {}; {}; the target trusts {} unit(s){}",
                list("key parts", &copied.parts),
                list("signature keys", &copied.sigkeys),
                units.len(),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\nalready on the target, left as they were: {}",
                        skipped.join(", ")
                    )
                }
            );
            print(
                a.output,
                human,
                &json!({"from": suri.to_string(), "to": turi.to_string(), "parts": copied.parts, "sigkeys": copied.sigkeys, "skipped": copied.skipped, "units": units.iter().map(|u| u.unit.to_string()).collect::<Vec<_>>()}),
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
            let mut human = format!("card {} (serial {}):", c.uri(), c.serial());
            for name in c.sigkey_names()? {
                let Some(key) = c.sigkey(&p, &name)? else {
                    continue;
                };
                let pr = c.protection(&key)?;
                human.push_str(&format!(
                    "\n  signature key of {name}  SKI {}  {}",
                    hex::encode(key.ski),
                    pr.describe()
                ));
                rows.push(json!({"name": name, "ski": hex::encode(key.ski), "sensitive": pr.sensitive, "extractable": pr.extractable, "wrap_with_trusted": pr.wrap_with_trusted}));
            }
            if rows.is_empty() {
                human.push_str("\n  no administrator signature key (`strongroom card init`)");
            }
            let zone = match c.certified(&p) {
                Ok((_, z, _)) => {
                    human.push_str(&format!("\n  certified in zone {}", z.name));
                    Some(z.name)
                }
                Err(_) => None,
            };
            let ca_zone = c
                .zone()?
                .filter(|z| c.ca_key(&z.name).ok().flatten().is_some());
            if let Some(z) = &ca_zone {
                human.push_str(&format!(
                    "\n  CA card of zone {} ({} CA key(s) in the zone)",
                    z.name,
                    z.ca_keys.len()
                ));
            }
            let mut parts = Vec::new();
            for name in c.parts()? {
                let pr = c.part_protection(&name)?;
                human.push_str(&format!(
                    "\n  key part {name}  {}",
                    if pr.safe() {
                        "sensitive; leaves the card only wrapped for a trusted unit or a card of its zone"
                    } else {
                        "WARNING: readable from the card"
                    }
                ));
                parts.push(json!({"name": name, "sensitive": pr.sensitive, "extractable": pr.extractable, "wrap_with_trusted": pr.wrap_with_trusted}));
            }
            let units: Vec<String> = c
                .trusted_units()?
                .iter()
                .map(|u| u.unit.to_string())
                .collect();
            for u in &units {
                human.push_str(&format!("\n  trusts unit {u}"));
            }
            print(
                a.output,
                human,
                &json!({"card": c.uri().to_string(), "serial": c.serial(), "sigkeys": rows, "zone": zone, "ca_zone": ca_zone.map(|z| z.name), "parts": parts, "units": units}),
            );
        }
        CardCmd::PinChange { card, officer } => {
            let uri: CardUri = card.parse()?;
            let module = module_path(a.pkcs11_module.as_deref(), &uri)?;
            let mut old = None;
            let (role, suffix) = if *officer {
                (super::Role::Officer, "card-so")
            } else {
                (super::Role::User, "card")
            };
            let c = Card::open_as(&module, &uri, role, || {
                let p = if *officer {
                    super::officer_pin(&pw, &uri)?
                } else {
                    pin(&pw, &uri)?
                };
                old = Some(p.clone());
                Ok(p)
            })?;
            let old = old.unwrap_or_default();
            let label = format!("{}.{suffix}-new", uri.token_name());
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
            c.logout();
            let who = if *officer {
                "security officer's PIN"
            } else {
                "PIN"
            };
            print(
                a.output,
                format!("card {uri}: {who} changed"),
                &json!({"card": uri.to_string(), "pin_changed": true, "officer": officer}),
            );
        }
    }
    Ok(())
}
