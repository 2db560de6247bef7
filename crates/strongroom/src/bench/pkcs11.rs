//! Load through a PKCS#11 module (Strongroom's library, or SoftHSM2 as the baseline) with
//! one session per thread, as an application that uses the HSM does; and the resident
//! memory the library adds to a process with many sessions and session objects.

use std::path::PathBuf;
use std::time::Instant;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde_json::json;

use super::grep11::Ep11Op;
use super::stats::Meter;
use crate::error::Error;

fn e(e: cryptoki::error::Error) -> Error {
    Error::context("PKCS#11")(e)
}

fn open(module: &PathBuf, pin: &str) -> Result<(Pkcs11, cryptoki::slot::Slot), Error> {
    let p = Pkcs11::new(module).map_err(e)?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(e)?;
    let slot = *p
        .get_slots_with_token()
        .map_err(e)?
        .first()
        .ok_or_else(|| Error::other("the module has no token"))?;
    let s = p.open_rw_session(slot).map_err(e)?;
    s.login(UserType::User, Some(&AuthPin::from(pin.to_string())))
        .map_err(e)?;
    // The login holds while a session is open; this one stays open for the run.
    std::mem::forget(s);
    Ok((p, slot))
}

/// A session key for `op` (RSA-2048 or P-256 private key, or AES-256).
fn key_for(s: &Session, op: Ep11Op) -> Result<(ObjectHandle, Mechanism<'static>), Error> {
    match op {
        Ep11Op::RsaSign => {
            let (_, k) = s
                .generate_key_pair(
                    &Mechanism::RsaPkcsKeyPairGen,
                    &[
                        Attribute::Token(false),
                        Attribute::ModulusBits(2048.into()),
                        Attribute::PublicExponent(vec![1, 0, 1]),
                        Attribute::Verify(true),
                    ],
                    &[
                        Attribute::Token(false),
                        Attribute::Sign(true),
                        Attribute::Private(true),
                    ],
                )
                .map_err(e)?;
            Ok((k, Mechanism::Sha256RsaPkcs))
        }
        Ep11Op::EcdsaSign => {
            // DER OID of P-256.
            let p256 = vec![0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
            let (_, k) = s
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::Token(false),
                        Attribute::EcParams(p256),
                        Attribute::Verify(true),
                    ],
                    &[
                        Attribute::Token(false),
                        Attribute::Sign(true),
                        Attribute::Private(true),
                    ],
                )
                .map_err(e)?;
            Ok((k, Mechanism::Ecdsa))
        }
        Ep11Op::AesEncrypt | Ep11Op::GenerateAes => {
            let k = s
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Token(false),
                        Attribute::ValueLen(32.into()),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                    ],
                )
                .map_err(e)?;
            Ok((k, Mechanism::AesCbcPad([7; 16])))
        }
        Ep11Op::MlDsaSign | Ep11Op::MlKemDecap => Err(Error::usage(
            "the PKCS#11 bench measures rsa-sign, ecdsa-sign, aes-encrypt and generate-aes",
        )),
    }
}

/// Runs `op` from `threads` threads, a session each, as long as `timing` says.
pub fn load(
    module: PathBuf,
    pin: &str,
    op: Ep11Op,
    threads: usize,
    timing: super::Timing,
) -> Result<serde_json::Value, Error> {
    let (p, slot) = open(&module, pin)?;
    let meter = Meter::default();
    let data = vec![0x5Au8; if op == Ep11Op::AesEncrypt { 1024 } else { 32 }];
    let mut secs = 0.0;
    let mut lat = Vec::new();
    let ready = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|scope| -> Result<(), Error> {
        let mut handles = Vec::new();
        for _ in 0..threads {
            let (p, meter, data, ready) = (&p, &meter, &data, &ready);
            handles.push(scope.spawn(move || -> Result<Vec<u64>, Error> {
                let prepared = p.open_rw_session(slot).map_err(e).and_then(|s| {
                    let (key, mech) = key_for(&s, op)?;
                    Ok((s, key, mech))
                });
                ready.wait();
                let (s, key, mech) = prepared?;
                let mut lat = Vec::with_capacity(100_000);
                while meter.running() {
                    let t0 = Instant::now();
                    let r = match op {
                        Ep11Op::RsaSign | Ep11Op::EcdsaSign | Ep11Op::MlDsaSign => {
                            s.sign(&mech, key, data).map(drop)
                        }
                        Ep11Op::AesEncrypt => s.encrypt(&mech, key, data).map(drop),
                        Ep11Op::GenerateAes | Ep11Op::MlKemDecap => key_for(&s, op)
                            .map(drop)
                            .map_err(|_| cryptoki::error::Error::NullFunctionPointer),
                    };
                    match r {
                        Ok(()) => meter.success(t0, &mut lat),
                        Err(_) => {
                            meter.error();
                        }
                    }
                }
                Ok(lat)
            }));
        }
        // The warm-up starts when every thread has its session and key: generating 16
        // RSA keys takes seconds, and a window opened while some threads still generate
        // would count a lower rate than the module serves.
        ready.wait();
        std::thread::sleep(timing.warmup());
        let start = meter.open();
        std::thread::sleep(timing.measured());
        secs = meter.close(start);
        for h in handles {
            lat.extend(
                h.join()
                    .map_err(|_| Error::other("a load thread panicked"))??,
            );
        }
        Ok(())
    })?;
    Ok(meter.report(secs, lat))
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The resident memory a process has before loading the module and after it holds
/// `sessions` sessions and `objects` session objects (AES keys made on the server).
pub fn memory(
    module: PathBuf,
    pin: &str,
    sessions: usize,
    objects: usize,
) -> Result<serde_json::Value, Error> {
    let before = rss_kb();
    let (p, slot) = open(&module, pin)?;
    let per = objects.div_ceil(sessions.max(1));
    // Each thread opens its session and fills it; the sessions (and their objects) stay
    // open until the memory is read.
    let held: Vec<Session> = std::thread::scope(|scope| -> Result<Vec<Session>, Error> {
        let hs: Vec<_> = (0..sessions)
            .map(|_| {
                let p = &p;
                scope.spawn(move || -> Result<Session, Error> {
                    let s = p.open_rw_session(slot).map_err(e)?;
                    for _ in 0..per {
                        key_for(&s, Ep11Op::AesEncrypt)?;
                    }
                    Ok(s)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().map_err(|_| Error::other("a thread panicked"))?)
            .collect()
    })?;
    let after = rss_kb();
    drop(held);
    Ok(
        json!({"sessions": sessions, "objects": per * sessions, "rss_before_kb": before, "rss_after_kb": after, "added_mb": (after.saturating_sub(before)) as f64 / 1024.0}),
    )
}
