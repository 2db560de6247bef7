//! Audit actions: what the audit log says a call did. One closed set, so that a front end
//! and the service cannot disagree on a name, and the rule of which responses wait for
//! their audit record lives with the names. The names are persisted in the audit log and
//! never change.

/// An audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `activity.events.read`
    ActivityRead,
    /// `admin.apikeys.create`
    AdminApiKeysCreate,
    /// `admin.apikeys.delete`
    AdminApiKeysDelete,
    /// `admin.apikeys.list`
    AdminApiKeysList,
    /// `admin.serviceids.create`
    AdminServiceIdsCreate,
    /// `admin.serviceids.delete`
    AdminServiceIdsDelete,
    /// `admin.serviceids.list`
    AdminServiceIdsList,
    /// `admin.serviceids.update`
    AdminServiceIdsUpdate,
    /// `admin.instances.allowedip.clear`
    AdminInstancesAllowedIpClear,
    /// `admin.instances.create`
    AdminInstancesCreate,
    /// `admin.instances.delete`
    AdminInstancesDelete,
    /// `admin.instances.list`
    AdminInstancesList,
    /// `admin.instances.usage`
    AdminInstancesUsage,
    /// `admin.metrics.read`
    AdminMetricsRead,
    /// `admin.testclock.advance`
    AdminTestClockAdvance,
    /// `admin.units.create`
    AdminUnitsCreate,
    /// `admin.units.list`
    AdminUnitsList,
    /// `crypto_units.command`
    UnitsCommand,
    /// `crypto_units.list`
    UnitsList,
    /// `crypto_units.read`
    UnitsRead,
    /// `crypto_units.reencrypt`
    UnitsReencrypt,
    /// `ep11.decrypt`
    Ep11Decrypt,
    /// `ep11.derive_key`
    Ep11DeriveKey,
    /// `ep11.digest`
    Ep11Digest,
    /// `ep11.encrypt`
    Ep11Encrypt,
    /// `ep11.generate_key`
    Ep11GenerateKey,
    /// `ep11.generate_key_pair`
    Ep11GenerateKeyPair,
    /// `ep11.get_attributes`
    Ep11GetAttributes,
    /// `ep11.keystore.clear`
    Ep11KeystoreClear,
    /// `ep11.keystore.delete`
    Ep11KeystoreDelete,
    /// `ep11.keystore.list`
    Ep11KeystoreList,
    /// `ep11.keystore.put`
    Ep11KeystorePut,
    /// `ep11.mechanisms`
    Ep11Mechanisms,
    /// `ep11.random`
    Ep11Random,
    /// `ep11.reencrypt`
    Ep11Reencrypt,
    /// `ep11.rewrap`
    Ep11Rewrap,
    /// `ep11.set_attributes`
    Ep11SetAttributes,
    /// `ep11.sign`
    Ep11Sign,
    /// `ep11.unwrap_key`
    Ep11UnwrapKey,
    /// `ep11.verify`
    Ep11Verify,
    /// `ep11.wrap_key`
    Ep11WrapKey,
    /// `iam.token.create`
    IamTokenCreate,
    /// `kms.importtoken.create`
    ImportTokenCreate,
    /// `kms.importtoken.read`
    ImportTokenRead,
    /// `kms.instancepolicies.read`
    InstancePoliciesRead,
    /// `kms.instancepolicies.write`
    InstancePoliciesWrite,
    /// `kms.kmip_adapters.create`
    KmipAdaptersCreate,
    /// `kms.kmip_adapters.delete`
    KmipAdaptersDelete,
    /// `kms.kmip_adapters.list`
    KmipAdaptersList,
    /// `kms.kmip_adapters.read`
    KmipAdaptersRead,
    /// `kms.kmip_client_certificates.create`
    KmipCertificatesCreate,
    /// `kms.kmip_client_certificates.delete`
    KmipCertificatesDelete,
    /// `kms.kmip_client_certificates.list`
    KmipCertificatesList,
    /// `kms.kmip_client_certificates.read`
    KmipCertificatesRead,
    /// `kms.kmip_objects.delete`
    KmipObjectsDelete,
    /// `kms.kmip_objects.list`
    KmipObjectsList,
    /// `kms.kmip_objects.read`
    KmipObjectsRead,
    /// `kmip.connect`
    KmipConnect,
    /// `kmip.request`
    KmipRequest,
    /// `kmip.activate`
    KmipActivate,
    /// `kmip.add_attribute`
    KmipAddAttribute,
    /// `kmip.create`
    KmipCreate,
    /// `kmip.create_key_pair`
    KmipCreateKeyPair,
    /// `kmip.decrypt`
    KmipDecrypt,
    /// `kmip.delete_attribute`
    KmipDeleteAttribute,
    /// `kmip.destroy`
    KmipDestroy,
    /// `kmip.encrypt`
    KmipEncrypt,
    /// `kmip.get`
    KmipGet,
    /// `kmip.get_attribute_list`
    KmipGetAttributeList,
    /// `kmip.get_attributes`
    KmipGetAttributes,
    /// `kmip.get_usage_allocation`
    KmipGetUsageAllocation,
    /// `kmip.locate`
    KmipLocate,
    /// `kmip.mac`
    KmipMac,
    /// `kmip.modify_attribute`
    KmipModifyAttribute,
    /// `kmip.register`
    KmipRegister,
    /// `kmip.rekey`
    KmipReKey,
    /// `kmip.revoke`
    KmipRevoke,
    /// `kmip.sign`
    KmipSign,
    /// `kmip.signature_verify`
    KmipSignatureVerify,
    /// `kmip.transition`: the scheduler writes a state that an object's date brought.
    KmipTransition,
    /// `kms.keyrings.create`
    KeyRingsCreate,
    /// `kms.keyrings.delete`
    KeyRingsDelete,
    /// `kms.keyrings.list`
    KeyRingsList,
    /// `kms.policies.read`
    PoliciesRead,
    /// `kms.policies.write`
    PoliciesWrite,
    /// `kms.registrations.create`
    RegistrationsCreate,
    /// `kms.registrations.delete`
    RegistrationsDelete,
    /// `kms.registrations.list`
    RegistrationsList,
    /// `kms.registrations.replace`
    RegistrationsReplace,
    /// `kms.registrations.update`
    RegistrationsUpdate,
    /// `kms.request.ip`
    RequestIp,
    /// `kms.secrets.action`
    SecretsAction,
    /// `kms.secrets.create`
    SecretsCreate,
    /// `kms.secrets.createalias`
    SecretsCreateAlias,
    /// `kms.secrets.delete`
    SecretsDelete,
    /// `kms.secrets.deletealias`
    SecretsDeleteAlias,
    /// `kms.secrets.disable`
    SecretsDisable,
    /// `kms.secrets.enable`
    SecretsEnable,
    /// `kms.secrets.eventack`
    SecretsEventAck,
    /// `kms.secrets.expire`
    SecretsExpire,
    /// `kms.secrets.head`
    SecretsHead,
    /// `kms.secrets.list`
    SecretsList,
    /// `kms.secrets.listkeyversions`
    SecretsListKeyVersions,
    /// `kms.secrets.patch`
    SecretsPatch,
    /// `kms.secrets.purge`
    SecretsPurge,
    /// `kms.secrets.read`
    SecretsRead,
    /// `kms.secrets.readmetadata`
    SecretsReadMetadata,
    /// `kms.secrets.restore`
    SecretsRestore,
    /// `kms.secrets.rewrap`
    SecretsRewrap,
    /// `kms.secrets.rotate`
    SecretsRotate,
    /// `kms.secrets.setkeyfordeletion`
    SecretsSetKeyForDeletion,
    /// `kms.secrets.sync`
    SecretsSync,
    /// `kms.secrets.unsetkeyfordeletion`
    SecretsUnsetKeyForDeletion,
    /// `kms.secrets.unwrap`
    SecretsUnwrap,
    /// `kms.secrets.wrap`
    SecretsWrap,
    /// `kms.instance.usage.read`
    UsageRead,
    /// `kms.instance.backups.read`
    BackupsRead,
}

impl Action {
    /// Every action.
    pub const ALL: &'static [Action] = &[
        Action::ActivityRead,
        Action::UsageRead,
        Action::BackupsRead,
        Action::AdminApiKeysCreate,
        Action::AdminApiKeysDelete,
        Action::AdminApiKeysList,
        Action::AdminServiceIdsCreate,
        Action::AdminServiceIdsDelete,
        Action::AdminServiceIdsList,
        Action::AdminServiceIdsUpdate,
        Action::AdminInstancesAllowedIpClear,
        Action::AdminInstancesCreate,
        Action::AdminInstancesDelete,
        Action::AdminInstancesList,
        Action::AdminInstancesUsage,
        Action::AdminMetricsRead,
        Action::AdminTestClockAdvance,
        Action::AdminUnitsCreate,
        Action::AdminUnitsList,
        Action::UnitsCommand,
        Action::UnitsList,
        Action::UnitsRead,
        Action::UnitsReencrypt,
        Action::Ep11Decrypt,
        Action::Ep11DeriveKey,
        Action::Ep11Digest,
        Action::Ep11Encrypt,
        Action::Ep11GenerateKey,
        Action::Ep11GenerateKeyPair,
        Action::Ep11GetAttributes,
        Action::Ep11KeystoreClear,
        Action::Ep11KeystoreDelete,
        Action::Ep11KeystoreList,
        Action::Ep11KeystorePut,
        Action::Ep11Mechanisms,
        Action::Ep11Random,
        Action::Ep11Reencrypt,
        Action::Ep11Rewrap,
        Action::Ep11SetAttributes,
        Action::Ep11Sign,
        Action::Ep11UnwrapKey,
        Action::Ep11Verify,
        Action::Ep11WrapKey,
        Action::IamTokenCreate,
        Action::ImportTokenCreate,
        Action::ImportTokenRead,
        Action::InstancePoliciesRead,
        Action::InstancePoliciesWrite,
        Action::KmipAdaptersCreate,
        Action::KmipAdaptersDelete,
        Action::KmipAdaptersList,
        Action::KmipAdaptersRead,
        Action::KmipCertificatesCreate,
        Action::KmipCertificatesDelete,
        Action::KmipCertificatesList,
        Action::KmipCertificatesRead,
        Action::KmipObjectsDelete,
        Action::KmipObjectsList,
        Action::KmipObjectsRead,
        Action::KmipConnect,
        Action::KmipRequest,
        Action::KmipActivate,
        Action::KmipAddAttribute,
        Action::KmipCreate,
        Action::KmipCreateKeyPair,
        Action::KmipDecrypt,
        Action::KmipDeleteAttribute,
        Action::KmipDestroy,
        Action::KmipEncrypt,
        Action::KmipGet,
        Action::KmipGetAttributeList,
        Action::KmipGetAttributes,
        Action::KmipGetUsageAllocation,
        Action::KmipLocate,
        Action::KmipMac,
        Action::KmipModifyAttribute,
        Action::KmipRegister,
        Action::KmipReKey,
        Action::KmipRevoke,
        Action::KmipSign,
        Action::KmipSignatureVerify,
        Action::KmipTransition,
        Action::KeyRingsCreate,
        Action::KeyRingsDelete,
        Action::KeyRingsList,
        Action::PoliciesRead,
        Action::PoliciesWrite,
        Action::RegistrationsCreate,
        Action::RegistrationsDelete,
        Action::RegistrationsList,
        Action::RegistrationsReplace,
        Action::RegistrationsUpdate,
        Action::RequestIp,
        Action::SecretsAction,
        Action::SecretsCreate,
        Action::SecretsCreateAlias,
        Action::SecretsDelete,
        Action::SecretsDeleteAlias,
        Action::SecretsDisable,
        Action::SecretsEnable,
        Action::SecretsEventAck,
        Action::SecretsExpire,
        Action::SecretsHead,
        Action::SecretsList,
        Action::SecretsListKeyVersions,
        Action::SecretsPatch,
        Action::SecretsPurge,
        Action::SecretsRead,
        Action::SecretsReadMetadata,
        Action::SecretsRestore,
        Action::SecretsRewrap,
        Action::SecretsRotate,
        Action::SecretsSetKeyForDeletion,
        Action::SecretsSync,
        Action::SecretsUnsetKeyForDeletion,
        Action::SecretsUnwrap,
        Action::SecretsWrap,
    ];

    /// The name recorded in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ActivityRead => "activity.events.read",
            Action::AdminApiKeysCreate => "admin.apikeys.create",
            Action::AdminApiKeysDelete => "admin.apikeys.delete",
            Action::AdminApiKeysList => "admin.apikeys.list",
            Action::AdminServiceIdsCreate => "admin.serviceids.create",
            Action::AdminServiceIdsDelete => "admin.serviceids.delete",
            Action::AdminServiceIdsList => "admin.serviceids.list",
            Action::AdminServiceIdsUpdate => "admin.serviceids.update",
            Action::AdminInstancesAllowedIpClear => "admin.instances.allowedip.clear",
            Action::AdminInstancesCreate => "admin.instances.create",
            Action::AdminInstancesDelete => "admin.instances.delete",
            Action::AdminInstancesList => "admin.instances.list",
            Action::AdminInstancesUsage => "admin.instances.usage",
            Action::AdminMetricsRead => "admin.metrics.read",
            Action::AdminTestClockAdvance => "admin.testclock.advance",
            Action::AdminUnitsCreate => "admin.units.create",
            Action::AdminUnitsList => "admin.units.list",
            Action::UnitsCommand => "crypto_units.command",
            Action::UnitsList => "crypto_units.list",
            Action::UnitsRead => "crypto_units.read",
            Action::UnitsReencrypt => "crypto_units.reencrypt",
            Action::Ep11Decrypt => "ep11.decrypt",
            Action::Ep11DeriveKey => "ep11.derive_key",
            Action::Ep11Digest => "ep11.digest",
            Action::Ep11Encrypt => "ep11.encrypt",
            Action::Ep11GenerateKey => "ep11.generate_key",
            Action::Ep11GenerateKeyPair => "ep11.generate_key_pair",
            Action::Ep11GetAttributes => "ep11.get_attributes",
            Action::Ep11KeystoreClear => "ep11.keystore.clear",
            Action::Ep11KeystoreDelete => "ep11.keystore.delete",
            Action::Ep11KeystoreList => "ep11.keystore.list",
            Action::Ep11KeystorePut => "ep11.keystore.put",
            Action::Ep11Mechanisms => "ep11.mechanisms",
            Action::Ep11Random => "ep11.random",
            Action::Ep11Reencrypt => "ep11.reencrypt",
            Action::Ep11Rewrap => "ep11.rewrap",
            Action::Ep11SetAttributes => "ep11.set_attributes",
            Action::Ep11Sign => "ep11.sign",
            Action::Ep11UnwrapKey => "ep11.unwrap_key",
            Action::Ep11Verify => "ep11.verify",
            Action::Ep11WrapKey => "ep11.wrap_key",
            Action::IamTokenCreate => "iam.token.create",
            Action::ImportTokenCreate => "kms.importtoken.create",
            Action::ImportTokenRead => "kms.importtoken.read",
            Action::InstancePoliciesRead => "kms.instancepolicies.read",
            Action::InstancePoliciesWrite => "kms.instancepolicies.write",
            Action::KmipAdaptersCreate => "kms.kmip_adapters.create",
            Action::KmipAdaptersDelete => "kms.kmip_adapters.delete",
            Action::KmipAdaptersList => "kms.kmip_adapters.list",
            Action::KmipAdaptersRead => "kms.kmip_adapters.read",
            Action::KmipCertificatesCreate => "kms.kmip_client_certificates.create",
            Action::KmipCertificatesDelete => "kms.kmip_client_certificates.delete",
            Action::KmipCertificatesList => "kms.kmip_client_certificates.list",
            Action::KmipCertificatesRead => "kms.kmip_client_certificates.read",
            Action::KmipObjectsDelete => "kms.kmip_objects.delete",
            Action::KmipObjectsList => "kms.kmip_objects.list",
            Action::KmipObjectsRead => "kms.kmip_objects.read",
            Action::KmipConnect => "kmip.connect",
            Action::KmipRequest => "kmip.request",
            Action::KmipActivate => "kmip.activate",
            Action::KmipAddAttribute => "kmip.add_attribute",
            Action::KmipCreate => "kmip.create",
            Action::KmipCreateKeyPair => "kmip.create_key_pair",
            Action::KmipDecrypt => "kmip.decrypt",
            Action::KmipDeleteAttribute => "kmip.delete_attribute",
            Action::KmipDestroy => "kmip.destroy",
            Action::KmipEncrypt => "kmip.encrypt",
            Action::KmipGet => "kmip.get",
            Action::KmipGetAttributeList => "kmip.get_attribute_list",
            Action::KmipGetAttributes => "kmip.get_attributes",
            Action::KmipGetUsageAllocation => "kmip.get_usage_allocation",
            Action::KmipLocate => "kmip.locate",
            Action::KmipMac => "kmip.mac",
            Action::KmipModifyAttribute => "kmip.modify_attribute",
            Action::KmipRegister => "kmip.register",
            Action::KmipReKey => "kmip.rekey",
            Action::KmipTransition => "kmip.transition",
            Action::KmipRevoke => "kmip.revoke",
            Action::KmipSign => "kmip.sign",
            Action::KmipSignatureVerify => "kmip.signature_verify",
            Action::KeyRingsCreate => "kms.keyrings.create",
            Action::KeyRingsDelete => "kms.keyrings.delete",
            Action::KeyRingsList => "kms.keyrings.list",
            Action::PoliciesRead => "kms.policies.read",
            Action::PoliciesWrite => "kms.policies.write",
            Action::RegistrationsCreate => "kms.registrations.create",
            Action::RegistrationsDelete => "kms.registrations.delete",
            Action::RegistrationsList => "kms.registrations.list",
            Action::RegistrationsReplace => "kms.registrations.replace",
            Action::RegistrationsUpdate => "kms.registrations.update",
            Action::RequestIp => "kms.request.ip",
            Action::SecretsAction => "kms.secrets.action",
            Action::SecretsCreate => "kms.secrets.create",
            Action::SecretsCreateAlias => "kms.secrets.createalias",
            Action::SecretsDelete => "kms.secrets.delete",
            Action::SecretsDeleteAlias => "kms.secrets.deletealias",
            Action::SecretsDisable => "kms.secrets.disable",
            Action::SecretsEnable => "kms.secrets.enable",
            Action::SecretsEventAck => "kms.secrets.eventack",
            Action::SecretsExpire => "kms.secrets.expire",
            Action::SecretsHead => "kms.secrets.head",
            Action::SecretsList => "kms.secrets.list",
            Action::SecretsListKeyVersions => "kms.secrets.listkeyversions",
            Action::SecretsPatch => "kms.secrets.patch",
            Action::SecretsPurge => "kms.secrets.purge",
            Action::SecretsRead => "kms.secrets.read",
            Action::SecretsReadMetadata => "kms.secrets.readmetadata",
            Action::SecretsRestore => "kms.secrets.restore",
            Action::SecretsRewrap => "kms.secrets.rewrap",
            Action::SecretsRotate => "kms.secrets.rotate",
            Action::SecretsSetKeyForDeletion => "kms.secrets.setkeyfordeletion",
            Action::SecretsSync => "kms.secrets.sync",
            Action::SecretsUnsetKeyForDeletion => "kms.secrets.unsetkeyfordeletion",
            Action::SecretsUnwrap => "kms.secrets.unwrap",
            Action::SecretsWrap => "kms.secrets.wrap",
            Action::UsageRead => "kms.instance.usage.read",
            Action::BackupsRead => "kms.instance.backups.read",
        }
    }

    /// Whether a successful response waits until its audit record is committed (with the
    /// default `--audit-sync changes`): state changes do; reads, wraps and GREP11 calls are
    /// queued and committed within milliseconds.
    pub fn waits_for_commit(self) -> bool {
        use Action::*;
        !matches!(
            self,
            ActivityRead
                | UsageRead
                | BackupsRead
                | AdminMetricsRead
                | AdminUnitsList
                | UnitsList
                | UnitsRead
                | SecretsRead
                | SecretsReadMetadata
                | SecretsList
                | SecretsHead
                | SecretsListKeyVersions
                | SecretsWrap
                | SecretsUnwrap
                | SecretsRewrap
                | Ep11Decrypt
                | Ep11DeriveKey
                | Ep11Digest
                | Ep11Encrypt
                | Ep11GenerateKey
                | Ep11GenerateKeyPair
                | Ep11GetAttributes
                | Ep11KeystoreList
                | Ep11Mechanisms
                | Ep11Random
                | Ep11Reencrypt
                | Ep11Rewrap
                | Ep11SetAttributes
                | Ep11Sign
                | Ep11UnwrapKey
                | Ep11Verify
                | Ep11WrapKey
                | KmipAdaptersList
                | KmipAdaptersRead
                | KmipCertificatesList
                | KmipCertificatesRead
                | KmipObjectsList
                | KmipObjectsRead
                | KmipConnect
                | KmipDecrypt
                | KmipEncrypt
                | KmipGet
                | KmipGetAttributeList
                | KmipGetAttributes
                | KmipLocate
                | KmipMac
                | KmipSign
                | KmipSignatureVerify
        )
    }
}

impl Action {
    /// Whether a principal whose access is limited to key rings may take this action (on
    /// keys of its rings: the service checks each key's ring). Every other action reaches
    /// the whole instance (its policies, import tokens, crypto units, audit events, KMIP
    /// adapters, GREP11 and KMIP operations, key rings themselves) and needs an
    /// instance-wide grant.
    pub fn within_key_rings(self) -> bool {
        use Action::*;
        matches!(
            self,
            SecretsAction
                | SecretsCreate
                | SecretsCreateAlias
                | SecretsDelete
                | SecretsDeleteAlias
                | SecretsDisable
                | SecretsEnable
                | SecretsEventAck
                | SecretsExpire
                | SecretsHead
                | SecretsList
                | SecretsListKeyVersions
                | SecretsPatch
                | SecretsPurge
                | SecretsRead
                | SecretsReadMetadata
                | SecretsRestore
                | SecretsRewrap
                | SecretsRotate
                | SecretsSetKeyForDeletion
                | SecretsSync
                | SecretsUnsetKeyForDeletion
                | SecretsUnwrap
                | SecretsWrap
                | PoliciesRead
                | PoliciesWrite
                | RegistrationsCreate
                | RegistrationsDelete
                | RegistrationsList
                | RegistrationsReplace
                | RegistrationsUpdate
                | KeyRingsList
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_reads_do_not_wait() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert!(Action::SecretsCreate.waits_for_commit());
        assert!(!Action::SecretsWrap.waits_for_commit());
        assert!(!Action::Ep11Sign.waits_for_commit());
        assert!(Action::AdminInstancesDelete.waits_for_commit());
    }
}
