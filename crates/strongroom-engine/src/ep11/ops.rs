//! Single and multi-part operations: encrypt, decrypt, sign, verify, digest, and the
//! re-encryption of data between keys.

use super::*;

impl Ep11<'_> {
    /// The core of every Encrypt/Decrypt/Sign/Verify/Digest call: feeds `data` to the
    /// operation; with `finish = Some(sig)` produces the result (for Verify: checks `sig`).
    pub(super) fn step(
        &self,
        op: Op,
        plan: &Plan,
        key: Option<&Resolved>,
        st: &mut OpState,
        data: &[u8],
        finish: Option<&[u8]>,
    ) -> Result<Vec<u8>, Ep11Error> {
        let sig = finish.unwrap_or_default();
        let finish = finish.is_some();
        let p = self.provider.as_ref();
        if data.len() > MAX_DATA {
            return err(
                ckr::DATA_LEN_RANGE,
                format!("data larger than {MAX_DATA} bytes"),
            );
        }
        let secret = || match key.map(|k| &k.body) {
            Some(Body::Secret(m)) => Ok(m.expose()),
            _ => err(ckr::KEY_TYPE_INCONSISTENT, "a secret key is needed"),
        };
        let crypt_err = |op: Op| match op {
            Op::Decrypt => Ep11Error::new(
                ckr::ENCRYPTED_DATA_INVALID,
                "the ciphertext is invalid (bad padding, tag or length)",
            ),
            _ => Ep11Error::new(
                ckr::DATA_LEN_RANGE,
                "the data length does not fit the mechanism",
            ),
        };
        if let Plan::Cipher { cipher, mode, .. } = plan {
            let bs = cipher.block_len();
            st.buf.extend_from_slice(data);
            if finish {
                let all = std::mem::take(&mut *st.buf);
                let all = Zeroizing::new(all);
                let whole = all.len().is_multiple_of(bs)
                    && !(op == Op::Decrypt && *mode == CipherMode::CbcPad && all.is_empty());
                if (*mode != CipherMode::CbcPad || op == Op::Decrypt) && !whole {
                    return Err(if op == Op::Decrypt {
                        Ep11Error::new(
                            ckr::ENCRYPTED_DATA_LEN_RANGE,
                            format!("ciphertext length must be a non-zero multiple of {bs}"),
                        )
                    } else {
                        Ep11Error::new(
                            ckr::DATA_LEN_RANGE,
                            format!("data length must be a multiple of {bs} for a mechanism without padding"),
                        )
                    });
                }
                return match op {
                    Op::Encrypt => p
                        .block_encrypt(*cipher, *mode, secret()?, &st.iv, &all)
                        .map_err(|_| crypt_err(op)),
                    _ => p
                        .block_decrypt(*cipher, *mode, secret()?, &st.iv, &all)
                        .map(|v| v.to_vec())
                        .map_err(|_| crypt_err(op)),
                };
            }
            // Update: process whole blocks; CBC_PAD decryption keeps the last block back
            // (it may hold the padding).
            let mut n = st.buf.len() / bs * bs;
            if op == Op::Decrypt && *mode == CipherMode::CbcPad && n == st.buf.len() && n > 0 {
                n -= bs;
            }
            if n == 0 {
                return Ok(Vec::new());
            }
            let chunk: Zeroizing<Vec<u8>> = Zeroizing::new(st.buf.drain(..n).collect());
            let raw = if *mode == CipherMode::Ecb {
                CipherMode::Ecb
            } else {
                CipherMode::Cbc
            };
            let out = match op {
                Op::Encrypt => p
                    .block_encrypt(*cipher, raw, secret()?, &st.iv, &chunk)
                    .map_err(|_| crypt_err(op))?,
                _ => p
                    .block_decrypt(*cipher, raw, secret()?, &st.iv, &chunk)
                    .map(|v| v.to_vec())
                    .map_err(|_| crypt_err(op))?,
            };
            if raw == CipherMode::Cbc {
                let last = if op == Op::Encrypt {
                    &out[out.len() - bs..]
                } else {
                    &chunk[n - bs..]
                };
                st.iv = last.to_vec();
            }
            return Ok(out);
        }
        if !plan.multi_part() && !finish {
            return err(
                ckr::MECHANISM_INVALID,
                format!(
                    "mechanism 0x{:x} is single-part only: use {} or the *Single call",
                    st.mech.code,
                    op.name()
                ),
            );
        }
        // Digests and hash-then-sign over SHA-1/SHA-2 keep the hash state, not the data:
        // no limit on the length of a multi-part message. (Single calls hash in one go.)
        let stream = match plan {
            Plan::Digest(d) => Some(*d),
            Plan::Sign { hash: Some(h), .. } => Some(*h),
            _ => None,
        };
        let mut prehashed: Option<Vec<u8>> = None;
        if let Some(h) = stream.filter(|_| !finish || !st.hash.is_empty()) {
            if st.hash.is_empty() {
                if let Some(fresh) = p.digest_state_new(h) {
                    st.hash = Zeroizing::new(fresh);
                }
            }
            if !st.hash.is_empty() {
                let bad = |_| {
                    Ep11Error::new(
                        ckr::OPERATION_NOT_INITIALIZED,
                        "the State's digest is damaged",
                    )
                };
                st.hash = Zeroizing::new(p.digest_state_update(h, &st.hash, data).map_err(bad)?);
                if !finish {
                    return Ok(Vec::new());
                }
                prehashed = Some(p.digest_state_finish(h, &st.hash).map_err(bad)?);
            }
        }
        if prehashed.is_none()
            && st.buf.len() + data.len() > MAX_STATE_DATA
            && (!finish || !st.buf.is_empty())
        {
            return err(
                ckr::DATA_LEN_RANGE,
                format!(
                    "a multi-part {} of this mechanism buffers at most {MAX_STATE_DATA} bytes",
                    op.name()
                ),
            );
        }
        if !finish {
            st.buf.extend_from_slice(data);
            return Ok(Vec::new());
        }
        let joined;
        let all: &[u8] = if st.buf.is_empty() || prehashed.is_some() {
            data
        } else {
            st.buf.extend_from_slice(data);
            joined = std::mem::take(&mut *st.buf);
            &joined
        };
        match plan {
            Plan::Cipher { .. } => unreachable_plan(),
            Plan::Gcm { iv, aad } => {
                let k = p
                    .aead_key(AeadAlg::AesGcm, secret()?)
                    .map_err(|_| crypt_err(op))?;
                let mut buf = all.to_vec();
                if op == Op::Encrypt {
                    k.seal(iv, aad, &mut buf).map_err(|_| crypt_err(op))?;
                } else {
                    if buf.len() < 16 {
                        return err(
                            ckr::ENCRYPTED_DATA_LEN_RANGE,
                            "GCM ciphertext shorter than its tag",
                        );
                    }
                    k.open(iv, aad, &mut buf).map_err(|_| crypt_err(op))?;
                }
                Ok(buf)
            }
            Plan::Rsa { padding, label } => match (op, key.map(|k| &k.body)) {
                (Op::Encrypt, Some(Body::Public(info))) => {
                    p.rsa_encrypt(*padding, info, label, all).map_err(|_| {
                        Ep11Error::new(
                            ckr::DATA_LEN_RANGE,
                            "the data is too long for this RSA key and padding",
                        )
                    })
                }
                (Op::Decrypt, Some(Body::Private(k))) => k
                    .rsa_decrypt(*padding, label, all)
                    .map(|v| v.to_vec())
                    .map_err(|_| {
                        Ep11Error::new(ckr::ENCRYPTED_DATA_INVALID, "RSA decryption failed")
                    }),
                _ => err(ckr::KEY_TYPE_INCONSISTENT, "wrong half of the RSA key pair"),
            },
            Plan::Digest(d) => Ok(prehashed.unwrap_or_else(|| p.digest(*d, all))),
            Plan::EcMultiply => match key.map(|k| &k.body) {
                Some(Body::Private(pk)) => pk.ec_multiply(all).map(|v| v.to_vec()).map_err(|_| {
                    Ep11Error::new(
                        ckr::DATA_INVALID,
                        "the data is not a point on the key's curve",
                    )
                }),
                _ => err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    "EC multiply needs an EC private key",
                ),
            },
            Plan::Mac { alg, len } => {
                let full = p.mac(*alg, secret()?, all).map_err(|_| {
                    Ep11Error::new(ckr::KEY_SIZE_RANGE, "the key length does not fit the MAC")
                })?;
                let tag = &full[..*len];
                if op == Op::Sign {
                    return Ok(tag.to_vec());
                }
                if sig.len() != *len {
                    return err(
                        ckr::SIGNATURE_LEN_RANGE,
                        format!("the MAC must be {len} bytes"),
                    );
                }
                if p.ct_eq(tag, sig) {
                    Ok(Vec::new())
                } else {
                    err(ckr::SIGNATURE_INVALID, "the MAC does not match")
                }
            }
            Plan::Sign { scheme, hash } => {
                let k = key.ok_or_else(|| Ep11Error::new(ckr::KEY_HANDLE_INVALID, "no key"))?;
                if *scheme == SignScheme::MlDsa {
                    return self.ml_dsa_step(op, k, ml_dsa_context(&st.mech)?, all, sig);
                }
                let input = match (scheme, hash) {
                    (SignScheme::Ed25519, _) => all.to_vec(),
                    (_, Some(h)) => match prehashed {
                        Some(d) => d,
                        None => p.digest(*h, all),
                    },
                    (SignScheme::RsaPss(d) | SignScheme::RsaPssWith { hash: d, .. }, None) => {
                        if all.len() != digest_len(*d) {
                            return err(
                                ckr::DATA_LEN_RANGE,
                                format!("CKM_RSA_PKCS_PSS signs a {}-byte digest", digest_len(*d)),
                            );
                        }
                        all.to_vec()
                    }
                    (_, None) => all.to_vec(),
                };
                let input = match (scheme, kind_of(k)) {
                    (SignScheme::EcdsaDigest, Some(AsymKind::Ec(c))) => fit_digest(c, &input)?,
                    (SignScheme::RsaX931, Some(AsymKind::Rsa { .. })) if hash.is_some() => {
                        let mut v = input;
                        v.extend_from_slice(&[0x33, 0xCC]);
                        v
                    }
                    (SignScheme::RsaPkcs1Raw, Some(AsymKind::Rsa { bits })) => {
                        let mut v = match hash {
                            Some(h) => digest_info(*h),
                            None => Vec::new(),
                        };
                        v.extend_from_slice(&input);
                        if v.len() + 11 > (bits as usize).div_ceil(8) {
                            return err(
                                ckr::DATA_LEN_RANGE,
                                "CKM_RSA_PKCS signs at most the modulus length minus 11 bytes",
                            );
                        }
                        v
                    }
                    _ => input,
                };
                match (&k.body, op) {
                    (Body::Private(pk), Op::Sign) => pk
                        .sign(*scheme, &input)
                        .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "signing failed")),
                    (Body::Public(info), Op::Verify) => {
                        if sig.len() != sig_len(k, *scheme) {
                            return err(
                                ckr::SIGNATURE_LEN_RANGE,
                                format!("the signature must be {} bytes", sig_len(k, *scheme)),
                            );
                        }
                        if p.verify(*scheme, info, &input, sig) {
                            Ok(Vec::new())
                        } else {
                            err(ckr::SIGNATURE_INVALID, "the signature does not verify")
                        }
                    }
                    _ => err(ckr::KEY_TYPE_INCONSISTENT, "wrong half of the key pair"),
                }
            }
        }
    }

    /// Pure ML-DSA: the message itself is signed, with the context string of the mechanism.
    fn ml_dsa_step(
        &self,
        op: Op,
        k: &Resolved,
        context: &[u8],
        msg: &[u8],
        sig: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        match (&k.body, op) {
            (Body::Private(pk), Op::Sign) => pk
                .ml_dsa_sign(context, msg)
                .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "ML-DSA signing failed")),
            (Body::Public(info), Op::Verify) => {
                let want = sig_len(k, SignScheme::MlDsa);
                if sig.len() != want {
                    return err(
                        ckr::SIGNATURE_LEN_RANGE,
                        format!("the signature must be {want} bytes"),
                    );
                }
                if self.provider.ml_dsa_verify(info, context, msg, sig) {
                    Ok(Vec::new())
                } else {
                    err(ckr::SIGNATURE_INVALID, "the signature does not verify")
                }
            }
            _ => err(ckr::KEY_TYPE_INCONSISTENT, "wrong half of the key pair"),
        }
    }

    /// `EncryptInit`, `DecryptInit`, `SignInit`, `VerifyInit`, `DigestInit`: a State.
    pub fn init(&self, op: Op, mech: &Mech, key: &[u8]) -> Result<Vec<u8>, Ep11Error> {
        let plan = self.planned(mech, op)?;
        self.key_for(op, mech.code, &plan, key)?;
        let st = self.new_state(mech, key, &plan)?;
        self.seal_op(op, &st)
    }

    /// `*Update`: (new State, output).
    pub fn update(
        &self,
        op: Op,
        state: &[u8],
        data: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Ep11Error> {
        let mut st = self.open_op(op, state)?;
        let plan = self.planned(&st.mech, op)?;
        let key = self.key_for(op, st.mech.code, &plan, &st.key)?;
        let out = self.step(op, &plan, key.as_deref(), &mut st, data, None)?;
        self.provider
            .fill_random(&mut st.id)
            .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "random generator failed"))?;
        Ok((self.seal_op(op, &st)?, out))
    }

    /// `DigestKey`: feeds a secret key's value into a digest State.
    pub fn digest_key(&self, state: &[u8], key: &[u8]) -> Result<Vec<u8>, Ep11Error> {
        let k = self.resolve(key, Role::Key)?;
        let Body::Secret(m) = &k.body else {
            return err(
                ckr::KEY_TYPE_INCONSISTENT,
                "DigestKey digests secret keys only",
            );
        };
        let (st, _) = self.update(Op::Digest, state, m.expose())?;
        Ok(st)
    }

    /// `*Final` (with `data` empty) and the one-shot `Encrypt`/`Decrypt`/`Sign`/`Verify`/
    /// `Digest` after Init: the result (empty for Verify, which fails on a bad signature).
    pub fn finish(
        &self,
        op: Op,
        state: &[u8],
        data: &[u8],
        sig: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        let mut st = self.open_op(op, state)?;
        let plan = self.planned(&st.mech, op)?;
        let key = self.key_for(op, st.mech.code, &plan, &st.key)?;
        self.step(op, &plan, key.as_deref(), &mut st, data, Some(sig))
    }

    /// The `*Single` calls (and `DigestSingle`): one call, no State.
    pub fn single(
        &self,
        op: Op,
        mech: &Mech,
        key: &[u8],
        data: &[u8],
        sig: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        if mech.code == ckm::IBM_EC_AGGREGATE && op == Op::Sign {
            self.offered(mech.code, ckf::SIGN)?;
            return self.aggregate_signatures(mech, key);
        }
        let plan = self.planned(mech, op)?;
        let k = self.key_for(op, mech.code, &plan, key)?;
        let mut st = OpState::start([0; 16], mech, &[], &plan);
        self.step(op, &plan, k.as_deref(), &mut st, data, Some(sig))
    }

    /// `ReencryptSingle`: decrypts with one key and encrypts with another, in the unit.
    pub fn reencrypt(
        &self,
        dec: &Mech,
        dec_key: &[u8],
        enc: &Mech,
        enc_key: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        let plain = Zeroizing::new(self.single(Op::Decrypt, dec, dec_key, data, &[])?);
        self.single(Op::Encrypt, enc, enc_key, &plain, &[])
    }
}
