//! The unit state as the node persists it (sealed under the node's unit-seal key).

use super::*;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PersistedAdmin {
    pub(super) name: String,
    pub(super) alg: String,
    pub(super) public_key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PersistedUnit {
    pub(super) format: String,
    pub(super) id: UnitId,
    pub(super) instance: InstanceId,
    pub(super) kind: UnitKind,
    pub(super) epoch: u64,
    pub(super) ctr: u64,
    pub(super) mode: Mode,
    pub(super) admins: Vec<PersistedAdmin>,
    pub(super) sign: u8,
    pub(super) revoke: u8,
    pub(super) current: Option<Zeroizing<String>>,
    pub(super) new: Option<Zeroizing<String>>,
    pub(super) new_committed: bool,
    pub(super) rotating: bool,
    pub(super) importer: Option<(String, Zeroizing<String>, String)>,
    pub(super) roster: Vec<RosterEntry>,
    pub(super) identity: Zeroizing<String>,
    pub(super) audit_head: String,
    pub(super) dev: bool,
    /// Since format 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) zones: Vec<Zone>,
    /// Since format 3: the key-transport key (PKCS#8, base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) transport: Option<Zeroizing<String>>,
}

/// The format written once a unit trusts a card zone. A unit that never did is written as
/// format 2, which earlier releases read (a node can still be rolled back); both are read.
pub(super) const PERSIST_FORMAT: &str = "strongroom-unit-state/3";
const PERSIST_FORMAT_2: &str = "strongroom-unit-state/2";

impl UnitState {
    /// The state as bytes (JSON, secrets base64) for the node to seal. Zeroized on drop.
    pub fn to_persisted(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let sec = |k: &MasterKey| Zeroizing::new(B64.encode(k.expose()));
        let (new, new_committed) = match &self.new {
            NewRegister::Empty => (None, false),
            NewRegister::Uncommitted(r) => (Some(sec(&r.key)), false),
            NewRegister::Committed(r) => (Some(sec(&r.key)), true),
        };
        let format = if self.zones.is_empty() && self.transport.is_none() {
            PERSIST_FORMAT_2
        } else {
            PERSIST_FORMAT
        };
        let pu = PersistedUnit {
            format: format.into(),
            id: self.id,
            instance: self.instance,
            kind: self.kind,
            epoch: self.epoch,
            ctr: self.ctr,
            mode: self.mode,
            admins: self
                .admins
                .iter()
                .map(|a| PersistedAdmin {
                    name: a.name.clone(),
                    alg: a.alg.name().into(),
                    public_key: B64.encode(&a.public_key),
                })
                .collect(),
            sign: self.sign,
            revoke: self.revoke,
            current: self.current.as_ref().map(|r| sec(&r.key)),
            new,
            new_committed,
            rotating: self.rotating,
            importer: self.importer.as_ref().map(|i| {
                (
                    hex::encode(i.id),
                    Zeroizing::new(B64.encode(&i.private)),
                    B64.encode(&i.public),
                )
            }),
            roster: self.roster.clone(),
            identity: Zeroizing::new(B64.encode(&*self.identity)),
            audit_head: hex::encode(self.audit_head),
            dev: self.dev,
            zones: self.zones.clone(),
            transport: self
                .transport
                .as_ref()
                .map(|t| Zeroizing::new(B64.encode(&*t.private))),
        };
        serde_json::to_vec(&pu)
            .map(Zeroizing::new)
            .map_err(|_| EngineError::Crypto)
    }

    /// Restores a state from [`UnitState::to_persisted`] bytes.
    pub fn from_persisted(p: &dyn CryptoProvider, bytes: &[u8]) -> Result<Self, String> {
        let pu: PersistedUnit =
            serde_json::from_slice(bytes).map_err(|e| format!("unit state is malformed: {e}"))?;
        if pu.format != PERSIST_FORMAT && pu.format != PERSIST_FORMAT_2 {
            return Err(format!(
                "unit state format '{}' is not supported",
                pu.format
            ));
        }
        let key = |s: &str| -> Result<MasterKey, String> {
            let v = Zeroizing::new(B64.decode(s).map_err(|_| "bad key encoding".to_string())?);
            let a: [u8; MASTER_KEY_LEN] = v
                .as_slice()
                .try_into()
                .map_err(|_| "bad key length".to_string())?;
            Ok(MasterKey::from_bytes(a))
        };
        let reg = |s: &str| -> Result<Register, String> {
            Register::new(p, key(s)?).map_err(|e| e.to_string())
        };
        let mut admins = Vec::new();
        for a in &pu.admins {
            let alg = SigAlg::parse(&a.alg).ok_or("bad admin algorithm")?;
            let pk = B64.decode(&a.public_key).map_err(|_| "bad admin key")?;
            admins.push(Admin {
                ski: ski_of(p, alg, &pk),
                name: a.name.clone(),
                alg,
                public_key: pk,
            });
        }
        let identity = Zeroizing::new(
            B64.decode(pu.identity.as_bytes())
                .map_err(|_| "bad identity key")?,
        );
        let identity_public = p
            .sig_public_key(SigAlg::Ed25519, &identity)
            .map_err(|_| "bad identity key")?;
        let importer = match &pu.importer {
            None => None,
            Some((id, private, public)) => Some(Importer {
                id: hex16("importer", id).map_err(|e| e.message)?,
                private: Zeroizing::new(
                    B64.decode(private.as_bytes())
                        .map_err(|_| "bad importer key")?,
                ),
                public: B64.decode(public).map_err(|_| "bad importer key")?,
            }),
        };
        let transport = match &pu.transport {
            None => None,
            Some(s) => {
                let private = Zeroizing::new(
                    B64.decode(s.as_bytes())
                        .map_err(|_| "bad key-transport key")?,
                );
                let public = p
                    .prepare_private(&private)
                    .map(|k| k.public().spki.clone())
                    .map_err(|_| "bad key-transport key")?;
                Some(Transport { private, public })
            }
        };
        Ok(UnitState {
            id: pu.id,
            instance: pu.instance,
            kind: pu.kind,
            epoch: pu.epoch,
            ctr: pu.ctr,
            mode: pu.mode,
            admins,
            sign: pu.sign,
            revoke: pu.revoke,
            current: pu.current.as_deref().map(|s| reg(s)).transpose()?,
            new: match (&pu.new, pu.new_committed) {
                (None, _) => NewRegister::Empty,
                (Some(s), false) => NewRegister::Uncommitted(reg(s)?),
                (Some(s), true) => NewRegister::Committed(reg(s)?),
            },
            rotating: pu.rotating,
            importer,
            roster: pu.roster,
            identity,
            identity_public,
            audit_head: hex32("audit_head", &pu.audit_head).map_err(|e| e.message)?,
            dev: pu.dev,
            zones: pu.zones,
            transport,
        })
    }
}
