use proptest::prelude::*;
use uuid::Uuid;

use super::*;

fn payload(sealed: &str) -> Vec<u8> {
    parse(sealed).unwrap().1
}

fn with_payload(sealed: &str, payload: &[u8]) -> String {
    let (head, _) = sealed.rsplit_once('.').unwrap();
    format!("{head}.{}", URL_SAFE_NO_PAD.encode(payload))
}

fn org_ref(record: &str) -> FieldRef<'_> {
    FieldRef::new(KeyScope::Org(Uuid::from_u128(7)), record, "api_token")
}

#[test]
fn seal_then_open_gives_the_plaintext() {
    let key = DataKey::generate();
    let at = org_ref("connection/1");
    let sealed = seal(&key, 4, 1, &at, b"xoxb-secret");
    assert!(sealed.starts_with("tv1.4."));
    assert!(!sealed.contains("xoxb"));
    assert_eq!(&open(&key, &at, &sealed).unwrap()[..], b"xoxb-secret");
    assert_eq!(
        &open(&key, &at, &seal(&key, 4, 2, &at, b"")).unwrap()[..],
        b""
    );
}

#[test]
fn opening_at_another_place_fails() {
    let key = DataKey::generate();
    let id = Uuid::new_v4();
    let at = FieldRef::new(KeyScope::Org(id), "connection/1", "api_token");
    let sealed = seal(&key, 1, 1, &at, b"secret");
    let elsewhere = [
        FieldRef::new(KeyScope::Org(Uuid::new_v4()), "connection/1", "api_token"),
        FieldRef::new(KeyScope::User(id), "connection/1", "api_token"),
        FieldRef::new(KeyScope::Org(id), "connection/2", "api_token"),
        FieldRef::new(KeyScope::Org(id), "connection/1", "password"),
        // Same bytes overall, split differently: length prefixes tell them apart.
        FieldRef::new(KeyScope::Org(id), "connection/1api", "_token"),
    ];
    for other in elsewhere {
        assert!(
            matches!(open(&key, &other, &sealed), Err(VaultError::Tampered)),
            "{other:?} opened"
        );
    }
}

#[test]
fn opening_with_another_key_fails() {
    let at = org_ref("connection/1");
    let sealed = seal(&DataKey::generate(), 1, 1, &at, b"secret");
    assert!(matches!(
        open(&DataKey::generate(), &at, &sealed),
        Err(VaultError::Tampered)
    ));
}

#[test]
fn the_counter_is_the_end_of_the_nonce() {
    let key = DataKey::generate();
    let at = org_ref("connection/1");
    let counter = 0x0102_0304_0506_0708;
    let nonce = payload(&seal(&key, 1, counter, &at, b"x"))[..NONCE_LEN].to_vec();
    assert_eq!(nonce[RANDOM_NONCE_LEN..], counter.to_be_bytes());
}

#[test]
fn different_counters_give_different_nonces_and_ciphertexts() {
    let key = DataKey::generate();
    let at = org_ref("connection/1");
    let sealed: Vec<_> = (1..=200)
        .map(|counter| seal(&key, 1, counter, &at, b"same plaintext"))
        .collect();
    let nonces: std::collections::HashSet<_> = sealed
        .iter()
        .map(|s| payload(s)[..NONCE_LEN].to_vec())
        .collect();
    assert_eq!(nonces.len(), sealed.len());
    let distinct: std::collections::HashSet<_> = sealed.iter().collect();
    assert_eq!(distinct.len(), sealed.len());
}

#[test]
fn sealed_version_reads_the_header() {
    let key = DataKey::generate();
    let at = org_ref("r");
    for version in [0, 1, 42, u32::MAX] {
        assert_eq!(
            sealed_version(&seal(&key, version, 1, &at, b"x")).unwrap(),
            version
        );
    }
}

#[test]
fn values_that_are_not_sealed_are_malformed() {
    let good = seal(&DataKey::generate(), 3, 1, &org_ref("r"), b"x");
    let body = good.strip_prefix("tv1.3.").unwrap();
    let short = URL_SAFE_NO_PAD.encode([0u8; NONCE_LEN + TAG_LEN - 1]);
    let not_sealed = [
        "hunter2".to_owned(),
        String::new(),
        format!("tv2.3.{body}"),
        format!("tv1.{body}"),
        format!("tv1..{body}"),
        format!("tv1.03.{body}"),
        format!("tv1.+3.{body}"),
        format!("tv1.4294967296.{body}"),
        format!("tv1.3.{body}="),
        format!("tv1.3.{body}!"),
        format!("tv1.3.{short}"),
    ];
    let key = DataKey::generate();
    for value in &not_sealed {
        assert!(!is_sealed(value), "{value:?}");
        assert!(matches!(
            sealed_version(value),
            Err(VaultError::Malformed(_))
        ));
        match open(&key, &org_ref("r"), value) {
            Err(VaultError::Malformed(message)) => {
                assert!(!message.contains("hunter2"));
            }
            other => panic!("{value:?} gave {other:?}"),
        }
    }
    assert!(is_sealed(&good));
}

#[test]
fn errors_do_not_quote_the_input() {
    let err = open(&DataKey::generate(), &org_ref("r"), "my-plaintext-password").unwrap_err();
    assert!(!err.to_string().contains("my-plaintext-password"));
}

proptest! {
    #[test]
    fn round_trip_for_any_plaintext_and_place(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        version in any::<u32>(),
        counter in any::<u64>(),
        record in ".{0,40}",
        field in ".{0,20}",
        user in any::<bool>(),
    ) {
        let id = Uuid::new_v4();
        let scope = if user { KeyScope::User(id) } else { KeyScope::Org(id) };
        let at = FieldRef::new(scope, &record, &field);
        let key = DataKey::generate();
        let sealed = seal(&key, version, counter, &at, &plaintext);
        prop_assert!(is_sealed(&sealed));
        prop_assert_eq!(sealed_version(&sealed).unwrap(), version);
        prop_assert_eq!(&open(&key, &at, &sealed).unwrap()[..], &plaintext[..]);
    }

    #[test]
    fn altering_any_byte_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        index in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let key = DataKey::generate();
        let at = org_ref("connection/1");
        let sealed = seal(&key, 1, 9, &at, &plaintext);
        let mut bytes = payload(&sealed);
        let i = index.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(matches!(
            open(&key, &at, &with_payload(&sealed, &bytes)),
            Err(VaultError::Tampered)
        ));
    }

    #[test]
    fn different_places_give_different_associated_data(
        a in (".{0,6}", ".{0,6}"),
        b in (".{0,6}", ".{0,6}"),
    ) {
        let scope = KeyScope::Org(Uuid::nil());
        let at_a = FieldRef::new(scope, &a.0, &a.1);
        let at_b = FieldRef::new(scope, &b.0, &b.1);
        prop_assert_eq!(at_a == at_b, at_a.associated_data() == at_b.associated_data());
    }
}
