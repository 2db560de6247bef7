//! Key Protect's KMIP management API: adapters, their client certificates, and the KMIP
//! objects made through them.

use crate::*;

pub(crate) async fn list_kmip_adapters(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP adapters could not be listed";
    let call = Call::begin(&st, &h, Action::KmipAdaptersList, WHAT).await?;
    let parsed = (|| {
        let (limit, offset, _) = paging(&q, 100)?;
        if limit > 200 {
            return Err(ServiceError::new(
                ErrorKind::InvalidQueryParam,
                "The query parameter 'limit' must be: an integer from 1 to 200",
            ));
        }
        let crk = q
            .get("crk_id")
            .map(|s| {
                s.parse::<uuid::Uuid>()
                    .map(strongroom_model::KeyId)
                    .map_err(|_| {
                        ServiceError::new(
                            ErrorKind::InvalidQueryParam,
                            "The query parameter 'crk_id' must be: a key id",
                        )
                    })
            })
            .transpose()?;
        Ok((limit, offset, crk))
    })();
    let (limit, offset, crk) = call.accept(&st, parsed, None).await?;
    let all = call.run(st.svc.list_kmip_adapters(&call.ctx, crk)).await?;
    let page = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(kmip_adapter_json)
        .collect();
    let body = counted_collection(KMIP_ADAPTER_JSON, page, all.len() as u64);
    Ok(call.respond(StatusCode::OK, KMIP_ADAPTER_JSON, Some(body)))
}

pub(crate) async fn create_kmip_adapter(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "KMIP adapter could not be created";
    let (call, req) = Call::with_body(
        &st,
        &h,
        body,
        Action::KmipAdaptersCreate,
        WHAT,
        None,
        |body| {
            let allow = q
                .get("allowExpiringKey")
                .map(|s| parse_bool_param("allowExpiringKey", s))
                .transpose()?
                .unwrap_or(false);
            parse_kmip_adapter(body, allow)
        },
    )
    .await?;
    let a = call.run(st.svc.create_kmip_adapter(&call.ctx, req)).await?;
    Ok(call.one(
        StatusCode::CREATED,
        KMIP_ADAPTER_JSON,
        kmip_adapter_json(&a),
    ))
}

pub(crate) async fn get_kmip_adapter(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP adapter could not be retrieved";
    let call = Call::begin(&st, &h, Action::KmipAdaptersRead, WHAT).await?;
    let a = call.run(st.svc.get_kmip_adapter(&call.ctx, &id)).await?;
    Ok(call.one(StatusCode::OK, KMIP_ADAPTER_JSON, kmip_adapter_json(&a)))
}

pub(crate) async fn delete_kmip_adapter(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP adapter could not be deleted";
    let call = Call::begin(&st, &h, Action::KmipAdaptersDelete, WHAT).await?;
    call.run(st.svc.delete_kmip_adapter(&call.ctx, &id)).await?;
    Ok(call.respond(StatusCode::NO_CONTENT, "application/json", None))
}

pub(crate) async fn list_kmip_certificates(
    State(st): State<AppState>,
    Path(adapter): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP client certificates could not be listed";
    let call = Call::begin(&st, &h, Action::KmipCertificatesList, WHAT).await?;
    let (limit, offset, _) = call.accept(&st, paging(&q, 100), None).await?;
    let all = call
        .run(st.svc.list_kmip_certificates(&call.ctx, &adapter))
        .await?;
    let page = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|c| kmip_certificate_json(c, false))
        .collect();
    let body = counted_collection(KMIP_CERTIFICATE_JSON, page, all.len() as u64);
    Ok(call.respond(StatusCode::OK, KMIP_CERTIFICATE_JSON, Some(body)))
}

pub(crate) async fn add_kmip_certificate(
    State(st): State<AppState>,
    Path(adapter): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "KMIP client certificate could not be added";
    let (call, (name, pem)) = Call::with_body(
        &st,
        &h,
        body,
        Action::KmipCertificatesCreate,
        WHAT,
        None,
        parse_kmip_certificate,
    )
    .await?;
    let c = call
        .run(st.svc.add_kmip_certificate(&call.ctx, &adapter, name, &pem))
        .await?;
    Ok(call.one(
        StatusCode::CREATED,
        KMIP_CERTIFICATE_JSON,
        kmip_certificate_json(&c, true),
    ))
}

pub(crate) async fn get_kmip_certificate(
    State(st): State<AppState>,
    Path((adapter, id)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP client certificate could not be retrieved";
    let call = Call::begin(&st, &h, Action::KmipCertificatesRead, WHAT).await?;
    let c = call
        .run(st.svc.get_kmip_certificate(&call.ctx, &adapter, &id))
        .await?;
    Ok(call.one(
        StatusCode::OK,
        KMIP_CERTIFICATE_JSON,
        kmip_certificate_json(&c, true),
    ))
}

pub(crate) async fn delete_kmip_certificate(
    State(st): State<AppState>,
    Path((adapter, id)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP client certificate could not be deleted";
    let call = Call::begin(&st, &h, Action::KmipCertificatesDelete, WHAT).await?;
    call.run(st.svc.delete_kmip_certificate(&call.ctx, &adapter, &id))
        .await?;
    Ok(call.respond(StatusCode::NO_CONTENT, "application/json", None))
}

pub(crate) async fn list_kmip_objects(
    State(st): State<AppState>,
    Path(adapter): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP objects could not be listed";
    let call = Call::begin(&st, &h, Action::KmipObjectsList, WHAT).await?;
    let parsed = (|| {
        let (limit, offset, _) = paging(&q, 100)?;
        let states = q
            .get("state")
            .filter(|s| !s.is_empty())
            .map(|s| parse_kmip_states(s))
            .transpose()?;
        Ok((limit, offset, states.unwrap_or_default()))
    })();
    let (limit, offset, states) = call.accept(&st, parsed, None).await?;
    let (objects, total) = call
        .run(
            st.svc
                .list_kmip_objects(&call.ctx, &adapter, states, u64::from(offset), limit),
        )
        .await?;
    let body = counted_collection(
        KMIP_OBJECT_JSON,
        objects.iter().map(kmip_object_json).collect(),
        total,
    );
    Ok(call.respond(StatusCode::OK, KMIP_OBJECT_JSON, Some(body)))
}

pub(crate) async fn get_kmip_object(
    State(st): State<AppState>,
    Path((adapter, id)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP object could not be retrieved";
    let call = Call::begin(&st, &h, Action::KmipObjectsRead, WHAT).await?;
    let o = call
        .run(st.svc.get_kmip_object(&call.ctx, &adapter, &id))
        .await?;
    Ok(call.one(StatusCode::OK, KMIP_OBJECT_JSON, kmip_object_json(&o)))
}

pub(crate) async fn delete_kmip_object(
    State(st): State<AppState>,
    Path((adapter, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "KMIP object could not be deleted";
    let call = Call::begin(&st, &h, Action::KmipObjectsDelete, WHAT).await?;
    let force = call.force(&st, &q, None).await?;
    call.run(st.svc.delete_kmip_object(&call.ctx, &adapter, &id, force))
        .await?;
    Ok(call.respond(StatusCode::NO_CONTENT, "application/json", None))
}
