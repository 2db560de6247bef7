//! Crypto unit administration: the ceremony state machine, its refusals and invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use proptest::prelude::*;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::admin::*;
use strongroom_engine::{BlobBinding, CryptoProvider, KeyMaterial, SigAlg};
use strongroom_model::{InstanceId, KeyId, KeyKind, UnitId, VersionId};

const P: AwsLcProvider = AwsLcProvider;

struct Key {
    alg: SigAlg,
    sk: zeroize::Zeroizing<Vec<u8>>,
    ski: [u8; 32],
}

impl Key {
    fn new(alg: SigAlg) -> Key {
        let (sk, pk) = P.sig_generate(alg).unwrap();
        Key {
            alg,
            ski: ski_of(&P, alg, &pk),
            sk,
        }
    }
    fn signer(&self) -> Signer<'_> {
        Signer {
            alg: self.alg,
            pkcs8: &self.sk,
            ski: self.ski,
        }
    }
}

fn body(u: &UnitState, cmd: Cmd) -> CommandBody {
    let s = u.status();
    CommandBody {
        v: WIRE_VERSION,
        instance: s.instance,
        unit: s.unit,
        epoch: s.epoch,
        ctr: s.ctr + 1,
        cmd,
    }
}

fn run(u: &mut UnitState, cmd: Cmd, signers: &[&Key]) -> Result<Executed, Refusal> {
    let signed = sign_command(
        &P,
        &body(u, cmd),
        &signers.iter().map(|k| k.signer()).collect::<Vec<_>>(),
    )
    .unwrap();
    u.execute(&P, &signed)
}

fn add_admin(
    u: &mut UnitState,
    name: &str,
    k: &Key,
    signers: &[&Key],
) -> Result<Executed, Refusal> {
    let cmd = admin_add_command(&P, u.instance(), u.id(), name, k.alg, &k.sk).unwrap();
    run(u, cmd, signers)
}

fn output(e: &Executed) -> ResponseBody {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&e.response.body)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn importer(u: &mut UnitState, signer: &Key) -> ([u8; 16], Vec<u8>, SignedResponse) {
    let e = run(u, Cmd::GenImporter, &[signer]).unwrap();
    match output(&e).output {
        Output::Importer {
            importer,
            public_key,
            status,
        } => {
            assert_eq!(
                status.ctr,
                u.status().ctr,
                "the status shows the state after the command"
            );
            (
                hex::decode(importer).unwrap().try_into().unwrap(),
                base64::engine::general_purpose::STANDARD
                    .decode(public_key)
                    .unwrap(),
                e.response,
            )
        }
        other => panic!("not an importer: {other:?}"),
    }
}

fn load(u: &mut UnitState, parts: &[[u8; 32]], signer: &Key) -> Result<Executed, Refusal> {
    let (id, pk, _) = importer(u, signer);
    let sealed = parts
        .iter()
        .map(|part| seal_part(&P, u.instance(), u.id(), &id, &pk, part).unwrap())
        .collect();
    run(
        u,
        Cmd::LoadNew {
            importer: hex::encode(id),
            parts: sealed,
            card_parts: vec![],
        },
        &[signer],
    )
}

fn xor(parts: &[[u8; 32]]) -> [u8; 32] {
    let mut k = [0u8; 32];
    for p in parts {
        for (a, b) in k.iter_mut().zip(p) {
            *a ^= b;
        }
    }
    k
}

/// A unit with admins a and b, thresholds 2/1 (the acceptance setup).
fn secured(kind: UnitKind, instance: InstanceId, a: &Key, b: &Key) -> UnitState {
    let mut u = UnitState::new(&P, UnitId::random(), instance, kind).unwrap();
    add_admin(&mut u, "alice", a, &[]).unwrap();
    add_admin(&mut u, "bob", b, &[]).unwrap();
    run(&mut u, Cmd::SetThresholds { sign: 2, revoke: 1 }, &[a, b]).unwrap();
    u
}

fn snapshot(u: &UnitState) -> Vec<u8> {
    u.to_persisted().unwrap().to_vec()
}

fn assert_refused(
    u: &mut UnitState,
    r: Result<Executed, Refusal>,
    kind: RefusalKind,
    before: &[u8],
) {
    let e = r.expect_err("the command must be refused");
    assert_eq!(e.kind, kind, "{}", e.message);
    assert_eq!(snapshot(u), before, "a refused command changed the state");
}

#[test]
fn key_part_ceremony_initialises_a_unit_that_serves() {
    let (a, b) = (Key::new(SigAlg::Ed25519), Key::new(SigAlg::EcdsaP256Sha256));
    let mut u = secured(UnitKind::Operational, InstanceId::random(), &a, &b);
    assert_eq!(u.mode(), Mode::Secured);
    assert_eq!(u.thresholds(), (2, 1));
    let parts = [[1u8; 32], [2u8; 32]];
    load(&mut u, &parts, &a).unwrap();
    let vp = vp_of(&P, &xor(&parts)).unwrap();
    assert_eq!(u.new_vp(), Some((vp, false)));
    run(&mut u, Cmd::Commit { vp: vp.to_hex() }, &[&a, &b]).unwrap();
    assert_eq!(u.new_vp(), Some((vp, true)));
    let e = run(&mut u, Cmd::Finalize { vp: vp.to_hex() }, &[&b]).unwrap();
    assert_eq!(u.current_vp(), Some(vp));
    assert_eq!(u.new_vp(), None);
    // The response is signed by the unit's identity key and shows the new state.
    let body = verify_response(&P, u.identity_key(), &e.response).unwrap();
    let Output::Status(s) = body.output else {
        panic!()
    };
    assert_eq!(s.current.state, "valid");
    assert_eq!(s.current.vp.as_deref(), Some(vp.to_hex().as_str()));
    assert!(verify_response(&P, &Key::new(SigAlg::Ed25519).ski, &e.response).is_err());
    // The data plane seals under the new master key.
    let unit = u.data_plane(Arc::new(P)).unwrap().unwrap();
    assert_eq!(unit.current_mk_id(), Some(vp.mk_id()));
}

#[test]
fn refusals_change_nothing() {
    let (a, b, c) = (
        Key::new(SigAlg::Ed25519),
        Key::new(SigAlg::EcdsaP521Sha512),
        Key::new(SigAlg::Ed25519),
    );
    let mut u = secured(UnitKind::Operational, InstanceId::random(), &a, &b);
    let parts = [[1u8; 32], [2u8; 32]];
    load(&mut u, &parts, &a).unwrap();
    let vp = vp_of(&P, &xor(&parts)).unwrap();

    // Too few signatures: commit needs the signature threshold (2).
    let before = snapshot(&u);
    let r = run(&mut u, Cmd::Commit { vp: vp.to_hex() }, &[&a]);
    assert_refused(&mut u, r, RefusalKind::Signatures, &before);

    // Commit naming the wrong verification pattern.
    let r = run(
        &mut u,
        Cmd::Commit {
            vp: hex::encode([9u8; 32]),
        },
        &[&a, &b],
    );
    assert_refused(&mut u, r, RefusalKind::State, &before);

    // A signer that is not an administrator.
    let r = run(&mut u, Cmd::Commit { vp: vp.to_hex() }, &[&a, &c]);
    assert_refused(&mut u, r, RefusalKind::Signatures, &before);

    // The same administrator twice does not count twice.
    let r = run(&mut u, Cmd::Commit { vp: vp.to_hex() }, &[&a, &a]);
    assert_refused(&mut u, r, RefusalKind::Signatures, &before);

    // A tampered body: signatures no longer verify.
    let mut signed = sign_command(
        &P,
        &body(&u, Cmd::Commit { vp: vp.to_hex() }),
        &[a.signer(), b.signer()],
    )
    .unwrap();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(&signed.body)
        .unwrap();
    let s = String::from_utf8(raw.clone())
        .unwrap()
        .replace("\"epoch\":0", "\"epoch\":0 ");
    raw = s.into_bytes();
    signed.body = base64::engine::general_purpose::STANDARD.encode(raw);
    let r = u.execute(&P, &signed);
    assert_refused(&mut u, r, RefusalKind::Signatures, &before);

    // Replay: a command accepted once is refused the second time.
    let signed = sign_command(
        &P,
        &body(&u, Cmd::Commit { vp: vp.to_hex() }),
        &[a.signer(), b.signer()],
    )
    .unwrap();
    u.execute(&P, &signed).unwrap();
    let before = snapshot(&u);
    let r = u.execute(&P, &signed);
    assert_refused(&mut u, r, RefusalKind::Replay, &before);

    run(&mut u, Cmd::Finalize { vp: vp.to_hex() }, &[&a]).unwrap();

    // Loading parts that combine to the current master key.
    let before_load = snapshot(&u);
    let r = load(&mut u, &[[2u8; 32], [1u8; 32]], &a);
    let e = r.err().unwrap();
    assert_eq!(e.kind, RefusalKind::State);
    assert!(e.message.contains("current master key"), "{}", e.message);
    // (gen_importer succeeded in between; the registers are unchanged.)
    assert_eq!(u.current_vp(), Some(vp));
    assert_eq!(u.new_vp(), None);
    assert_ne!(snapshot(&u), before_load);

    // A removed administrator can no longer sign.
    add_admin(&mut u, "carol", &c, &[&a, &b]).unwrap();
    run(
        &mut u,
        Cmd::AdminRemove {
            ski: hex::encode(b.ski),
        },
        &[&a],
    )
    .unwrap();
    let before = snapshot(&u);
    let r = run(&mut u, Cmd::ClearCurrent, &[&b]);
    assert_refused(&mut u, r, RefusalKind::Signatures, &before);

    // Removing below the thresholds is refused.
    let r = run(
        &mut u,
        Cmd::AdminRemove {
            ski: hex::encode(c.ski),
        },
        &[&a],
    );
    assert_refused(&mut u, r, RefusalKind::State, &before);

    // Master key commands in imprint mode are refused.
    let mut fresh =
        UnitState::new(&P, UnitId::random(), u.instance(), UnitKind::Operational).unwrap();
    let before = snapshot(&fresh);
    let r = run(&mut fresh, Cmd::GenImporter, &[]);
    assert_refused(&mut fresh, r, RefusalKind::State, &before);

    // A command for another unit.
    let mut other_body = body(&u, Cmd::ClearNew);
    other_body.unit = UnitId::random();
    let signed = sign_command(&P, &other_body, &[a.signer()]).unwrap();
    let before = snapshot(&u);
    let r = u.execute(&P, &signed);
    assert_refused(&mut u, r, RefusalKind::WrongTarget, &before);
}

#[test]
fn recovery_unit_transfers_only_to_roster_members() {
    let instance = InstanceId::random();
    let (a, b) = (Key::new(SigAlg::Ed25519), Key::new(SigAlg::Ed25519));
    let mut rec = secured(UnitKind::Recovery, instance, &a, &b);
    let mut op = secured(UnitKind::Operational, instance, &a, &b);
    let mut stranger = secured(UnitKind::Operational, instance, &a, &b);
    let entry = |u: &UnitState| RosterEntry {
        unit: u.id(),
        kind: u.kind(),
        identity_key: base64::engine::general_purpose::STANDARD.encode(u.identity_key()),
    };
    let roster = vec![entry(&rec), entry(&op)];
    for u in [&mut rec, &mut op] {
        run(
            u,
            Cmd::SetRoster {
                units: roster.clone(),
            },
            &[&a, &b],
        )
        .unwrap();
    }
    // Operational units may not generate or export.
    let before = snapshot(&op);
    let r = run(&mut op, Cmd::GenRandom, &[&a]);
    assert_refused(&mut op, r, RefusalKind::State, &before);

    run(&mut rec, Cmd::GenRandom, &[&a]).unwrap();
    let vp = rec.current_vp().unwrap();

    // Export to a unit that is not on the roster: refused.
    let (_, _, imp_resp) = importer(&mut stranger, &a);
    let before = snapshot(&rec);
    let r = run(
        &mut rec,
        Cmd::Export {
            register: Which::Current,
            target: imp_resp,
        },
        &[&a, &b],
    );
    assert_refused(&mut rec, r, RefusalKind::Roster, &before);

    // Export to a roster member: the sealed key imports, commits and finalizes.
    let (_, _, imp_resp) = importer(&mut op, &a);
    let e = run(
        &mut rec,
        Cmd::Export {
            register: Which::Current,
            target: imp_resp,
        },
        &[&a, &b],
    )
    .unwrap();
    run(
        &mut op,
        Cmd::ImportTransfer {
            transfer: e.response.clone(),
        },
        &[&a],
    )
    .unwrap();
    run(&mut op, Cmd::Commit { vp: vp.to_hex() }, &[&a, &b]).unwrap();
    run(&mut op, Cmd::Finalize { vp: vp.to_hex() }, &[&a]).unwrap();
    assert_eq!(op.current_vp(), Some(vp));
    // The transfer is bound to the importer key it was sealed to: replaying it after a new
    // importer was generated fails.
    run(&mut op, Cmd::Zeroize, &[&a]).unwrap();
    assert_eq!(op.mode(), Mode::Imprint);
    assert_eq!(op.current_vp(), None);
    assert!(op.admins().is_empty());
}

#[test]
fn rotation_reads_both_keys_and_rewraps_idempotently() {
    let (a, b) = (Key::new(SigAlg::Ed25519), Key::new(SigAlg::Ed25519));
    let mut u = secured(UnitKind::Operational, InstanceId::random(), &a, &b);
    let old = [[1u8; 32], [2u8; 32]];
    load(&mut u, &old, &a).unwrap();
    let vp1 = vp_of(&P, &xor(&old)).unwrap();
    run(&mut u, Cmd::Commit { vp: vp1.to_hex() }, &[&a, &b]).unwrap();
    run(&mut u, Cmd::Finalize { vp: vp1.to_hex() }, &[&a]).unwrap();
    let binding = BlobBinding {
        instance: u.instance(),
        key: KeyId::random(),
        version: VersionId::random(),
        kind: KeyKind::Root,
        imported: false,
    };
    let dp = u.data_plane(Arc::new(P)).unwrap().unwrap();
    let blob = dp
        .seal_blob(&binding, &KeyMaterial::new(vec![5u8; 32]))
        .unwrap();

    let new = [[3u8; 32], [2u8; 32]];
    load(&mut u, &new, &a).unwrap();
    let vp2 = vp_of(&P, &xor(&new)).unwrap();
    // Begin rotation needs a committed register.
    assert!(run(&mut u, Cmd::BeginRotation { vp: vp2.to_hex() }, &[&a]).is_err());
    run(&mut u, Cmd::Commit { vp: vp2.to_hex() }, &[&a, &b]).unwrap();
    // Committed but not rotating: still sealing under the current key, both readable.
    let dp = u.data_plane(Arc::new(P)).unwrap().unwrap();
    assert_eq!(dp.sealing_mk_id(), Some(vp1.mk_id()));
    run(&mut u, Cmd::BeginRotation { vp: vp2.to_hex() }, &[&a]).unwrap();
    let before = snapshot(&u);
    let r = run(&mut u, Cmd::ClearNew, &[&a]);
    assert_refused(&mut u, r, RefusalKind::State, &before);
    let dp = u.data_plane(Arc::new(P)).unwrap().unwrap();
    assert_eq!(dp.sealing_mk_id(), Some(vp2.mk_id()));
    let rewrapped = dp.rewrap_blob(&binding, &blob).unwrap().unwrap();
    assert_eq!(dp.rewrap_blob(&binding, &rewrapped).unwrap(), None);
    assert_eq!(dp.open_blob(&binding, &blob).unwrap().expose(), &[5u8; 32]);
    assert_eq!(
        dp.open_blob(&binding, &rewrapped).unwrap().expose(),
        &[5u8; 32]
    );
    run(&mut u, Cmd::Finalize { vp: vp2.to_hex() }, &[&a]).unwrap();
    let dp = u.data_plane(Arc::new(P)).unwrap().unwrap();
    assert_eq!(
        dp.open_blob(&binding, &rewrapped).unwrap().expose(),
        &[5u8; 32]
    );
    assert!(
        dp.open_blob(&binding, &blob).is_err(),
        "blobs under the old key are dead after finalize"
    );
    assert!(!u.rotating());
}

#[test]
fn state_survives_persistence() {
    let (a, b) = (Key::new(SigAlg::Ed25519), Key::new(SigAlg::EcdsaP256Sha256));
    let mut u = secured(UnitKind::Operational, InstanceId::random(), &a, &b);
    let parts = [[1u8; 32], [2u8; 32], [4u8; 32]];
    load(&mut u, &parts, &a).unwrap();
    let bytes = u.to_persisted().unwrap();
    let mut back = UnitState::from_persisted(&P, &bytes).unwrap();
    assert_eq!(back.status(), u.status());
    assert_eq!(back.to_persisted().unwrap().to_vec(), bytes.to_vec());
    // The restored unit keeps its counter and identity: it continues the ceremony.
    let vp = vp_of(&P, &xor(&parts)).unwrap();
    run(&mut back, Cmd::Commit { vp: vp.to_hex() }, &[&a, &b]).unwrap();
}

// ---------------------------------------------------------------------------------------
// Property: random command sequences never break the invariants of spec §3.4/§3.5.

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Remove(usize),
    Thresholds(u8, u8),
    Load(u8, u8),
    Commit(bool),
    Finalize(bool),
    ClearNew,
    ClearCurrent,
    Zeroize,
}

fn op() -> impl Strategy<Value = (Op, Vec<usize>)> {
    let o = prop_oneof![
        (0..5usize).prop_map(Op::Add),
        (0..5usize).prop_map(Op::Remove),
        (0..10u8, 0..10u8).prop_map(|(a, b)| Op::Thresholds(a, b)),
        (0..4u8, 0..4u8).prop_map(|(a, b)| Op::Load(a, b)),
        any::<bool>().prop_map(Op::Commit),
        any::<bool>().prop_map(Op::Finalize),
        Just(Op::ClearNew),
        Just(Op::ClearCurrent),
        Just(Op::Zeroize),
    ];
    (o, proptest::collection::vec(0..5usize, 0..4))
}

fn check_invariants(u: &UnitState) {
    let (sign, revoke) = u.thresholds();
    let admins = u.admins();
    assert!(admins.len() <= MAX_ADMINS);
    for (i, a) in admins.iter().enumerate() {
        assert!(admins[..i].iter().all(|b| b.ski != a.ski), "duplicate SKI");
    }
    match u.mode() {
        Mode::Imprint => {
            assert_eq!((sign, revoke), (0, 0));
            assert_eq!(u.new_vp(), None);
        }
        Mode::Secured => {
            assert!((1..=8).contains(&sign) && (1..=8).contains(&revoke));
            assert!(admins.len() >= usize::from(sign.max(revoke)));
        }
    }
    if u.rotating() {
        assert!(matches!(u.new_vp(), Some((_, true))));
        assert!(u.current_vp().is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_command_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 1..30)) {
        let keys: Vec<Key> = (0..5).map(|i| Key::new(if i % 2 == 0 { SigAlg::Ed25519 } else { SigAlg::EcdsaP256Sha256 })).collect();
        let mut u = UnitState::new(&P, UnitId::random(), InstanceId::random(), UnitKind::Operational).unwrap();
        for (op, signer_ix) in ops {
            let signers: Vec<&Key> = signer_ix.iter().map(|i| &keys[*i]).collect();
            let before = snapshot(&u);
            let new_before = u.new_vp();
            let cur_before = u.current_vp();
            let result = match &op {
                Op::Add(i) => add_admin(&mut u, &format!("admin{i}"), &keys[*i], &signers),
                Op::Remove(i) => run(&mut u, Cmd::AdminRemove { ski: hex::encode(keys[*i].ski) }, &signers),
                Op::Thresholds(s, r) => run(&mut u, Cmd::SetThresholds { sign: *s, revoke: *r }, &signers),
                Op::Load(x, y) => {
                    let parts = [[*x; 32], [y.wrapping_add(7); 32]];
                    match signers.first() {
                        Some(k) if u.mode() == Mode::Secured && u.admins().iter().any(|a| a.ski == k.ski) => load(&mut u, &parts, k),
                        _ => run(&mut u, Cmd::LoadNew { importer: hex::encode([0u8; 16]), parts: vec![], card_parts: vec![] }, &signers),
                    }
                }
                Op::Commit(right) | Op::Finalize(right) => {
                    let vp = match (u.new_vp(), right) {
                        (Some((vp, _)), true) => vp.to_hex(),
                        _ => hex::encode([1u8; 32]),
                    };
                    let cmd = if matches!(op, Op::Commit(_)) { Cmd::Commit { vp } } else { Cmd::Finalize { vp } };
                    run(&mut u, cmd, &signers)
                }
                Op::ClearNew => run(&mut u, Cmd::ClearNew, &signers),
                Op::ClearCurrent => run(&mut u, Cmd::ClearCurrent, &signers),
                Op::Zeroize => run(&mut u, Cmd::Zeroize, &signers),
            };
            match result {
                Err(_) => {
                    // gen_importer inside `load` may have run; registers never change on refusal.
                    if !matches!(op, Op::Load(..)) {
                        prop_assert_eq!(snapshot(&u), before);
                    }
                    prop_assert_eq!(u.new_vp(), new_before);
                    prop_assert_eq!(u.current_vp(), cur_before);
                }
                Ok(_) => {
                    // Register transitions allowed by the spec's table (T1, T2, T4, T6, T7, T11).
                    let (nb, na) = (new_before.map(|(_, c)| c), u.new_vp().map(|(_, c)| c));
                    let ok = match op {
                        Op::Load(..) => nb.is_none() && na == Some(false),
                        Op::Commit(_) => nb == Some(false) && na == Some(true),
                        Op::Finalize(_) => nb == Some(true) && na.is_none() && u.current_vp() == new_before.map(|(v, _)| v),
                        Op::ClearNew => nb.is_some() && na.is_none(),
                        Op::ClearCurrent => cur_before.is_some() && u.current_vp().is_none(),
                        Op::Zeroize => na.is_none() && u.current_vp().is_none() && u.mode() == Mode::Imprint,
                        _ => na == nb && u.current_vp() == cur_before,
                    };
                    prop_assert!(ok, "illegal register transition by {:?}", op);
                }
            }
            check_invariants(&u);
            // Whatever state the sequence reached persists and restores to itself.
            let saved = u.to_persisted().unwrap();
            let back = UnitState::from_persisted(&P, &saved).unwrap();
            prop_assert_eq!(back.status(), u.status());
            prop_assert_eq!(back.to_persisted().unwrap().to_vec(), saved.to_vec());
        }
    }
}

/// The `r ‖ s` halves of a DER ECDSA signature, each left-padded to `n` bytes.
fn der_to_raw(der: &[u8], n: usize) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    let mut rest = &der[2..];
    let mut raw = Vec::new();
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02);
        let len = usize::from(rest[1]);
        let v = &rest[2..2 + len];
        let v = &v[v.iter().take_while(|b| **b == 0).count()..];
        raw.extend(std::iter::repeat_n(0u8, n - v.len()));
        raw.extend_from_slice(v);
        rest = &rest[2 + len..];
    }
    raw
}

#[test]
fn card_signatures_in_r_s_form_become_the_der_units_verify() {
    let k = Key::new(SigAlg::EcdsaP256Sha256);
    let public = P.sig_public_key(k.alg, &k.sk).unwrap();
    // Enough signatures that some r or s has its high bit set, or a leading zero byte.
    for i in 0..64u32 {
        let msg = i.to_be_bytes();
        let der = P.sig_sign(k.alg, &k.sk, &msg).unwrap();
        let raw = der_to_raw(&der, 32);
        assert_eq!(raw.len(), 64);
        let back = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(back, der, "DER is canonical: the same bytes as aws-lc's");
        assert!(P.sig_verify(k.alg, &public, &msg, &back));
    }
    assert_eq!(ecdsa_raw_to_der(&[]), None);
    assert_eq!(ecdsa_raw_to_der(&[1, 2, 3]), None);
}

/// A card of a zone, made in software the way a card makes it on the token.
struct TestCard {
    cert: CardCertificate,
    key: Key,
}

fn zone_of(name: &str, cas: &[&Key]) -> Zone {
    Zone {
        name: name.into(),
        ca_keys: cas
            .iter()
            .map(|k| {
                base64::engine::general_purpose::STANDARD
                    .encode(P.sig_public_key(k.alg, &k.sk).unwrap())
            })
            .collect(),
    }
}

fn certify(zone: &str, label: &str, ca: &Key) -> TestCard {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = Key::new(SigAlg::EcdsaP256Sha256);
    let (_, unwrap) = P.rsa_generate(2048).unwrap();
    let body = serde_json::to_vec(&CardCertBody {
        v: CARD_CERT_VERSION,
        zone: zone.into(),
        card: label.into(),
        serial: "0001".into(),
        card_key: b64.encode(P.sig_public_key(key.alg, &key.sk).unwrap()),
        unwrap_key: b64.encode(unwrap),
    })
    .unwrap();
    let sig = P
        .sig_sign(ca.alg, &ca.sk, &card_cert_message(&body))
        .unwrap();
    TestCard {
        cert: CardCertificate {
            body: b64.encode(&body),
            ca: hex::encode(ca.ski),
            signature: b64.encode(sig),
        },
        key,
    }
}

/// What a card delivers: `part` wrapped to the unit's transport key, signed for the load.
fn deliver(u: &UnitState, importer: &[u8; 16], card: &TestCard, part: &[u8; 32]) -> CardPart {
    let b64 = base64::engine::general_purpose::STANDARD;
    let spki = u
        .transport_key()
        .expect("a unit that trusts a zone has a transport key");
    let wrapped = P
        .rsa_oaep_encrypt(spki, strongroom_engine::OaepHash::Sha1, part)
        .unwrap();
    let msg = card_part_message(u.instance(), u.id(), importer, &wrapped);
    CardPart {
        certificate: card.cert.clone(),
        wrapped: b64.encode(&wrapped),
        signature: b64.encode(P.sig_sign(card.key.alg, &card.key.sk, &msg).unwrap()),
    }
}

fn load_cards(
    u: &mut UnitState,
    importer: [u8; 16],
    card_parts: Vec<CardPart>,
    signer: &Key,
) -> Result<Executed, Refusal> {
    run(
        u,
        Cmd::LoadNew {
            importer: hex::encode(importer),
            parts: vec![],
            card_parts,
        },
        &[signer],
    )
}

#[test]
fn parts_from_cards_of_a_trusted_zone_load_and_others_are_refused() {
    let (a, b) = (Key::new(SigAlg::Ed25519), Key::new(SigAlg::EcdsaP256Sha256));
    let (ca, backup_ca, rogue_ca) = (
        Key::new(SigAlg::EcdsaP256Sha256),
        Key::new(SigAlg::EcdsaP256Sha256),
        Key::new(SigAlg::EcdsaP256Sha256),
    );
    let mut u = secured(UnitKind::Operational, InstanceId::random(), &a, &b);
    assert!(
        u.transport_key().is_none(),
        "no transport key before a zone"
    );
    // Without zones the state is written as format 2, which earlier releases read.
    let format = |u: &UnitState| -> String {
        let v: serde_json::Value = serde_json::from_slice(&u.to_persisted().unwrap()).unwrap();
        v["format"].as_str().unwrap().to_string()
    };
    assert_eq!(format(&u), "strongroom-unit-state/2");
    let zone = zone_of("zone-1", &[&ca, &backup_ca]);

    // Trusting a zone needs the signature threshold.
    let before = snapshot(&u);
    let r = run(&mut u, Cmd::TrustZone { zone: zone.clone() }, &[&a]);
    assert_refused(&mut u, r, RefusalKind::Signatures, &before);
    let e = run(&mut u, Cmd::TrustZone { zone: zone.clone() }, &[&a, &b]).unwrap();
    let body = verify_response(&P, u.identity_key(), &e.response).unwrap();
    let Output::Status(s) = body.output else {
        panic!()
    };
    assert_eq!(s.zones, vec![zone.clone()]);
    assert_eq!(format(&u), "strongroom-unit-state/3");
    let spki = s
        .transport_key
        .expect("the signed status shows the transport key");
    let spki = base64::engine::general_purpose::STANDARD
        .decode(spki)
        .unwrap();
    assert_eq!(spki, u.transport_key().unwrap());
    // A card is given the key as modulus and exponent; they rebuild the same SPKI.
    let (n, e) = strongroom_engine::der::rsa_spki_parts(&spki).unwrap();
    assert_eq!((n.len(), e), (384, &[1u8, 0, 1][..]));
    assert_eq!(strongroom_engine::der::rsa_spki(n, e), spki);

    let card1 = certify("zone-1", "part-1", &ca);
    let card2 = certify("zone-1", "part-2", &backup_ca);
    let foreign = certify("zone-2", "foreign", &rogue_ca);
    let forged = certify("zone-1", "forged", &rogue_ca);
    let parts = [[7u8; 32], [9u8; 32]];

    let (id, _, _) = importer(&mut u, &a);
    let refused = |u: &mut UnitState, cps: Vec<CardPart>, kind: RefusalKind, why: &str| {
        let before = snapshot(u);
        let r = load_cards(u, id, cps, &a);
        let msg = r
            .as_ref()
            .err()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        assert_refused(u, r, kind, &before);
        assert!(msg.contains(why), "{msg}");
    };
    // A card of a zone the unit does not trust.
    let cps = vec![
        deliver(&u, &id, &card1, &parts[0]),
        deliver(&u, &id, &foreign, &parts[1]),
    ];
    refused(
        &mut u,
        cps,
        RefusalKind::Roster,
        "zone 'zone-2', which is not trusted",
    );
    // A card that names the zone but was certified by another CA.
    let cps = vec![
        deliver(&u, &id, &card1, &parts[0]),
        deliver(&u, &id, &forged, &parts[1]),
    ];
    refused(
        &mut u,
        cps,
        RefusalKind::Roster,
        "not a CA of zone 'zone-1'",
    );
    // A certificate altered after the CA signed it (another card key put in).
    let mut altered = deliver(&u, &id, &card2, &parts[1]);
    let mut cert: CardCertBody = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&altered.certificate.body)
            .unwrap(),
    )
    .unwrap();
    cert.card_key = base64::engine::general_purpose::STANDARD
        .encode(P.sig_public_key(forged.key.alg, &forged.key.sk).unwrap());
    altered.certificate.body =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&cert).unwrap());
    let cps = vec![deliver(&u, &id, &card1, &parts[0]), altered];
    refused(
        &mut u,
        cps,
        RefusalKind::Roster,
        "does not verify with the CA key",
    );
    // A delivered part altered on the way.
    let mut tampered = deliver(&u, &id, &card2, &parts[1]);
    let mut w = base64::engine::general_purpose::STANDARD
        .decode(&tampered.wrapped)
        .unwrap();
    w[10] ^= 1;
    tampered.wrapped = base64::engine::general_purpose::STANDARD.encode(w);
    let cps = vec![deliver(&u, &id, &card1, &parts[0]), tampered];
    refused(
        &mut u,
        cps,
        RefusalKind::Roster,
        "key part 2: the delivery is not signed",
    );
    // A delivery signed for another load (an older importer id).
    let cps = vec![
        deliver(&u, &id, &card1, &parts[0]),
        deliver(&u, &[0u8; 16], &card2, &parts[1]),
    ];
    refused(
        &mut u,
        cps,
        RefusalKind::Roster,
        "made for another unit or load",
    );
    // A part wrapped to another unit's transport key, though signed for this unit.
    let mut other = secured(UnitKind::Operational, u.instance(), &a, &b);
    run(&mut other, Cmd::TrustZone { zone: zone.clone() }, &[&a, &b]).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let wrapped = P
        .rsa_oaep_encrypt(
            other.transport_key().unwrap(),
            strongroom_engine::OaepHash::Sha1,
            &parts[1],
        )
        .unwrap();
    let wrong = CardPart {
        certificate: card2.cert.clone(),
        wrapped: b64.encode(&wrapped),
        signature: b64.encode(
            P.sig_sign(
                card2.key.alg,
                &card2.key.sk,
                &card_part_message(u.instance(), u.id(), &id, &wrapped),
            )
            .unwrap(),
        ),
    };
    let cps = vec![deliver(&u, &id, &card1, &parts[0]), wrong];
    refused(
        &mut u,
        cps,
        RefusalKind::Roster,
        "cannot be unwrapped with this unit's key-transport key",
    );
    // Only one part.
    let cps = vec![deliver(&u, &id, &card1, &parts[0])];
    refused(&mut u, cps, RefusalKind::Malformed, "1 given");

    // Two good cards, one from each CA of the zone: the master key is their XOR.
    let cps = vec![
        deliver(&u, &id, &card1, &parts[0]),
        deliver(&u, &id, &card2, &parts[1]),
    ];
    load_cards(&mut u, id, cps, &a).unwrap();
    let vp = vp_of(&P, &xor(&parts)).unwrap();
    assert_eq!(u.new_vp(), Some((vp, false)));

    // Zones and the transport key survive persistence; a unit restored from it opens parts.
    let bytes = u.to_persisted().unwrap();
    let back = UnitState::from_persisted(&P, &bytes).unwrap();
    assert_eq!(back.zones(), u.zones());
    assert_eq!(back.transport_key(), u.transport_key());

    // A card part mixes with a key part file; a forgotten zone's cards are refused.
    run(&mut u, Cmd::ClearNew, &[&a]).unwrap();
    run(
        &mut u,
        Cmd::ForgetZone {
            name: "zone-1".into(),
        },
        &[&a, &b],
    )
    .unwrap();
    let (id, pk, _) = importer(&mut u, &a);
    let mixed = |u: &UnitState| Cmd::LoadNew {
        importer: hex::encode(id),
        parts: vec![seal_part(&P, u.instance(), u.id(), &id, &pk, &parts[0]).unwrap()],
        card_parts: vec![deliver(u, &id, &card1, &parts[1])],
    };
    let before = snapshot(&u);
    let cmd = mixed(&u);
    let r = run(&mut u, cmd, &[&a]);
    assert_refused(&mut u, r, RefusalKind::Roster, &before);
    let transport = u.transport_key().unwrap().to_vec();
    run(&mut u, Cmd::TrustZone { zone }, &[&a, &b]).unwrap();
    assert_eq!(
        u.transport_key().unwrap(),
        transport,
        "the transport key is long-term"
    );
    let cmd = mixed(&u);
    run(&mut u, cmd, &[&a]).unwrap();
    assert_eq!(u.new_vp(), Some((vp, false)));
}

// ---------------------------------------------------------------------------------------
// Property: a signed command envelope round-trips, and any one changed byte of its JSON is
// refused by the unit, which stays as it was; the same for the unit's signed response.

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn a_command_envelope_round_trips_and_any_changed_byte_is_refused(
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (a, b) = (Key::new(SigAlg::Ed25519), Key::new(SigAlg::EcdsaP256Sha256));
        let u = secured(UnitKind::Operational, InstanceId::random(), &a, &b);
        let saved = u.to_persisted().unwrap();
        let cmd = body(&u, Cmd::SetThresholds { sign: 2, revoke: 1 });
        let signed = sign_command(&P, &cmd, &[a.signer(), b.signer()]).unwrap();
        let text = serde_json::to_string(&signed).unwrap();
        let back: SignedCommand = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &signed);
        let bytes = base64::engine::general_purpose::STANDARD.decode(&back.body).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<CommandBody>(&bytes).unwrap(), &cmd);
        let mut fresh = UnitState::from_persisted(&P, &saved).unwrap();
        let response = fresh.execute(&P, &back).unwrap().response;
        // The unit's signed response round-trips too, and a changed byte fails its check.
        let answer = serde_json::to_string(&response).unwrap();
        let read = |t: &[u8]| -> Option<ResponseBody> {
            let r: SignedResponse = serde_json::from_str(std::str::from_utf8(t).ok()?).ok()?;
            verify_response(&P, fresh.identity_key(), &r).ok()
        };
        let expected = read(answer.as_bytes());
        prop_assert_eq!(expected.as_ref().map(|b| b.ctr), Some(cmd.ctr));
        let mut bad_answer = answer.clone().into_bytes();
        let j = at.index(bad_answer.len());
        bad_answer[j] ^= flip;
        prop_assert_eq!(read(&bad_answer), None, "response byte {} changed", j);

        let mut bad = text.into_bytes();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        let Some(changed) = std::str::from_utf8(&bad).ok()
            .and_then(|t| serde_json::from_str::<SignedCommand>(t).ok()) else {
            return Ok(()); // refused as JSON
        };
        let mut unit = UnitState::from_persisted(&P, &saved).unwrap();
        match unit.execute(&P, &changed) {
            Err(_) => prop_assert_eq!(snapshot(&unit), saved.to_vec(), "a refusal changed the unit"),
            // Accepted only if the change kept the meaning: an SKI's hex digit in the other case.
            Ok(_) => {
                let mut same = changed.clone();
                for s in &mut same.signatures {
                    s.ski = s.ski.to_ascii_lowercase();
                }
                prop_assert_eq!(same, signed, "byte {} changed and the command was accepted", i);
            }
        }
    }
}
