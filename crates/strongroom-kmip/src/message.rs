//! Request and response messages: the header, the protocol version, batch items, the ID
//! placeholder, and the answer to a message that cannot be read.

use strongroom_service::kmip::KmipSession;
use strongroom_service::Service;

use crate::codes::{reason, status};
use crate::error_map::{from_service, KmipError};
use crate::ops;
use crate::ttlv::{decode, encode, DecodeError, Limits, Tag, Ttlv, Value};

/// The protocol versions this server speaks, newest first (DiscoverVersions' answer).
pub const VERSIONS: [(i32, i32); 7] = [(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)];

/// A protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Major.
    pub major: i32,
    /// Minor.
    pub minor: i32,
}

impl Version {
    /// KMIP 2.x (attributes as tagged items, finer result reasons).
    pub fn v2(self) -> bool {
        self.major >= 2
    }
    fn supported(self) -> bool {
        VERSIONS.contains(&(self.major, self.minor))
    }
    /// As a Protocol Version structure.
    pub fn to_ttlv(self) -> Ttlv {
        Ttlv::structure(
            Tag::PROTOCOL_VERSION,
            vec![
                Ttlv::integer(Tag::PROTOCOL_VERSION_MAJOR, self.major),
                Ttlv::integer(Tag::PROTOCOL_VERSION_MINOR, self.minor),
            ],
        )
    }
    /// From a Protocol Version structure.
    pub fn from_ttlv(t: &Ttlv) -> Option<Version> {
        Some(Version {
            major: t.child(Tag::PROTOCOL_VERSION_MAJOR)?.as_int()?,
            minor: t.child(Tag::PROTOCOL_VERSION_MINOR)?.as_int()?,
        })
    }
}

/// What one batch item runs with: the service, the connection, the version, and the ID
/// placeholder (the last id an operation of this message made or found).
pub struct OpCtx<'a> {
    /// The service.
    pub service: &'a Service,
    /// The authenticated connection.
    pub session: &'a KmipSession,
    /// The message's protocol version.
    pub version: Version,
    /// The ID placeholder.
    pub placeholder: Option<String>,
}

impl OpCtx<'_> {
    /// The Unique Identifier of a payload, or the ID placeholder.
    pub fn uid(&self, payload: &Ttlv) -> Result<String, KmipError> {
        match payload.child(Tag::UNIQUE_IDENTIFIER) {
            Some(t) => t
                .as_text()
                .map(str::to_string)
                .ok_or_else(|| KmipError::invalid("Unique Identifier")),
            None => self
                .placeholder
                .clone()
                .ok_or_else(|| KmipError::missing("a Unique Identifier")),
        }
    }
    /// A service failure in this message's version.
    pub fn fail(&self, e: strongroom_service::ServiceError) -> KmipError {
        from_service(&e, self.version.v2())
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

fn header(version: Version, count: usize) -> Ttlv {
    Ttlv::structure(
        Tag::RESPONSE_HEADER,
        vec![
            version.to_ttlv(),
            Ttlv::date_time(Tag::TIME_STAMP, now_secs()),
            Ttlv::integer(Tag::BATCH_COUNT, i32::try_from(count).unwrap_or(i32::MAX)),
        ],
    )
}

fn failed_item(operation: Option<u32>, id: Option<&Ttlv>, e: &KmipError) -> Ttlv {
    let mut items = Vec::new();
    if let Some(op) = operation {
        items.push(Ttlv::enumeration(Tag::OPERATION, op));
    }
    if let Some(id) = id {
        items.push(id.clone());
    }
    items.push(Ttlv::enumeration(
        Tag::RESULT_STATUS,
        status::OPERATION_FAILED,
    ));
    items.push(Ttlv::enumeration(Tag::RESULT_REASON, e.reason));
    items.push(Ttlv::text(Tag::RESULT_MESSAGE, e.message.clone()));
    Ttlv::structure(Tag::BATCH_ITEM, items)
}

/// The answer to a message that cannot be decoded or is not a request: one failed item.
pub fn invalid_message_response(e: &DecodeError) -> Vec<u8> {
    refusal(
        Version { major: 1, minor: 0 },
        &KmipError::new(
            reason::INVALID_MESSAGE,
            format!(
                "the request is not a valid TTLV message: {:?} at byte {}",
                e.kind, e.offset
            ),
        ),
    )
}

/// A response holding one failed item.
pub fn refusal(version: Version, e: &KmipError) -> Vec<u8> {
    let msg = Ttlv::structure(
        Tag::RESPONSE_MESSAGE,
        vec![header(version, 1), failed_item(None, None, e)],
    );
    let mut out = Vec::new();
    encode(&msg, &mut out);
    out
}

/// Decodes one request message, runs its batch items in order, and encodes the response.
pub async fn handle_message(
    service: &Service,
    session: &KmipSession,
    bytes: &[u8],
    limits: &Limits,
) -> Vec<u8> {
    let msg = match decode(bytes, limits) {
        Ok(m) => m,
        Err(e) => return invalid_message_response(&e),
    };
    let reply = |version, e: KmipError| refusal(version, &e);
    let v10 = Version { major: 1, minor: 0 };
    if msg.tag != Tag::REQUEST_MESSAGE {
        return reply(
            v10,
            KmipError::new(reason::INVALID_MESSAGE, "not a Request Message"),
        );
    }
    let Some(head) = msg.child(Tag::REQUEST_HEADER) else {
        return reply(
            v10,
            KmipError::new(reason::INVALID_MESSAGE, "no Request Header"),
        );
    };
    let Some(version) = head
        .child(Tag::PROTOCOL_VERSION)
        .and_then(Version::from_ttlv)
    else {
        return reply(
            v10,
            KmipError::new(reason::INVALID_MESSAGE, "no Protocol Version"),
        );
    };
    let items: Vec<&Ttlv> = msg.children(Tag::BATCH_ITEM).collect();
    let declared = head.child(Tag::BATCH_COUNT).and_then(Ttlv::as_int);
    if declared != i32::try_from(items.len()).ok() || items.is_empty() {
        return reply(
            if version.supported() { version } else { v10 },
            KmipError::new(
                reason::INVALID_MESSAGE,
                "Batch Count does not match the batch items",
            ),
        );
    }
    if !version.supported() {
        // Answer in the newest version of the client's major, so that it can read the
        // refusal and discover what this server speaks.
        let answer = VERSIONS
            .iter()
            .find(|(m, _)| *m == version.major)
            .map(|&(major, minor)| Version { major, minor })
            .unwrap_or(v10);
        return reply(
            answer,
            KmipError::new(
                if answer.v2() {
                    reason::UNSUPPORTED_PROTOCOL_VERSION
                } else {
                    reason::INVALID_MESSAGE
                },
                format!(
                    "protocol version {}.{} is not supported; this server speaks 1.0 to 1.4, 2.0 and 2.1",
                    version.major, version.minor
                ),
            ),
        );
    }
    // Continue (2) runs every item; Stop (1, the default) and Undo (3) stop at the first
    // failure.
    let keep_going = head
        .child(Tag::BATCH_ERROR_CONTINUATION_OPTION)
        .and_then(Ttlv::as_enum)
        == Some(2);
    let mut ctx = OpCtx {
        service,
        session,
        version,
        placeholder: None,
    };
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        let operation = item.child(Tag::OPERATION).and_then(Ttlv::as_enum);
        let batch_id = item.child(Tag::UNIQUE_BATCH_ITEM_ID);
        let result = match operation {
            None => Err(KmipError::new(
                reason::INVALID_MESSAGE,
                "a batch item has no Operation",
            )),
            Some(op) => match service.kmip_begin(session).await {
                Err(e) => Err(ctx.fail(e)),
                Ok(()) => {
                    let empty = Ttlv::structure(Tag::REQUEST_PAYLOAD, vec![]);
                    let payload = item.child(Tag::REQUEST_PAYLOAD).unwrap_or(&empty);
                    ops::run(&mut ctx, op, payload).await
                }
            },
        };
        match result {
            Ok(payload) => {
                let mut fields = Vec::new();
                if let Some(op) = operation {
                    fields.push(Ttlv::enumeration(Tag::OPERATION, op));
                }
                if let Some(id) = batch_id {
                    fields.push(id.clone());
                }
                fields.push(Ttlv::enumeration(Tag::RESULT_STATUS, status::SUCCESS));
                fields.push(Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload));
                answers.push(Ttlv::structure(Tag::BATCH_ITEM, fields));
            }
            Err(e) => {
                answers.push(failed_item(operation, batch_id, &e));
                if !keep_going {
                    break;
                }
            }
        }
    }
    let mut fields = vec![header(version, answers.len())];
    fields.extend(answers);
    let mut out = Vec::new();
    encode(&Ttlv::structure(Tag::RESPONSE_MESSAGE, fields), &mut out);
    out
}

/// Texts of every Text String child with `tag`.
pub fn texts(t: &Ttlv, tag: Tag) -> Vec<String> {
    t.children(tag)
        .filter_map(|c| match &c.value {
            Value::TextString(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}
