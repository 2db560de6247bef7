//! `tke --output json` prints only JSON.

use super::*;

/// `--output json` prints one JSON document on stdout and nothing else, for every `tke`
/// command a script reads, so that `jq` and `json.loads` never meet a sentence. Before the
/// fix `cryptounit-compare --output json` printed the units, then "the 2 selected units are
/// identical".
#[tokio::test]
async fn tke_output_json_prints_only_json() {
    let c = Ceremony::new("2", "0");
    c.init_with_parts();
    let json = |args: &[&str]| -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--output", "json"]);
        let out = c.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("tke {args:?} --output json printed more than one JSON document ({e}):\n{out}")
        })
    };
    let compare = json(&["cryptounit-compare"]);
    assert_eq!(compare["identical"], true);
    assert_eq!(compare["units"].as_array().unwrap().len(), 2);
    for args in [
        &["cryptounit-admins"][..],
        &["cryptounit-thrhlds"],
        &["cryptounit-mk"],
        &["cryptounits"],
        &["sigkeys"],
        &["mks"],
        &["sigkey-sel", "1", "2"],
        &["cryptounit-add", "--all"],
        &["cryptounit-zeroize", "--plan"],
        &[
            "cryptounit-thrhld-set",
            "--signature-threshold",
            "1",
            "--revocation-threshold",
            "1",
            "--plan",
        ],
        &["cryptounit-mk-rotate", "--plan"],
    ] {
        let v = json(args);
        assert!(v.is_object(), "tke {args:?}: {v}");
    }
    let set = json(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "2",
    ]);
    assert_eq!(set["revocation_threshold"], 2);
}
