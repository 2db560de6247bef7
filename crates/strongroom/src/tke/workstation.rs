//! Workstation-only commands: signature key and key part files.

use super::*;

/// Runs a command that needs only the workstation (signature keys, key parts); `false`
/// when `cmd` needs a server.
pub(super) fn workstation_command(
    cmd: &TkeCmd,
    p: &AwsLcProvider,
    dir: &std::path::Path,
    pw: &Passwords,
    ws: &mut Workstation,
    out: Output,
) -> Result<bool, String> {
    match cmd {
        TkeCmd::Sigkeys => {
            let files = files::list(dir, "sigkey")?;
            let mut rows = Vec::new();
            let mut human = format!("signature keys in {}:\n", dir.display());
            for (n, f) in files.iter().enumerate() {
                let h = files::read(f)?.header;
                let name = files::file_name(f);
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
            print(out, human.trim_end().into(), &json!({"sigkeys": rows}));
            Ok(true)
        }
        TkeCmd::SigkeyAdd {
            name,
            alg,
            kdf_memory_mib,
        } => {
            let alg = SigAlg::parse(alg)
                .ok_or("unknown algorithm: ed25519, ecdsa-p256-sha256 or ecdsa-p521-sha512")?;
            let n = name.trim();
            if n.is_empty()
                || n.chars().count() > 30
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(
                    "an administrator name is 1-30 characters: letters, digits, '-', '_', '.'"
                        .into(),
                );
            }
            let file = format!("{n}.sigkey");
            let path = dir.join(&file);
            if path.exists() {
                return Err(format!("{} already exists", path.display()));
            }
            let password = pw.new_password(&file, &format!("the signature key of {n}"))?;
            let (pkcs8, public) = p.sig_generate(alg).map_err(|_| "key generation failed")?;
            let ski = strongroom_engine::admin::ski_of(p, alg, &public);
            let mut h = files::new_header(files::SIGKEY_FORMAT, n);
            h.alg = Some(alg.name().into());
            h.public_key = Some(B64.encode(&public));
            h.ski = Some(hex::encode(ski));
            let f = files::seal(p, h, password.as_bytes(), *kdf_memory_mib, &pkcs8)?;
            files::write(&path, &f)?;
            print(
                out,
                format!(
                    "created signature key {file} for administrator {n}\n  SKI {}",
                    hex::encode(ski)
                ),
                &json!({"file": file, "ski": hex::encode(ski)}),
            );
            Ok(true)
        }
        TkeCmd::SigkeyRm { key } => {
            let path = files::resolve(dir, "sigkey", key)?;
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
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
                let h = files::read(f)?.header;
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
                return Err("a description is 1-60 characters: letters, digits, '-', '_', '.' (it is also the file name)".into());
            }
            let file = format!("{d}.mkpart");
            let path = dir.join(&file);
            if path.exists() {
                return Err(format!("{} already exists", path.display()));
            }
            let mut part = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            match (random, value) {
                (true, _) => p
                    .fill_random(part.as_mut())
                    .map_err(|_| "random generator failed")?,
                (false, Some(v)) => {
                    let text = Zeroizing::new(if v == "-" {
                        let mut s = String::new();
                        std::io::stdin()
                            .read_line(&mut s)
                            .map_err(|e| e.to_string())?;
                        s
                    } else {
                        v.clone()
                    });
                    let bytes = Zeroizing::new(
                        hex::decode(text.trim()).map_err(|_| "the value must be 64 hex digits")?,
                    );
                    if bytes.len() != MASTER_KEY_LEN {
                        return Err("the value must be 64 hex digits (32 bytes)".into());
                    }
                    part.copy_from_slice(&bytes);
                }
                (false, None) => return Err("give --random or --value".into()),
            }
            if part.iter().all(|b| *b == 0) {
                return Err("an all-zero part is refused".into());
            }
            let vp = strongroom_engine::admin::part_vp_of(p, &part)
                .map_err(|_| "verification pattern failed")?;
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
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
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
