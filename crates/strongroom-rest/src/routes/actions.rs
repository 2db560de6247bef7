//! Key actions, in both styles (`/actions/<name>` and `?action=<name>`): wrap, unwrap,
//! rewrap, rotate, disable, enable, dual-authorization marks, sync.

use crate::*;

pub(crate) async fn action(
    State(st): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    run_action(st, id, action, h, body).await
}

pub(crate) async fn legacy_action(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    let Some(action) = q.get("action").cloned() else {
        let e = ServiceError::new(ErrorKind::InvalidQueryParam, "POST /api/v2/keys/{id} needs ?action=<wrap|unwrap|rewrap|rotate|disable|enable|restore>");
        return Err(ApiError::new(e, "Key action could not be performed"));
    };
    run_action(st, id, action, h, body).await
}

pub(crate) fn action_audit_name(action: &str) -> (Action, &'static str) {
    match action {
        "wrap" => (Action::SecretsWrap, "Key could not be wrapped"),
        "unwrap" => (Action::SecretsUnwrap, "Key could not be unwrapped"),
        "rewrap" => (Action::SecretsRewrap, "Key could not be rewrapped"),
        "rotate" => (Action::SecretsRotate, "Key could not be rotated"),
        "disable" => (Action::SecretsDisable, "Key could not be disabled"),
        "enable" => (Action::SecretsEnable, "Key could not be enabled"),
        "restore" => (Action::SecretsRestore, "Key could not be restored"),
        "setKeyForDeletion" => (
            Action::SecretsSetKeyForDeletion,
            "Key could not be set for deletion",
        ),
        "unsetKeyForDeletion" => (
            Action::SecretsUnsetKeyForDeletion,
            "Key could not be unset for deletion",
        ),
        _ => (Action::SecretsAction, "Key action could not be performed"),
    }
}

pub(crate) async fn run_action(
    st: AppState,
    id: String,
    action: String,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    let (audit_name, what) = action_audit_name(&action);
    let body = body_bytes(body, st.opts.max_body, what).await?;
    let call = Call::begin(&st, &h, audit_name, what).await?;
    let ctx = &call.ctx;
    let corr = ctx.correlation_id.clone();
    let parsed = (|| {
        check_content_type(&h, &body, what).map_err(|e| e.err)?;
        let obj = parse_object(&body)?;
        let known: &[&str] = match action.as_str() {
            "wrap" => &["plaintext", "aad"],
            "unwrap" | "rewrap" => &["ciphertext", "aad"],
            "rotate" => &["payload", "encryptednonce", "iv", "encryptionalgorithm"],
            "disable" | "enable" | "restore" => &[],
            "setKeyForDeletion" | "unsetKeyForDeletion" | "sync" => &[],
            other => {
                return Err(ServiceError::new(
                    ErrorKind::InvalidQueryParam,
                    format!("unknown action '{other}'"),
                ))
            }
        };
        let f = match obj {
            Some(o) => Some(Fields::new(o, known)?),
            None => None,
        };
        Ok(f)
    })();
    let fields = call.accept(&st, parsed, Some(&id)).await?;
    let svc = &st.svc;
    let fail = |e: ServiceError| ApiError::new(e, what);
    match action.as_str() {
        "wrap" => {
            let (plaintext, aad) = match &fields {
                Some(f) => {
                    let p = f
                        .string("plaintext", "plaintext")
                        .and_then(|p| p.map(|p| b64_field("plaintext", &p)).transpose());
                    let aad = aad_of(f);
                    match (p, aad) {
                        (Ok(p), Ok(a)) => (p, a),
                        (Err(e), _) | (_, Err(e)) => {
                            return Err(call.refuse(&st, e, Some(&id)).await)
                        }
                    }
                }
                None => (None, vec![]),
            };
            let w = svc.wrap(ctx, &id, plaintext, &aad).await.map_err(fail)?;
            Ok(respond(
                StatusCode::OK,
                KEY_ACTION_JSON,
                Some(wrapped_json(&w)),
                &corr,
            ))
        }
        "unwrap" | "rewrap" => {
            let parsed = (|| {
                let f = fields.as_ref().ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::NoBody,
                        "Missing body in request: 'ciphertext' is required",
                    )
                })?;
                let ct = f.string("ciphertext", "ciphertext")?.ok_or_else(|| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        "ciphertext",
                        "The field 'ciphertext' is required",
                    )
                })?;
                let ct = b64_field("ciphertext", &ct)?;
                Ok((ct, aad_of(f)?))
            })();
            let (ct, aad) = match parsed {
                Ok(p) => p,
                Err(e) => return Err(call.refuse(&st, e, Some(&id)).await),
            };
            if action == "unwrap" {
                let u = svc.unwrap(ctx, &id, &ct, &aad).await.map_err(fail)?;
                Ok(respond(
                    StatusCode::OK,
                    KEY_ACTION_JSON,
                    Some(unwrapped_json(&u)),
                    &corr,
                ))
            } else {
                let r = svc.rewrap(ctx, &id, &ct, &aad).await.map_err(fail)?;
                Ok(respond(
                    StatusCode::OK,
                    KEY_ACTION_JSON,
                    Some(rewrapped_json(&r)),
                    &corr,
                ))
            }
        }
        "rotate" => {
            let (payload, secure) = match &fields {
                Some(f) => {
                    let p = (|| {
                        let secure = parse_secure_import(f)?;
                        let payload = f
                            .string("payload", "payload")?
                            .map(|p| b64_field("payload", &p))
                            .transpose()?;
                        Ok::<_, ServiceError>((payload, secure))
                    })();
                    match p {
                        Ok(p) => p,
                        Err(e) => return Err(call.refuse(&st, e, Some(&id)).await),
                    }
                }
                None => (None, None),
            };
            svc.rotate(ctx, &id, payload, secure).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "disable" => {
            svc.disable(ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "enable" => {
            svc.enable(ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "setKeyForDeletion" => {
            svc.set_key_for_deletion(ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "unsetKeyForDeletion" => {
            svc.unset_key_for_deletion(ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        "sync" => {
            svc.sync_key(ctx, &id).await.map_err(fail)?;
            Ok(respond(StatusCode::NO_CONTENT, KEY_JSON, None, &corr))
        }
        _ => {
            let rec = svc.restore(ctx, &id).await.map_err(fail)?;
            Ok(respond(
                StatusCode::CREATED,
                KEY_JSON,
                Some(collection(KEY_JSON, vec![key_json(&rec, None)])),
                &corr,
            ))
        }
    }
}
