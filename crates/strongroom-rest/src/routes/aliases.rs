//! Key aliases.

use crate::*;

pub(crate) async fn create_alias(
    State(st): State<AppState>,
    Path((id, alias)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key alias could not be created";
    let call = Call::begin(&st, &h, Action::SecretsCreateAlias, WHAT).await?;
    let ctx = &call.ctx;
    let (key_id, at) = st
        .svc
        .create_key_alias(ctx, &id, &alias)
        .await
        .map_err(|e| call.fail(e))?;
    let res = alias_json(key_id, &alias, at, &ctx.principal.subject);
    Ok(call.respond(
        StatusCode::CREATED,
        ALIAS_JSON,
        Some(collection(ALIAS_JSON, vec![res])),
    ))
}

pub(crate) async fn delete_alias(
    State(st): State<AppState>,
    Path((id, alias)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key alias could not be deleted";
    let call = Call::begin(&st, &h, Action::SecretsDeleteAlias, WHAT).await?;
    let ctx = &call.ctx;
    st.svc
        .delete_key_alias(ctx, &id, &alias)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(call.respond(StatusCode::NO_CONTENT, ALIAS_JSON, None))
}
