//! `auto-init` asks for what is missing, as IBM's TKE does: administrators to create in
//! the flow, and the thresholds; scripts pass them as flags.

use std::io::Write as _;

use super::*;

#[tokio::test]
async fn auto_init_creates_administrators_in_the_flow_and_asks_for_thresholds() {
    let c = Ceremony::new("1", "1");
    step("Without thresholds and without a terminal, it says which flags to pass and changes nothing.");
    c.fails(
        &["auto-init"],
        "pass --signature-threshold and --revocation-threshold",
    );
    assert!(c.units().iter().all(|u| u["mode"] == "imprint"));

    step("--new-admins creates carol's signature key in the flow and installs her with alice and bob.");
    c.ok(&[
        "auto-init",
        "--new-admins",
        "carol",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
    ]);
    assert!(c.ws.join("carol.sigkey").exists());
    let units = c.units();
    assert_eq!(units.len(), 2);
    for u in &units {
        assert_eq!(u["admins"].as_array().unwrap().len(), 3, "{u}");
        assert_eq!(u["current"]["state"], "valid", "{u}");
    }
    assert!(c.ok(&["cryptounit-compare"]).contains("identical"));

    step("On a terminal it asks for the thresholds (answered through a pseudo-terminal).");
    let d = Ceremony::new("1", "1");
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} tke auto-init", bin().display()),
            "/dev/null",
        ])
        .envs(d.workstation_env())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    {
        let mut stdin = child.stdin.take().unwrap();
        // The thresholds, then the confirmation of the plan.
        stdin.write_all(b"2\n1\nyes\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = text_of(&out);
    assert!(
        text.contains("Signature threshold") && text.contains("Revocation threshold"),
        "{text}"
    );
    let units = d.units();
    assert!(
        units
            .iter()
            .all(|u| u["signature_threshold"] == 2 && u["revocation_threshold"] == 1),
        "{text}\n{units:?}"
    );
}
