//! Workstation-only commands: signature key and key part files.

use super::*;
use crate::error::Error;

/// Runs a command that needs only the workstation (signature keys, key parts); `false`
/// when `cmd` needs a server.
pub(super) fn workstation_command(
    cmd: &TkeCmd,
    p: &AwsLcProvider,
    dir: &std::path::Path,
    pw: &Passwords,
    ws: &mut Workstation,
    out: Output,
    module: Option<&std::path::Path>,
) -> Result<bool, Error> {
    match cmd {
        TkeCmd::Sigkeys => {
            let files = files::list(dir, "sigkey")?;
            let mut rows = Vec::new();
            let mut human = format!("signature keys in {}:\n", dir.display());
            for (n, f) in files.iter().enumerate() {
                let name = files::file_name(f);
                let h = match files::read(f) {
                    Ok(f) => f.header,
                    Err(e) => {
                        match files::hpcs_ski(f) {
                            Some(ski) => {
                                human.push_str(&format!(
                                "  {:>2}  {:<24} {:<18} {ski} (HPCS file: re-protected when first used)\n",
                                n + 1,
                                name,
                                "p521ec"
                            ));
                                rows.push(json!({"number": n + 1, "file": name, "hpcs": true, "ski": ski}));
                                continue;
                            }
                            None => return Err(e),
                        }
                    }
                };
                let sel = if ws.sigkeys.contains(&name) {
                    "SELECTED"
                } else {
                    ""
                };
                human.push_str(&format!(
                    "  {:>2}  {:<24} {:<18} {} {sel}\n",
                    n + 1,
                    h.name,
                    h.alg.clone().unwrap_or_default(),
                    h.ski.clone().unwrap_or_default()
                ));
                rows.push(json!({"number": n + 1, "file": name, "name": h.name, "alg": h.alg, "ski": h.ski, "selected": !sel.is_empty()}));
            }
            for card in ws.sigkeys.iter().filter(|k| k.starts_with("pkcs11:")) {
                human.push_str(&format!("      {card:<43} (a card) SELECTED\n"));
                rows.push(json!({"card": card, "selected": true}));
            }
            print(out, human.trim_end().into(), &json!({"sigkeys": rows}));
            Ok(true)
        }
        TkeCmd::SigkeyAdd {
            name,
            card: Some(card),
            alg,
            ..
        } => {
            // --alg keeps its default (ed25519) unless given: a card's key is always P-256.
            if SigAlg::parse(alg) != Some(SigAlg::EcdsaP256Sha256) && alg != "ed25519" {
                return Err(Error::usage(
                    "a card's signature key is ecdsa-p256-sha256 (leave --alg out with --card)",
                ));
            }
            let uri: crate::card::CardUri = card.parse()?;
            let module = crate::card::module_path(module, &uri)?;
            let c = crate::card::Card::open(&module, &uri, || crate::card::pin(pw, &uri))?;
            let copyable = c.certificate()?.is_some();
            let key = c.generate_sigkey(p, name.trim(), copyable)?;
            let pr = c.protection(&key)?;
            print(
                out,
                format!(
                    "created the signature key of {} on card {uri} (ECDSA P-256, {})\n  SKI {}",
                    name.trim(),
                    pr.describe(),
                    hex::encode(key.ski)
                ),
                &json!({"card": uri.to_string(), "name": name.trim(), "ski": hex::encode(key.ski)}),
            );
            Ok(true)
        }
        TkeCmd::SigkeyAdd {
            name,
            card: None,
            alg,
            kdf_memory_mib,
        } => {
            let alg = SigAlg::parse(alg).ok_or_else(|| {
                Error::usage("unknown algorithm: ed25519, ecdsa-p256-sha256 or ecdsa-p521-sha512")
            })?;
            let (file, ski) = create_sigkey(p, dir, pw, name, alg, *kdf_memory_mib)?;
            print(
                out,
                format!(
                    "created signature key {file} for administrator {}\n  SKI {ski}",
                    name.trim()
                ),
                &json!({"file": file, "ski": ski}),
            );
            Ok(true)
        }
        TkeCmd::SigkeyRm { key } => {
            let path = files::resolve(dir, "sigkey", key)?;
            std::fs::remove_file(&path).map_err(Error::from)?;
            ws.sigkeys.retain(|f| *f != files::file_name(&path));
            ws.save(dir)?;
            print(
                out,
                format!("deleted {}", path.display()),
                &json!({"deleted": path.display().to_string()}),
            );
            Ok(true)
        }
        TkeCmd::SigkeySel { keys } => {
            ws.sigkeys.clear();
            for k in keys {
                if k.starts_with("pkcs11:") {
                    // Check the card and its PIN now, as for a file's password.
                    let (_, held) = super::session::open_card(p, module, pw, k)?;
                    eprintln!(
                        "card {k}: signature keys of {}",
                        held.iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    if !ws.sigkeys.contains(k) {
                        ws.sigkeys.push(k.clone());
                    }
                    continue;
                }
                let path = files::resolve(dir, "sigkey", k)?;
                let name = files::file_name(&path);
                // Check the password now, as TKE does, so a typo shows up here.
                let password = pw.get(&name, &format!("Password for {name}: "))?;
                files::open_sigkey(p, &path, password.as_bytes())?;
                if !ws.sigkeys.contains(&name) {
                    ws.sigkeys.push(name);
                }
            }
            ws.save(dir)?;
            print(
                out,
                format!("selected signature keys: {}", ws.sigkeys.join(", ")),
                &json!({"selected_sigkeys": ws.sigkeys}),
            );
            Ok(true)
        }
        TkeCmd::Mks => {
            let files = files::list(dir, "mkpart")?;
            let mut rows = Vec::new();
            let mut human = format!("master key parts in {}:\n", dir.display());
            for (n, f) in files.iter().enumerate() {
                let h = match files::read(f) {
                    Ok(f) => f.header,
                    Err(_) if files::is_hpcs_part(f) => {
                        let name = files::file_name(f);
                        human.push_str(&format!(
                            "  {:>2}  {:<30} (HPCS file: re-protected when first used)\n",
                            n + 1,
                            name
                        ));
                        rows.push(json!({"number": n + 1, "file": name, "hpcs": true}));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                human.push_str(&format!(
                    "  {:>2}  {:<30} part VP {}\n",
                    n + 1,
                    h.name,
                    h.part_vp.clone().unwrap_or_default()
                ));
                rows.push(json!({"number": n + 1, "file": files::file_name(f), "description": h.name, "part_vp": h.part_vp}));
            }
            print(out, human.trim_end().into(), &json!({"parts": rows}));
            Ok(true)
        }
        TkeCmd::MkAdd {
            card: Some(card),
            description,
            ..
        } => {
            let uri: crate::card::CardUri = card.parse()?;
            let module = crate::card::module_path(module, &uri)?;
            let c = crate::card::Card::open(&module, &uri, || crate::card::pin(pw, &uri))?;
            let (_, zone, _) = c.certified(p)?;
            let name = description.trim();
            c.generate_part(p, name)?;
            let pr = c.part_protection(name)?;
            if !pr.safe() {
                return Err(Error::other(format!(
                    "card {uri}: the part it generated is readable ({pr:?}); do not use this card for key parts"
                )));
            }
            print(
                out,
                format!(
                    "created key part {name} on card {uri} (AES-256, sensitive; it leaves the card only wrapped for a unit the card trusts, or for a card of zone {})\nuse it with `strongroom tke cryptounit-mk-load --card 'pkcs11:token={};object={}'`",
                    zone.name,
                    crate::card::uri::encode(c.label()),
                    crate::card::uri::encode(name)
                ),
                &json!({"card": uri.to_string(), "part": name, "zone": zone.name}),
            );
            Ok(true)
        }
        TkeCmd::MkAdd {
            card: None,
            random,
            value,
            description,
            kdf_memory_mib,
        } => {
            let d = description.trim();
            if d.is_empty()
                || d.len() > 60
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(Error::other("a description is 1-60 characters: letters, digits, '-', '_', '.' (it is also the file name)"));
            }
            let file = format!("{d}.mkpart");
            let path = dir.join(&file);
            if path.exists() {
                return Err(Error::other(format!("{} already exists", path.display())));
            }
            let mut part = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            match (random, value) {
                (true, _) => p
                    .fill_random(part.as_mut())
                    .map_err(|_| Error::other("random generator failed"))?,
                (false, Some(v)) => {
                    let text = Zeroizing::new(if v == "-" {
                        let mut s = String::new();
                        std::io::stdin().read_line(&mut s).map_err(Error::from)?;
                        s
                    } else {
                        v.clone()
                    });
                    let bytes = Zeroizing::new(
                        hex::decode(text.trim())
                            .map_err(|_| Error::usage("the value must be 64 hex digits"))?,
                    );
                    if bytes.len() != MASTER_KEY_LEN {
                        return Err(Error::usage("the value must be 64 hex digits (32 bytes)"));
                    }
                    part.copy_from_slice(&bytes);
                }
                (false, None) => return Err(Error::usage("give --random or --value")),
            }
            if part.iter().all(|b| *b == 0) {
                return Err(Error::other("an all-zero part is refused"));
            }
            let vp = strongroom_engine::admin::part_vp_of(p, &part)
                .map_err(|_| Error::check("verification pattern failed"))?;
            let password = pw.new_password(&file, &format!("key part {d}"))?;
            let mut h = files::new_header(files::MKPART_FORMAT, d);
            h.part_vp = Some(vp.to_hex());
            let f = files::seal(p, h, password.as_bytes(), *kdf_memory_mib, part.as_ref())?;
            files::write(&path, &f)?;
            print(
                out,
                format!("created key part {file}\n  part VP {}", vp.to_hex()),
                &json!({"file": file, "part_vp": vp.to_hex()}),
            );
            Ok(true)
        }
        TkeCmd::MkRm { part } => {
            let path = files::resolve(dir, "mkpart", part)?;
            std::fs::remove_file(&path).map_err(Error::from)?;
            print(
                out,
                format!("deleted {}", path.display()),
                &json!({"deleted": path.display().to_string()}),
            );
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Creates administrator `name`'s signature key in `dir` (`<name>.sigkey`), its password
/// from the passwords file or asked twice on the terminal. Returns the file name and the
/// key's SKI in hex.
pub(super) fn create_sigkey(
    p: &AwsLcProvider,
    dir: &std::path::Path,
    pw: &Passwords,
    name: &str,
    alg: SigAlg,
    kdf_memory_mib: u32,
) -> Result<(String, String), Error> {
    let n = name.trim();
    if n.is_empty()
        || n.chars().count() > 30
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(Error::usage(
            "an administrator name is 1-30 characters: letters, digits, '-', '_', '.'",
        ));
    }
    let file = format!("{n}.sigkey");
    let path = dir.join(&file);
    if path.exists() {
        return Err(Error::usage(format!("{} already exists", path.display())));
    }
    let password = pw.new_password(&file, &format!("the signature key of {n}"))?;
    let (pkcs8, public) = p
        .sig_generate(alg)
        .map_err(|_| Error::other("key generation failed"))?;
    let ski = strongroom_engine::admin::ski_of(p, alg, &public);
    let mut h = files::new_header(files::SIGKEY_FORMAT, n);
    h.alg = Some(alg.name().into());
    h.public_key = Some(B64.encode(&public));
    h.ski = Some(hex::encode(ski));
    let f = files::seal(p, h, password.as_bytes(), kdf_memory_mib, &pkcs8)?;
    files::write(&path, &f)?;
    Ok((file, hex::encode(ski)))
}
