//! REST integration tests against a real `strongroom serve --dev` process on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use serde_json::json;

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

async fn key_state(api: &Api, id: &str) -> (u64, String) {
    let r = api
        .call("GET", &format!("/api/v2/keys/{id}/metadata"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let k = &r.body["resources"][0];
    (
        k["state"].as_u64().unwrap(),
        k["keyVersion"]["id"].as_str().unwrap().to_string(),
    )
}

async fn count(api: &Api) -> u64 {
    let r = api
        .raw("HEAD", "/api/v2/keys?state=0,1,2,3,5", None, None, &[])
        .await;
    assert_eq!(r.status, 200);
    r.headers["key-total"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn key_api_end_to_end_with_both_action_styles() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let api = s.client();

    // create: generated root, imported root (16/24/32), standard generated and imported
    let r = api
        .raw(
            "POST",
            "/api/v2/keys",
            Some(key_body(json!({"name": "root-1", "description": "d", "aliases": ["r1"], "extractable": false})).to_string()),
            None, // the Go client sends no Content-Type
            &[("prefer", "return=representation")],
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.ibm.kms.key+json"
    );
    let k = &r.body["resources"][0];
    let root = k["id"].as_str().unwrap().to_string();
    assert_eq!(k["keyVersion"]["id"], k["id"], "first version id = key id");
    assert_eq!(
        (k["state"].as_u64(), k["extractable"].as_bool()),
        (Some(1), Some(false))
    );
    assert!(k.get("payload").is_none(), "root keys never show material");
    assert!(k["creationDate"].as_str().unwrap().ends_with('Z'));
    for len in [16usize, 24, 32] {
        let r = api
            .create_key(
                json!({"name": "imp", "extractable": false, "payload": b64(&vec![7u8; len])}),
            )
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.body["resources"][0]["imported"], true);
    }
    let r = api
        .create_key(json!({"Name": "std", "Extractable": true, "Payload": b64(b"secret-bytes")}))
        .await;
    assert_eq!(
        r.status, 201,
        "capitalised field names are accepted: {:?}",
        r.body
    );
    assert_eq!(r.body["resources"][0]["payload"], b64(b"secret-bytes"));
    let std_id = r.body["resources"][0]["id"].as_str().unwrap().to_string();
    let r = api
        .call("GET", &format!("/api/v2/keys/{std_id}"), None)
        .await;
    assert_eq!(r.body["resources"][0]["payload"], b64(b"secret-bytes"));
    let r = api
        .call("GET", &format!("/api/v2/keys/{std_id}/metadata"), None)
        .await;
    assert!(r.body["resources"][0].get("payload").is_none());

    // list, filters, HEAD
    let r = api.call("GET", "/api/v2/keys?limit=2&offset=0", None).await;
    assert_eq!(r.body["resources"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["metadata"]["collectionTotal"], 2);
    let r = api.call("GET", "/api/v2/keys?extractable=true", None).await;
    assert_eq!(r.body["resources"].as_array().unwrap().len(), 1);
    assert_eq!(count(&api).await, 5);

    // wrap (generated DEK and caller DEK), both action styles, with AAD
    let r = api.action(&root, "wrap", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.ibm.kms.key_action+json"
    );
    let gen_dek = r.body["plaintext"].as_str().unwrap().to_string();
    assert_eq!(STANDARD.decode(&gen_dek).unwrap().len(), 32);
    let gen_ct = r.body["ciphertext"].as_str().unwrap().to_string();
    let r = api
        .raw(
            "POST",
            "/api/v2/keys/r1?action=wrap",
            Some(json!({"plaintext": b64(b"dek"), "aad": ["a", "b"]}).to_string()),
            Some("application/vnd.ibm.kms.key_action+json"),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.get("plaintext").is_none());
    let ct = r.body["ciphertext"].as_str().unwrap().to_string();
    let v1 = r.body["keyVersion"]["id"].as_str().unwrap().to_string();

    // rotate, then unwrap an old ciphertext: plaintext + rewrapped ciphertext
    let r = api
        .call("POST", &format!("/api/v2/keys/{root}/actions/rotate"), None)
        .await;
    assert_eq!(r.status, 204);
    let (_, v2) = key_state(&api, &root).await;
    assert_ne!(v1, v2);
    let r = api
        .action(
            &root,
            "unwrap",
            json!({"ciphertext": ct, "aad": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["plaintext"], b64(b"dek"));
    assert_eq!(r.body["keyVersion"]["id"], v1.as_str());
    assert_eq!(r.body["rewrappedKeyVersion"]["id"], v2.as_str());
    let rewrapped = r.body["ciphertext"].as_str().unwrap().to_string();
    let r = api
        .call(
            "POST",
            &format!("/api/v2/keys/{root}?action=unwrap"),
            Some(json!({"ciphertext": rewrapped, "aad": ["a", "b"]})),
        )
        .await;
    assert_eq!(r.body["plaintext"], b64(b"dek"));
    assert!(r.body.get("rewrappedKeyVersion").is_none());
    let r = api
        .action(&root, "unwrap", json!({"ciphertext": gen_ct}))
        .await;
    assert_eq!(r.body["plaintext"], gen_dek.as_str());
    let r = api
        .action(
            &root,
            "rewrap",
            json!({"ciphertext": ct, "aad": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["rewrappedKeyVersion"]["id"], v2.as_str());
    let r = api
        .call(
            "GET",
            &format!("/api/v2/keys/{root}/versions?totalCount=true"),
            None,
        )
        .await;
    assert_eq!(r.body["metadata"]["totalCount"], 2);
    assert_eq!(r.body["resources"][0]["id"], v2.as_str(), "newest first");
    let r = api
        .call("POST", &format!("/api/v2/keys/{root}/actions/rotate"), None)
        .await;
    assert_eq!((r.status, r.code()), (409, "KEY_ROTATION_NOT_PERMITTED"));

    // disable / enable with the 30 s rule (test clock)
    assert_eq!(
        api.call(
            "POST",
            &format!("/api/v2/keys/{root}/actions/disable"),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(key_state(&api, &root).await.0, 2);
    let r = api.action(&root, "wrap", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "KEY_ACTION_INVALID_STATE_ERR"));
    let r = api
        .call("POST", &format!("/api/v2/keys/{root}?action=enable"), None)
        .await;
    assert_eq!((r.status, r.code()), (409, "REQ_TOO_EARLY_ERR"));
    api.advance(&s.admin_token, 31).await;
    assert_eq!(
        api.call("POST", &format!("/api/v2/keys/{root}?action=enable"), None)
            .await
            .status,
        204
    );

    // delete / restore / purge with the 30 s, 30 d and 4 h rules
    let r = api
        .raw(
            "DELETE",
            &format!("/api/v2/keys/{root}"),
            None,
            None,
            &[("prefer", "return=representation")],
        )
        .await;
    assert_eq!(r.status, 200);
    let k = &r.body["resources"][0];
    assert_eq!(
        (k["state"].as_u64(), k["deleted"].as_bool()),
        (Some(5), Some(true))
    );
    assert!(k["purgeAllowedFrom"].is_string() && k["restoreExpirationDate"].is_string());
    let r = api
        .call("DELETE", &format!("/api/v2/keys/{root}"), None)
        .await;
    assert_eq!((r.status, r.code()), (410, "KEY_DELETED_ERR"));
    let r = api
        .call("POST", &format!("/api/v2/keys/{root}/restore"), None)
        .await;
    assert_eq!((r.status, r.code()), (409, "REQ_TOO_EARLY_ERR"));
    api.advance(&s.admin_token, 31).await;
    let r = api
        .call("POST", &format!("/api/v2/keys/{root}/restore"), None)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["resources"][0]["state"], 1);
    let r = api
        .raw(
            "DELETE",
            &format!("/api/v2/keys/{root}?force=true"),
            None,
            None,
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(r.status, 204);
    let purge = api
        .call("DELETE", &format!("/api/v2/keys/{root}/purge"), None)
        .await;
    assert_eq!(
        (purge.status, purge.code()),
        (401, "UNAUTHORIZED_ERR"),
        "Manager cannot purge"
    );
    assert_eq!(count(&api).await, 5, "a denied purge changes nothing");
}

#[tokio::test]
async fn bad_input_gets_documented_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--max-body", "16384"]);
    let api = s.client();
    let root = api.create_root("r").await;
    let other = api.create_root("other").await;
    let w = api
        .action(
            &root,
            "wrap",
            json!({"plaintext": b64(b"dek"), "aad": ["x"]}),
        )
        .await;
    let ct = w.body["ciphertext"].as_str().unwrap().to_string();
    let before = count(&api).await;
    let (state0, version0) = key_state(&api, &root).await;

    let cases: Vec<(&str, Resp, u16, &str)> = vec![
        ("malformed JSON", api.raw("POST", "/api/v2/keys", Some("{\"metadata\":".into()), Some("application/json"), &[]).await, 400, "BAD_BODY_ERR"),
        ("wrong content type", api.raw("POST", "/api/v2/keys", Some("name=x".into()), Some("text/plain"), &[]).await, 400, "BAD_BODY_ERR"),
        ("two resources", api.call("POST", "/api/v2/keys", Some(json!({"metadata": {"collectionTotal": 2}, "resources": [{"name": "a"}, {"name": "b"}]}))).await, 400, "BAD_BODY_ERR"),
        ("total mismatch", api.call("POST", "/api/v2/keys", Some(json!({"metadata": {"collectionTotal": 3}, "resources": [{"name": "a"}]}))).await, 400, "COLLECTION_TOTAL_MISMATCH_ERR"),
        ("unknown field", api.create_key(json!({"name": "a", "color": "red"})).await, 400, "BAD_BODY_ERR"),
        ("no name", api.create_key(json!({"extractable": false})).await, 400, "INVALID_FIELD_ERR"),
        ("name too long", api.create_key(json!({"name": "n".repeat(91)})).await, 400, "INVALID_FIELD_ERR"),
        ("invalid base64 payload", api.create_key(json!({"name": "a", "payload": "%%%"})).await, 400, "INVALID_FIELD_ERR"),
        ("root payload 20 bytes", api.create_key(json!({"name": "a", "payload": b64(&[1; 20])})).await, 400, "INVALID_FIELD_ERR"),
        ("standard payload too big", api.create_key(json!({"name": "a", "extractable": true, "payload": b64(&[1; 7501])})).await, 400, "INVALID_FIELD_ERR"),
        ("body over the limit", api.create_key(json!({"name": "a", "description": "d".repeat(20000)})).await, 400, "BAD_BODY_ERR"),
        ("bad expiration", api.create_key(json!({"name": "a", "expirationDate": "tomorrow"})).await, 400, "INVALID_FIELD_ERR"),
        ("past expiration", api.create_key(json!({"name": "a", "expirationDate": "2001-01-01T00:00:00Z"})).await, 400, "INVALID_FIELD_ERR"),
        ("alias looks like a UUID", api.create_key(json!({"name": "a", "aliases": [root.clone()]})).await, 400, "INVALID_FIELD_ERR"),
        ("unknown key id", api.call("GET", "/api/v2/keys/9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01", None).await, 404, "KEY_NOT_FOUND_ERR"),
        ("unknown alias", api.call("POST", "/api/v2/keys/no-such-alias/actions/wrap", Some(json!({}))).await, 404, "KEY_NOT_FOUND_ERR"),
        ("unwrap without body", api.call("POST", &format!("/api/v2/keys/{root}/actions/unwrap"), None).await, 400, "NO_BODY_ERR"),
        ("ciphertext not base64", api.action(&root, "unwrap", json!({"ciphertext": "not base64!", "aad": ["x"]})).await, 400, "INVALID_FIELD_ERR"),
        ("ciphertext garbage", api.action(&root, "unwrap", json!({"ciphertext": b64(b"garbage"), "aad": ["x"]})).await, 400, "INVALID_FIELD_ERR"),
        ("ciphertext tampered", {
            let mut b = STANDARD.decode(&ct).unwrap();
            let n = b.len() - 3;
            b[n] ^= 1;
            api.action(&root, "unwrap", json!({"ciphertext": b64(&b), "aad": ["x"]})).await
        }, 400, "INVALID_FIELD_ERR"),
        ("ciphertext of another key", api.action(&other, "unwrap", json!({"ciphertext": ct, "aad": ["x"]})).await, 400, "INVALID_FIELD_ERR"),
        ("AAD mismatch", api.action(&root, "unwrap", json!({"ciphertext": ct, "aad": ["y"]})).await, 400, "INVALID_FIELD_ERR"),
        ("AAD not strings", api.action(&root, "unwrap", json!({"ciphertext": ct, "aad": [1]})).await, 400, "INVALID_FIELD_ERR"),
        ("AAD too long", api.action(&root, "wrap", json!({"aad": ["a".repeat(256)]})).await, 400, "INVALID_FIELD_ERR"),
        ("plaintext too big", api.action(&root, "wrap", json!({"plaintext": b64(&[0; 7501])})).await, 400, "INVALID_FIELD_ERR"),
        ("unknown action", api.call("POST", &format!("/api/v2/keys/{root}/actions/explode"), None).await, 400, "INVALID_QUERY_PARAM_ERR"),
        ("legacy without action", api.call("POST", &format!("/api/v2/keys/{root}"), None).await, 400, "INVALID_QUERY_PARAM_ERR"),
        ("bad state filter", api.call("GET", "/api/v2/keys?state=4", None).await, 400, "INVALID_QUERY_PARAM_ERR"),
        ("bad limit", api.call("GET", "/api/v2/keys?limit=5001", None).await, 400, "INVALID_QUERY_PARAM_ERR"),
        ("enable an active key", api.call("POST", &format!("/api/v2/keys/{root}/actions/enable"), None).await, 409, "KEY_ACTION_INVALID_STATE_ERR"),
        ("restore an active key", api.call("POST", &format!("/api/v2/keys/{root}/restore"), None).await, 409, "KEY_ACTION_INVALID_STATE_ERR"),
        ("rotate with payload (not imported)", api.action(&root, "rotate", json!({"payload": b64(&[1; 32])})).await, 400, "INVALID_FIELD_ERR"),
    ];
    for (what, r, status, code) in cases {
        assert_eq!((r.status, r.code()), (status, code), "{what}: {:?}", r.body);
        assert_eq!(
            r.body["metadata"]["collectionType"], "application/vnd.ibm.kms.error+json",
            "{what}"
        );
        assert!(
            r.body["resources"][0]["errorMsg"]
                .as_str()
                .unwrap()
                .contains(code),
            "{what}"
        );
    }

    // authentication and instance checks
    let mut no_token = api.clone();
    no_token.token = String::new();
    let r = api
        .http
        .get(format!("{}/api/v2/keys", api.url))
        .header("bluemix-instance", &api.instance)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = no_token.call("GET", "/api/v2/keys", None).await;
    assert_eq!((r.status, r.code()), (400, "BEARER_SUB_EXTRACTION_ERR"));
    let mut forged = api.clone();
    forged.token = format!("{}x", api.token);
    let r = forged.call("GET", "/api/v2/keys", None).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "UNAUTHORIZED_ERR"),
        "a bad signature is refused"
    );
    let mut wrong_instance = api.clone();
    wrong_instance.instance = "9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01".into();
    assert_eq!(
        wrong_instance
            .call("GET", &format!("/api/v2/keys/{root}"), None)
            .await
            .status,
        401
    );
    wrong_instance.instance = "not-a-uuid".into();
    let r = wrong_instance.call("GET", "/api/v2/keys", None).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_FIELD_ERR"));

    // a Reader API key: can wrap, cannot unwrap or create
    let mut reader = api.clone();
    reader.token = token_for(&s, &api.instance, &["Reader"]).await;
    assert_eq!(reader.action(&root, "wrap", json!({})).await.status, 200);
    let r = reader
        .action(&root, "unwrap", json!({"ciphertext": ct, "aad": ["x"]}))
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED_ERR"));
    assert_eq!(reader.create_key(json!({"name": "no"})).await.status, 401);
    let bad = reqwest::Client::new()
        .post(format!("{}/identity/token", api.url))
        .body("grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=sr1.nope.nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    // nothing changed
    assert_eq!(count(&api).await, before);
    assert_eq!(key_state(&api, &root).await, (state0, version0));
    let r = api
        .action(&root, "unwrap", json!({"ciphertext": ct, "aad": ["x"]}))
        .await;
    assert_eq!(r.body["plaintext"], b64(b"dek"));

    // a ReaderPlus API key: reads a standard key's payload; cannot unwrap or create, on
    // REST and on GREP11 alike
    let created = admin_post(
        &s,
        &format!("/admin/v1/instances/{}/api_keys", api.instance),
        json!({"name": "fetcher", "roles": ["ReaderPlus"]}),
    )
    .await;
    assert_eq!(created["roles"], json!(["ReaderPlus"]), "{created}");
    let mut plus = api.clone();
    plus.token = exchange_apikey(&api.url, created["apikey"].as_str().unwrap()).await;
    let std_key = api
        .create_key(json!({"name": "fetched", "extractable": true, "payload": b64(b"app-secret")}))
        .await;
    let std_id = std_key.body["resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = plus
        .call("GET", &format!("/api/v2/keys/{std_id}"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["resources"][0]["payload"], b64(b"app-secret"));
    let r = reader
        .call("GET", &format!("/api/v2/keys/{std_id}"), None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (401, "UNAUTHORIZED_ERR"),
        "a Reader gets no payload"
    );
    let r = plus
        .action(&root, "unwrap", json!({"ciphertext": ct, "aad": ["x"]}))
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED_ERR"));
    let mut g = grep11_client(&s).await;
    let random = g
        .generate_random(grep11_req(
            strongroom_grep11::pb::GenerateRandomRequest { len: 16 },
            &plus.token,
        ))
        .await;
    assert_eq!(random.unwrap().into_inner().rnd.len(), 16);
    let refused = g
        .generate_key(grep11_req(
            strongroom_grep11::pb::GenerateKeyRequest {
                mech: Some(strongroom_grep11::pb::Mechanism {
                    mechanism: strongroom_grep11::ckm::AES_KEY_GEN.0,
                    parameter: None,
                }),
                ..Default::default()
            },
            &plus.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    // expired token: move the clock past the dev token's 7 days
    api.advance(&s.admin_token, 8 * 86_400).await;
    let r = api.call("GET", "/api/v2/keys", None).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED_ERR"));
    assert!(r.body["resources"][0]["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn purge_needs_keypurge_and_four_hours() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let api = s.client();
    let id = api.create_root("p").await;
    let created = admin_post(
        &s,
        &format!("/admin/v1/instances/{}/api_keys", api.instance),
        json!({"name": "purger", "roles": ["KeyPurge"]}),
    )
    .await;
    let apikey = created["apikey"].as_str().unwrap().to_string();
    let mut purger = api.clone();
    purger.token = exchange_apikey(&api.url, &apikey).await;
    let r = purger
        .call("DELETE", &format!("/api/v2/keys/{id}/purge"), None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "KEY_ACTION_INVALID_STATE_ERR"),
        "only deleted keys"
    );
    api.call("DELETE", &format!("/api/v2/keys/{id}"), None)
        .await;
    let r = purger
        .call("DELETE", &format!("/api/v2/keys/{id}/purge"), None)
        .await;
    assert_eq!((r.status, r.code()), (409, "REQ_TOO_EARLY_ERR"));
    api.advance(&s.admin_token, 4 * 3600).await;
    let r = purger
        .call("DELETE", &format!("/api/v2/keys/{id}/purge"), None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (401, "UNAUTHORIZED_ERR"),
        "the 1-hour token expired meanwhile"
    );
    purger.token = exchange_apikey(&api.url, &apikey).await;
    let r = purger
        .call("DELETE", &format!("/api/v2/keys/{id}/purge"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        api.call("GET", &format!("/api/v2/keys/{id}"), None)
            .await
            .status,
        404
    );
}
