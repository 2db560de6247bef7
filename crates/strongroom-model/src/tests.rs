use super::*;

#[test]
fn state_codes_round_trip_and_never_change() {
    let codes: Vec<u8> = KeyState::ALL.iter().map(|s| s.code()).collect();
    assert_eq!(codes, vec![0, 1, 2, 3, 5]);
    for s in KeyState::ALL {
        assert_eq!(KeyState::from_code(i64::from(s.code())), Some(s));
    }
    assert_eq!(KeyState::from_code(4), None);
}

#[test]
fn transitions_follow_the_key_protect_table() {
    use KeyState::*;
    use LifecycleEvent::*;
    assert_eq!(Active.transition(Disable), Ok(Suspended));
    assert_eq!(Suspended.transition(Enable), Ok(Active));
    assert_eq!(Active.transition(Expire), Ok(Deactivated));
    for s in [Active, Suspended, Deactivated] {
        assert_eq!(s.transition(Delete), Ok(Destroyed));
    }
    assert_eq!(
        Destroyed.transition(Delete),
        Err(TransitionError::AlreadyDeleted)
    );
    assert_eq!(Destroyed.transition(Restore { expired: false }), Ok(Active));
    assert_eq!(
        Destroyed.transition(Restore { expired: true }),
        Ok(Deactivated)
    );
    assert!(Suspended.transition(Disable).is_err());
    assert!(Active.transition(Enable).is_err());
    assert!(Deactivated.transition(Enable).is_err());
    assert!(Active.transition(Restore { expired: false }).is_err());
}

#[test]
fn roles_grant_least_privilege() {
    let reader = Roles::of(&[Role::Reader]);
    assert!(reader.grants(Role::Reader));
    assert!(!reader.grants(Role::Writer) && !reader.grants(Role::ReaderPlus));
    let plus = Roles::of(&[Role::ReaderPlus]);
    assert!(plus.grants(Role::Reader) && plus.grants(Role::ReaderPlus));
    assert!(!plus.grants(Role::Writer) && plus.is_valid());
    let writer = Roles::of(&[Role::Writer]);
    assert!(writer.grants(Role::ReaderPlus));
    let manager = Roles::of(&[Role::Manager]);
    assert!(manager.grants(Role::Reader) && manager.grants(Role::Writer));
    assert!(manager.grants(Role::ReaderPlus));
    assert!(!manager.grants(Role::KeyPurge));
    let purge = Roles::of(&[Role::KeyPurge]);
    assert!(purge.grants(Role::KeyPurge) && !purge.grants(Role::Reader));
    assert!(!Roles(0).is_valid() && !Roles(0x20).is_valid() && manager.is_valid());
    assert_eq!("writer".parse::<Role>(), Ok(Role::Writer));
    assert_eq!("ReaderPlus".parse::<Role>(), Ok(Role::ReaderPlus));
    assert!("admin".parse::<Role>().is_err());
}

#[test]
fn ids_accept_only_canonical_uuids() {
    let id = KeyId::random();
    assert_eq!(id.to_string().parse::<KeyId>().ok(), Some(id));
    assert!("not-a-uuid".parse::<KeyId>().is_err());
    assert!(id.0.simple().to_string().parse::<KeyId>().is_err());
    assert_eq!(VersionId::from(id).0, id.0);
}
