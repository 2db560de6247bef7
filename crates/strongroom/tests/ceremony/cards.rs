//! The ceremony with the administrators' signature keys on cards: SoftHSM2 tokens stand for
//! smart cards. The keys are generated on the cards and never leave them; the cards sign
//! the units' commands; wrong PINs and removed cards are refused and change nothing.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use super::*;

pub(super) use super::common::SOFTHSM;
const CARDS: [(&str, &str); 3] = [("alice", "1111"), ("bob", "2222"), ("carol", "3333")];

/// SoftHSM2 tokens in `dir`, named `<name>-card`; their officers' PIN is [`SO_PIN`].
pub(super) struct Cards {
    pub(super) conf: PathBuf,
}

pub(super) const SO_PIN: &str = "87654321";

impl Cards {
    /// One card per administrator of [`CARDS`].
    fn new(dir: &Path) -> Cards {
        Self::tokens(dir, &CARDS)
    }

    /// A token per (name, user PIN).
    pub(super) fn tokens(dir: &Path, cards: &[(&str, &str)]) -> Cards {
        let c = Cards {
            conf: super::common::softhsm_conf(dir),
        };
        for (name, pin) in cards {
            c.softhsm(&[
                "--init-token",
                "--free",
                "--label",
                &format!("{name}-card"),
                "--pin",
                pin,
                "--so-pin",
                SO_PIN,
            ]);
        }
        c
    }

    pub(super) fn softhsm(&self, args: &[&str]) {
        output_ok(
            Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &self.conf)
                .args(args),
        );
    }

    pub(super) fn env(&self) -> [(&str, &str); 2] {
        [
            ("SOFTHSM2_CONF", self.conf.to_str().unwrap()),
            ("STRONGROOM_PKCS11_MODULE", SOFTHSM),
        ]
    }
}

/// A user session on the token `<name>-card`, in this process (not the CLI's).
pub(super) fn user_session(p11: &Pkcs11, name: &str, pin: &str) -> cryptoki::session::Session {
    let slot = p11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| p11.get_token_info(*s).unwrap().label() == format!("{name}-card"))
        .unwrap();
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::from(pin.to_string())))
        .unwrap();
    s
}

pub(super) fn uri(name: &str) -> String {
    format!("pkcs11:token={name}-card")
}

impl Ceremony {
    /// `strongroom <args>` with the cards' module and the ceremony's passwords file.
    pub(super) fn with_cards(&self, cards: &Cards, args: &[&str]) -> (bool, String, String) {
        self.workstation(args, &cards.env())
    }

    /// Runs `strongroom <args>` with the cards, which must fail saying `expect`.
    pub(super) fn card_fails(&self, cards: &Cards, args: &[&str], expect: &str) {
        let (ok, out, err) = self.with_cards(cards, args);
        assert!(!ok, "{args:?} should fail:\n{out}");
        assert!(
            err.contains(expect),
            "{args:?}: expected '{expect}' in:\n{err}"
        );
    }

    pub(super) fn card_ok(&self, cards: &Cards, args: &[&str]) -> String {
        let (ok, out, err) = self.with_cards(cards, args);
        assert!(ok, "{args:?} failed:\n{err}\n{out}");
        out
    }
}

#[tokio::test]
async fn ceremony_with_signature_keys_on_cards() {
    let c = Ceremony::new("2", "0");
    let api = c.api().await;
    let cards = Cards::new(c.ws.parent().unwrap());
    let mut pw = std::fs::read_to_string(&c.pw).unwrap();
    for (name, pin) in CARDS {
        pw.push_str(&format!("{name}-card.card: {pin}\n"));
    }
    std::fs::write(&c.pw, pw).unwrap();

    step("each administrator's signature key is generated on their card");
    for (name, _) in &CARDS[..2] {
        let out = c.card_ok(
            &cards,
            &["card", "init", "--card", &uri(name), "--name", name],
        );
        assert!(out.contains("never extractable"), "{out}");
    }
    // The TKE's own command takes a card too.
    let out = c.card_ok(
        &cards,
        &[
            "tke",
            "sigkey-add",
            "--name",
            "carol",
            "--card",
            &uri("carol"),
        ],
    );
    assert!(out.contains("never extractable"), "{out}");
    c.card_fails(
        &cards,
        &[
            "card",
            "init",
            "--card",
            &uri("alice"),
            "--name",
            &"x".repeat(31),
        ],
        "1 to 30",
    );
    c.card_fails(
        &cards,
        &["card", "init", "--card", &uri("alice"), "--name", "alice"],
        "already holds",
    );

    step("the inserted cards are listed without a PIN");
    let listed = c.card_ok(&cards, &["card", "list", "--output", "json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let labels: Vec<&str> = listed["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    for (name, _) in CARDS {
        assert!(
            labels.contains(&format!("{name}-card").as_str()),
            "{listed}"
        );
    }

    step("no signature private key can be read from a card");
    let p11 = Pkcs11::new(SOFTHSM).unwrap();
    // SOFTHSM2_CONF is read when the module initialises: this process's own copy.
    std::env::set_var("SOFTHSM2_CONF", &cards.conf);
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    for (name, pin) in CARDS {
        let s = user_session(&p11, name, pin);
        let keys = s
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .unwrap();
        assert_eq!(keys.len(), 1);
        let attrs = s
            .get_attributes(
                keys[0],
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                ],
            )
            .unwrap();
        for a in &attrs {
            match a {
                Attribute::Sensitive(v)
                | Attribute::AlwaysSensitive(v)
                | Attribute::NeverExtractable(v) => {
                    assert!(*v, "{a:?}")
                }
                Attribute::Extractable(v) => assert!(!*v, "{a:?}"),
                other => panic!("{other:?}"),
            }
        }
        // The private value is never given out, whatever is asked.
        let value = s.get_attributes(keys[0], &[AttributeType::Value]).unwrap();
        assert!(
            !value.iter().any(|a| matches!(a, Attribute::Value(_))),
            "{value:?}"
        );
        let listed = c.card_ok(
            &cards,
            &["card", "list", "--card", &uri(name), "--output", "json"],
        );
        let listed: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed["sigkeys"][0]["sensitive"], json!(true));
        assert_eq!(listed["sigkeys"][0]["extractable"], json!(false));
    }

    step("the administrators are installed from their cards; commands are signed on the cards");
    for (name, _) in CARDS {
        let out = c.card_ok(&cards, &["tke", "cryptounit-admin-add", &uri(name)]);
        let card = format!("key on card {}", uri(name));
        assert!(
            out.contains(&format!("administrator {name}")) && out.contains(&card),
            "{out}"
        );
    }
    c.card_ok(&cards, &["tke", "sigkey-sel", &uri("alice"), &uri("bob")]);
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
    let units = c.units();
    assert_eq!(units.len(), 2);
    for u in &units {
        assert_eq!(u["signature_threshold"], json!(2));
        assert_eq!(u["admins"].as_array().map(Vec::len), Some(3), "{u}");
    }

    step("the master key is loaded from key parts, every command signed by two cards");
    for part in ["part1", "part2", "part3"] {
        c.ok(&[
            "mk-add",
            "--random",
            "--description",
            part,
            "--kdf-memory-mib",
            "64",
        ]);
    }
    let mut pw = std::fs::read_to_string(&c.pw).unwrap();
    pw.push_str("part3.mkpart: part-three-password\n");
    std::fs::write(&c.pw, pw).unwrap();
    c.card_ok(
        &cards,
        &["tke", "cryptounit-mk-load", "part1", "part2", "part3"],
    );
    c.card_ok(&cards, &["tke", "cryptounit-mk-commit"]);
    c.card_ok(&cards, &["tke", "cryptounit-mk-setimm", "--yes"]);
    let k = api.create_root("guarded by cards").await;
    let r = api.action(&k, "wrap", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r2 = api
        .action(&k, "unwrap", json!({"ciphertext": r.body["ciphertext"]}))
        .await;
    assert_eq!(r2.body["plaintext"], r.body["plaintext"]);

    step("a wrong PIN is refused by the card and changes nothing");
    let before = c.units();
    let good = std::fs::read_to_string(&c.pw).unwrap();
    std::fs::write(
        &c.pw,
        good.replace("bob-card.card: 2222", "bob-card.card: 9999"),
    )
    .unwrap();
    c.card_fails(
        &cards,
        &[
            "tke",
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "3",
            "--revocation-threshold",
            "1",
        ],
        "the PIN is wrong",
    );
    assert_eq!(c.units(), before);
    std::fs::write(&c.pw, &good).unwrap();

    step("a removed card is named as such, and nothing changes");
    c.card_ok(&cards, &["tke", "sigkey-sel", &uri("alice"), &uri("carol")]);
    cards.softhsm(&["--delete-token", "--token", "carol-card"]);
    c.card_fails(
        &cards,
        &[
            "tke",
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "3",
            "--revocation-threshold",
            "1",
        ],
        "no inserted card matches",
    );
    assert_eq!(c.units(), before);

    step("the remaining two cards still sign");
    c.card_ok(&cards, &["tke", "sigkey-sel", &uri("alice"), &uri("bob")]);
    c.card_ok(
        &cards,
        &[
            "tke",
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "2",
            "--revocation-threshold",
            "2",
        ],
    );
    assert!(c
        .units()
        .iter()
        .all(|u| u["revocation_threshold"] == json!(2)));

    step("a card's PIN is changed on the card; the old PIN then fails");
    let mut pw = std::fs::read_to_string(&c.pw).unwrap();
    pw.push_str("alice-card.card-new: 4444\n");
    std::fs::write(&c.pw, &pw).unwrap();
    let out = c.card_ok(&cards, &["card", "pin-change", "--card", &uri("alice")]);
    assert!(out.contains("PIN changed"), "{out}");
    let (ok, _, err) = c.with_cards(&cards, &["card", "list", "--card", &uri("alice")]);
    assert!(!ok && err.contains("the PIN is wrong"), "{err}");
    std::fs::write(
        &c.pw,
        pw.replace("alice-card.card: 1111", "alice-card.card: 4444"),
    )
    .unwrap();
    let out = c.card_ok(&cards, &["card", "list", "--card", &uri("alice")]);
    assert!(out.contains("signature key of alice"), "{out}");
}
