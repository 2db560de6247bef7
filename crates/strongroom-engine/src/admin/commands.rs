//! What each administrative command does to a unit, once [`UnitState::check`] passed it.

use super::*;

impl UnitState {
    pub(super) fn apply(
        &mut self,
        p: &dyn CryptoProvider,
        cmd: &Cmd,
    ) -> Result<Option<Output>, Refusal> {
        match cmd {
            Cmd::AdminAdd {
                name,
                alg,
                public_key,
                pop,
            } => {
                let n = name.trim();
                if n.is_empty()
                    || n.chars().count() > MAX_ADMIN_NAME
                    || n.chars().any(char::is_control)
                {
                    return Err(malformed(format!(
                        "administrator name must be 1 to {MAX_ADMIN_NAME} printable characters"
                    )));
                }
                let alg = SigAlg::parse(alg).ok_or_else(|| {
                    malformed(format!(
                        "unknown administrator key algorithm '{alg}' (ed25519, ecdsa-p256-sha256, ecdsa-p521-sha512)"
                    ))
                })?;
                let pk = b64("public_key", public_key)?;
                let pop = b64("pop", pop)?;
                if !p.sig_verify(
                    alg,
                    &pk,
                    &pop_message(self.instance, self.id, n, alg, &pk),
                    &pop,
                ) {
                    return refuse(
                        RefusalKind::Signatures,
                        "the proof of possession does not verify with the administrator's public key",
                    );
                }
                let ski = ski_of(p, alg, &pk);
                if self.admins.iter().any(|a| a.ski == ski) {
                    return refuse(
                        RefusalKind::State,
                        format!("administrator {} is already installed", hex::encode(ski)),
                    );
                }
                if self.admins.len() >= MAX_ADMINS {
                    return refuse(
                        RefusalKind::State,
                        format!("a unit holds at most {MAX_ADMINS} administrators"),
                    );
                }
                self.admins.push(Admin {
                    ski,
                    name: n.to_string(),
                    alg,
                    public_key: pk,
                });
                Ok(None)
            }
            Cmd::AdminRemove { ski } => {
                let ski = hex32("ski", ski)?;
                let Some(pos) = self.admins.iter().position(|a| a.ski == ski) else {
                    return refuse(
                        RefusalKind::State,
                        format!("administrator {} is not installed", hex::encode(ski)),
                    );
                };
                if self.mode == Mode::Secured
                    && self.admins.len() - 1 < usize::from(self.sign.max(self.revoke))
                {
                    return refuse(
                        RefusalKind::State,
                        format!(
                            "removing it would leave {} administrator(s), fewer than the thresholds {}/{}; lower the thresholds first",
                            self.admins.len() - 1,
                            self.sign,
                            self.revoke
                        ),
                    );
                }
                self.admins.remove(pos);
                Ok(None)
            }
            Cmd::SetThresholds { sign, revoke } => {
                if !(1..=MAX_ADMINS as u8).contains(sign)
                    || !(1..=MAX_ADMINS as u8).contains(revoke)
                {
                    return Err(malformed(format!(
                        "thresholds must be between 1 and {MAX_ADMINS}"
                    )));
                }
                if self.admins.len() < usize::from(*sign.max(revoke)) {
                    return refuse(
                        RefusalKind::State,
                        format!(
                            "thresholds {sign}/{revoke} need at least {} administrators; {} installed",
                            sign.max(revoke),
                            self.admins.len()
                        ),
                    );
                }
                self.sign = *sign;
                self.revoke = *revoke;
                self.mode = Mode::Secured;
                Ok(None)
            }
            Cmd::SetRoster { units } => {
                if units.is_empty() || units.len() > MAX_ROSTER {
                    return Err(malformed(format!("a roster lists 1 to {MAX_ROSTER} units")));
                }
                for (i, e) in units.iter().enumerate() {
                    if units[..i].iter().any(|o| o.unit == e.unit) {
                        return Err(malformed(format!("unit {} is listed twice", e.unit)));
                    }
                    let k = b64("identity_key", &e.identity_key)?;
                    if k.len() != 32 {
                        return Err(malformed("identity keys are 32-byte Ed25519 public keys"));
                    }
                    if e.unit == self.id && (k != self.identity_public || e.kind != self.kind) {
                        return refuse(RefusalKind::Roster, "the roster's entry for this unit does not match its identity key or kind");
                    }
                }
                if !units.iter().any(|e| e.unit == self.id) {
                    return refuse(RefusalKind::Roster, "the roster must list this unit");
                }
                self.roster = units.clone();
                Ok(None)
            }
            Cmd::GenImporter => {
                self.require_secured("gen_importer")?;
                let (private, public) = p.hpke_generate().map_err(crypto)?;
                let mut id = [0u8; 16];
                p.fill_random(&mut id).map_err(crypto)?;
                self.importer = Some(Importer {
                    id,
                    private,
                    public,
                });
                let i = self.importer.as_ref().ok_or_else(|| state("importer"))?;
                Ok(Some(Output::Importer {
                    importer: hex::encode(i.id),
                    public_key: B64.encode(&i.public),
                    status: Box::new(self.status()),
                }))
            }
            Cmd::TrustZone { zone } => self.trust_zone(p, zone),
            Cmd::ForgetZone { name } => self.forget_zone(name),
            Cmd::LoadNew {
                importer,
                parts,
                card_parts,
            } => {
                self.require_secured("loading a master key")?;
                self.new_must_be_empty()?;
                let id = hex16("importer", importer)?;
                let imp = self.take_importer(&id)?;
                let count = parts.len() + card_parts.len();
                if !(MIN_PARTS..=MAX_PARTS).contains(&count) {
                    return Err(malformed(format!(
                        "a master key is loaded from {MIN_PARTS} or {MAX_PARTS} key parts; {count} given"
                    )));
                }
                let info = part_info(self.instance, self.id, &id);
                let mut opened = Vec::with_capacity(count);
                for (i, sealed) in parts.iter().enumerate() {
                    let ct = b64("part", sealed)?;
                    opened.push(p.hpke_open(&imp.private, &info, b"", &ct).map_err(|_| Refusal {
                        kind: RefusalKind::Malformed,
                        message: format!("key part {} cannot be opened with this unit's importer key (sealed to another unit or importer, or altered)", i + 1),
                    })?);
                }
                for (i, cp) in card_parts.iter().enumerate() {
                    opened.push(self.open_card_part(p, &id, parts.len() + i + 1, cp)?);
                }
                let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
                let mut part_vps: Vec<Vp> = Vec::new();
                for (i, part) in opened.iter().enumerate() {
                    let part: &[u8; MASTER_KEY_LEN] = part.as_slice().try_into().map_err(|_| {
                        malformed(format!("key part {} is not {MASTER_KEY_LEN} bytes", i + 1))
                    })?;
                    if part.iter().all(|b| *b == 0) {
                        return Err(malformed(format!("key part {} is all zeros", i + 1)));
                    }
                    let pv = part_vp_of(p, part).map_err(crypto)?;
                    if part_vps.contains(&pv) {
                        return Err(malformed(format!(
                            "key part {} is a duplicate of another part",
                            i + 1
                        )));
                    }
                    part_vps.push(pv);
                    for (k, b) in key.iter_mut().zip(part.iter()) {
                        *k ^= b;
                    }
                }
                if key.iter().all(|b| *b == 0) {
                    return Err(malformed("the parts combine to an all-zero key"));
                }
                let reg = Register::new(p, MasterKey::from_bytes(*key)).map_err(crypto)?;
                self.load_new(
                    reg,
                    "the parts combine to the current master key; at least one part must be new",
                )
            }
            Cmd::ImportTransfer { transfer } => {
                self.require_secured("importing a master key")?;
                self.new_must_be_empty()?;
                let body = self.roster_response(transfer, p)?;
                let (source, _) = self.roster_key(body.unit)?;
                if source.kind != UnitKind::Recovery {
                    return refuse(
                        RefusalKind::Roster,
                        format!("unit {} is not a recovery unit of the roster", body.unit),
                    );
                }
                let Output::Transfer {
                    target,
                    importer,
                    vp,
                    sealed,
                    ..
                } = &body.output
                else {
                    return Err(malformed("the enclosed response is not a transfer"));
                };
                if *target != self.id {
                    return refuse(
                        RefusalKind::Roster,
                        format!("the transfer is addressed to unit {target}, not to this unit"),
                    );
                }
                let id = hex16("importer", importer)?;
                let imp = self.take_importer(&id)?;
                let vp = Vp(hex32("vp", vp)?);
                let ct = b64("sealed", sealed)?;
                let key = p
                    .hpke_open(
                        &imp.private,
                        &transfer_info(self.instance, self.id, &id),
                        &transfer_aad(body.unit, &vp),
                        &ct,
                    )
                    .map_err(|_| Refusal {
                        kind: RefusalKind::Roster,
                        message: "the transfer cannot be opened with this unit's importer key"
                            .into(),
                    })?;
                let key: [u8; MASTER_KEY_LEN] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| malformed("the transferred key has the wrong length"))?;
                let reg = Register::new(p, MasterKey::from_bytes(key)).map_err(crypto)?;
                // ct-exempt: Vp's PartialEq is constant-time (subtle)
                if reg.vp != vp {
                    return refuse(
                        RefusalKind::Roster,
                        "the transferred key does not match its verification pattern",
                    );
                }
                self.load_new(reg, "the transferred key equals the current master key")
            }
            Cmd::Commit { vp } => {
                self.require_secured("commit")?;
                let NewRegister::Uncommitted(r) = &self.new else {
                    return refuse(
                        RefusalKind::State,
                        "the new register is not full and uncommitted",
                    );
                };
                self.expect_vp(vp, r.vp, "new register")?;
                if let NewRegister::Uncommitted(r) = std::mem::take(&mut self.new) {
                    self.new = NewRegister::Committed(r);
                }
                Ok(None)
            }
            Cmd::BeginRotation { vp } => {
                self.require_secured("rotation")?;
                let NewRegister::Committed(r) = &self.new else {
                    return refuse(RefusalKind::State, "the new register is not committed");
                };
                self.expect_vp(vp, r.vp, "new register")?;
                if self.current.is_none() {
                    return refuse(RefusalKind::State, "the current register is empty: there is nothing to rotate from (use cryptounit-mk-setimm)");
                }
                self.rotating = true;
                Ok(None)
            }
            Cmd::Finalize { vp } => {
                self.require_secured("finalize")?;
                let NewRegister::Committed(r) = &self.new else {
                    return refuse(RefusalKind::State, "the new register is not committed");
                };
                self.expect_vp(vp, r.vp, "new register")?;
                if let NewRegister::Committed(r) = std::mem::take(&mut self.new) {
                    self.current = Some(r);
                }
                self.rotating = false;
                Ok(None)
            }
            Cmd::ClearNew => {
                self.require_secured("clear new")?;
                if matches!(self.new, NewRegister::Empty) {
                    return refuse(RefusalKind::State, "the new register is already empty");
                }
                if self.rotating {
                    return refuse(RefusalKind::State, "a rotation is in progress: blobs may already be sealed under the new key; finish it (cryptounit-mk-rotate, then cryptounit-mk-setimm)");
                }
                self.new = NewRegister::Empty;
                Ok(None)
            }
            Cmd::ClearCurrent => {
                self.require_secured("clear current")?;
                if self.current.is_none() {
                    return refuse(RefusalKind::State, "the current register is already empty");
                }
                if self.rotating {
                    return refuse(
                        RefusalKind::State,
                        "a rotation is in progress; finish it first",
                    );
                }
                self.current = None;
                Ok(None)
            }
            Cmd::Zeroize => {
                self.mode = Mode::Imprint;
                self.admins.clear();
                self.sign = 0;
                self.revoke = 0;
                self.current = None;
                self.new = NewRegister::Empty;
                self.rotating = false;
                self.importer = None;
                self.roster.clear();
                self.zones.clear();
                self.epoch += 1;
                self.dev = false;
                Ok(None)
            }
            Cmd::GenRandom => {
                self.require_secured("gen_random")?;
                self.require_recovery("generating a random master key")?;
                let mut k = Zeroizing::new([0u8; MASTER_KEY_LEN]);
                p.fill_random(k.as_mut()).map_err(crypto)?;
                let reg = Register::new(p, MasterKey::from_bytes(*k)).map_err(crypto)?;
                if self.current.is_none() {
                    self.current = Some(reg);
                } else {
                    self.new_must_be_empty()?;
                    self.new = NewRegister::Uncommitted(reg);
                }
                Ok(None)
            }
            Cmd::Export { register, target } => {
                self.require_secured("export")?;
                self.require_recovery("exporting a master key")?;
                let body = self.roster_response(target, p)?;
                if body.unit == self.id {
                    return refuse(RefusalKind::Roster, "a unit does not export to itself");
                }
                let Output::Importer {
                    importer,
                    public_key,
                    ..
                } = &body.output
                else {
                    return Err(malformed("the enclosed response is not an importer key"));
                };
                let id = hex16("importer", importer)?;
                let pk = b64("public_key", public_key)?;
                let reg = match register {
                    Which::Current => self.current.as_ref(),
                    Which::New => match &self.new {
                        NewRegister::Empty => None,
                        NewRegister::Uncommitted(r) | NewRegister::Committed(r) => Some(r),
                    },
                }
                .ok_or_else(|| state("the register to export is empty"))?;
                let sealed = p
                    .hpke_seal(
                        &pk,
                        &transfer_info(self.instance, body.unit, &id),
                        &transfer_aad(self.id, &reg.vp),
                        reg.key.expose(),
                    )
                    .map_err(|_| {
                        malformed("the target's importer key is not a valid X25519 public key")
                    })?;
                Ok(Some(Output::Transfer {
                    target: body.unit,
                    importer: hex::encode(id),
                    register: *register,
                    vp: reg.vp.to_hex(),
                    sealed: B64.encode(sealed),
                }))
            }
        }
    }
}
