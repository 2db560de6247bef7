//! The unit's state machine: administrators, thresholds, registers, importer key,
//! roster, and the checks every command passes before anything changes.

use super::*;

/// An installed administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// SKI.
    pub ski: [u8; 32],
    /// Name.
    pub name: String,
    /// Algorithm.
    pub alg: SigAlg,
    /// Raw public key.
    pub public_key: Vec<u8>,
}

/// A full register.
#[derive(Debug)]
pub struct Register {
    pub(super) key: MasterKey,
    pub(super) vp: Vp,
}

impl Register {
    pub(super) fn new(p: &dyn CryptoProvider, key: MasterKey) -> Result<Self, EngineError> {
        let vp = vp_of(p, key.expose())?;
        Ok(Register { key, vp })
    }
    /// The verification pattern.
    pub fn vp(&self) -> Vp {
        self.vp
    }
    pub(super) fn copy_key(&self) -> MasterKey {
        MasterKey::from_bytes(*self.key.expose())
    }
}

/// The new register.
#[derive(Debug, Default)]
pub enum NewRegister {
    /// Empty.
    #[default]
    Empty,
    /// Loaded, not committed.
    Uncommitted(Register),
    /// Committed.
    Committed(Register),
}

pub(super) struct Importer {
    pub(super) id: [u8; 16],
    pub(super) private: Zeroizing<Vec<u8>>,
    pub(super) public: Vec<u8>,
}

/// One crypto unit's administrative state.
pub struct UnitState {
    pub(super) id: UnitId,
    pub(super) instance: InstanceId,
    pub(super) kind: UnitKind,
    pub(super) epoch: u64,
    pub(super) ctr: u64,
    pub(super) mode: Mode,
    pub(super) admins: Vec<Admin>,
    pub(super) sign: u8,
    pub(super) revoke: u8,
    pub(super) current: Option<Register>,
    pub(super) new: NewRegister,
    pub(super) rotating: bool,
    pub(super) importer: Option<Importer>,
    pub(super) roster: Vec<RosterEntry>,
    pub(super) identity: Zeroizing<Vec<u8>>,
    pub(super) identity_public: Vec<u8>,
    pub(super) audit_head: [u8; 32],
    pub(super) dev: bool,
    pub(super) zones: Vec<Zone>,
    pub(super) transport: Option<Transport>,
}

impl std::fmt::Debug for UnitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitState")
            .field("id", &self.id)
            .field("instance", &self.instance)
            .field("kind", &self.kind)
            .field("mode", &self.mode)
            .field("ctr", &self.ctr)
            .finish_non_exhaustive()
    }
}

/// What a command did, for the node (which persists the state before answering).
#[derive(Debug)]
pub struct Executed {
    /// The command's name.
    pub command: &'static str,
    /// The signed response.
    pub response: SignedResponse,
    /// SKIs of the signers (hex).
    pub signers: Vec<String>,
}

impl UnitState {
    /// A new unit in imprint mode with empty registers and a fresh identity key.
    pub fn new(
        p: &dyn CryptoProvider,
        id: UnitId,
        instance: InstanceId,
        kind: UnitKind,
    ) -> Result<Self, EngineError> {
        let (identity, identity_public) = p.sig_generate(SigAlg::Ed25519)?;
        Ok(UnitState {
            id,
            instance,
            kind,
            epoch: 0,
            ctr: 0,
            mode: Mode::Imprint,
            admins: Vec::new(),
            sign: 0,
            revoke: 0,
            current: None,
            new: NewRegister::Empty,
            rotating: false,
            importer: None,
            roster: Vec::new(),
            identity,
            identity_public,
            audit_head: [0u8; 32],
            dev: false,
            zones: Vec::new(),
            transport: None,
        })
    }

    /// A development unit: imprint mode, but the current register holds `mk` (a random key
    /// made by `serve --dev`, or a master key carried over from a v1 unit file).
    pub fn with_current(
        p: &dyn CryptoProvider,
        id: UnitId,
        instance: InstanceId,
        mk: MasterKey,
        dev: bool,
    ) -> Result<Self, EngineError> {
        let mut u = Self::new(p, id, instance, UnitKind::Operational)?;
        u.current = Some(Register::new(p, mk)?);
        u.dev = dev;
        Ok(u)
    }

    /// The unit id.
    pub fn id(&self) -> UnitId {
        self.id
    }
    /// The instance.
    pub fn instance(&self) -> InstanceId {
        self.instance
    }
    /// The kind.
    pub fn kind(&self) -> UnitKind {
        self.kind
    }
    /// The identity public key (Ed25519, raw).
    pub fn identity_key(&self) -> &[u8] {
        &self.identity_public
    }
    /// Whether a rotation is in progress (writes under the new register).
    pub fn rotating(&self) -> bool {
        self.rotating
    }
    /// The current register's VP.
    pub fn current_vp(&self) -> Option<Vp> {
        self.current.as_ref().map(|r| r.vp)
    }
    /// The new register's VP and whether it is committed.
    pub fn new_vp(&self) -> Option<(Vp, bool)> {
        match &self.new {
            NewRegister::Empty => None,
            NewRegister::Uncommitted(r) => Some((r.vp, false)),
            NewRegister::Committed(r) => Some((r.vp, true)),
        }
    }
    /// Administrators.
    pub fn admins(&self) -> &[Admin] {
        &self.admins
    }
    /// (signature, revocation) thresholds.
    pub fn thresholds(&self) -> (u8, u8) {
        (self.sign, self.revoke)
    }
    /// Mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The data-plane unit for this state: `None` when the current register is empty or
    /// the unit is a recovery unit (which serves no traffic). A committed new register is
    /// readable; new blobs go under it while a rotation is in progress.
    pub fn data_plane(
        &self,
        provider: std::sync::Arc<dyn CryptoProvider>,
    ) -> Result<Option<CryptoUnit>, EngineError> {
        if self.kind != UnitKind::Operational {
            return Ok(None);
        }
        let Some(cur) = &self.current else {
            return Ok(None);
        };
        let mut unit = CryptoUnit::new(provider)?;
        unit.set_instance(self.instance);
        unit.set_current_master_key(cur.copy_key());
        if let NewRegister::Committed(r) = &self.new {
            unit.set_next_master_key(r.copy_key(), self.rotating);
        }
        Ok(Some(unit))
    }

    /// The status view.
    pub fn status(&self) -> StatusView {
        let reg = |state: &str, r: Option<&Register>| RegisterView {
            state: state.into(),
            vp: r.map(|r| r.vp.to_hex()),
        };
        StatusView {
            unit: self.id,
            instance: self.instance,
            kind: self.kind,
            mode: self.mode,
            epoch: self.epoch,
            ctr: self.ctr,
            admins: self
                .admins
                .iter()
                .map(|a| AdminView {
                    ski: hex::encode(a.ski),
                    name: a.name.clone(),
                    alg: a.alg.name().into(),
                })
                .collect(),
            signature_threshold: self.sign,
            revocation_threshold: self.revoke,
            current: match &self.current {
                None => reg("empty", None),
                Some(r) => reg("valid", Some(r)),
            },
            new: match &self.new {
                NewRegister::Empty => reg("empty", None),
                NewRegister::Uncommitted(r) => reg("full_uncommitted", Some(r)),
                NewRegister::Committed(r) => reg("full_committed", Some(r)),
            },
            rotating: self.rotating,
            roster: self.roster.clone(),
            identity_key: B64.encode(&self.identity_public),
            dev: self.dev,
            zones: self.zones.clone(),
            transport_key: self.transport.as_ref().map(|t| B64.encode(&t.public)),
        }
    }

    pub(super) fn sign_response(
        &self,
        p: &dyn CryptoProvider,
        request: Option<String>,
        output: Output,
    ) -> Result<SignedResponse, EngineError> {
        let status = serde_json::to_vec(&self.status()).map_err(|_| EngineError::Crypto)?;
        let body = ResponseBody {
            v: WIRE_VERSION,
            instance: self.instance,
            unit: self.id,
            epoch: self.epoch,
            ctr: self.ctr,
            request,
            output,
            state_digest: hex::encode(p.sha256(&[&status])),
            audit_head: hex::encode(self.audit_head),
        };
        let bytes = serde_json::to_vec(&body).map_err(|_| EngineError::Crypto)?;
        let sig = p.sig_sign(SigAlg::Ed25519, &self.identity, &response_message(&bytes))?;
        Ok(SignedResponse {
            body: B64.encode(&bytes),
            signature: B64.encode(sig),
        })
    }

    /// An unsigned query, answered with a signed status.
    pub fn query(&self, p: &dyn CryptoProvider) -> Result<SignedResponse, EngineError> {
        self.sign_response(p, None, Output::Status(Box::new(self.status())))
    }

    pub(super) fn required(&self, cmd: &Cmd) -> Result<usize, Refusal> {
        required_signatures(self.mode, self.sign, self.revoke, cmd)
    }

    /// Decodes a command and checks its target, counter and signatures, without executing
    /// it. Returns the body and the command's bytes.
    pub fn check(
        &self,
        p: &dyn CryptoProvider,
        cmd: &SignedCommand,
    ) -> Result<(CommandBody, Vec<u8>, Vec<String>), Refusal> {
        let bytes = b64("body", &cmd.body)?;
        let body: CommandBody = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("the command body is not a valid command: {e}")))?;
        if body.v != WIRE_VERSION {
            return refuse(
                RefusalKind::Malformed,
                format!(
                    "command version {} is not supported (expected {WIRE_VERSION})",
                    body.v
                ),
            );
        }
        if body.instance != self.instance || body.unit != self.id {
            return refuse(
                RefusalKind::WrongTarget,
                format!(
                    "the command is addressed to unit {} of instance {}, not to this unit",
                    body.unit, body.instance
                ),
            );
        }
        if body.epoch != self.epoch {
            return refuse(
                RefusalKind::WrongTarget,
                format!(
                    "the command was made for epoch {} but the unit is in epoch {} (it was zeroized since)",
                    body.epoch, self.epoch
                ),
            );
        }
        if body.ctr != self.ctr.wrapping_add(1) {
            return refuse(
                RefusalKind::Replay,
                format!(
                    "transaction counter {} refused: the unit expects {} (a replayed or stale command; query the unit and sign again)",
                    body.ctr,
                    self.ctr.wrapping_add(1)
                ),
            );
        }
        let needed = self.required(&body.cmd)?;
        let msg = command_message(&bytes);
        let mut seen: Vec<[u8; 32]> = Vec::new();
        for s in &cmd.signatures {
            let ski = hex32("signature ski", &s.ski)?;
            if seen.contains(&ski) {
                return refuse(
                    RefusalKind::Signatures,
                    format!("administrator {} signed twice", s.ski),
                );
            }
            let Some(admin) = self.admins.iter().find(|a| a.ski == ski) else {
                return refuse(
                    RefusalKind::Signatures,
                    format!("signer {} is not an administrator of this unit", s.ski),
                );
            };
            let sig = b64("signature", &s.signature)?;
            if !p.sig_verify(admin.alg, &admin.public_key, &msg, &sig) {
                return refuse(
                    RefusalKind::Signatures,
                    format!(
                        "the signature of administrator '{}' does not verify",
                        admin.name
                    ),
                );
            }
            seen.push(ski);
        }
        if seen.len() < needed {
            return refuse(
                RefusalKind::Signatures,
                format!(
                    "'{}' needs {needed} administrator signature(s); {} given",
                    body.cmd.name(),
                    seen.len()
                ),
            );
        }
        let signers = seen.iter().map(hex::encode).collect();
        Ok((body, bytes, signers))
    }

    /// Checks and executes a signed command. On refusal the state is unchanged.
    pub fn execute(
        &mut self,
        p: &dyn CryptoProvider,
        cmd: &SignedCommand,
    ) -> Result<Executed, Refusal> {
        let (body, bytes, signers) = self.check(p, cmd)?;
        let output = self.apply(p, &body.cmd)?;
        self.ctr = body.ctr;
        let req = p.sha256(&[&bytes]);
        self.audit_head = p.sha256(&[AUDIT_DOMAIN, &self.audit_head, &req]);
        // Statuses in the output show the state after the command (counter included).
        let output = match output {
            Some(Output::Importer {
                importer,
                public_key,
                ..
            }) => Output::Importer {
                importer,
                public_key,
                status: Box::new(self.status()),
            },
            Some(o) => o,
            None => Output::Status(Box::new(self.status())),
        };
        let response = self
            .sign_response(p, Some(hex::encode(req)), output)
            .map_err(crypto)?;
        Ok(Executed {
            command: body.cmd.name(),
            response,
            signers,
        })
    }

    pub(super) fn expect_vp(&self, given: &str, actual: Vp, what: &str) -> Result<(), Refusal> {
        let given = hex32("vp", given)?;
        if given != actual.0 {
            return refuse(
                RefusalKind::State,
                format!(
                    "verification pattern mismatch: the {what} holds {}, the command names {}",
                    actual.to_hex(),
                    hex::encode(given)
                ),
            );
        }
        Ok(())
    }

    pub(super) fn require_secured(&self, what: &str) -> Result<(), Refusal> {
        if self.mode != Mode::Secured {
            return refuse(RefusalKind::State, format!("{what} needs a secured unit"));
        }
        Ok(())
    }

    pub(super) fn require_recovery(&self, what: &str) -> Result<(), Refusal> {
        if self.kind != UnitKind::Recovery {
            return refuse(
                RefusalKind::State,
                format!("{what} is allowed only on recovery units"),
            );
        }
        Ok(())
    }

    pub(super) fn roster_key(&self, unit: UnitId) -> Result<(&RosterEntry, Vec<u8>), Refusal> {
        let e = self
            .roster
            .iter()
            .find(|e| e.unit == unit)
            .ok_or_else(|| Refusal {
                kind: RefusalKind::Roster,
                message: format!("unit {unit} is not on this unit's signed roster"),
            })?;
        let k = b64("roster identity key", &e.identity_key)?;
        Ok((e, k))
    }

    /// Verifies a response signed by a roster member and returns its body.
    pub(super) fn roster_response(
        &self,
        r: &SignedResponse,
        p: &dyn CryptoProvider,
    ) -> Result<ResponseBody, Refusal> {
        let bytes = b64("response body", &r.body)?;
        let body: ResponseBody = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("the enclosed response is malformed: {e}")))?;
        if body.instance != self.instance {
            return refuse(
                RefusalKind::Roster,
                "the enclosed response comes from another instance",
            );
        }
        let (_, key) = self.roster_key(body.unit)?;
        let sig = b64("response signature", &r.signature)?;
        if !p.sig_verify(SigAlg::Ed25519, &key, &response_message(&bytes), &sig) {
            return refuse(
                RefusalKind::Roster,
                format!(
                    "the enclosed response is not signed by unit {}'s identity key",
                    body.unit
                ),
            );
        }
        Ok(body)
    }

    pub(super) fn take_importer(&self, id: &[u8; 16]) -> Result<&Importer, Refusal> {
        match &self.importer {
            Some(i) if &i.id == id => Ok(i),
            Some(_) => refuse(
                RefusalKind::State,
                "the parts are sealed to an importer key this unit no longer holds (a newer one was generated); load again",
            ),
            None => refuse(
                RefusalKind::State,
                "the unit holds no importer key; generate one (gen_importer) and seal the parts to it",
            ),
        }
    }

    pub(super) fn new_must_be_empty(&self) -> Result<(), Refusal> {
        if !matches!(self.new, NewRegister::Empty) {
            return refuse(
                RefusalKind::State,
                "the new master key register is not empty: commit and finalize it, or clear it (cryptounit-mk-clrnew)",
            );
        }
        Ok(())
    }

    /// Puts a delivered key into the new register (uncommitted) and consumes the importer;
    /// refuses a key equal to the current one.
    pub(super) fn load_new(
        &mut self,
        reg: Register,
        equal_current: &str,
    ) -> Result<Option<Output>, Refusal> {
        // ct-exempt: Vp's PartialEq is constant-time (subtle)
        if self.current.as_ref().is_some_and(|c| c.vp == reg.vp) {
            return refuse(RefusalKind::State, equal_current);
        }
        self.new = NewRegister::Uncommitted(reg);
        self.importer = None;
        Ok(None)
    }
}

/// How many administrator signatures `cmd` needs on a unit in `mode` with thresholds
/// `sign`/`revoke`; refused in imprint mode for commands that need a secured unit.
pub fn required_signatures(mode: Mode, sign: u8, revoke: u8, cmd: &Cmd) -> Result<usize, Refusal> {
    let sign = usize::from(sign);
    let revoke = usize::from(revoke);
    Ok(match mode {
            Mode::Imprint => match cmd {
                Cmd::AdminAdd { .. }
                | Cmd::AdminRemove { .. }
                | Cmd::TrustZone { .. }
                | Cmd::ForgetZone { .. }
                | Cmd::Zeroize => 0,
                Cmd::SetThresholds { sign, .. } => usize::from(*sign),
                other => {
                    return refuse(
                        RefusalKind::State,
                        format!(
                            "the unit is in imprint mode: '{}' needs administrators and thresholds first (cryptounit-admin-add, cryptounit-thrhld-set)",
                            other.name()
                        ),
                    )
                }
            },
            Mode::Secured => match cmd {
                Cmd::AdminAdd { .. }
                | Cmd::SetThresholds { .. }
                | Cmd::SetRoster { .. }
                | Cmd::TrustZone { .. }
                | Cmd::ForgetZone { .. }
                | Cmd::Commit { .. }
                | Cmd::Export { .. } => sign,
                Cmd::AdminRemove { .. } => revoke,
                Cmd::GenImporter
                | Cmd::LoadNew { .. }
                | Cmd::ImportTransfer { .. }
                | Cmd::BeginRotation { .. }
                | Cmd::Finalize { .. }
                | Cmd::ClearNew
                | Cmd::ClearCurrent
                | Cmd::Zeroize
                | Cmd::GenRandom => 1,
            },
        })
}

/// Verifies a unit's response against its identity key and decodes it.
pub fn verify_response(
    p: &dyn CryptoProvider,
    identity_key: &[u8],
    r: &SignedResponse,
) -> Result<ResponseBody, String> {
    let bytes = B64
        .decode(r.body.trim())
        .map_err(|_| "the response body is not base64".to_string())?;
    let sig = B64
        .decode(r.signature.trim())
        .map_err(|_| "the response signature is not base64".to_string())?;
    if !p.sig_verify(
        SigAlg::Ed25519,
        identity_key,
        &response_message(&bytes),
        &sig,
    ) {
        return Err("the response is not signed by the unit's identity key".into());
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("the response body is malformed: {e}"))
}
