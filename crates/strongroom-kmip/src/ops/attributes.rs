//! GetAttributes, GetAttributeList, AddAttribute, ModifyAttribute / SetAttribute,
//! DeleteAttribute, Locate: the 1.x forms (Attribute structures with names and indexes)
//! and the 2.x forms (tagged attributes, Attribute References).

use strongroom_service::kmip::{AttrValue, Attribute, KmipLocate};
use strongroom_service::Action;

use crate::convert;
use crate::error_map::KmipError;
use crate::message::{texts, OpCtx};
use crate::ttlv::{Tag, Ttlv};

fn uid_item(id: &str) -> Ttlv {
    Ttlv::text(Tag::UNIQUE_IDENTIFIER, id)
}

/// The attribute names a 2.x request refers to (Attribute References by tag).
fn references(p: &Ttlv) -> Result<Vec<String>, KmipError> {
    p.children(Tag::ATTRIBUTE_REFERENCE)
        .map(|r| {
            let tag = r.as_enum().ok_or_else(|| {
                KmipError::unsupported("vendor attribute references are not supported")
            })?;
            convert::name_of(Tag(tag))
                .map(str::to_string)
                .ok_or_else(|| KmipError::invalid("Attribute Reference"))
        })
        .collect()
}

pub async fn get_attributes(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let wanted = if ctx.version.v2() {
        references(p)?
    } else {
        texts(p, Tag::ATTRIBUTE_NAME)
    };
    let all = ctx
        .service
        .kmip_attributes(ctx.session, &id, Action::KmipGetAttributes)
        .await
        .map_err(|e| ctx.fail(e))?;
    let chosen: Vec<Attribute> = all
        .into_iter()
        .filter(|a| wanted.is_empty() || wanted.contains(&a.name))
        .collect();
    let mut out = vec![uid_item(&id)];
    if ctx.version.v2() {
        out.push(Ttlv::structure(
            Tag::ATTRIBUTES,
            convert::attributes_to_v2(&chosen),
        ));
    } else {
        out.extend(convert::attributes_to_v1(&chosen));
    }
    Ok(out)
}

pub async fn get_attribute_list(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let all = ctx
        .service
        .kmip_attributes(ctx.session, &id, Action::KmipGetAttributeList)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut names: Vec<&str> = Vec::new();
    for a in &all {
        if !names.contains(&a.name.as_str()) {
            names.push(&a.name);
        }
    }
    let mut out = vec![uid_item(&id)];
    if ctx.version.v2() {
        out.extend(
            names
                .iter()
                .filter_map(|n| convert::tag_of(n))
                .map(|t| Ttlv::enumeration(Tag::ATTRIBUTE_REFERENCE, t.0)),
        );
    } else {
        out.extend(names.iter().map(|n| Ttlv::text(Tag::ATTRIBUTE_NAME, *n)));
    }
    Ok(out)
}

/// The attribute of a 2.x New Attribute or Current Attribute structure.
fn wrapped_attribute(p: &Ttlv, tag: Tag) -> Result<Option<Attribute>, KmipError> {
    match p.child(tag) {
        None => Ok(None),
        Some(w) => {
            let inner = w
                .items()
                .first()
                .ok_or_else(|| KmipError::missing("the attribute"))?;
            convert::attribute_from_v2(inner).map(Some)
        }
    }
}

/// The position of `current` among the object's values of its attribute: the index a 2.x
/// Current Attribute names.
async fn index_of(ctx: &mut OpCtx<'_>, id: &str, current: &Attribute) -> Result<u32, KmipError> {
    let all = ctx
        .service
        .kmip_attributes(ctx.session, id, Action::KmipGetAttributes)
        .await
        .map_err(|e| ctx.fail(e))?;
    let pos = all
        .iter()
        .filter(|x| x.name == current.name)
        .position(|x| x.value == current.value)
        .ok_or_else(|| KmipError::invalid("Current Attribute (no such value)"))?;
    Ok(u32::try_from(pos).unwrap_or(u32::MAX))
}

/// The answer of Add, Modify and Delete Attribute: the object's id, and in 1.x the
/// attribute with its index.
fn answer(ctx: &OpCtx<'_>, id: &str, a: &Attribute, index: u32) -> Vec<Ttlv> {
    let mut out = vec![uid_item(id)];
    if !ctx.version.v2() {
        out.push(convert::attribute_to_v1(a, Some(index)));
    }
    out
}

pub async fn add_attribute(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let a = if ctx.version.v2() {
        wrapped_attribute(p, Tag::NEW_ATTRIBUTE)?
            .ok_or_else(|| KmipError::missing("a New Attribute"))?
    } else {
        convert::attribute_from_v1(
            p.child(Tag::ATTRIBUTE)
                .ok_or_else(|| KmipError::missing("an Attribute"))?,
        )?
        .0
    };
    let index = ctx
        .service
        .kmip_add_attribute(ctx.session, &id, a.clone())
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(answer(ctx, &id, &a, index))
}

pub async fn modify_attribute(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let (a, index) = if ctx.version.v2() {
        let new = wrapped_attribute(p, Tag::NEW_ATTRIBUTE)?
            .ok_or_else(|| KmipError::missing("a New Attribute"))?;
        let index = match wrapped_attribute(p, Tag::CURRENT_ATTRIBUTE)? {
            None => None,
            Some(current) => Some(index_of(ctx, &id, &current).await?),
        };
        (new, index)
    } else {
        convert::attribute_from_v1(
            p.child(Tag::ATTRIBUTE)
                .ok_or_else(|| KmipError::missing("an Attribute"))?,
        )?
    };
    let result = ctx
        .service
        .kmip_modify_attribute(ctx.session, &id, a.clone(), index)
        .await;
    let index = match result {
        Ok(i) => i,
        // SetAttribute (2.x) and a 2.x Modify without a current value add an absent
        // attribute.
        Err(e)
            if ctx.version.v2()
                && index.is_none()
                && e.kind == strongroom_service::ErrorKind::KmipObjectNotFound
                && e.message.contains("has no attribute") =>
        {
            ctx.service
                .kmip_add_attribute(ctx.session, &id, a.clone())
                .await
                .map_err(|e| ctx.fail(e))?
        }
        Err(e) => return Err(ctx.fail(e)),
    };
    Ok(answer(ctx, &id, &a, index))
}

pub async fn delete_attribute(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let id = ctx.uid(p)?;
    let (name, index) = if ctx.version.v2() {
        if let Some(current) = wrapped_attribute(p, Tag::CURRENT_ATTRIBUTE)? {
            let index = index_of(ctx, &id, &current).await?;
            (current.name, Some(index))
        } else {
            let names = references(p)?;
            let name = names
                .into_iter()
                .next()
                .ok_or_else(|| KmipError::missing("a Current Attribute or Attribute Reference"))?;
            (name, None)
        }
    } else {
        let name = p
            .child(Tag::ATTRIBUTE_NAME)
            .and_then(Ttlv::as_text)
            .ok_or_else(|| KmipError::missing("an Attribute Name"))?
            .to_string();
        let index = p
            .child(Tag::ATTRIBUTE_INDEX)
            .and_then(Ttlv::as_int)
            .and_then(|i| u32::try_from(i).ok());
        (name, index)
    };
    let removed = ctx
        .service
        .kmip_delete_attribute(ctx.session, &id, &name, index)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(answer(ctx, &id, &removed, index.unwrap_or(0)))
}

pub async fn locate(ctx: &mut OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let mut attrs = if ctx.version.v2() {
        convert::template(p.child(Tag::ATTRIBUTES))?
    } else {
        p.children(Tag::ATTRIBUTE)
            .map(|a| convert::attribute_from_v1(a).map(|(a, _)| a))
            .collect::<Result<Vec<_>, _>>()?
    };
    let enum_of = |v: Option<AttrValue>, what: &str| match v {
        None => Ok(None),
        Some(AttrValue::Enum(e)) => Ok(Some(e)),
        Some(_) => Err(KmipError::invalid(what)),
    };
    let object_type = enum_of(convert::take(&mut attrs, "Object Type"), "Object Type")?;
    let state = enum_of(convert::take(&mut attrs, "State"), "State")?;
    let algorithm = enum_of(
        convert::take(&mut attrs, "Cryptographic Algorithm"),
        "Cryptographic Algorithm",
    )?;
    let name = match convert::take(&mut attrs, "Name") {
        None => None,
        Some(v) => Some(
            v.field(Tag::NAME_VALUE.0)
                .and_then(AttrValue::text)
                .ok_or_else(|| KmipError::invalid("Name"))?
                .to_string(),
        ),
    };
    let int_field = |t: Tag| -> Result<Option<i32>, KmipError> {
        match p.child(t) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| KmipError::invalid("Maximum Items or Offset Items")),
        }
    };
    let max_items = int_field(Tag::MAXIMUM_ITEMS)?.map(|n| n as u32);
    let offset = int_field(Tag::OFFSET_ITEMS)?.unwrap_or(0) as u64;
    let (ids, total) = ctx
        .service
        .kmip_locate(
            ctx.session,
            KmipLocate {
                object_type,
                state,
                algorithm,
                name,
                attributes: attrs,
                offset,
                max_items,
            },
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    if let Some(first) = ids.first() {
        ctx.placeholder = Some(first.to_string());
    }
    let mut out = Vec::new();
    if ctx.version.major > 1 || ctx.version.minor >= 3 {
        // Located Items: every match, before Offset Items and Maximum Items.
        out.push(Ttlv::integer(
            Tag::LOCATED_ITEMS,
            i32::try_from(total).unwrap_or(i32::MAX),
        ));
    }
    out.extend(
        ids.iter()
            .map(|id| Ttlv::text(Tag::UNIQUE_IDENTIFIER, id.to_string())),
    );
    Ok(out)
}
