//! Registrations of keys by other resources, and key event acknowledgements.

use crate::*;

pub(crate) async fn list_registrations_common(
    st: AppState,
    key: Option<String>,
    q: HashMap<String, String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Registrations could not be listed";
    let call = Call::begin(&st, &h, Action::RegistrationsList, WHAT).await?;
    let ctx = &call.ctx;
    let parsed = (|| {
        let (limit, offset, total) = paging(&q, 200)?;
        let prevent = q
            .get("preventKeyDeletion")
            .map(|s| parse_bool_param("preventKeyDeletion", s))
            .transpose()?;
        let crn = q
            .get("urlEncodedResourceCRNQuery")
            .filter(|c| !c.is_empty())
            .cloned();
        if key.is_none() {
            if let Some(c) = &crn {
                if c.split(':').take(8).any(|seg| seg.contains('*')) {
                    return Err(ServiceError::new(ErrorKind::InvalidQueryParam, "urlEncodedResourceCRNQuery may use '*' only after the eighth CRN segment when listing all keys"));
                }
            }
        }
        Ok((Page { limit, offset }, total, prevent, crn))
    })();
    let (page, want_total, prevent, crn) = call.accept(&st, parsed, key.as_deref()).await?;
    let (list, total) = call
        .run(
            st.svc
                .list_registrations(ctx, key.as_deref(), crn.as_deref(), prevent, page),
        )
        .await?;
    let mut body = collection(
        REGISTRATION_JSON,
        list.iter().map(registration_json).collect(),
    );
    with_total(&mut body, want_total.then_some(total as u64));
    Ok(call.respond(StatusCode::OK, "application/json", Some(body)))
}

pub(crate) async fn list_all_registrations(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    list_registrations_common(st, None, q, h).await
}

pub(crate) async fn list_key_registrations(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    list_registrations_common(st, Some(id), q, h).await
}

/// A registration write: POST creates, PUT creates or replaces, PATCH updates. The route
/// sends only these methods here; any other is refused as on a route without it.
pub(crate) async fn write_registration(
    State(st): State<AppState>,
    method: Method,
    Path((id, crn)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    use strongroom_service::RegistrationWrite as Write;
    const WHAT: &str = "Registration could not be written";
    let (mode, action) = if method == Method::POST {
        (Write::Create, Action::RegistrationsCreate)
    } else if method == Method::PUT {
        (Write::Replace, Action::RegistrationsReplace)
    } else if method == Method::PATCH {
        (Write::Update, Action::RegistrationsUpdate)
    } else {
        return Ok(error_map::RequestRefusal::MethodNotAllowed(method).into_response());
    };
    let (call, input) = Call::with_body(&st, &h, body, action, WHAT, Some(&id), |body| {
        let Some(obj) = parse_object(body)? else {
            return Ok(strongroom_service::RegistrationInput::default());
        };
        let f = Fields::new(
            single_resource(obj)?,
            &[
                "preventkeydeletion",
                "description",
                "registrationmetadata",
                "keyversionid",
            ],
        )?;
        let key_version = f
            .string("keyversionid", "keyVersionId")?
            .map(|v| {
                v.parse().map_err(|_| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        "keyVersionId",
                        "keyVersionId must be a key version id",
                    )
                })
            })
            .transpose()?;
        Ok::<_, ServiceError>(strongroom_service::RegistrationInput {
            prevent_key_deletion: f.bool("preventkeydeletion", "preventKeyDeletion")?,
            description: f.string("description", "description")?,
            metadata: f.string("registrationmetadata", "registrationMetadata")?,
            key_version,
        })
    })
    .await?;
    let ctx = &call.ctx;
    let rec = call
        .run(st.svc.write_registration(ctx, &id, &crn, input, mode))
        .await?;
    let view = strongroom_service::RegistrationView {
        record: rec,
        key_name: String::new(),
        key_version_created_at: None,
    };
    let status = if mode == strongroom_service::RegistrationWrite::Create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond(
        status,
        "application/json",
        Some(collection(
            REGISTRATION_JSON,
            vec![registration_json(&view)],
        )),
        &ctx.correlation_id,
    ))
}

pub(crate) async fn delete_registration(
    State(st): State<AppState>,
    Path((id, crn)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Registration could not be deleted";
    let call = Call::begin(&st, &h, Action::RegistrationsDelete, WHAT).await?;
    let ctx = &call.ctx;
    call.run(st.svc.delete_registration(ctx, &id, &crn)).await?;
    Ok(call.respond(StatusCode::NO_CONTENT, REGISTRATION_JSON, None))
}

/// `POST /api/v2/event_ack`: an integrated service acknowledges a key lifecycle event.
pub(crate) async fn event_ack(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    const WHAT: &str = "Event could not be acknowledged";
    let (call, (event, version)) =
        Call::with_body(&st, &h, body, Action::SecretsEventAck, WHAT, None, |body| {
            let obj = required_object(body, "Missing body in request")?;
            let f = Fields::new(
                obj,
                &[
                    "eventid",
                    "adopterkeystate",
                    "timestamp",
                    "keystatedata",
                    "deleteregistration",
                ],
            )?;
            let event = f.string("eventid", "eventId")?.ok_or_else(|| {
                ServiceError::field(ErrorKind::InvalidField, "eventId", "eventId is required")
            })?;
            if let Some(t) = f.string("timestamp", "timestamp")? {
                parse_ts("timestamp", &t)?;
            }
            let version = match f.get("keystatedata") {
                Some(Value::Object(d)) => d
                    .get("keyVersion")
                    .and_then(Value::as_str)
                    .map(String::from),
                _ => None,
            };
            Ok::<_, ServiceError>((event, version))
        })
        .await?;
    let ctx = &call.ctx;
    call.run(st.svc.acknowledge_event(ctx, &event, version.as_deref()))
        .await?;
    Ok(call.respond(StatusCode::NO_CONTENT, "application/json", None))
}
