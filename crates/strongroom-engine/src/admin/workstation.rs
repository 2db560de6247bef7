//! The workstation side: building and signing commands, sealing key parts (used by the
//! CLI and the tests).

use super::*;

/// An administrator's private key, ready to sign.
pub struct Signer<'a> {
    /// Algorithm.
    pub alg: SigAlg,
    /// PKCS#8 private key.
    pub pkcs8: &'a [u8],
    /// SKI of its public key.
    pub ski: [u8; 32],
}

/// An administrator's key that signs commands wherever it is kept: in memory, opened from a
/// workstation file ([`Signer`]), or on a smart card that signs itself (the CLI's card
/// signer). A signature is in the form the unit verifies (ECDSA: DER, as X9.62).
pub trait CommandSigner {
    /// Its algorithm.
    fn alg(&self) -> SigAlg;
    /// The SKI of its public key ([`ski_of`]).
    fn ski(&self) -> [u8; 32];
    /// Signs `msg` (hashing it as the algorithm says).
    fn sign(&self, p: &dyn CryptoProvider, msg: &[u8]) -> Result<Vec<u8>, EngineError>;
}

impl CommandSigner for Signer<'_> {
    fn alg(&self) -> SigAlg {
        self.alg
    }
    fn ski(&self) -> [u8; 32] {
        self.ski
    }
    fn sign(&self, p: &dyn CryptoProvider, msg: &[u8]) -> Result<Vec<u8>, EngineError> {
        Ok(p.sig_sign(self.alg, self.pkcs8, msg)?)
    }
}

/// Serialises `body` and signs it with each of `signers`.
pub fn sign_command(
    p: &dyn CryptoProvider,
    body: &CommandBody,
    signers: &[Signer<'_>],
) -> Result<SignedCommand, EngineError> {
    let signers: Vec<&dyn CommandSigner> = signers.iter().map(|s| s as _).collect();
    sign_command_by(p, body, &signers)
}

/// Serialises `body` and signs it with each of `signers`, wherever their keys are kept.
pub fn sign_command_by(
    p: &dyn CryptoProvider,
    body: &CommandBody,
    signers: &[&dyn CommandSigner],
) -> Result<SignedCommand, EngineError> {
    let bytes = serde_json::to_vec(body).map_err(|_| EngineError::Crypto)?;
    let msg = command_message(&bytes);
    let mut signatures = Vec::with_capacity(signers.len());
    for s in signers {
        let sig = s.sign(p, &msg)?;
        signatures.push(CommandSignature {
            ski: hex::encode(s.ski()),
            signature: B64.encode(sig),
        });
    }
    Ok(SignedCommand {
        body: B64.encode(bytes),
        signatures,
    })
}

/// The `admin_add` command for a key kept anywhere (`public_key` raw, as
/// [`CryptoProvider::sig_public_key`] gives it), with its proof of possession signed by it.
pub fn admin_add_command_by(
    p: &dyn CryptoProvider,
    instance: InstanceId,
    unit: UnitId,
    name: &str,
    signer: &dyn CommandSigner,
    public_key: &[u8],
) -> Result<Cmd, EngineError> {
    let alg = signer.alg();
    let pop = signer.sign(
        p,
        &pop_message(instance, unit, name.trim(), alg, public_key),
    )?;
    Ok(Cmd::AdminAdd {
        name: name.trim().to_string(),
        alg: alg.name().into(),
        public_key: B64.encode(public_key),
        pop: B64.encode(pop),
    })
}

/// An ECDSA signature as PKCS#11 tokens give it (`r ‖ s`, each half the length) in the
/// DER form units verify (`SEQUENCE { INTEGER r, INTEGER s }`). `None` for an odd length.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut ints = Vec::with_capacity(raw.len() + 8);
    crate::der::write_uint(&mut ints, r);
    crate::der::write_uint(&mut ints, s);
    let mut out = Vec::with_capacity(ints.len() + 4);
    crate::der::write_tlv(&mut out, 0x30, &ints);
    Some(out)
}

/// The `admin_add` command for a key, with its proof of possession.
pub fn admin_add_command(
    p: &dyn CryptoProvider,
    instance: InstanceId,
    unit: UnitId,
    name: &str,
    alg: SigAlg,
    pkcs8: &[u8],
) -> Result<Cmd, EngineError> {
    let pk = p.sig_public_key(alg, pkcs8)?;
    let pop = p.sig_sign(
        alg,
        pkcs8,
        &pop_message(instance, unit, name.trim(), alg, &pk),
    )?;
    Ok(Cmd::AdminAdd {
        name: name.trim().to_string(),
        alg: alg.name().into(),
        public_key: B64.encode(&pk),
        pop: B64.encode(pop),
    })
}

/// Seals one key part to a unit's importer key (for `load_new`).
pub fn seal_part(
    p: &dyn CryptoProvider,
    instance: InstanceId,
    unit: UnitId,
    importer: &[u8; 16],
    importer_public: &[u8],
    part: &[u8; MASTER_KEY_LEN],
) -> Result<String, EngineError> {
    let sealed = p.hpke_seal(
        importer_public,
        &part_info(instance, unit, importer),
        b"",
        part,
    )?;
    Ok(B64.encode(sealed))
}
