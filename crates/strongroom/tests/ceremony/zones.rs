//! The ceremony with smart cards end to end (issue 17's acceptance), SoftHSM2 tokens
//! standing for cards: a zone with a CA and a backup CA card; three administrators whose
//! signature keys are on cards; master key parts generated on cards and delivered to two
//! units wrapped on the card; a rotation with new card parts under load; card copies to
//! backup cards, from which the ceremony runs again; and the refusals.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::cards::{uri, user_session, Cards, SOFTHSM, SO_PIN};
use super::*;

/// (name, user PIN): the zone's CA and backup CA, three EP11 cards, their backups, and a
/// CA and a card of another zone.
const TOKENS: [(&str, &str); 10] = [
    ("ca", "1000"),
    ("ca-backup", "1001"),
    ("ann", "1111"),
    ("ben", "2222"),
    ("cat", "3333"),
    ("ann-b", "4111"),
    ("ben-b", "4222"),
    ("cat-b", "4333"),
    ("rogue-ca", "5000"),
    ("rogue", "5111"),
];

/// `tke cryptounit-mk-load --card <each of cards>`.
fn mk_load<'a>(cards: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["tke", "cryptounit-mk-load"];
    for c in cards {
        args.extend(["--card", c]);
    }
    args
}

fn part(card: &str, object: &str) -> String {
    format!("pkcs11:token={card}-card;object={object}")
}

/// A user session on token `name`, in this process (not the CLI's).
fn session(p11: &Pkcs11, name: &str) -> Session {
    let pin = TOKENS.iter().find(|(n, _)| *n == name).unwrap().1;
    user_session(p11, name, pin)
}

fn find(s: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    s.find_objects(&[
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
    .unwrap()
    .into_iter()
    .next()
    .unwrap_or_else(|| panic!("no {label}"))
}

/// Asserts that the key `h` cannot be read by the card's user: its value is never given
/// out, and it cannot be wrapped under a key the user made.
fn assert_unreadable(s: &Session, h: ObjectHandle, what: &str) {
    let attrs = s
        .get_attributes(
            h,
            &[AttributeType::Sensitive, AttributeType::WrapWithTrusted],
        )
        .unwrap();
    for a in &attrs {
        match a {
            Attribute::Sensitive(v) | Attribute::WrapWithTrusted(v) => assert!(*v, "{what}: {a:?}"),
            other => panic!("{other:?}"),
        }
    }
    let value = s.get_attributes(h, &[AttributeType::Value]).unwrap();
    assert!(
        !value.iter().any(|a| matches!(a, Attribute::Value(_))),
        "{what}: its value was given out"
    );
    let mine = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let r = s.wrap_key(&Mechanism::AesKeyWrapPad, mine, h);
    assert!(
        matches!(
            r,
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::KeyNotWrappable,
                _
            ))
        ),
        "{what}: wrapped under a key of the user's: {r:?}"
    );
    s.destroy_object(mine).unwrap();
}

/// The labels of the card's keys marked trusted (only its officer can mark one).
fn trusted(s: &Session) -> Vec<String> {
    let mut labels: Vec<String> = s
        .find_objects(&[Attribute::Trusted(true)])
        .unwrap()
        .into_iter()
        .map(
            |h| match s.get_attributes(h, &[AttributeType::Label]).unwrap().pop() {
                Some(Attribute::Label(l)) => String::from_utf8(l).unwrap(),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    labels.sort();
    labels
}

/// Replaces a data object's value (the user may: its value is fixed once created).
fn replace_data(s: &Session, h: ObjectHandle, value: Vec<u8>) -> ObjectHandle {
    let attrs = s
        .get_attributes(h, &[AttributeType::Label, AttributeType::Application])
        .unwrap();
    s.destroy_object(h).unwrap();
    let mut template = vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Value(value),
    ];
    template.extend(attrs);
    s.create_object(&template).unwrap()
}

async fn wrap_unwrap_works(api: &Api, name: &str) {
    let k = api.create_root(name).await;
    let deks = wrap_each(api, &[k]).await;
    assert_unwraps(api, &deks).await;
}

// Two workers: the CLI runs blocking on one while the load runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceremony_with_parts_on_cards_of_a_zone() {
    let c = Ceremony::new("2", "0");
    let api = c.api().await;
    let cards = Cards::tokens(c.ws.parent().unwrap(), &TOKENS);
    let mut pw = std::fs::read_to_string(&c.pw).unwrap();
    for (name, pin) in TOKENS {
        pw.push_str(&format!(
            "{name}-card.card: {pin}\n{name}-card.card-so: {SO_PIN}\n"
        ));
    }
    std::fs::write(&c.pw, &pw).unwrap();
    let units = c.units();
    let unit_ids: Vec<String> = units
        .iter()
        .map(|u| u["unit"].as_str().unwrap().to_string())
        .collect();

    step("a zone: its CA key on the CA card, a second CA key on the backup CA card");
    let out = c.card_ok(
        &cards,
        &[
            "card",
            "zone-create",
            "--ca",
            &uri("ca"),
            "--zone",
            "zone-a",
        ],
    );
    assert!(out.contains("zone zone-a created"), "{out}");
    let out = c.card_ok(
        &cards,
        &[
            "card",
            "ca-backup",
            "--ca",
            &uri("ca"),
            "--backup",
            &uri("ca-backup"),
        ],
    );
    assert!(out.contains("the zone now has 2 CA keys"), "{out}");
    c.card_ok(
        &cards,
        &[
            "card",
            "zone-create",
            "--ca",
            &uri("rogue-ca"),
            "--zone",
            "zone-b",
        ],
    );

    step("the CA card needs its security officer's PIN as well as its user's");
    let good = std::fs::read_to_string(&c.pw).unwrap();
    std::fs::write(
        &c.pw,
        good.replace(
            &format!("ca-card.card-so: {SO_PIN}"),
            "ca-card.card-so: 00000000",
        ),
    )
    .unwrap();
    c.card_fails(
        &cards,
        &[
            "card",
            "init",
            "--card",
            &uri("ann"),
            "--ca",
            &uri("ca"),
            "--name",
            "ann",
        ],
        "the PIN is wrong",
    );
    std::fs::write(&c.pw, &good).unwrap();

    step("EP11 cards are certified in the zone; three administrators' keys are made on them");
    for name in ["ann", "ben", "cat"] {
        let out = c.card_ok(
            &cards,
            &[
                "card",
                "init",
                "--card",
                &uri(name),
                "--ca",
                &uri("ca"),
                "--name",
                name,
            ],
        );
        assert!(out.contains("certified in zone zone-a"), "{out}");
    }
    for name in ["ann-b", "ben-b", "cat-b"] {
        c.card_ok(
            &cards,
            &[
                "card",
                "init",
                "--card",
                &uri(name),
                "--ca",
                &uri("ca-backup"),
            ],
        );
    }
    c.card_ok(
        &cards,
        &[
            "card",
            "init",
            "--card",
            &uri("rogue"),
            "--ca",
            &uri("rogue-ca"),
            "--name",
            "mallory",
            "--never-extractable",
        ],
    );
    let listed = c.card_ok(
        &cards,
        &["card", "list", "--card", &uri("rogue"), "--output", "json"],
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["zone"], json!("zone-b"), "{listed}");
    assert_eq!(
        listed["sigkeys"][0]["extractable"],
        json!(false),
        "{listed}"
    );
    let listed = c.card_ok(
        &cards,
        &["card", "list", "--card", &uri("ann"), "--output", "json"],
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        (
            &listed["sigkeys"][0]["sensitive"],
            &listed["sigkeys"][0]["wrap_with_trusted"]
        ),
        (&json!(true), &json!(true)),
        "{listed}"
    );
    for name in ["ann", "ben", "cat"] {
        c.card_ok(&cards, &["tke", "cryptounit-admin-add", &uri(name)]);
    }
    c.card_ok(&cards, &["tke", "sigkey-sel", &uri("ann"), &uri("ben")]);
    c.card_ok(
        &cards,
        &[
            "tke",
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "2",
            "--revocation-threshold",
            "1",
        ],
    );

    step(
        "the units trust the zone (signed by two cards); the part cards' officers enroll the units",
    );
    let out = c.card_ok(
        &cards,
        &["tke", "cryptounit-zone-trust", "--ca", &uri("ca")],
    );
    assert!(
        out.contains("2 unit(s) trust zone zone-a (2 CA key(s))"),
        "{out}"
    );
    for u in c.units() {
        assert_eq!(u["zones"][0]["name"], json!("zone-a"), "{u}");
        assert!(u["transport_key"].is_string(), "{u}");
    }
    for name in ["ann", "ben", "cat", "rogue"] {
        let out = c.card_ok(
            &cards,
            &["tke", "cryptounit-card-enroll", "--card", &uri(name)],
        );
        assert!(out.contains("trusts 2 unit(s)"), "{out}");
    }

    step("three key parts are generated on cards; loaded, committed and set immediate");
    for (name, p) in [("ann", "p1"), ("ben", "p2"), ("cat", "p3")] {
        let out = c.card_ok(
            &cards,
            &["tke", "mk-add", "--card", &uri(name), "--description", p],
        );
        assert!(out.contains(&format!("created key part {p}")), "{out}");
    }
    let out = c.card_ok(&cards, &mk_load(&[&uri("ann"), &uri("ben"), &uri("cat")]));
    assert!(out.contains("loaded (uncommitted) in 2 unit(s)"), "{out}");
    let vp1 = c.units()[0]["new"]["vp"].as_str().unwrap().to_string();
    c.card_ok(&cards, &["tke", "cryptounit-mk-commit"]);
    c.card_ok(&cards, &["tke", "cryptounit-mk-setimm", "--yes"]);
    assert!(c.units().iter().all(|u| u["current"]["vp"] == vp1.as_str()));
    wrap_unwrap_works(&api, "under card parts").await;

    step("no key part and no signature private key can be read from a card");
    let p11 = Pkcs11::new(SOFTHSM).unwrap();
    std::env::set_var("SOFTHSM2_CONF", &cards.conf);
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let mut unit_labels: Vec<String> = unit_ids
        .iter()
        .map(|u| format!("strongroom-unit:{u}"))
        .collect();
    unit_labels.sort();
    for (name, p) in [("ann", "p1"), ("ben", "p2"), ("cat", "p3")] {
        let s = session(&p11, name);
        assert_unreadable(
            &s,
            find(&s, ObjectClass::SECRET_KEY, &format!("strongroom-part:{p}")),
            p,
        );
        assert_unreadable(
            &s,
            find(
                &s,
                ObjectClass::PRIVATE_KEY,
                &format!("strongroom-sigkey:{name}"),
            ),
            name,
        );
        // A part can be wrapped only under a trusted key, and the only trusted keys are
        // the units' key-transport keys, whose private halves only the units hold: the
        // CLI receives each part wrapped for a unit, never in the clear.
        assert_eq!(trusted(&s), unit_labels, "{name}");
        s.logout().unwrap();
    }

    step("a rotation with new parts on cards while a wrap/unwrap load runs: zero failed requests");
    let keys = Arc::new(futures_join(&api, 300).await);
    let deks = Arc::new(wrap_each(&api, &keys[..60]).await);
    let load = Load::start(&api, keys.clone(), deks.clone());
    c.card_ok(
        &cards,
        &[
            "tke",
            "mk-add",
            "--card",
            &uri("ann"),
            "--description",
            "r1",
        ],
    );
    c.card_ok(
        &cards,
        &[
            "tke",
            "mk-add",
            "--card",
            &uri("ben"),
            "--description",
            "r2",
        ],
    );
    // A card with several parts needs the part named.
    c.card_fails(
        &cards,
        &mk_load(&[&uri("ann"), &uri("ben")]),
        "holds 2 key parts: name one with object=",
    );
    c.card_ok(&cards, &mk_load(&[&part("ann", "r1"), &part("ben", "r2")]));
    c.card_ok(&cards, &["tke", "cryptounit-mk-commit"]);
    let before = load.done();
    let out = c.card_ok(&cards, &["tke", "cryptounit-mk-rotate", "--batch", "100"]);
    assert!(out.contains("current master key"), "{out}");
    assert!(
        load.done() > before,
        "the client made requests during the rotation"
    );
    load.stop_without_failures().await;
    let vp2 = c.units()[0]["current"]["vp"].as_str().unwrap().to_string();
    assert_ne!(vp1, vp2);
    assert_unwraps(&api, &deks).await;

    step("refusals: each is clear, and no unit changes");
    let before = c.units();
    // A card of another zone: the units refuse its part.
    c.card_ok(
        &cards,
        &[
            "tke",
            "mk-add",
            "--card",
            &uri("rogue"),
            "--description",
            "x",
        ],
    );
    c.card_fails(
        &cards,
        &mk_load(&[&part("ann", "p1"), &uri("rogue")]),
        "zone 'zone-b', which is not trusted",
    );
    // A wrong PIN on a part card.
    std::fs::write(
        &c.pw,
        good.replace("ben-card.card: 2222", "ben-card.card: 9999"),
    )
    .unwrap();
    c.card_fails(
        &cards,
        &mk_load(&[&part("ann", "p1"), &part("ben", "p2")]),
        "the PIN is wrong",
    );
    std::fs::write(&c.pw, &good).unwrap();
    // A removed card.
    c.card_fails(
        &cards,
        &mk_load(&[&part("ann", "p1"), &uri("gone")]),
        "no inserted card matches",
    );
    // A card whose zone certificate was altered (another zone name written in).
    {
        let s = session(&p11, "cat");
        let h = find(&s, ObjectClass::DATA, "strongroom-card-cert");
        let original = match s.get_attributes(h, &[AttributeType::Value]).unwrap().pop() {
            Some(Attribute::Value(v)) => v,
            other => panic!("{other:?}"),
        };
        let mut cert: Value = serde_json::from_slice(&original).unwrap();
        let mut body: Value =
            serde_json::from_slice(&B64.decode(cert["body"].as_str().unwrap()).unwrap()).unwrap();
        body["card"] = json!("someone-else");
        cert["body"] = json!(B64.encode(serde_json::to_vec(&body).unwrap()));
        let h = replace_data(&s, h, serde_json::to_vec(&cert).unwrap());
        c.card_fails(
            &cards,
            &mk_load(&[&part("ann", "p1"), &part("cat", "p3")]),
            "does not verify with the CA key",
        );
        replace_data(&s, h, original);
        s.logout().unwrap();
    }
    // A copy to a card outside the zone.
    c.card_fails(
        &cards,
        &["card", "copy", "--from", &uri("ann"), "--to", &uri("rogue")],
        "outside zone zone-a",
    );
    let s = session(&p11, "rogue");
    assert!(s
        .find_objects(&[Attribute::Label(b"strongroom-part:p1".to_vec())])
        .unwrap()
        .is_empty());
    s.logout().unwrap();
    assert_eq!(c.units(), before, "a refusal changed a unit");

    step("the cards are copied to backup cards, card to card");
    for name in ["ann", "ben", "cat"] {
        let out = c.card_ok(
            &cards,
            &[
                "card",
                "copy",
                "--from",
                &uri(name),
                "--to",
                &uri(&format!("{name}-b")),
                "--output",
                "json",
            ],
        );
        let out: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["sigkeys"], json!([name]), "{out}");
        assert_eq!(out["units"].as_array().map(Vec::len), Some(2), "{out}");
        let s = session(&p11, &format!("{name}-b"));
        assert_unreadable(
            &s,
            find(
                &s,
                ObjectClass::PRIVATE_KEY,
                &format!("strongroom-sigkey:{name}"),
            ),
            name,
        );
        for h in s
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
            ])
            .unwrap()
        {
            assert_unreadable(&s, h, "a copied part");
        }
        assert_eq!(trusted(&s), unit_labels, "{name}-b");
        s.logout().unwrap();
    }

    step("the original cards are gone; the ceremony runs again from the backup cards alone");
    for name in ["ann", "ben", "cat"] {
        cards.softhsm(&["--delete-token", "--token", &format!("{name}-card")]);
    }
    c.card_ok(&cards, &["tke", "sigkey-sel", &uri("ann-b"), &uri("cat-b")]);
    c.card_ok(
        &cards,
        &mk_load(&[
            &part("ann-b", "p1"),
            &part("ben-b", "p2"),
            &part("cat-b", "p3"),
        ]),
    );
    let units = c.units();
    assert!(
        units.iter().all(|u| u["new"]["vp"] == vp1.as_str()),
        "the backup cards hold the same parts: {units:?}"
    );
    c.card_ok(&cards, &["tke", "cryptounit-mk-commit"]);
    c.card_ok(&cards, &["tke", "cryptounit-mk-rotate", "--batch", "100"]);
    assert!(c.units().iter().all(|u| u["current"]["vp"] == vp1.as_str()));
    assert_unwraps(&api, &deks).await;
    wrap_unwrap_works(&api, "after the backup ceremony").await;

    step("a card's security officer PIN is changed on the card; the old one then fails");
    let mut pw = std::fs::read_to_string(&c.pw).unwrap();
    pw.push_str("rogue-card.card-so-new: 13572468\n");
    std::fs::write(&c.pw, &pw).unwrap();
    let out = c.card_ok(
        &cards,
        &["card", "pin-change", "--officer", "--card", &uri("rogue")],
    );
    assert!(out.contains("security officer's PIN changed"), "{out}");
    c.card_fails(
        &cards,
        &["tke", "cryptounit-card-enroll", "--card", &uri("rogue")],
        "the PIN is wrong",
    );
    std::fs::write(
        &c.pw,
        pw.replace(
            &format!("rogue-card.card-so: {SO_PIN}"),
            "rogue-card.card-so: 13572468",
        ),
    )
    .unwrap();
    c.card_ok(
        &cards,
        &["tke", "cryptounit-card-enroll", "--card", &uri("rogue")],
    );

    step("a card holds at most 85 key parts");
    for i in 1..85 {
        c.card_ok(
            &cards,
            &[
                "tke",
                "mk-add",
                "--card",
                &uri("rogue"),
                "--description",
                &format!("q{i}"),
            ],
        );
    }
    c.card_fails(
        &cards,
        &[
            "tke",
            "mk-add",
            "--card",
            &uri("rogue"),
            "--description",
            "one-too-many",
        ],
        "at most 85 key parts",
    );
}
