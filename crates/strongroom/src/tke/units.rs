//! Commands to the selected crypto units: administrators, thresholds, roster, master key
//! registers, rotation, zeroize, auto-init and recovery.

use super::*;
use crate::error::Error;

/// Runs a command against the selected crypto units.
pub(super) async fn unit_command(
    t: &mut Tke,
    cmd: TkeCmd,
    instance: InstanceId,
) -> Result<(), Error> {
    match cmd {
        TkeCmd::Cryptounits => {
            let units = t.discover().await?;
            let mut human = format!("crypto units of instance {instance}:\n");
            for (n, u) in units.iter().enumerate() {
                let sel = if t.ws.units.contains(&u.id.to_string()) {
                    "SELECTED"
                } else {
                    ""
                };
                human.push_str(&format!(
                    "  {:>2}  {}  {:<11} {:<8} current {:<5} zone {:<10} {} {sel}\n",
                    n + 1,
                    u.id,
                    format!("{:?}", u.status.kind).to_lowercase(),
                    format!("{:?}", u.status.mode).to_lowercase(),
                    u.status.current.state,
                    u.zone.as_deref().unwrap_or("-"),
                    u.url
                ));
            }
            let v: Vec<serde_json::Value> = units
                .iter()
                .map(|u| json!({"unit": u.id, "url": u.url, "zone": u.zone, "status": u.status}))
                .collect();
            print(t.out, human.trim_end().into(), &json!({"units": v}));
        }
        TkeCmd::CryptounitAdd { units, all } => {
            let found = t.discover().await?;
            let pick: Vec<String> = if all {
                found.iter().map(|u| u.id.to_string()).collect()
            } else {
                let mut v = Vec::new();
                for r in &units {
                    let u = match r.parse::<usize>() {
                        Ok(n) => found.get(n.wrapping_sub(1)),
                        Err(_) => found.iter().find(|u| u.id.to_string() == *r),
                    }
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "no crypto unit '{r}' (see `strongroom tke cryptounits`)"
                        ))
                    })?;
                    v.push(u.id.to_string());
                }
                v
            };
            // A selection covers the units of one instance.
            t.ws.units
                .retain(|id| found.iter().any(|u| u.id.to_string() == *id));
            for id in pick {
                if !t.ws.units.contains(&id) {
                    t.ws.units.push(id);
                }
            }
            t.ws.save(&t.dir)?;
            print(
                t.out,
                format!("selected units: {}", t.ws.units.join(", ")),
                &json!({"selected_units": t.ws.units}),
            );
        }
        TkeCmd::CryptounitRm { units } => {
            let found = t.discover().await?;
            t.ws.units
                .retain(|id| found.iter().any(|u| u.id.to_string() == *id));
            for r in &units {
                let id = match r.parse::<usize>() {
                    Ok(n) => found.get(n.wrapping_sub(1)).map(|u| u.id.to_string()),
                    Err(_) => Some(r.clone()),
                };
                if let Some(id) = id {
                    t.ws.units.retain(|u| *u != id);
                }
            }
            t.ws.save(&t.dir)?;
            print(
                t.out,
                format!("selected units: {}", t.ws.units.join(", ")),
                &json!({"selected_units": t.ws.units}),
            );
        }
        TkeCmd::CryptounitAdmins => {
            let units = t.selected().await?;
            t.print_units(&units, "admins");
        }
        TkeCmd::CryptounitThrhlds => {
            let units = t.selected().await?;
            t.print_units(&units, "thresholds");
        }
        TkeCmd::CryptounitMk => {
            let units = t.selected().await?;
            t.print_units(&units, "registers");
        }
        TkeCmd::CryptounitAdminAdd { sigkey } => {
            let mut units = t.selected().await?;
            let (cmds, installed) = admin_add_signed(t, instance, &units, &sigkey)?;
            if t.each(&mut units, cmds, None).await? {
                return Ok(());
            }
            installed.print(t.out);
        }
        TkeCmd::CryptounitAdminRm { admin } => {
            let mut units = t.selected().await?;
            let mut steps = Vec::new();
            for u in &units {
                let a = u
                    .status
                    .admins
                    .iter()
                    .find(|a| a.name == admin || a.ski == admin.to_lowercase())
                    .ok_or_else(|| {
                        Error::other(format!("unit {} has no administrator '{admin}'", u.short()))
                    })?;
                steps.push(Some(Cmd::AdminRemove { ski: a.ski.clone() }));
            }
            if t.each(&mut units, steps, None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("administrator {admin} removed"),
                &json!({"removed_admin": admin}),
            );
        }
        TkeCmd::CryptounitThrhldSet {
            signature_threshold,
            revocation_threshold,
        } => {
            let mut units = t.selected().await?;
            let cmd = Cmd::SetThresholds {
                sign: signature_threshold,
                revoke: revocation_threshold,
            };
            let n = units.len();
            if t.each(&mut units, vec![Some(cmd); n], None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("thresholds set: signature {signature_threshold}, revocation {revocation_threshold}"),
                &json!({"signature_threshold": signature_threshold, "revocation_threshold": revocation_threshold}),
            );
        }
        TkeCmd::CryptounitRosterSet => {
            let mut units = t.selected().await?;
            let roster = Tke::roster(&units);
            let cmd = Cmd::SetRoster { units: roster };
            let n = units.len();
            if t.each(&mut units, vec![Some(cmd); n], None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("roster of {} unit(s) installed", units.len()),
                &json!({"roster_units": units.len()}),
            );
        }
        TkeCmd::CryptounitZoneTrust { ca } => t.zone_trust(&ca).await?,
        TkeCmd::CryptounitZoneForget { zone } => t.zone_forget(&zone).await?,
        TkeCmd::CryptounitCardEnroll { card } => t.card_enroll(&card).await?,
        TkeCmd::CryptounitMkLoad { parts, cards } => {
            let total = parts.len() + cards.len();
            if !(2..=3).contains(&total) {
                return Err(Error::usage(format!(
                    "a master key is loaded from 2 or 3 key parts (files and --card), not {total}"
                )));
            }
            let mut units = t.selected().await?;
            if t.plan_or(
                units
                    .iter()
                    .flat_map(|u| {
                        [
                            Tke::step(u, &Cmd::GenImporter),
                            Tke::step(
                                u,
                                &Cmd::LoadNew {
                                    importer: String::new(),
                                    parts: vec![],
                                    card_parts: vec![],
                                },
                            ),
                        ]
                    })
                    .collect(),
            ) {
                return Ok(());
            }
            let part_cards = t.part_cards(&cards)?;
            cards::check_zones(t, &part_cards, &units)?;
            let mut values = Vec::new();
            for r in &parts {
                let path = files::resolve(&t.dir, "mkpart", r)?;
                let name = files::file_name(&path);
                let password =
                    t.pw.get(&name, &format!("Password for key part {name}: "))?;
                values.push(files::open_part(&t.p, &path, password.as_bytes())?);
            }
            let mut mk = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            for v in &values {
                for (a, b) in mk.iter_mut().zip(v.iter()) {
                    *a ^= b;
                }
            }
            // With card parts, only the units know the key: they show its pattern.
            let vp = if part_cards.is_empty() {
                Some(
                    vp_of(&t.p, &mk)
                        .map_err(|_| Error::check("verification pattern failed"))?
                        .to_hex(),
                )
            } else {
                None
            };
            for u in units.iter_mut() {
                let (_, id, pk) = t.importer(u).await?;
                let card_parts = cards::deliver(t, &part_cards, u, &id)?;
                let sealed = values
                    .iter()
                    .map(|v| {
                        seal_part(&t.p, instance, u.id, &id, &pk, v)
                            .map_err(|_| Error::other("sealing a part failed"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                t.send(
                    u,
                    Cmd::LoadNew {
                        importer: hex::encode(id),
                        parts: sealed,
                        card_parts,
                    },
                )
                .await?;
            }
            let shown: Vec<Option<String>> = units.iter().map(new_vp).collect();
            let first = shown.first().cloned().flatten();
            if !same_vps(&shown)
                || (vp.is_some() && !super::same_vp(first.as_deref(), vp.as_deref()))
            {
                return Err(Error::check(
                    "the units show different new master keys after the load (cryptounit-mk); clear them (cryptounit-mk-clrnew)",
                ));
            }
            let vp = shown.into_iter().next().flatten().unwrap_or_default();
            print(
                t.out,
                format!("new master key loaded (uncommitted) in {} unit(s); verification pattern {vp}\nnext: strongroom tke cryptounit-mk-commit", units.len()),
                &json!({"loaded_units": units.len(), "new_vp": vp}),
            );
        }
        TkeCmd::CryptounitMkCommit { vp } => {
            let mut units = t.selected().await?;
            let vps: Vec<Option<String>> = units.iter().map(new_vp).collect();
            if !same_vps(&vps) {
                return Err(Error::check(
                    "the selected units hold different new master keys (cryptounit-mk)",
                ));
            }
            let shown = vps.first().cloned().flatten().ok_or_else(|| {
                Error::usage(
                    "the new register is empty: load a master key first (cryptounit-mk-load)",
                )
            })?;
            if let Some(v) = vp {
                if hex32(&v)? != hex32(&shown)? {
                    return Err(Error::other(format!(
                        "the units hold new master key {shown}, not {v}: nothing committed"
                    )));
                }
            }
            let cmds = units
                .iter()
                .map(|u| {
                    (u.status.new.state != "full_committed")
                        .then(|| Cmd::Commit { vp: shown.clone() })
                })
                .collect();
            if t.each(&mut units, cmds, None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("new master key {shown} committed"),
                &json!({"committed": shown.to_string()}),
            );
        }
        TkeCmd::CryptounitMkSetimm => {
            let mut units = t.selected().await?;
            let vps: Vec<Option<String>> = units.iter().map(new_vp).collect();
            let vp = vps
                .first()
                .cloned()
                .flatten()
                .ok_or_else(|| Error::other("the new register is empty"))?;
            if !same_vps(&vps) {
                return Err(Error::check(
                    "the selected units hold different new master keys (cryptounit-mk)",
                ));
            }
            let confirm = units.iter().any(|u| u.status.current.state == "valid").then(|| "The current master key will be replaced. Keys sealed under it and not re-encrypted become unusable (the server refuses while any remain). Continue?".to_string());
            let cmds = vec![Some(Cmd::Finalize { vp: vp.clone() }); units.len()];
            if t.each(&mut units, cmds, confirm).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("master key {vp} is now current"),
                &json!({"current_vp": vp.to_string()}),
            );
        }
        TkeCmd::CryptounitMkClrnew | TkeCmd::CryptounitMkClrcur => {
            let mut units = t.selected().await?;
            let (cmd, what) = if matches!(cmd, TkeCmd::CryptounitMkClrnew) {
                (Cmd::ClearNew, "new")
            } else {
                (Cmd::ClearCurrent, "current")
            };
            let confirm = format!(
                "Clear the {what} master key register of {} unit(s)?",
                units.len()
            );
            let n = units.len();
            if t.each(&mut units, vec![Some(cmd); n], Some(confirm))
                .await?
            {
                return Ok(());
            }
            print(
                t.out,
                format!("{what} master key register cleared"),
                &json!({"cleared": what}),
            );
        }
        TkeCmd::CryptounitMkRotate { batch } => {
            let mut units = t.selected().await?;
            if t.plan_or(Tke::rotate_plan(&units)) {
                return Ok(());
            }
            t.rotate(&mut units, batch).await?;
        }
        TkeCmd::CryptounitCompare => {
            let units = t.selected().await?;
            let key = |u: &Unit| {
                let s = &u.status;
                let mut admins: Vec<String> = s.admins.iter().map(|a| a.ski.clone()).collect();
                admins.sort();
                (
                    s.mode,
                    admins,
                    s.signature_threshold,
                    s.revocation_threshold,
                    s.current.clone(),
                    s.new.clone(),
                )
            };
            let keys: Vec<_> = units.iter().map(key).collect();
            let identical = same(&keys);
            let mut human = t.units_text(&units, "registers");
            human.push('\n');
            human.push_str(&if identical {
                format!("the {} selected units are identical: same mode, administrators, thresholds and master key registers", units.len())
            } else {
                "the selected units differ (administrators, thresholds or registers): see above and cryptounit-admins / cryptounit-thrhlds".to_string()
            });
            let v: Vec<serde_json::Value> = units.iter().map(|u| json!(u.status)).collect();
            print(t.out, human, &json!({"units": v, "identical": identical}));
            if !identical {
                return Err(Error::check("the selected units differ"));
            }
        }
        TkeCmd::CryptounitZeroize { force } => {
            let mut units = t.selected().await?;
            let held = t.keys_held().await?;
            if held > 0 && !force && !t.plan {
                let selected: Vec<_> = units.iter().map(|u| u.id).collect();
                let all = t.discover().await?;
                let current = units.first().and_then(|u| u.status.current.vp.clone());
                let kept = all.iter().any(|u| {
                    !selected.contains(&u.id)
                        && super::same_vp(u.status.current.vp.as_deref(), current.as_deref())
                });
                return Err(Error::usage(format!(
                    "the instance's keystore holds {held} key(s) under the master key of the selected unit(s); {} Nothing was changed. To zeroize anyway, run again with --force",
                    if kept {
                        "another unit of the instance still holds that master key, so they stay usable there."
                    } else {
                        "no other unit holds that master key: after zeroizing, the keys cannot be used until the master key is loaded again from its key parts or a recovery unit, and are lost without them."
                    }
                )));
            }
            let confirm = format!(
                "Zeroize {} unit(s)? Their administrators, thresholds and master keys are erased{}",
                units.len(),
                if held > 0 {
                    format!(" while the keystore holds {held} key(s)")
                } else {
                    String::new()
                }
            );
            let n = units.len();
            if t.each(&mut units, vec![Some(Cmd::Zeroize); n], Some(confirm))
                .await?
            {
                return Ok(());
            }
            print(
                t.out,
                format!("{} unit(s) zeroized (imprint mode)", units.len()),
                &json!({"zeroized_units": units.len()}),
            );
        }
        TkeCmd::AutoInit {
            signature_threshold,
            revocation_threshold,
            new_admins,
        } => {
            let mut units = t.selected().await?;
            let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
            let mut new_admins = new_admins.clone();
            if new_admins.is_empty() && t.ws.sigkeys.is_empty() && interactive && !t.plan {
                let n = ask_number(
                    "No signature key is selected. How many administrators' signature keys do you want to create now? (1-8) ",
                    1,
                    8,
                )?;
                for i in 1..=n {
                    new_admins.push(ask(&format!("Name of administrator {i}: "))?);
                }
            }
            for name in &new_admins {
                if t.plan {
                    continue;
                }
                let (file, ski) = super::workstation::create_sigkey(
                    &t.p,
                    &t.dir,
                    &t.pw,
                    name,
                    SigAlg::Ed25519,
                    files::DEFAULT_M_MIB,
                )?;
                eprintln!("created signature key {file} (SKI {ski})");
                if !t.ws.sigkeys.contains(&file) {
                    t.ws.sigkeys.push(file);
                }
            }
            if !new_admins.is_empty() && !t.plan {
                t.ws.save(&t.dir)?;
                t.keys = None;
            }
            let admins = t.ws.sigkeys.len() + if t.plan { new_admins.len() } else { 0 };
            let threshold = |given: Option<u8>, what: &str| -> Result<u8, Error> {
                match given {
                    Some(v) => Ok(v),
                    None if interactive && !t.plan => ask_number(
                        &format!("{what} threshold (1-{}): ", admins.max(1)),
                        1,
                        admins.clamp(1, 8) as u8,
                    )
                    .map(|n| n as u8),
                    None => Err(Error::usage(
                        "pass --signature-threshold and --revocation-threshold (or run on a terminal to be asked)",
                    )),
                }
            };
            let signature_threshold = threshold(signature_threshold, "Signature")?;
            let revocation_threshold = threshold(revocation_threshold, "Revocation")?;
            if let Some(u) = units
                .iter()
                .find(|u| u.status.mode != Mode::Imprint || !u.status.admins.is_empty())
            {
                return Err(Error::other(format!("auto-init needs every selected unit in imprint mode without administrators; unit {} is not (zeroize it first, or use the cryptounit-* commands)", u.short())));
            }
            let Some(r) = units
                .iter()
                .position(|u| u.status.kind == strongroom_engine::admin::UnitKind::Recovery)
            else {
                return Err(Error::other(
                    "auto-init needs a recovery unit among the selected units",
                ));
            };
            t.load_keys()?;
            let keys: Vec<(String, SigAlg, Zeroizing<Vec<u8>>)> = t
                .keys
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|k| (k.name.clone(), k.alg, k.pkcs8.clone()))
                .collect();
            let needed = usize::from(signature_threshold.max(revocation_threshold));
            if keys.len() < needed {
                return Err(Error::other(format!("thresholds {signature_threshold}/{revocation_threshold} need at least {needed} administrators; {} signature key(s) selected", keys.len())));
            }
            if t.plan {
                let mut l = Vec::new();
                for u in &units {
                    for (n, _, _) in &keys {
                        l.push(format!(
                            "unit {}: admin_add {n} — 0 signatures (imprint mode)",
                            u.short()
                        ));
                    }
                    l.push(format!("unit {}: set_thresholds {signature_threshold}/{revocation_threshold} — {signature_threshold} signature(s) (the new signature threshold)", u.short()));
                    l.push(format!("unit {}: set_roster — {signature_threshold} signature(s) (signature threshold)", u.short()));
                }
                l.push(format!(
                    "unit {}: gen_random — 1 signature",
                    units[r].short()
                ));
                for (i, u) in units.iter().enumerate() {
                    if i != r {
                        l.push(format!("unit {}: gen_importer — 1 signature", u.short()));
                        l.push(format!(
                            "unit {}: export (current) — {signature_threshold} signature(s)",
                            units[r].short()
                        ));
                        l.push(format!("unit {}: import_transfer — 1; commit — {signature_threshold}; finalize — 1", u.short()));
                    }
                }
                t.plan_or(l);
                return Ok(());
            }
            eprintln!("installing {} administrator(s) and thresholds {signature_threshold}/{revocation_threshold} in {} unit(s)", keys.len(), units.len());
            for u in units.iter_mut() {
                for (name, alg, pkcs8) in &keys {
                    let c = admin_add_command(&t.p, instance, u.id, name, *alg, pkcs8)
                        .map_err(Error::from)?;
                    t.send(u, c).await?;
                }
                t.send(
                    u,
                    Cmd::SetThresholds {
                        sign: signature_threshold,
                        revoke: revocation_threshold,
                    },
                )
                .await?;
            }
            let roster = Tke::roster(&units);
            for u in units.iter_mut() {
                t.send(
                    u,
                    Cmd::SetRoster {
                        units: roster.clone(),
                    },
                )
                .await?;
            }
            eprintln!(
                "generating a random master key inside recovery unit {}",
                units[r].short()
            );
            let mut rec = units[r].clone();
            t.send(&mut rec, Cmd::GenRandom).await?;
            let vp = rec.status.current.vp.clone().unwrap_or_default();
            let n = units.len();
            let mut k = 0;
            for (i, target) in units.iter_mut().enumerate() {
                if i == r {
                    continue;
                }
                k += 1;
                eprintln!(
                    "transferring the master key value to unit {} ({k} of {})",
                    target.short(),
                    n - 1
                );
                t.transfer(&mut rec, target, Which::Current).await?;
                t.send(target, Cmd::Finalize { vp: vp.clone() }).await?;
            }
            units[r] = rec;
            print(
                t.out,
                format!(
                    "instance initialised: {} unit(s) hold master key {vp}",
                    units.len()
                ),
                &json!({"initialised_units": units.len(), "current_vp": vp.to_string()}),
            );
        }
        TkeCmd::AutoMkRotate { batch } => {
            let mut units = t.selected().await?;
            t.require_all_selected(&units)?;
            let Some(r) = units
                .iter()
                .position(|u| u.status.kind == strongroom_engine::admin::UnitKind::Recovery)
            else {
                return Err(Error::other(
                    "auto-mk-rotate needs a recovery unit among the selected units",
                ));
            };
            if t.plan {
                let mut l = vec![format!("unit {}: gen_random (into the new register) — 1 signature; commit — signature threshold", units[r].short())];
                for (i, u) in units.iter().enumerate() {
                    if i != r {
                        l.push(format!("unit {}: gen_importer — 1; export (new) from the recovery unit — signature threshold; import_transfer — 1; commit — signature threshold", u.short()));
                    }
                }
                l.extend(Tke::rotate_plan(&units));
                t.plan_or(l);
                return Ok(());
            }
            let currents: Vec<Option<String>> =
                units.iter().map(|u| u.status.current.vp.clone()).collect();
            if !same_vps(&currents) || currents[0].is_none() {
                return Err(Error::check(
                    "the selected units do not share one current master key (cryptounit-compare)",
                ));
            }
            let mut rec = units[r].clone();
            match rec.status.new.state.as_str() {
                "empty" => {
                    t.send(&mut rec, Cmd::GenRandom).await?;
                }
                _ => eprintln!(
                    "the recovery unit's new register is already loaded: resuming with it"
                ),
            }
            let vp = rec
                .status
                .new
                .vp
                .clone()
                .ok_or_else(|| Error::other("no new master key"))?;
            if rec.status.new.state == "full_uncommitted" {
                t.send(&mut rec, Cmd::Commit { vp: vp.clone() }).await?;
            }
            for (i, target) in units.iter_mut().enumerate() {
                if i == r {
                    continue;
                }
                match target.status.new.vp.clone().as_deref() {
                    Some(v) if super::same_vp(Some(v), Some(vp.as_str())) => {
                        if target.status.new.state == "full_uncommitted" {
                            t.send(target, Cmd::Commit { vp: vp.clone() }).await?;
                        }
                    }
                    Some(_) => return Err(Error::other(format!("unit {}'s new register holds another key; clear it (cryptounit-mk-clrnew) and run again", target.short()))),
                    None => {
                        eprintln!("transferring the new master key to unit {}", target.short());
                        t.transfer(&mut rec, target, Which::New).await?;
                    }
                }
            }
            units[r] = rec;
            t.rotate(&mut units, batch).await?;
        }
        TkeCmd::AutoMkRecover => {
            let mut units = t.selected().await?;
            let Some(r) = units.iter().position(|u| {
                u.status.kind == strongroom_engine::admin::UnitKind::Recovery
                    && u.status.current.state == "valid"
            }) else {
                return Err(Error::other("auto-mk-recover needs a recovery unit with a valid current master key among the selected units"));
            };
            let targets: Vec<usize> = (0..units.len())
                .filter(|i| *i != r && units[*i].status.current.state == "empty")
                .collect();
            if targets.is_empty() {
                return Err(Error::usage(
                    "no selected unit has an empty current register: nothing to recover",
                ));
            }
            let src = units[r].status.clone();
            if t.plan {
                let mut l = Vec::new();
                for i in &targets {
                    let u = &units[*i];
                    if u.status.mode == Mode::Imprint {
                        l.push(format!("unit {}: admin_add ×{} — 0 signatures (imprint); set_thresholds {}/{}; set_roster", u.short(), src.admins.len(), src.signature_threshold, src.revocation_threshold));
                    }
                    l.push(format!("unit {}: gen_importer — 1; export (current) from {} — signature threshold; import_transfer — 1; commit — signature threshold; finalize — 1", u.short(), units[r].short()));
                }
                t.plan_or(l);
                return Ok(());
            }
            let vp = src.current.vp.clone().unwrap_or_default();
            let mut rec = units[r].clone();
            for i in targets {
                let mut target = units[i].clone();
                if target.status.mode == Mode::Imprint {
                    // A zeroized unit: install the recovery unit's administrators (those whose
                    // keys are selected here), its thresholds and its roster.
                    t.load_keys()?;
                    let keys: Vec<(String, SigAlg, Zeroizing<Vec<u8>>)> = t
                        .keys
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .filter(|k| src.admins.iter().any(|a| a.ski == hex::encode(k.ski)))
                        .map(|k| (k.name.clone(), k.alg, k.pkcs8.clone()))
                        .collect();
                    if keys.len()
                        < usize::from(src.signature_threshold.max(src.revocation_threshold))
                    {
                        return Err(Error::other("select the signature keys of enough of the recovery unit's administrators to re-install them"));
                    }
                    eprintln!("unit {} is in imprint mode: installing {} administrator(s), thresholds and roster", target.short(), keys.len());
                    for (name, alg, pkcs8) in &keys {
                        let c = admin_add_command(&t.p, instance, target.id, name, *alg, pkcs8)
                            .map_err(Error::from)?;
                        t.send(&mut target, c).await?;
                    }
                    t.send(
                        &mut target,
                        Cmd::SetThresholds {
                            sign: src.signature_threshold,
                            revoke: src.revocation_threshold,
                        },
                    )
                    .await?;
                    t.send(
                        &mut target,
                        Cmd::SetRoster {
                            units: src.roster.clone(),
                        },
                    )
                    .await?;
                }
                eprintln!("recovering the master key into unit {}", target.short());
                t.transfer(&mut rec, &mut target, Which::Current).await?;
                t.send(&mut target, Cmd::Finalize { vp: vp.clone() })
                    .await?;
                units[i] = target;
            }
            print(
                t.out,
                format!("master key {vp} recovered"),
                &json!({"recovered_vp": vp.to_string()}),
            );
        }
        _ => {}
    }
    Ok(())
}

/// Asks `question` on the terminal; the answer, trimmed.
fn ask(question: &str) -> Result<String, Error> {
    use std::io::Write as _;
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(Error::context("cannot read the answer"))?;
    Ok(line.trim().to_string())
}

/// Asks for a whole number from `min` to `max`, again until one is given.
fn ask_number(question: &str, min: usize, max: u8) -> Result<usize, Error> {
    for _ in 0..5 {
        let answer = ask(question)?;
        match answer.parse::<usize>() {
            Ok(n) if (min..=usize::from(max)).contains(&n) => return Ok(n),
            _ => eprintln!("a number from {min} to {max}, please"),
        }
    }
    Err(Error::usage("no valid answer"))
}

/// The AdminAdd command for each unit that lacks the administrator whose key has `ski`, made by
/// `make`; `None` for the units that have it already.
fn admin_add_commands(
    units: &[Unit],
    ski: &[u8],
    mut make: impl FnMut(UnitId) -> Result<Cmd, Error>,
) -> Result<Vec<Option<Cmd>>, Error> {
    let ski = hex::encode(ski);
    units
        .iter()
        .map(|u| {
            if u.status.admins.iter().any(|a| a.ski == ski) {
                Ok(None)
            } else {
                make(u.id).map(Some)
            }
        })
        .collect()
}

/// The AdminAdd commands that install the administrator whose key `sigkey` names, for the
/// units that lack it, each with the proof that the new administrator holds its key. `sigkey`
/// is a key of the signing service when one is configured (as IBM's plug-in reads it), a card
/// (`pkcs11:` URI), or else a signature key file.
fn admin_add_signed(
    t: &Tke,
    instance: InstanceId,
    units: &[Unit],
    sigkey: &str,
) -> Result<(Vec<Option<Cmd>>, Installed), Error> {
    if let Some(url) = super::signserv::url() {
        // The key's token comes from SIGNSERVKEYS, the passwords file, or a prompt.
        let token = match super::signserv::listed(&t.dir, &t.pw)
            .ok()
            .and_then(|l| l.into_iter().find(|(k, _)| k == sigkey))
        {
            Some((_, token)) => token,
            None => super::signserv::token_of(&t.pw, sigkey)?,
        };
        let key = super::signserv::open(&t.p, &url, sigkey, token)?;
        let signer = super::signserv::ServiceSigner::new(&url, &key);
        let cmds =
            admin_add_commands_held(t, instance, units, &key.name, &key.public_key, &signer)?;
        let held = (
            "key held by the signing service",
            "signing_service",
            url.clone(),
        );
        return Ok((cmds, Installed::new(&key.name, &key.ski, Some(held))));
    }
    if sigkey.starts_with("pkcs11:") {
        let (card, keys) = t.open_card(sigkey)?;
        let [key] = keys.as_slice() else {
            return Err(Error::other(format!(
                "card {sigkey} holds the signature keys of {} administrators; a card for cryptounit-admin-add holds one",
                keys.len()
            )));
        };
        let signer = crate::card::CardSigner::new(&card, key);
        let cmds =
            admin_add_commands_held(t, instance, units, &key.name, &key.public_key, &signer)?;
        let held = ("key on card", "card", sigkey.to_string());
        return Ok((cmds, Installed::new(&key.name, &key.ski, Some(held))));
    }
    let path = files::resolve(&t.dir, "sigkey", sigkey)?;
    let name = files::file_name(&path);
    let password = t.pw.get(
        &name,
        &format!("Password for {name} (the key to install): "),
    )?;
    let key = files::open_sigkey(&t.p, &path, password.as_bytes())?;
    let cmds = admin_add_commands(units, &key.ski, |unit| {
        Ok(admin_add_command(
            &t.p, instance, unit, &key.name, key.alg, &key.pkcs8,
        )?)
    })?;
    Ok((cmds, Installed::new(&key.name, &key.ski, None)))
}

/// A signer whose key is held outside this process (on a card, by a signing service). When a
/// signature fails, its own account of why says more than the engine's error.
pub(super) trait HeldSigner: CommandSigner {
    /// Why the last signature failed.
    fn take_failure(&self) -> Option<Error>;
}

impl HeldSigner for crate::card::CardSigner<'_> {
    fn take_failure(&self) -> Option<Error> {
        crate::card::CardSigner::take_failure(self)
    }
}

impl HeldSigner for super::signserv::ServiceSigner<'_> {
    fn take_failure(&self) -> Option<Error> {
        super::signserv::ServiceSigner::take_failure(self)
    }
}

/// [`admin_add_commands`] for the administrator `name`, whose proof of possession `signer`
/// makes with the key of `public_key`.
fn admin_add_commands_held(
    t: &Tke,
    instance: InstanceId,
    units: &[Unit],
    name: &str,
    public_key: &[u8],
    signer: &dyn HeldSigner,
) -> Result<Vec<Option<Cmd>>, Error> {
    admin_add_commands(units, &signer.ski(), |unit| {
        admin_add_command_by(&t.p, instance, unit, name, signer, public_key)
            .map_err(|e| signer.take_failure().unwrap_or_else(|| Error::from(e)))
    })
}

/// An installed administrator, as reported: its name, SKI, and where its key is held (the
/// words for people, and the JSON field and value).
struct Installed {
    name: String,
    ski: String,
    held: Option<(&'static str, &'static str, String)>,
}

impl Installed {
    fn new(name: &str, ski: &[u8], held: Option<(&'static str, &'static str, String)>) -> Self {
        Installed {
            name: name.to_string(),
            ski: hex::encode(ski),
            held,
        }
    }

    fn print(&self, out: Output) {
        let (name, ski) = (&self.name, &self.ski);
        let mut v = json!({"installed_admin": name, "ski": ski});
        let human = match &self.held {
            Some((words, field, value)) => {
                v[*field] = json!(value);
                format!("administrator {name} (SKI {ski}, {words} {value}) installed")
            }
            None => format!("administrator {name} (SKI {ski}) installed"),
        };
        print(out, human, &v);
    }
}
