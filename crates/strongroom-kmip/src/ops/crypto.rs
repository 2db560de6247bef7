//! Encrypt, Decrypt, Sign, SignatureVerify, MAC.

use strongroom_service::kmip::KmipCipher;

use crate::codes::validity;
use crate::convert;
use crate::error_map::KmipError;
use crate::message::OpCtx;
use crate::ttlv::{Tag, Ttlv};

fn data(p: &Ttlv) -> Result<&[u8], KmipError> {
    p.child(Tag::DATA)
        .and_then(Ttlv::as_bytes)
        .ok_or_else(|| KmipError::missing("Data"))
}

fn bytes_of(p: &Ttlv, tag: Tag) -> Option<Vec<u8>> {
    p.child(tag).and_then(Ttlv::as_bytes).map(<[u8]>::to_vec)
}

fn has_tag_field(ctx: &OpCtx<'_>) -> bool {
    ctx.version.v2() || ctx.version.minor >= 4
}

fn check_streaming(p: &Ttlv) -> Result<(), KmipError> {
    if p.child(Tag::CORRELATION_VALUE).is_some()
        || p.child(Tag::INIT_INDICATOR).and_then(Ttlv::as_bool) == Some(true)
    {
        return Err(KmipError::unsupported(
            "multi-part (streaming) cryptographic operations are not supported",
        ));
    }
    Ok(())
}

pub async fn encrypt(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    check_streaming(p)?;
    let cipher = convert::cipher(p)?;
    let aad = bytes_of(p, Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA).unwrap_or_default();
    let (ct, iv, tag) = ctx
        .service
        .kmip_encrypt(
            ctx.session,
            &id,
            cipher,
            bytes_of(p, Tag::IV_COUNTER_NONCE),
            &aad,
            data(p)?,
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    // KMIP 1.4 added the Authenticated Encryption Tag field; before it, the tag follows
    // the ciphertext in Data.
    let (ct, tag) = match tag {
        Some(t) if !has_tag_field(ctx) => ([ct, t].concat(), None),
        other => (ct, other),
    };
    let mut out = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, id),
        Ttlv::bytes(Tag::DATA, ct),
    ];
    if let Some(iv) = iv {
        out.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv));
    }
    if let Some(tag) = tag {
        out.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag));
    }
    Ok(out)
}

pub async fn decrypt(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    check_streaming(p)?;
    let cipher = convert::cipher(p)?;
    let aad = bytes_of(p, Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA).unwrap_or_default();
    let data = data(p)?;
    let (data, tag) = match (cipher, bytes_of(p, Tag::AUTHENTICATED_ENCRYPTION_TAG)) {
        (KmipCipher::AesGcm { .. }, None) if !has_tag_field(ctx) && data.len() >= 16 => {
            let (c, t) = data.split_at(data.len() - 16);
            (c, Some(t.to_vec()))
        }
        (_, tag) => (data, tag),
    };
    let plain = ctx
        .service
        .kmip_decrypt(
            ctx.session,
            &id,
            cipher,
            bytes_of(p, Tag::IV_COUNTER_NONCE),
            &aad,
            data,
            tag,
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, id),
        Ttlv::bytes(Tag::DATA, plain.to_vec()),
    ])
}

pub async fn sign(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    check_streaming(p)?;
    if p.child(Tag::DIGESTED_DATA).is_some() {
        return Err(KmipError::unsupported(
            "Sign over Digested Data is not supported; send the Data",
        ));
    }
    let scheme = convert::signature(p)?;
    let sig = ctx
        .service
        .kmip_sign(ctx.session, &id, scheme, data(p)?)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, id),
        Ttlv::bytes(Tag::SIGNATURE_DATA, sig),
    ])
}

pub async fn signature_verify(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    check_streaming(p)?;
    let scheme = convert::signature(p)?;
    let signature =
        bytes_of(p, Tag::SIGNATURE_DATA).ok_or_else(|| KmipError::missing("Signature Data"))?;
    let ok = ctx
        .service
        .kmip_verify(ctx.session, &id, scheme, data(p)?, &signature)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, id),
        Ttlv::enumeration(
            Tag::VALIDITY_INDICATOR,
            if ok {
                validity::VALID
            } else {
                validity::INVALID
            },
        ),
    ])
}

pub async fn mac(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    check_streaming(p)?;
    let hash = convert::params_hash(Some(p))?;
    let m = ctx
        .service
        .kmip_mac(ctx.session, &id, hash, data(p)?)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, id),
        Ttlv::bytes(Tag::MAC_DATA, m),
    ])
}
