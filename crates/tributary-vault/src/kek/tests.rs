use uuid::Uuid;

use super::*;

fn entry(id: &str) -> String {
    KekRing::generate_entry(id).unwrap()
}

fn ring(entries: &[&str]) -> KekRing {
    KekRing::parse(&entries.join(",")).unwrap()
}

fn key_part(entry: &str) -> &str {
    entry.split_once(':').unwrap().1
}

fn org() -> KeyScope {
    KeyScope::Org(Uuid::new_v4())
}

fn malformed_message(result: Result<KekRing, KeyConfigError>) -> String {
    match result {
        Err(KeyConfigError::Malformed(message)) => message,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn wrap_then_unwrap_gives_the_same_key() {
    let ring = ring(&[&entry("k1")]);
    let key = DataKey::generate();
    let scope = org();
    let wrapped = ring.wrap(&key, scope, 3);
    assert_eq!(wrapped.kek_id, "k1");
    assert_eq!(wrapped.bytes.len(), WRAPPED_LEN);
    assert!(!wrapped.bytes.windows(KEY_LEN).any(|w| w == key.bytes()));
    let unwrapped = ring.unwrap(&wrapped, scope, 3).unwrap();
    assert_eq!(unwrapped.bytes(), key.bytes());
}

#[test]
fn wrapping_twice_uses_fresh_nonces() {
    let ring = ring(&[&entry("k1")]);
    let key = DataKey::generate();
    let scope = org();
    assert_ne!(ring.wrap(&key, scope, 1), ring.wrap(&key, scope, 1));
}

#[test]
fn unwrap_with_another_scope_or_version_fails() {
    let ring = ring(&[&entry("k1")]);
    let id = Uuid::new_v4();
    let wrapped = ring.wrap(&DataKey::generate(), KeyScope::Org(id), 1);
    for (scope, version) in [
        (KeyScope::Org(Uuid::new_v4()), 1),
        (KeyScope::User(id), 1),
        (KeyScope::Org(id), 2),
    ] {
        assert!(matches!(
            ring.unwrap(&wrapped, scope, version),
            Err(VaultError::Tampered)
        ));
    }
}

#[test]
fn unwrap_of_altered_bytes_fails() {
    let ring = ring(&[&entry("k1")]);
    let scope = org();
    let wrapped = ring.wrap(&DataKey::generate(), scope, 1);
    for i in 0..WRAPPED_LEN {
        let mut altered = wrapped.clone();
        altered.bytes[i] ^= 0x01;
        assert!(matches!(
            ring.unwrap(&altered, scope, 1),
            Err(VaultError::Tampered)
        ));
    }
    let mut short = wrapped;
    short.bytes.pop();
    assert!(matches!(
        ring.unwrap(&short, scope, 1),
        Err(VaultError::Malformed(_))
    ));
}

#[test]
fn after_rotation_the_new_ring_unwraps_keys_wrapped_by_the_old_kek() {
    let old = entry("old");
    let new = entry("new");
    let before = ring(&[&old]);
    let after = ring(&[&new, &old]);
    let key = DataKey::generate();
    let scope = org();

    let wrapped_before = before.wrap(&key, scope, 1);
    let unwrapped = after.unwrap(&wrapped_before, scope, 1).unwrap();
    assert_eq!(unwrapped.bytes(), key.bytes());

    let rewrapped = after.wrap(&unwrapped, scope, 1);
    assert_eq!(rewrapped.kek_id, "new");
    assert_eq!(after.primary_id(), "new");
    assert_eq!(after.ids(), ["new", "old"]);
    assert!(after.contains("old"));
    assert!(!before.contains("new"));
    assert!(matches!(
        before.unwrap(&rewrapped, scope, 1),
        Err(VaultError::UnknownKek(id)) if id == "new"
    ));
}

#[test]
fn unknown_kek_says_to_configure_it() {
    let ring = ring(&[&entry("k1")]);
    let scope = org();
    let mut wrapped = ring.wrap(&DataKey::generate(), scope, 1);
    wrapped.kek_id = "gone".into();
    let err = ring.unwrap(&wrapped, scope, 1).unwrap_err();
    assert!(matches!(&err, VaultError::UnknownKek(id) if id == "gone"));
    let message = err.to_string();
    assert!(message.contains("\"gone\"") && message.contains("TRIBUTARY_KEK"));
}

#[test]
fn the_same_id_with_another_key_fails_authentication() {
    let wrapped_by = ring(&[&entry("k1")]);
    let imposter = ring(&[&entry("k1")]);
    let scope = org();
    let wrapped = wrapped_by.wrap(&DataKey::generate(), scope, 1);
    assert!(matches!(
        imposter.unwrap(&wrapped, scope, 1),
        Err(VaultError::Tampered)
    ));
}

#[test]
fn parse_accepts_commas_lines_and_surrounding_whitespace() {
    let (a, b, c) = (entry("a"), entry("b.2"), entry("C_3-x"));
    for spec in [
        format!("{a},{b},{c}"),
        format!("  {a}\n{b}\r\n\n{c}\n"),
        format!("{a} , {b},\n{c},"),
    ] {
        let ring = KekRing::parse(&spec).unwrap();
        assert_eq!(ring.ids(), ["a", "b.2", "C_3-x"]);
        assert_eq!(ring.primary_id(), "a");
    }
}

#[test]
fn parse_errors_say_what_is_wrong_without_echoing_the_key() {
    let good = entry("k1");
    let secret = key_part(&good).to_owned();
    let short = STANDARD.encode([7u8; 16]);
    let cases = [
        (String::new(), "no key-encryption keys found"),
        ("  \n , ".to_owned(), "no key-encryption keys found"),
        (secret.clone(), "entry 1 is not of the form `id:BASE64`"),
        (
            format!("{good},k2:{}!", &secret[..20]),
            "entry 2 (id \"k2\"): the key is not valid standard base64",
        ),
        (
            format!("k1:{short}"),
            "the key is 16 bytes, but a KEK must be exactly 32 bytes",
        ),
        (
            format!("{good},{good}"),
            "entries 1 and 2 both use the id \"k1\"",
        ),
        (
            format!(":{secret}"),
            "entry 1 has an invalid id: it is empty",
        ),
        (
            format!("{}:{secret}", "x".repeat(65)),
            "it is 65 characters long",
        ),
        (format!("k/1:{secret}"), "ids may only contain"),
        (format!("ké:{secret}"), "ids may only contain"),
    ];
    for (spec, expected) in cases {
        let message = malformed_message(KekRing::parse(&spec));
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        assert!(!message.contains(&secret), "{message:?} echoes the key");
        assert!(!message.contains(&short), "{message:?} echoes the key");
        assert!(
            !message.contains(&secret[..20]),
            "{message:?} echoes the key"
        );
    }
}

#[test]
fn generate_entry_makes_a_parsable_32_byte_key() {
    let generated = entry("prod-2025.1");
    let decoded = STANDARD.decode(key_part(&generated)).unwrap();
    assert_eq!(decoded.len(), KEY_LEN);
    assert_ne!(entry("x"), entry("x"));
    assert_eq!(KekRing::parse(&generated).unwrap().ids(), ["prod-2025.1"]);
    assert!(matches!(
        KekRing::generate_entry("bad id"),
        Err(KeyConfigError::Malformed(m)) if m.contains("invalid KEK id")
    ));
}

#[test]
fn from_config_needs_exactly_one_source() {
    let missing = KekRing::from_config(None, None).unwrap_err();
    assert!(matches!(missing, KeyConfigError::Missing));
    let message = missing.to_string();
    assert!(message.contains("TRIBUTARY_KEK") && message.contains("tributary keys generate-kek"));
    assert!(matches!(
        KekRing::from_config(Some("  \n"), None),
        Err(KeyConfigError::Missing)
    ));

    let good = entry("k1");
    let both = KekRing::from_config(Some(&good), Some(Path::new("/etc/kek"))).unwrap_err();
    assert!(matches!(both, KeyConfigError::Conflicting));
    assert!(both.to_string().contains("TRIBUTARY_KEK_FILE"));

    assert_eq!(
        KekRing::from_config(Some(&good), None).unwrap().ids(),
        ["k1"]
    );
    let message = malformed_message(KekRing::from_config(Some("k1:nope"), None));
    assert!(message.starts_with("TRIBUTARY_KEK: entry 1"), "{message}");
}

#[test]
fn from_config_reads_a_file() {
    let path = std::env::temp_dir().join(format!("tributary-kek-{}", Uuid::new_v4()));
    let (new, old) = (entry("new"), entry("old"));
    std::fs::write(&path, format!("{new}\n{old}\n")).unwrap();
    let ring = KekRing::from_config(None, Some(&path));
    std::fs::write(&path, format!("{new}\n{new}\n")).unwrap();
    let duplicate = KekRing::from_config(None, Some(&path));
    std::fs::remove_file(&path).unwrap();

    assert_eq!(ring.unwrap().ids(), ["new", "old"]);
    let message = malformed_message(duplicate);
    assert!(message.starts_with("TRIBUTARY_KEK_FILE ("), "{message}");
    assert!(!message.contains(key_part(&new)));

    let err = KekRing::from_config(None, Some(&path)).unwrap_err();
    assert!(matches!(&err, KeyConfigError::Io { path: p, .. } if *p == path));
    assert!(err.to_string().contains("TRIBUTARY_KEK_FILE"));
}

#[test]
fn debug_shows_ids_but_no_key_material() {
    let (a, b) = (entry("a"), entry("b"));
    let ring = ring(&[&a, &b]);
    let debug = format!("{ring:?}");
    assert!(debug.contains("\"a\"") && debug.contains("\"b\""));
    for kek in &ring.keks {
        assert!(!debug.contains(&format!("{:?}", &kek.key[..])));
    }
    assert!(!debug.contains(key_part(&a)) && !debug.contains(key_part(&b)));
}

#[test]
fn derived_keys_depend_on_purpose_and_primary_kek() {
    let (a, b) = (entry("a"), entry("b"));
    let ring_a = ring(&[&a, &b]);
    assert_eq!(
        *ring_a.derive("oauth-state"),
        *ring(&[&a]).derive("oauth-state")
    );
    assert_ne!(*ring_a.derive("oauth-state"), *ring_a.derive("other"));
    assert_ne!(
        *ring_a.derive("oauth-state"),
        *ring(&[&b, &a]).derive("oauth-state")
    );
}
