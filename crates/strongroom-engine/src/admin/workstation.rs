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

/// Serialises `body` and signs it with each of `signers`.
pub fn sign_command(
    p: &dyn CryptoProvider,
    body: &CommandBody,
    signers: &[Signer<'_>],
) -> Result<SignedCommand, EngineError> {
    let bytes = serde_json::to_vec(body).map_err(|_| EngineError::Crypto)?;
    let msg = command_message(&bytes);
    let mut signatures = Vec::with_capacity(signers.len());
    for s in signers {
        let sig = p.sig_sign(s.alg, s.pkcs8, &msg)?;
        signatures.push(CommandSignature {
            ski: hex::encode(s.ski),
            signature: B64.encode(sig),
        });
    }
    Ok(SignedCommand {
        body: B64.encode(bytes),
        signatures,
    })
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
