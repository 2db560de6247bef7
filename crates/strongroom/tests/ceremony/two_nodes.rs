//! Units on two nodes share one master key and rotate together.

use super::*;

/// Two nodes on one PostgreSQL keystore, each hosting its own unit of one instance: the
/// ceremony reaches both through `--url a,b`, a key created on one node serves on the
/// other, and a rotation keeps both serving.
#[tokio::test]
async fn units_on_two_nodes_share_one_master_key_and_rotate_together() {
    let db = fresh_postgres_db("sr_cer").await;
    step("The nodes share only the cluster key (tokens, audit chain): each has its own node key, administrator token and crypto unit.");
    let cluster = tempfile::tempdir().unwrap();
    let cluster_key = cluster.path().join("cluster.key");
    let ck = cluster_key.to_str().unwrap();
    let dir_a = tempfile::tempdir().unwrap();
    let a = Server::start_with(
        dir_a.path(),
        &["--keystore-url", &db, "--cluster-key-file", ck],
    );
    assert!(
        cluster_key.exists(),
        "the first node creates the cluster key file"
    );
    let dir_b = tempfile::tempdir().unwrap();
    let b = Server::start_with(
        dir_b.path(),
        &["--keystore-url", &db, "--cluster-key-file", ck],
    );
    assert_ne!(
        std::fs::read(dir_a.path().join("node.key")).unwrap(),
        std::fs::read(dir_b.path().join("node.key")).unwrap()
    );
    let admin = |server: &Server, dir: &Path, args: &[&str]| {
        let mut v = args.to_vec();
        v.extend_from_slice(&[
            "--url",
            &server.url,
            "--data-dir",
            dir.to_str().unwrap(),
            "--output",
            "json",
        ]);
        let (ok, out, err) = run(&v, &[]);
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let instance = admin(
        &a,
        dir_a.path(),
        &[
            "instance",
            "create",
            "shared",
            "--units",
            "1",
            "--recovery-units",
            "0",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin(&b, dir_b.path(), &["instance", "add-unit", &instance]);
    let apikey = admin(
        &a,
        dir_a.path(),
        &[
            "instance", "apikey", "create", &instance, "--role", "Manager",
        ],
    )["apikey"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = dir_a.path().join("tke");
    let pw = dir_a.path().join("passwords");
    std::fs::write(&pw, PASSWORDS).unwrap();
    let urls = format!("{},{}", a.url, b.url);
    let env = [
        ("STRONGROOM_URL", urls.as_str()),
        ("STRONGROOM_INSTANCE", instance.as_str()),
        ("STRONGROOM_API_KEY", apikey.as_str()),
        ("STRONGROOM_TKE_FILES", ws.to_str().unwrap()),
        ("STRONGROOM_TKE_PASSWORDS", pw.to_str().unwrap()),
    ];
    let tke = |args: &[&str]| {
        let mut v = vec!["tke"];
        v.extend_from_slice(args);
        let (ok, out, err) = run(&v, &env);
        assert!(ok, "tke {args:?}: {err}");
        out + &err
    };
    let out = tke(&["cryptounits"]);
    assert!(
        out.contains(&a.url) && out.contains(&b.url),
        "one unit on each node: {out}"
    );
    tke(&["sigkey-add", "--name", "alice", "--kdf-memory-mib", "64"]);
    tke(&["sigkey-add", "--name", "bob", "--kdf-memory-mib", "64"]);
    tke(&["sigkey-sel", "1", "2"]);
    tke(&["cryptounit-add", "--all"]);
    tke(&["cryptounit-admin-add", "alice"]);
    tke(&["cryptounit-admin-add", "bob"]);
    tke(&[
        "cryptounit-thrhld-set",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "2",
    ]);
    for p in ["part1", "part2", "part3"] {
        tke(&[
            "mk-add",
            "--random",
            "--description",
            p,
            "--kdf-memory-mib",
            "64",
        ]);
    }
    tke(&["cryptounit-mk-load", "part1", "part2"]);
    tke(&["cryptounit-mk-commit"]);
    tke(&["cryptounit-mk-setimm", "--yes"]);
    assert!(tke(&["cryptounit-compare"]).contains("2 selected units are identical"));

    let token = |server: &Server| {
        let (url, apikey) = (server.url.clone(), apikey.clone());
        async move { exchange_apikey(&url, &apikey).await }
    };
    let api_a = Api {
        http: reqwest::Client::new(),
        url: a.url.clone(),
        admin_url: a.admin_url.clone(),
        instance: instance.clone(),
        token: token(&a).await,
    };
    let api_b = Api {
        http: reqwest::Client::new(),
        url: b.url.clone(),
        admin_url: b.admin_url.clone(),
        instance: instance.clone(),
        token: token(&b).await,
    };
    let keys = futures_join(&api_a, 50).await;
    let mut deks = Vec::new();
    for k in &keys {
        // Node B serves keys created on node A.
        deks.push(api_b.wrap(k).await);
    }
    step("An import token made before the rotation.");
    let r = api_a
        .call(
            "POST",
            "/api/v2/import_token",
            Some(json!({"expiration": 1200, "maxAllowedRetrievals": 5})),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
    step("GREP11 before the rotation: a key blob and a ciphertext under the current key.");
    use strongroom_grep11::pb;
    let mut g = grep11_client(&a).await;
    let mech = |iv: &[u8]| {
        Some(pb::Mechanism {
            mechanism: strongroom_grep11::ckm::AES_CBC_PAD.0,
            parameter: Some(pb::mechanism::Parameter::ParameterB(iv.to_vec())),
        })
    };
    let tf = |v: bool| pb::AttributeValue {
        one_attr: Some(pb::attribute_value::OneAttr::AttributeTf(v)),
    };
    let template = [
        (
            strongroom_grep11::cka::VALUE_LEN,
            pb::AttributeValue {
                one_attr: Some(pb::attribute_value::OneAttr::AttributeI(16)),
            },
        ),
        (strongroom_grep11::cka::ENCRYPT, tf(true)),
        (strongroom_grep11::cka::DECRYPT, tf(true)),
    ]
    .into_iter()
    .map(|(a, v)| (a.0, v))
    .collect();
    let old_blob = g
        .generate_key(grep11_req(
            pb::GenerateKeyRequest {
                mech: Some(pb::Mechanism {
                    mechanism: strongroom_grep11::ckm::AES_KEY_GEN.0,
                    parameter: None,
                }),
                template,
            },
            &api_a.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .key_bytes;
    let kb = |b: &[u8]| {
        Some(pb::KeyBlob {
            key_blobs: vec![b.to_vec().into()],
            ..Default::default()
        })
    };
    let before = g
        .encrypt_single(grep11_req(
            pb::EncryptSingleRequest {
                mech: mech(&[4; 16]),
                plain: b"before the rotation".to_vec(),
                key: kb(&old_blob),
                ..Default::default()
            },
            &api_a.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .ciphered;
    step("Another instance's blob: that instance's unit holds another master key.");
    let err = g
        .encrypt_single(grep11_req(
            pb::EncryptSingleRequest {
                mech: mech(&[4; 16]),
                plain: b"x".to_vec(),
                key: kb(&old_blob),
                ..Default::default()
            },
            &a.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        strongroom_grep11::grep11_error_of(&err).unwrap().code,
        strongroom_grep11::ckr::IBM_WKID_MISMATCH.0
    );
    tke(&["cryptounit-mk-load", "part2", "part3"]);
    tke(&["cryptounit-mk-commit"]);
    step("Test_rewrapKeyBlob: once the new key is committed, RewrapKeyBlob moves the blob to it.");
    let rewrapped = g
        .rewrap_key_blob(grep11_req(
            pb::RewrapKeyBlobRequest {
                wrapped_key: kb(&old_blob),
                ..Default::default()
            },
            &api_a.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .rewrapped_key_bytes;
    assert_ne!(rewrapped, old_blob);
    step("A rotation needs every unit of the instance.");
    let units_out = tke(&["cryptounits"]);
    let unit_b = units_out
        .lines()
        .find(|l| l.contains(&b.url))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    tke(&["cryptounit-rm", &unit_b]);
    let (ok, _, err) = run(&["tke", "cryptounit-mk-rotate"], &env);
    assert!(
        !ok && err.contains("needs every unit of the instance selected"),
        "{err}"
    );
    tke(&["cryptounit-add", "--all"]);
    let out = tke(&["cryptounit-mk-rotate"]);
    assert!(
        out.contains("key storage re-encrypted (50 key version(s))"),
        "{out}"
    );
    for (api, other) in [(&api_a, &api_b), (&api_b, &api_a)] {
        assert_unwraps(api, &deks).await;
        let k = other.create_root("after-rotation").await;
        api.wrap(&k).await;
    }
    assert!(tke(&["cryptounit-compare"]).contains("identical"));
    step("After the rotation: the old blob is refused with CKR_IBM_WKID_MISMATCH; the rewrapped blob decrypts what the old one encrypted, on either node.");
    for server in [&a, &b] {
        let mut g = grep11_client(server).await;
        let decrypt = |key: Vec<u8>| {
            grep11_req(
                pb::DecryptSingleRequest {
                    mech: mech(&[4; 16]),
                    ciphered: before.clone(),
                    key: kb(&key),
                    ..Default::default()
                },
                &api_a.token,
            )
        };
        let err = g
            .decrypt_single(decrypt(old_blob.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            strongroom_grep11::grep11_error_of(&err).unwrap().code,
            strongroom_grep11::ckr::IBM_WKID_MISMATCH.0
        );
        let plain = g
            .decrypt_single(decrypt(rewrapped.clone()))
            .await
            .unwrap()
            .into_inner()
            .plain;
        assert_eq!(plain, b"before the rotation");
    }
    step("The import token is stale after the rotation: a clear, retryable answer (not a 500).");
    let resource = json!({"name": "imported", "extractable": false,
        "payload": B64.encode([1u8; 512]), "encryptedNonce": B64.encode([2u8; 28]), "iv": B64.encode([3u8; 12]),
        "encryptionAlgorithm": "RSAES_OAEP_SHA_256"});
    let r = api_a.create_key(resource).await;
    r.assert_refused(409, "IMPORT_TOKEN_EXPIRED_ERR");
    assert!(
        r.body.to_string().contains("previous master key"),
        "{:?}",
        r.body
    );
    step("Both nodes extended one audit chain, keyed by the cluster key.");
    let verify = |key: Option<&str>| {
        let mut v = vec![
            "audit",
            "verify",
            "--keystore-url",
            &db,
            "--data-dir",
            dir_b.path().to_str().unwrap(),
        ];
        if let Some(k) = key {
            v.extend_from_slice(&["--cluster-key-file", k]);
        }
        run(&v, &[])
    };
    let (ok, out, err) = verify(Some(ck));
    assert!(ok && out.contains("chain intact"), "{out}{err}");
    let (ok, _, _) = verify(None);
    assert!(!ok, "the chain is not keyed by a node key");
}
