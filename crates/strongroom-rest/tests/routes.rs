//! The REST adapter against the service, in-process: requests go through the router
//! (`strongroom_rest::router`) to a service over a temporary SQLite keystore, with no
//! server, socket or process. Each test names the adapter's duty it checks: routing,
//! Key Protect's envelopes and error table, the prologue (authentication, instance header,
//! content type, body limits), and the mapping of service results to JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use strongroom_model::{InstanceId, Role};
use strongroom_rest::{router, RestOptions};
use strongroom_service::testing::{TestNode, ADMIN_TOKEN};
use tower::ServiceExt as _;

const KEY_JSON: &str = "application/vnd.ibm.kms.key+json";

struct Client {
    app: axum::Router,
    instance: InstanceId,
    token: String,
}

struct Answer {
    status: StatusCode,
    body: Value,
    content_type: String,
}

impl Answer {
    /// The first reason code of a Key Protect error envelope.
    fn code(&self) -> &str {
        self.body["resources"][0]["reasons"][0]["code"]
            .as_str()
            .unwrap_or("")
    }
}

impl Client {
    async fn new(node: &TestNode, roles: &[Role]) -> Client {
        let instance = node.instance("dev").await;
        Client {
            app: router(node.svc.clone(), RestOptions::default()),
            instance,
            token: node.token(instance, roles),
        }
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            body,
            content_type,
        }
    }

    fn request(&self, method: &str, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("bluemix-instance", self.instance.to_string())
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let req = match body {
            Some(b) => self
                .request(method, path)
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => self.request(method, path).body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    async fn create_root(&self, name: &str) -> String {
        let r = self
            .call(
                "POST",
                "/api/v2/keys",
                Some(key_body(json!({"name": name}))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["resources"][0]["id"].as_str().unwrap().to_string()
    }
}

fn key_body(mut resource: Value) -> Value {
    resource["type"] = json!(KEY_JSON);
    json!({"metadata": {"collectionType": KEY_JSON, "collectionTotal": 1}, "resources": [resource]})
}

#[tokio::test]
async fn keys_are_created_read_and_used_through_the_router() {
    let node = TestNode::dev_in_memory().await;
    let c = Client::new(&node, &[Role::Manager]).await;
    let id = c.create_root("in-process").await;
    let r = c.call("GET", &format!("/api/v2/keys/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["metadata"]["collectionType"], KEY_JSON);
    assert_eq!(r.body["resources"][0]["name"], "in-process");
    assert_eq!(r.body["resources"][0]["extractable"], false);
    assert_eq!(r.content_type, KEY_JSON, "Key Protect's media type");
    let w = c
        .call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/wrap"),
            Some(json!({})),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK, "{:?}", w.body);
    let u = c
        .call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/unwrap"),
            Some(json!({"ciphertext": w.body["ciphertext"]})),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{:?}", u.body);
    assert_eq!(u.body["plaintext"], w.body["plaintext"]);
    // The service saw the same key: the adapter adds nothing of its own.
    let seen = node
        .svc
        .get_key_metadata(
            &node
                .svc
                .authenticate_with(
                    Some(&format!("Bearer {}", c.token)),
                    Some(&c.instance.to_string()),
                    "t".into(),
                    strongroom_service::Action::SecretsReadMetadata,
                    false,
                )
                .await
                .unwrap(),
            &id,
        )
        .await
        .unwrap();
    assert_eq!(seen.name, "in-process");
}

#[tokio::test]
async fn health_reports_whether_the_crypto_runs_in_fips_mode() {
    let node = TestNode::dev_in_memory().await;
    let c = Client::new(&node, &[Role::Reader]).await;
    let r = c.call("GET", "/health", None).await;
    assert_eq!(r.status, StatusCode::OK);
    // The test provider is no FIPS module.
    assert_eq!(
        r.body,
        json!({"status": "ok", "fips": false, "fips_policy": false})
    );
}

#[tokio::test]
async fn the_prologue_refuses_with_key_protects_envelope() {
    let node = TestNode::dev_in_memory().await;
    let c = Client::new(&node, &[Role::Manager]).await;
    let no_token = c
        .send(
            Request::builder()
                .uri("/api/v2/keys")
                .header("bluemix-instance", c.instance.to_string())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (no_token.status, no_token.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ERR")
    );
    assert_eq!(
        no_token.body["metadata"]["collectionType"],
        "application/vnd.ibm.kms.error+json"
    );
    let bad_instance = c
        .send(
            Request::builder()
                .uri("/api/v2/keys")
                .header("authorization", format!("Bearer {}", c.token))
                .header("bluemix-instance", "not-a-uuid")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bad_instance.status, StatusCode::BAD_REQUEST);
    let missing = c.call("GET", "/api/v2/keys/no-such-key", None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "KEY_NOT_FOUND_ERR")
    );
    let not_json = c
        .send(
            c.request("POST", "/api/v2/keys")
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        not_json.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        not_json.body
    );
    let too_big = c
        .send(
            c.request("POST", "/api/v2/keys")
                .header("content-type", "application/json")
                .body(Body::from(vec![b' '; 70 * 1024]))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (too_big.status, too_big.code()),
        (StatusCode::BAD_REQUEST, "BAD_BODY_ERR"),
        "a body over --max-body: {:?}",
        too_big.body
    );
    let unknown = c.call("GET", "/api/v2/nothing-here", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn roles_from_the_service_become_401_on_the_wire() {
    let node = TestNode::dev_in_memory().await;
    let manager = Client::new(&node, &[Role::Manager]).await;
    let id = manager.create_root("guarded").await;
    let mut reader = Client::new(&node, &[Role::Reader]).await;
    reader.instance = manager.instance;
    let w = reader
        .call(
            "POST",
            &format!("/api/v2/keys/{id}/actions/wrap"),
            Some(json!({})),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK);
    let r = reader
        .call(
            "POST",
            "/api/v2/keys",
            Some(key_body(json!({"name": "not-allowed"}))),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ERR")
    );
}

#[tokio::test]
async fn the_admin_surface_is_separate_and_needs_the_admin_token() {
    let node = TestNode::dev_in_memory().await;
    let c = Client::new(&node, &[Role::Manager]).await;
    let api_only = strongroom_rest::Frontend::new(node.svc.clone(), RestOptions::default());
    let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let on_api = api_only
        .handle(
            Request::builder()
                .uri("/admin/v1/instances")
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
            peer,
        )
        .await;
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    let admin = api_only.sibling(
        RestOptions::default(),
        strongroom_rest::Surface::Admin,
        strongroom_service::Network::Private,
    );
    let listed = admin
        .handle(
            Request::builder()
                .uri("/admin/v1/instances")
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
            peer,
        )
        .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let metrics = admin
        .handle(
            Request::builder()
                .uri("/metrics")
                .header("authorization", format!("Bearer {}", c.token))
                .body(Body::empty())
                .unwrap(),
            peer,
        )
        .await;
    assert_eq!(
        metrics.status(),
        StatusCode::UNAUTHORIZED,
        "a tenant token is not the admin token"
    );
    let keys_on_admin = admin
        .handle(
            c.request("GET", "/api/v2/keys")
                .body(Body::empty())
                .unwrap(),
            peer,
        )
        .await;
    assert_eq!(keys_on_admin.status(), StatusCode::NOT_FOUND);
}

/// An admin request of the `router` (both surfaces).
async fn admin_call(c: &Client, method: &str, path: &str, body: Option<Value>) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json");
    let req = match body {
        Some(b) => req.body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    };
    c.send(req.unwrap()).await
}

#[tokio::test]
async fn service_ids_and_key_rings_on_the_wire() {
    let node = TestNode::dev_in_memory().await;
    let m = Client::new(&node, &[Role::Manager]).await;
    let r = m.call("POST", "/api/v2/key_rings/payments", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let outside = m.create_root("outside").await;
    let sids = format!("/admin/v1/instances/{}/service_ids", m.instance);
    let created = admin_call(
        &m,
        "POST",
        &sids,
        Some(json!({"name": "payments app", "roles": ["Writer"], "key_rings": ["payments"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["key_rings"], json!(["payments"]));
    let sid = created.body["id"].as_str().unwrap().to_string();
    let keys = format!("/admin/v1/instances/{}/api_keys", m.instance);
    let k = admin_call(
        &m,
        "POST",
        &keys,
        Some(json!({"name": "app key", "service_id": sid})),
    )
    .await;
    assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
    assert_eq!(k.body["service_id"], json!(sid));
    assert!(k.body.get("roles").is_none());

    // Refusals in the admin API's own format, changing nothing.
    let both = admin_call(
        &m,
        "POST",
        &keys,
        Some(json!({"name": "x", "service_id": sid, "roles": ["Manager"]})),
    )
    .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST, "{:?}", both.body);
    let unknown = admin_call(
        &m,
        "POST",
        &keys,
        Some(json!({"name": "x", "service_id": "ServiceId-none"})),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "SERVICE_ID_NOT_FOUND_ERR")
    );
    let no_ring = admin_call(
        &m,
        "PUT",
        &format!("{sids}/{sid}"),
        Some(json!({"roles": ["Reader"], "key_rings": ["nope"]})),
    )
    .await;
    assert_eq!(no_ring.status, StatusCode::NOT_FOUND, "{:?}", no_ring.body);
    let listed = admin_call(&m, "GET", &keys, None).await;
    assert_eq!(listed.body["api_keys"].as_array().unwrap().len(), 1);
    let listed = admin_call(&m, "GET", &sids, None).await;
    assert_eq!(listed.body["service_ids"][0]["roles"], json!(["Writer"]));

    // The service ID's key, exchanged at the token endpoint, reaches only its ring.
    let form = format!(
        "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey={}",
        k.body["apikey"].as_str().unwrap()
    );
    let t = m
        .send(
            Request::builder()
                .method("POST")
                .uri("/identity/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    let app = Client {
        app: m.app.clone(),
        instance: m.instance,
        token: t.body["access_token"].as_str().unwrap().to_string(),
    };
    let body = key_body(json!({"name": "in payments"})).to_string();
    let created = app
        .send(
            app.request("POST", "/api/v2/keys")
                .header("content-type", "application/json")
                .header("x-kms-key-ring", "payments")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let listed = app.call("GET", "/api/v2/keys", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["metadata"]["collectionTotal"], json!(1));
    let w = app
        .call(
            "POST",
            &format!("/api/v2/keys/{outside}/actions/wrap"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (w.status, w.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ERR"),
        "{:?}",
        w.body
    );
    let policies = app.call("GET", "/api/v2/instance/policies", None).await;
    assert_eq!(policies.status, StatusCode::UNAUTHORIZED);

    // Deleting the service ID deletes its key.
    let d = admin_call(&m, "DELETE", &format!("{sids}/{sid}"), None).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let listed = admin_call(&m, "GET", &keys, None).await;
    assert!(listed.body["api_keys"].as_array().unwrap().is_empty());
}
