//! Multi-part operation state: what a State blob carries, and its byte layout.

use super::*;

/// A multi-part operation in progress (what a State blob carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpState {
    pub(super) id: [u8; 16],
    pub(super) mech: Mech,
    pub(super) key: Vec<u8>,
    pub(super) iv: Vec<u8>,
    pub(super) buf: Zeroizing<Vec<u8>>,
    /// An exported SHA-1/SHA-2 state (multi-part digests and hash-then-sign).
    pub(super) hash: Zeroizing<Vec<u8>>,
}

pub(super) fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

pub(super) fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    if b.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes(b[..4].try_into().ok()?) as usize;
    let rest = &b[4..];
    if rest.len() < n {
        return None;
    }
    let (v, r) = rest.split_at(n);
    *b = r;
    Some(v)
}

pub(super) fn take_u64(b: &mut &[u8]) -> Option<u64> {
    let v = take(b)?;
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

impl OpState {
    /// A fresh operation of `plan`: the chaining value starts at the mechanism's IV.
    pub(super) fn start(id: [u8; 16], mech: &Mech, key: &[u8], plan: &Plan) -> OpState {
        OpState {
            id,
            mech: mech.clone(),
            key: key.to_vec(),
            iv: match plan {
                Plan::Cipher { iv, .. } => iv.clone(),
                _ => Vec::new(),
            },
            buf: Zeroizing::new(Vec::new()),
            hash: Zeroizing::new(Vec::new()),
        }
    }

    pub(super) fn encode(&self) -> KeyMaterial {
        let mut out = Vec::with_capacity(64 + self.key.len() + self.buf.len());
        out.push(2);
        out.extend_from_slice(&self.id);
        put(&mut out, &self.mech.code.to_be_bytes());
        match &self.mech.param {
            MechParam::None => out.push(0),
            MechParam::Bytes(b) => {
                out.push(1);
                put(&mut out, b);
            }
            MechParam::Oaep { hash, mgf, label } => {
                out.push(2);
                put(&mut out, &hash.to_be_bytes());
                put(&mut out, &mgf.to_be_bytes());
                put(&mut out, label);
            }
            MechParam::Pss { hash, mgf, salt } => {
                out.push(3);
                put(&mut out, &hash.to_be_bytes());
                put(&mut out, &mgf.to_be_bytes());
                put(&mut out, &salt.to_be_bytes());
            }
            MechParam::Ecsg(t) => {
                out.push(4);
                put(&mut out, &t.to_be_bytes());
            }
            MechParam::Ecdh { .. }
            | MechParam::BtcDerive { .. }
            | MechParam::EcAgg { .. }
            | MechParam::Unsupported(_) => out.push(0xff),
        }
        put(&mut out, &self.key);
        put(&mut out, &self.iv);
        put(&mut out, &self.buf);
        put(&mut out, &self.hash);
        KeyMaterial::new(out)
    }

    pub(super) fn decode(mut b: &[u8]) -> Option<OpState> {
        let (&v, rest) = b.split_first()?;
        if v != 2 || rest.len() < 16 {
            return None;
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&rest[..16]);
        b = &rest[16..];
        let code = Ckm(take_u64(&mut b)?);
        let (&kind, rest) = b.split_first()?;
        b = rest;
        let param = match kind {
            0 => MechParam::None,
            1 => MechParam::Bytes(take(&mut b)?.to_vec()),
            2 => MechParam::Oaep {
                hash: Ckm(take_u64(&mut b)?),
                mgf: take_u64(&mut b)?,
                label: take(&mut b)?.to_vec(),
            },
            3 => MechParam::Pss {
                hash: Ckm(take_u64(&mut b)?),
                mgf: take_u64(&mut b)?,
                salt: take_u64(&mut b)?,
            },
            4 => MechParam::Ecsg(take_u64(&mut b)?),
            _ => return None,
        };
        let key = take(&mut b)?.to_vec();
        let iv = take(&mut b)?.to_vec();
        let buf = Zeroizing::new(take(&mut b)?.to_vec());
        let hash = Zeroizing::new(take(&mut b)?.to_vec());
        b.is_empty().then_some(OpState {
            id,
            mech: Mech { code, param },
            key,
            iv,
            buf,
            hash,
        })
    }
}
