//! Import tokens for secure import.

use crate::*;
use strongroom_service::TransportKey;

pub(crate) async fn post_import_token(
    State(st): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Import token could not be created";
    let (call, (expiration, retrievals, transport)) = Call::with_body(
        &st,
        &h,
        body,
        Action::ImportTokenCreate,
        WHAT,
        None,
        |body| {
            let Some(obj) = parse_object(body)? else {
                return Ok((None, None, TransportKey::default()));
            };
            let f = Fields::new(
                obj,
                &[
                    "expiration",
                    "maxallowedretrievals",
                    "transportkeyalgorithm",
                ],
            )?;
            Ok((
                f.int("expiration", "expiration")?,
                f.int("maxallowedretrievals", "maxAllowedRetrievals")?,
                parse_transport_key(&f)?,
            ))
        },
    )
    .await?;
    let ctx = &call.ctx;
    let t = call
        .run(
            st.svc
                .create_import_token(ctx, expiration, retrievals, transport),
        )
        .await?;
    Ok(call.respond(
        StatusCode::OK,
        "application/json",
        Some(import_token_json(&t)),
    ))
}

pub(crate) async fn get_import_token(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Import Token could not be retrieved";
    let call = Call::begin(&st, &h, Action::ImportTokenRead, WHAT).await?;
    let ctx = &call.ctx;
    let t = call.run(st.svc.get_import_token(ctx)).await?;
    Ok(call.respond(
        StatusCode::OK,
        "application/json",
        Some(import_token_json(&t)),
    ))
}
