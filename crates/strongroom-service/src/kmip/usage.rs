//! What a KMIP object may be used for, and how much.
//!
//! - Its Cryptographic Usage Mask names the uses it allows. Every cryptographic operation
//!   checks its bit: Encrypt, Decrypt, Sign, Verify, MAC Generate. An object without a mask
//!   (one registered before the server checked masks, or by a client that sent none) is
//!   not restricted by one.
//! - Its Usage Limits cap the protection it may apply (Encrypt, Sign, MAC; never Decrypt or
//!   SignatureVerify), in bytes or in uses. The server keeps the Count: it sets it to the
//!   Total when the attribute is set, ignoring a client's Count, and every use draws on it
//!   by compare-and-swap on the stored object, so that the nodes of a cluster together
//!   never exceed the Total. Get Usage Allocation draws on it for a client that applies
//!   protection itself.
//! - Its Sensitive and Extractable flags decide whether Get returns its value: a Sensitive
//!   object's value leaves only wrapped, which this server's Get does not do, and a
//!   non-Extractable one's never leaves. Both are one-way, as PKCS#11's are: a client may
//!   make an object Sensitive or non-Extractable, never undo it (KMIP lets the flags move
//!   back and records the history in Always Sensitive and Never Extractable; here they
//!   cannot, so an object's value cannot be let out again once it was held in).

use super::model::*;
use super::objects::{check_settable, state_of, KmipManaged, KmipSession};
use crate::action::Action;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::keys::invalid;
use crate::Service;
use strongroom_model::Role;

/// Cryptographic Usage Mask bits (KMIP 1.4 §9.1.3.3.1, as data).
pub mod usage_mask {
    /// Sign.
    pub const SIGN: u32 = 0x01;
    /// Verify.
    pub const VERIFY: u32 = 0x02;
    /// Encrypt.
    pub const ENCRYPT: u32 = 0x04;
    /// Decrypt.
    pub const DECRYPT: u32 = 0x08;
    /// MAC Generate.
    pub const MAC_GENERATE: u32 = 0x80;
    /// Unrestricted (KMIP 2.0): every use.
    pub const UNRESTRICTED: u32 = 0x0020_0000;
}

/// A use of a stored key by a cryptographic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
    /// Sign.
    Sign,
    /// SignatureVerify.
    Verify,
    /// MAC.
    Mac,
}

impl KeyUse {
    fn bit(self) -> u32 {
        match self {
            KeyUse::Encrypt => usage_mask::ENCRYPT,
            KeyUse::Decrypt => usage_mask::DECRYPT,
            KeyUse::Sign => usage_mask::SIGN,
            KeyUse::Verify => usage_mask::VERIFY,
            KeyUse::Mac => usage_mask::MAC_GENERATE,
        }
    }

    fn bit_name(self) -> &'static str {
        match self {
            KeyUse::Encrypt => "Encrypt",
            KeyUse::Decrypt => "Decrypt",
            KeyUse::Sign => "Sign",
            KeyUse::Verify => "Verify",
            KeyUse::Mac => "MAC Generate",
        }
    }

    /// What the refusal says the object cannot be used to do.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            KeyUse::Encrypt => "encrypt",
            KeyUse::Decrypt => "decrypt",
            KeyUse::Sign => "sign",
            KeyUse::Verify => "verify",
            KeyUse::Mac => "compute a MAC",
        }
    }

    /// Whether the use applies protection (Encrypt, Sign, MAC): the Protect Stop Date ends
    /// it and Usage Limits count it. The others process protected data.
    pub(crate) fn protects(self) -> bool {
        matches!(self, KeyUse::Encrypt | KeyUse::Sign | KeyUse::Mac)
    }

    /// Whether `mask` allows this use.
    pub(crate) fn allowed_by(self, mask: u32) -> Result<()> {
        if mask & (self.bit() | usage_mask::UNRESTRICTED) != 0 {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorKind::KmipUsageMaskForbids,
            format!(
                "The object's Cryptographic Usage Mask ({mask:#x}) does not have the {} bit: it cannot be used to {}",
                self.bit_name(),
                self.verb()
            ),
        ))
    }
}

/// What Usage Limits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageUnit {
    /// Bytes of data protected.
    Byte,
    /// Uses (one an operation).
    Object,
}

impl UsageUnit {
    fn code(self) -> u32 {
        match self {
            UsageUnit::Byte => 1,
            UsageUnit::Object => 2,
        }
    }
    fn from_code(c: u32) -> Option<UsageUnit> {
        match c {
            1 => Some(UsageUnit::Byte),
            2 => Some(UsageUnit::Object),
            _ => None,
        }
    }
    fn plural(self) -> &'static str {
        match self {
            UsageUnit::Byte => "bytes",
            UsageUnit::Object => "uses",
        }
    }
}

/// A Usage Limits attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageLimits {
    /// Units allowed over the object's life.
    pub total: i64,
    /// Units left.
    pub count: i64,
    /// What the units are.
    pub unit: UsageUnit,
}

impl UsageLimits {
    /// A Usage Limits value as stored; `None` when it is not one. Without a Count (KMIP
    /// 2.x lets a client leave it out), the whole Total is left.
    pub fn from_value(v: &AttrValue) -> Option<UsageLimits> {
        let long = |tag| match v.field(tag) {
            Some(AttrValue::Long(n)) => Some(*n),
            _ => None,
        };
        let total = long(field::USAGE_LIMITS_TOTAL)?;
        let unit = match v.field(field::USAGE_LIMITS_UNIT) {
            Some(AttrValue::Enum(u)) => UsageUnit::from_code(*u)?,
            _ => return None,
        };
        let count = match v.field(field::USAGE_LIMITS_COUNT) {
            None => total,
            Some(_) => long(field::USAGE_LIMITS_COUNT)?,
        };
        Some(UsageLimits { total, count, unit })
    }

    /// The stored and wire form: Total, Count, Unit.
    pub fn value(self) -> AttrValue {
        AttrValue::Struct(vec![
            (field::USAGE_LIMITS_TOTAL, AttrValue::Long(self.total)),
            (field::USAGE_LIMITS_COUNT, AttrValue::Long(self.count)),
            (field::USAGE_LIMITS_UNIT, AttrValue::Enum(self.unit.code())),
        ])
    }

    /// The units one use of `data_len` bytes takes.
    pub fn units(self, data_len: usize) -> i64 {
        match self.unit {
            UsageUnit::Byte => i64::try_from(data_len).unwrap_or(i64::MAX),
            UsageUnit::Object => 1,
        }
    }

    /// Takes `units`, or refuses when fewer are left.
    fn draw(&mut self, units: i64) -> Result<()> {
        if units > self.count {
            return Err(ServiceError::new(
                ErrorKind::KmipUsageLimitReached,
                format!(
                    "The object's Usage Limits have {} {} left of {}; this needs {units}",
                    self.count,
                    self.unit.plural(),
                    self.total
                ),
            ));
        }
        self.count -= units;
        Ok(())
    }
}

impl StoredAttributes {
    /// The Cryptographic Usage Mask, if the object has one.
    pub(crate) fn usage_mask(&self) -> Option<u32> {
        match self.value(names::CRYPTOGRAPHIC_USAGE_MASK)? {
            AttrValue::Int(m) => Some(*m as u32),
            _ => None,
        }
    }

    /// The Usage Limits, if the object has them.
    pub(crate) fn usage_limits(&self) -> Option<UsageLimits> {
        UsageLimits::from_value(self.value(names::USAGE_LIMITS)?)
    }

    /// Draws `units` from the Usage Limits; nothing when the object has none.
    fn draw_usage(&mut self, units: impl FnOnce(UsageLimits) -> i64) -> Result<()> {
        let Some(slot) = self
            .attrs
            .iter_mut()
            .find(|a| a.name == names::USAGE_LIMITS)
        else {
            return Ok(());
        };
        let mut limits = UsageLimits::from_value(&slot.value).ok_or_else(|| {
            ServiceError::new(ErrorKind::Internal, "stored Usage Limits are corrupt")
        })?;
        limits.draw(units(limits))?;
        slot.value = limits.value();
        Ok(())
    }
}

/// An attribute a client sets (in a template, AddAttribute, ModifyAttribute), checked and
/// put in the form the server keeps: a Cryptographic Usage Mask must be an Integer, and
/// Usage Limits must have a Total of zero or more and a unit of Byte or Object, and get
/// their Count from the server (the Total).
pub(crate) fn admit(a: Attribute) -> Result<Attribute> {
    check_settable(&a)?;
    match a.name.as_str() {
        names::SENSITIVE | names::EXTRACTABLE if !matches!(a.value, AttrValue::Bool(_)) => {
            Err(invalid("attribute", format!("'{}' is a Boolean", a.name)))
        }
        names::CRYPTOGRAPHIC_USAGE_MASK if !matches!(a.value, AttrValue::Int(_)) => Err(invalid(
            "Cryptographic Usage Mask",
            "the Cryptographic Usage Mask is an Integer of usage bits",
        )),
        names::USAGE_LIMITS => {
            let limits = UsageLimits::from_value(&a.value)
                .filter(|l| l.total >= 0)
                .ok_or_else(|| {
                    invalid(
                        "Usage Limits",
                        "Usage Limits need a Usage Limits Total (a Long Integer of 0 or more) and a Usage Limits Unit (Byte or Object)",
                    )
                })?;
            let fresh = UsageLimits {
                count: limits.total,
                ..limits
            };
            Ok(Attribute::new(names::USAGE_LIMITS, fresh.value()))
        }
        _ => Ok(a),
    }
}

impl StoredAttributes {
    fn flag(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Sensitive (false when absent).
    pub(crate) fn sensitive(&self) -> bool {
        self.flag(names::SENSITIVE).unwrap_or(false)
    }

    /// Extractable (true when absent).
    pub(crate) fn extractable(&self) -> bool {
        self.flag(names::EXTRACTABLE).unwrap_or(true)
    }

    /// Whether the client has set either flag: then GetAttributes also reports Always
    /// Sensitive and Never Extractable.
    pub(crate) fn has_export_flags(&self) -> bool {
        self.flag(names::SENSITIVE).is_some() || self.flag(names::EXTRACTABLE).is_some()
    }
}

/// Whether Get may return the object's value.
pub(crate) fn check_export(st: &StoredAttributes) -> Result<()> {
    if !st.extractable() {
        return Err(ServiceError::new(
            ErrorKind::KmipNotExtractable,
            "The object is not Extractable: its value never leaves the server (use it with Encrypt, Decrypt, Sign or MAC)",
        ));
    }
    if st.sensitive() {
        return Err(ServiceError::new(
            ErrorKind::KmipSensitive,
            "The object is Sensitive: its value leaves the server only wrapped, and this server's Get does not wrap",
        ));
    }
    Ok(())
}

/// Whether a client may set `name` to `new` (`None`: delete it) on `st`: Sensitive
/// cannot go back to false, nor Extractable back to true.
pub(crate) fn check_flag_change(
    st: &StoredAttributes,
    name: &str,
    new: Option<&AttrValue>,
) -> Result<()> {
    let refused = |what: &str| {
        Err(ServiceError::new(
            ErrorKind::KmipAttributeReadOnly,
            format!("The object is {what}: that cannot be undone"),
        ))
    };
    match name {
        names::SENSITIVE if st.sensitive() && new != Some(&AttrValue::Bool(true)) => {
            refused("Sensitive")
        }
        names::EXTRACTABLE if !st.extractable() && new != Some(&AttrValue::Bool(false)) => {
            refused("not Extractable")
        }
        _ => Ok(()),
    }
}

/// Whether a ModifyAttribute may replace `st`'s Usage Limits: only while none of them has
/// been used, as KMIP says the Total cannot change once the Count has.
pub(crate) fn check_limits_unused(st: &StoredAttributes) -> Result<()> {
    match st.usage_limits() {
        Some(l) if l.count != l.total => Err(ServiceError::new(
            ErrorKind::KmipAttributeReadOnly,
            format!(
                "The object has used {} of its {} Usage Limits {}: they can no longer be changed",
                l.total - l.count,
                l.total,
                l.unit.plural()
            ),
        )),
        _ => Ok(()),
    }
}

impl Service {
    /// Draws one use of `data_len` bytes from `k`'s Usage Limits, after the use and
    /// before its result is returned. Objects without Usage Limits are not written.
    pub(crate) async fn kmip_spend(
        &self,
        s: &KmipSession,
        k: &KmipManaged,
        data_len: usize,
    ) -> Result<()> {
        if !k.limited {
            return Ok(());
        }
        self.kmip_change(s, &k.id.to_string(), |_, st| {
            st.draw_usage(|l| l.units(data_len))
        })
        .await
    }

    /// Get Usage Allocation: draws `amount` units from an Active object's Usage Limits,
    /// for protection the client applies itself.
    pub async fn kmip_get_usage_allocation(
        &self,
        s: &KmipSession,
        id: &str,
        amount: i64,
    ) -> Result<()> {
        let now = self.kmip_now();
        let op = self.kmip_change(s, id, |r, st| {
            if amount <= 0 {
                return Err(invalid(
                    "Usage Limits Count",
                    "the allocation asked for must be 1 or more",
                ));
            }
            let state = state_of(r)?;
            if state != KmipState::Active {
                return Err(ServiceError::new(
                    ErrorKind::InvalidKeyState,
                    format!(
                        "The object is {state:?}: only an Active object gives usage allocations"
                    ),
                ));
            }
            if st.date(names::PROTECT_STOP_DATE).is_some_and(|t| t <= now) {
                return Err(ServiceError::new(
                    ErrorKind::InvalidKeyState,
                    "The object's Protect Stop Date has passed: it gives no usage allocations",
                ));
            }
            if st.usage_limits().is_none() {
                return Err(invalid(
                    "Unique Identifier",
                    "the object has no Usage Limits to allocate from",
                ));
            }
            st.draw_usage(|_| amount)
        });
        self.audited(
            &s.ctx,
            Action::KmipGetUsageAllocation,
            Role::Writer,
            Some(id),
            op,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: i64, count: Option<i64>, unit: u32) -> Attribute {
        let mut f = vec![(field::USAGE_LIMITS_TOTAL, AttrValue::Long(total))];
        if let Some(c) = count {
            f.push((field::USAGE_LIMITS_COUNT, AttrValue::Long(c)));
        }
        f.push((field::USAGE_LIMITS_UNIT, AttrValue::Enum(unit)));
        Attribute::new(names::USAGE_LIMITS, AttrValue::Struct(f))
    }

    #[test]
    fn the_server_sets_the_count_to_the_total_and_refuses_malformed_limits() {
        let kept = admit(limits(100, Some(7), 1)).unwrap();
        assert_eq!(
            UsageLimits::from_value(&kept.value),
            Some(UsageLimits {
                total: 100,
                count: 100,
                unit: UsageUnit::Byte
            })
        );
        let no_count = admit(limits(5, None, 2)).unwrap();
        assert_eq!(UsageLimits::from_value(&no_count.value).unwrap().count, 5);
        for bad in [limits(-1, None, 2), limits(5, None, 3), limits(5, None, 0)] {
            let e = admit(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidField, "{}", e.message);
        }
        let wrong_type = Attribute::new(names::USAGE_LIMITS, AttrValue::Long(5));
        assert_eq!(admit(wrong_type).unwrap_err().kind, ErrorKind::InvalidField);
        let mask = Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, AttrValue::Text("x".into()));
        assert_eq!(admit(mask).unwrap_err().kind, ErrorKind::InvalidField);
    }

    #[test]
    fn each_use_needs_its_own_bit_or_unrestricted() {
        use usage_mask::*;
        let uses = [
            (KeyUse::Encrypt, ENCRYPT),
            (KeyUse::Decrypt, DECRYPT),
            (KeyUse::Sign, SIGN),
            (KeyUse::Verify, VERIFY),
            (KeyUse::Mac, MAC_GENERATE),
        ];
        for (u, bit) in uses {
            assert!(u.allowed_by(bit).is_ok());
            assert!(u.allowed_by(UNRESTRICTED).is_ok());
            let others = uses
                .iter()
                .map(|x| x.1)
                .filter(|&b| b != bit)
                .fold(0, |a, b| a | b);
            let e = u.allowed_by(others).unwrap_err();
            assert_eq!(e.kind, ErrorKind::KmipUsageMaskForbids);
            assert!(e.message.contains(u.bit_name()), "{}", e.message);
        }
    }

    #[test]
    fn draws_take_bytes_or_uses_and_never_pass_the_total() {
        let mut bytes = UsageLimits {
            total: 10,
            count: 10,
            unit: UsageUnit::Byte,
        };
        assert_eq!(bytes.units(4), 4);
        bytes.draw(4).unwrap();
        bytes.draw(6).unwrap();
        assert_eq!(bytes.count, 0);
        let e = bytes.draw(1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::KmipUsageLimitReached);
        assert_eq!(bytes.count, 0);
        let uses = UsageLimits {
            total: 2,
            count: 2,
            unit: UsageUnit::Object,
        };
        assert_eq!(uses.units(1 << 20), 1);
    }
}
