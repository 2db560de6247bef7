//! Keys: create (with and without policy overrides), list, count, read, versions, delete,
//! purge, restore, and moves between key rings.

use crate::*;

const CREATE_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "aliases",
    "tags",
    "expirationdate",
    "extractable",
    "payload",
    "encryptednonce",
    "iv",
    "encryptionalgorithm",
    "keyringid",
    "rotation",
    "dualauthdelete",
];

pub(crate) async fn create_key(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    create_key_with(st, h, body, false).await
}

pub(crate) async fn create_key_with_overrides(
    State(st): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    create_key_with(st, h, body, true).await
}

pub(crate) async fn create_key_with(
    st: AppState,
    h: HeaderMap,
    body: Body,
    with_overrides: bool,
) -> ApiResult {
    const WHAT: &str = "Key could not be created";
    let (call, req) = Call::with_body(&st, &h, body, Action::SecretsCreate, WHAT, None, |body| {
        let obj = required_object(body, "Missing body in request")?;
        let f = Fields::new(single_resource(obj)?, CREATE_FIELDS)?;
        let secure = parse_secure_import(&f)?;
        let overrides = parse_policy_overrides(&f, with_overrides)?;
        // The ring comes from X-Kms-Key-Ring (as Key Protect does); a keyRingID in the
        // body must agree with it.
        let header_ring = header(&h, "x-kms-key-ring").map(String::from);
        let body_ring = f.string("keyringid", "keyRingID")?;
        let key_ring = match (header_ring, body_ring) {
            (Some(a), Some(b)) if a != b => {
                return Err(ServiceError::field(
                    ErrorKind::InvalidField,
                    "keyRingID",
                    "keyRingID and the X-Kms-Key-Ring header name different key rings",
                ));
            }
            (a, b) => a.or(b),
        };
        let name = f.string("name", "name")?.ok_or_else(|| {
            ServiceError::field(
                ErrorKind::InvalidField,
                "name",
                "The field 'name' is required",
            )
        })?;
        let extractable = f.bool("extractable", "extractable")?.unwrap_or(false);
        let payload = f
            .string("payload", "payload")?
            .map(|p| b64_field("payload", &p))
            .transpose()?;
        let expiration = f
            .string("expirationdate", "expirationDate")?
            .map(|s| parse_ts("expirationDate", &s))
            .transpose()?;
        Ok(CreateKey {
            name,
            description: f.string("description", "description")?,
            aliases: f.strings("aliases", "aliases")?,
            kind: if extractable {
                KeyKind::Standard
            } else {
                KeyKind::Root
            },
            payload,
            expiration,
            key_ring,
            secure,
            overrides,
        })
    })
    .await?;
    let ctx = &call.ctx;
    let view = call.run(st.svc.create_key(ctx, req)).await?;
    let payload = if prefer_minimal(&h) {
        None
    } else {
        view.payload.as_deref().map(|p| p.as_slice())
    };
    Ok(call.one(
        StatusCode::CREATED,
        KEY_JSON,
        key_json(&view.record, payload),
    ))
}

pub(crate) fn list_filter(
    q: &HashMap<String, String>,
    h: &HeaderMap,
) -> Result<(KeyFilter, strongroom_service::ListQuery), ServiceError> {
    // The IBM Python SDK sends `state=` (empty) when no state is asked for.
    let states = match q.get("state").filter(|s| !s.is_empty()) {
        Some(s) => parse_states(s)?,
        None => vec![
            KeyState::PreActivation,
            KeyState::Active,
            KeyState::Suspended,
            KeyState::Deactivated,
        ],
    };
    let extractable = q
        .get("extractable")
        .map(|s| parse_bool_param("extractable", s))
        .transpose()?;
    let key_ring = header(h, "x-kms-key-ring").map(String::from);
    let filter = KeyFilter {
        states,
        extractable,
        key_ring,
        within_rings: None,
    };
    Ok((filter, list_query(q)?))
}

pub(crate) fn list_query(
    q: &HashMap<String, String>,
) -> Result<strongroom_service::ListQuery, ServiceError> {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
    let search = get("search")
        .map(|s| strongroom_service::Search::parse(s))
        .transpose()?;
    let sort = get("sort")
        .map(|s| strongroom_service::parse_sort(s))
        .transpose()?
        .unwrap_or_default();
    let filter = match get("filter") {
        Some(f) => strongroom_service::parse_filter(f, &|t| parse_ts("filter", t).ok())?,
        None => vec![],
    };
    let has = |p: fn(&strongroom_service::FilterTerm) -> bool| filter.iter().any(p);
    if (get("state").is_some() && has(|t| matches!(t, strongroom_service::FilterTerm::States(_))))
        || (get("extractable").is_some()
            && has(|t| matches!(t, strongroom_service::FilterTerm::Extractable(_))))
    {
        return Err(ServiceError::new(
            ErrorKind::InvalidQueryParam,
            "state and extractable cannot be given both in 'filter' and as query parameters",
        ));
    }
    Ok(strongroom_service::ListQuery {
        search,
        sort,
        filter,
    })
}

pub(crate) fn query_is_plain(q: &strongroom_service::ListQuery) -> bool {
    q.search.is_none() && q.sort.is_empty() && q.filter.is_empty()
}

pub(crate) async fn list_keys(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Keys could not be listed";
    let call = Call::begin(&st, &h, Action::SecretsList, WHAT).await?;
    let ctx = &call.ctx;
    let parsed = (|| {
        let filter = list_filter(&q, &h)?;
        let limit = q
            .get("limit")
            .map(|s| parse_u32_param("limit", s, 1, 5000))
            .transpose()?
            .unwrap_or(200);
        let offset = q
            .get("offset")
            .map(|s| parse_u32_param("offset", s, 0, u32::MAX))
            .transpose()?
            .unwrap_or(0);
        Ok((filter, Page { limit, offset }))
    })();
    let ((filter, query), page) = call.accept(&st, parsed, None).await?;
    let (keys, incomplete) = if query_is_plain(&query) {
        (call.run(st.svc.list_keys(ctx, &filter, page)).await?, false)
    } else {
        let out = call
            .run(st.svc.search_keys(ctx, &filter, &query, page))
            .await?;
        (out.keys, out.incomplete)
    };
    let now = st.svc.now();
    let resources = keys
        .iter()
        .map(|k| {
            let mut j = key_json(k, None);
            add_deletion_flags(&mut j, k, now);
            j
        })
        .collect();
    let mut body = collection(KEY_JSON, resources);
    if let Some(s) = &query.search {
        with_search(&mut body, s, incomplete);
    }
    Ok(call.respond(StatusCode::OK, KEY_JSON, Some(body)))
}

pub(crate) async fn count_keys(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Keys could not be counted";
    let call = Call::begin(&st, &h, Action::SecretsHead, WHAT).await?;
    let ctx = &call.ctx;
    let (filter, query) = call.accept(&st, list_filter(&q, &h), None).await?;
    // A sort does not change how many keys there are.
    let n = if query.search.is_none() && query.filter.is_empty() {
        call.run(st.svc.count_keys(ctx, &filter)).await?
    } else {
        let all = Page {
            limit: strongroom_service::SEARCH_SPACE,
            offset: 0,
        };
        call.run(st.svc.search_keys(ctx, &filter, &query, all))
            .await?
            .keys
            .len() as u64
    };
    let mut resp = call.respond(StatusCode::OK, KEY_JSON, None);
    if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
        resp.headers_mut().insert("key-total", v);
    }
    Ok(resp)
}

pub(crate) async fn get_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key could not be retrieved";
    let call = Call::begin(&st, &h, Action::SecretsRead, WHAT).await?;
    let ctx = &call.ctx;
    let view = call.run(st.svc.get_key(ctx, &id)).await?;
    Ok(call.key(
        StatusCode::OK,
        &view.record,
        view.payload.as_deref().map(|p| p.as_slice()),
        Some(st.svc.now()),
    ))
}

pub(crate) async fn get_metadata(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key metadata could not be retrieved";
    let call = Call::begin(&st, &h, Action::SecretsReadMetadata, WHAT).await?;
    let ctx = &call.ctx;
    let rec = call.run(st.svc.get_key_metadata(ctx, &id)).await?;
    Ok(call.key(StatusCode::OK, &rec, None, Some(st.svc.now())))
}

pub(crate) async fn key_versions(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key versions could not be listed";
    let call = Call::begin(&st, &h, Action::SecretsListKeyVersions, WHAT).await?;
    let ctx = &call.ctx;
    let parsed = (|| {
        let (limit, offset, total) = paging(&q, 200)?;
        let all = q
            .get("allKeyStates")
            .map(|s| parse_bool_param("allKeyStates", s))
            .transpose()?
            .unwrap_or(false);
        Ok((Page { limit, offset }, total, all))
    })();
    let (page, want_total, all) = call.accept(&st, parsed, Some(&id)).await?;
    let (versions, total) = call.run(st.svc.key_versions(ctx, &id, page, all)).await?;
    let mut body = collection(VERSION_JSON, versions.iter().map(version_json).collect());
    with_total(&mut body, want_total.then_some(total));
    Ok(call.respond(StatusCode::OK, VERSION_JSON, Some(body)))
}

pub(crate) async fn delete_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key could not be deleted";
    let call = Call::begin(&st, &h, Action::SecretsDelete, WHAT).await?;
    let ctx = &call.ctx;
    let force = call.force(&st, &q, Some(&id)).await?;
    let rec = call.run(st.svc.delete(ctx, &id, force)).await?;
    if prefer_minimal(&h) {
        return Ok(call.respond(StatusCode::NO_CONTENT, KEY_JSON, None));
    }
    Ok(call.key(StatusCode::OK, &rec, None, Some(st.svc.now())))
}

pub(crate) async fn purge_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key could not be purged";
    let call = Call::begin(&st, &h, Action::SecretsPurge, WHAT).await?;
    let ctx = &call.ctx;
    let rec = call.run(st.svc.purge(ctx, &id)).await?;
    if prefer_minimal(&h) {
        return Ok(call.respond(StatusCode::NO_CONTENT, KEY_JSON, None));
    }
    Ok(call.key(StatusCode::OK, &rec, None, None))
}

pub(crate) async fn restore_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key could not be restored";
    let call = Call::begin(&st, &h, Action::SecretsRestore, WHAT).await?;
    let ctx = &call.ctx;
    let rec = call.run(st.svc.restore(ctx, &id)).await?;
    Ok(call.key(StatusCode::CREATED, &rec, None, None))
}

pub(crate) async fn patch_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Key could not be updated";
    let (call, target) = Call::with_body(
        &st,
        &h,
        body,
        Action::SecretsPatch,
        WHAT,
        Some(&id),
        |body| {
            let obj = parse_object(body)?.ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::NoBody,
                    "Missing body in request: {\"keyRingID\": ...} is required",
                )
            })?;
            let f = Fields::new(obj, &["keyringid"])?;
            f.string("keyringid", "keyRingID")?.ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "keyRingID",
                    "The field 'keyRingID' is required",
                )
            })
        },
    )
    .await?;
    let ctx = &call.ctx;
    let rec = call
        .run(
            st.svc
                .move_key(ctx, &id, header(&h, "x-kms-key-ring"), &target),
        )
        .await?;
    Ok(call.key(StatusCode::OK, &rec, None, None))
}
