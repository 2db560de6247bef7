//! Create, CreateKeyPair, Register, Get, Activate, Revoke, Destroy, ReKey.

use strongroom_service::kmip::{KmipKeyPairSpec, NewKmipObject, RevocationReason};

use crate::codes::{alg, object, reason, revocation};
use crate::convert;
use crate::error_map::KmipError;
use crate::message::OpCtx;
use crate::ttlv::{Tag, Ttlv};

fn object_type(p: &Ttlv) -> Result<u32, KmipError> {
    p.child(Tag::OBJECT_TYPE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| KmipError::missing("an Object Type"))
}

fn uid_item(id: impl ToString) -> Ttlv {
    Ttlv::text(Tag::UNIQUE_IDENTIFIER, id.to_string())
}

/// The template of a request: a 1.x Template-Attribute or a 2.x Attributes structure.
fn template_of(
    p: &Ttlv,
    v1: Tag,
    v2: Tag,
) -> Result<Vec<strongroom_service::kmip::Attribute>, KmipError> {
    convert::template(p.child(v1).or_else(|| p.child(v2)))
}

pub async fn create(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let t = object_type(p)?;
    if t != object::SYMMETRIC_KEY {
        return Err(KmipError::unsupported(
            "Create makes symmetric keys; use CreateKeyPair for key pairs",
        ));
    }
    let mut attrs = template_of(p, Tag::TEMPLATE_ATTRIBUTE, Tag::ATTRIBUTES)?;
    convert::drop_echo(&mut attrs, "Object Type", t)?;
    let (algorithm, length) = convert::algorithm_and_length(&mut attrs)?;
    let algorithm = algorithm.ok_or_else(|| KmipError::missing("a Cryptographic Algorithm"))?;
    let length = length.ok_or_else(|| KmipError::missing("a Cryptographic Length"))?;
    let id = ctx
        .service
        .kmip_create(ctx.session, algorithm, length, attrs)
        .await
        .map_err(|e| ctx.fail(e))?;
    ctx.placeholder = Some(id.to_string());
    Ok(vec![Ttlv::enumeration(Tag::OBJECT_TYPE, t), uid_item(id)])
}

pub async fn create_key_pair(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let mut common = template_of(p, Tag::COMMON_TEMPLATE_ATTRIBUTE, Tag::COMMON_ATTRIBUTES)?;
    let mut private = template_of(
        p,
        Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
        Tag::PRIVATE_KEY_ATTRIBUTES,
    )?;
    let mut public = template_of(
        p,
        Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
        Tag::PUBLIC_KEY_ATTRIBUTES,
    )?;
    let mut algorithm = None;
    let mut length = None;
    let mut curve = None;
    for attrs in [&mut common, &mut private, &mut public] {
        let (a, l) = convert::algorithm_and_length(attrs)?;
        algorithm = algorithm.or(a);
        length = length.or(l);
        curve = curve.or(convert::recommended_curve(attrs));
    }
    let algorithm = algorithm.ok_or_else(|| KmipError::missing("a Cryptographic Algorithm"))?;
    let spec = match algorithm {
        alg::RSA => KmipKeyPairSpec::Rsa(
            length
                .and_then(|l| u32::try_from(l).ok())
                .ok_or_else(|| KmipError::missing("a Cryptographic Length"))?,
        ),
        alg::ECDSA | alg::EC | alg::ECDH => KmipKeyPairSpec::Ec(match (curve, length) {
            (Some(c), _) => c,
            (None, Some(256)) => 7,
            (None, Some(384)) => 10,
            (None, Some(521)) => 13,
            _ => return Err(KmipError::missing("a Recommended Curve")),
        }),
        other => {
            return Err(KmipError::unsupported(format!(
                "key pairs of algorithm {other} cannot be created here (RSA and EC can)"
            )))
        }
    };
    let mut private_attrs = common.clone();
    private_attrs.extend(private);
    let mut public_attrs = common;
    public_attrs.extend(public);
    convert::drop_echo(&mut private_attrs, "Object Type", object::PRIVATE_KEY)?;
    convert::drop_echo(&mut public_attrs, "Object Type", object::PUBLIC_KEY)?;
    let (private_id, public_id) = ctx
        .service
        .kmip_create_key_pair(ctx.session, spec, algorithm, private_attrs, public_attrs)
        .await
        .map_err(|e| ctx.fail(e))?;
    ctx.placeholder = Some(private_id.to_string());
    Ok(vec![
        Ttlv::text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, private_id.to_string()),
        Ttlv::text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER, public_id.to_string()),
    ])
}

pub async fn register(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let t = object_type(p)?;
    let m = convert::registered(t, p)?;
    let mut attrs = template_of(p, Tag::TEMPLATE_ATTRIBUTE, Tag::ATTRIBUTES)?;
    convert::drop_echo(&mut attrs, "Object Type", t)?;
    let (algorithm, length) = convert::algorithm_and_length(&mut attrs)?;
    let id = ctx
        .service
        .kmip_register(
            ctx.session,
            NewKmipObject {
                object_type: t,
                format: m.format,
                algorithm: m.algorithm.or(algorithm),
                length: m.length.or(length),
                subtype: m.subtype,
                presented: m.presented,
                material: m.bytes,
                attributes: attrs,
            },
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    ctx.placeholder = Some(id.to_string());
    Ok(vec![uid_item(id)])
}

pub async fn get(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    if p.child(Tag::KEY_WRAPPING_SPECIFICATION).is_some() {
        return Err(KmipError::unsupported(
            "Get with a Key Wrapping Specification is not supported; the key travels over the mutual-TLS connection",
        ));
    }
    if p.child(Tag::KEY_COMPRESSION_TYPE).is_some() {
        return Err(KmipError::new(
            reason::FEATURE_NOT_SUPPORTED,
            "key compression is not supported",
        ));
    }
    let want = p.child(Tag::KEY_FORMAT_TYPE).and_then(Ttlv::as_enum);
    let m = ctx
        .service
        .kmip_get(ctx.session, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let object = convert::managed_object(&m, want)?;
    Ok(vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, m.object_type),
        uid_item(m.id),
        object,
    ])
}

pub async fn activate(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    ctx.service
        .kmip_activate(ctx.session, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![uid_item(id)])
}

/// Get Usage Allocation: draws Usage Limits Count units from the object's Usage Limits.
pub async fn get_usage_allocation(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let amount = match p.child(Tag::USAGE_LIMITS_COUNT) {
        None => return Err(KmipError::missing("a Usage Limits Count")),
        Some(t) => t
            .as_long()
            .ok_or_else(|| KmipError::invalid("Usage Limits Count (a Long Integer)"))?,
    };
    ctx.service
        .kmip_get_usage_allocation(ctx.session, &id, amount)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![uid_item(id)])
}

pub async fn revoke(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let r = p
        .child(Tag::REVOCATION_REASON)
        .ok_or_else(|| KmipError::missing("a Revocation Reason"))?;
    let code = r
        .child(Tag::REVOCATION_REASON_CODE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| KmipError::missing("a Revocation Reason Code"))?;
    let message = r
        .child(Tag::REVOCATION_MESSAGE)
        .and_then(Ttlv::as_text)
        .map(str::to_string);
    let occurred = p
        .child(Tag::COMPROMISE_OCCURRENCE_DATE)
        .and_then(Ttlv::as_date_time);
    let kind = match code {
        revocation::KEY_COMPROMISE | revocation::CA_COMPROMISE => RevocationReason::Compromise,
        other => RevocationReason::Other(other),
    };
    ctx.service
        .kmip_revoke(ctx.session, &id, kind, code, message, occurred)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![uid_item(id)])
}

pub async fn destroy(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    ctx.service
        .kmip_destroy(ctx.session, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(vec![uid_item(id)])
}

pub async fn rekey(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let offset = match p.child(Tag::OFFSET) {
        None => None,
        Some(o) => Some(
            o.as_interval()
                .ok_or_else(|| KmipError::invalid("Offset: it must be an Interval"))?,
        ),
    };
    // The replacement takes its attributes from the existing key; attributes asked for
    // here would otherwise be dropped without a word.
    if !template_of(p, Tag::TEMPLATE_ATTRIBUTE, Tag::ATTRIBUTES)?.is_empty() {
        return Err(KmipError::unsupported(
            "ReKey with attributes is not supported: the replacement key takes the existing key's attributes (set others afterwards with Add Attribute or Modify Attribute)",
        ));
    }
    let new_id = ctx
        .service
        .kmip_rekey(ctx.session, &id, offset)
        .await
        .map_err(|e| ctx.fail(e))?;
    ctx.placeholder = Some(new_id.to_string());
    Ok(vec![uid_item(new_id)])
}
