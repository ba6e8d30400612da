//! Google service accounts are checked offline in this version: the key's structure
//! only, and the message says so.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tributary_connectors::credentials::CheckStatus;

use super::run;

const EMAIL: &str = "indexer@acme-search.iam.gserviceaccount.com";

/// A PEM PKCS#8 RSA key with the real layout and filler key material (distinct per
/// `fill`, so each test has its own secret to look for).
fn pem(fill: u8) -> String {
    const RSA_OID: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    let inner = 1190u16;
    let mut content = vec![0x02, 0x01, 0x00, 0x30, 0x0d];
    content.extend_from_slice(&RSA_OID);
    content.extend_from_slice(&[0x05, 0x00, 0x04, 0x82]);
    content.extend_from_slice(&inner.to_be_bytes());
    content.extend((0..inner).map(|i| fill.wrapping_add(i.to_le_bytes()[0])));
    let mut der = vec![0x30, 0x82];
    der.extend_from_slice(&u16::try_from(content.len()).unwrap().to_be_bytes());
    der.extend(content);
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn a_well_formed_key_is_ok_but_says_it_was_not_verified() {
    let result = run(
        "google_service_account",
        json!({"client_email": EMAIL, "private_key": pem(1), "private_key_id": "abc123"}),
    )
    .await;
    assert_eq!(result.status, CheckStatus::Ok, "{}", result.message);
    assert_eq!(
        result.message,
        "key well-formed; not verified against Google"
    );
    assert_eq!(result.identity.as_deref(), Some(EMAIL));
}

#[tokio::test]
async fn damaged_keys_are_invalid_without_quoting_them() {
    let good = pem(2);
    let lines: Vec<&str> = good.lines().collect();
    let truncated = format!("{}\n{}", lines[..8].join("\n"), lines[lines.len() - 1]);
    let keys = [
        truncated,
        good.replace('\n', "\\n"),
        good.replace("PRIVATE KEY", "RSA PRIVATE KEY"),
        good.replacen("-----END PRIVATE KEY-----", "", 1),
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| if i == 3 { "!!!!not*base64!!!!" } else { l })
            .collect::<Vec<_>>()
            .join("\n"),
    ];
    let mut reasons = std::collections::BTreeSet::new();
    for key in keys {
        let result = run(
            "google_service_account",
            json!({"client_email": EMAIL, "private_key": key}),
        )
        .await;
        assert_eq!(result.status, CheckStatus::Invalid, "{}", result.message);
        assert!(result.message.contains("private key"), "{}", result.message);
        reasons.insert(result.message.clone());
        // No line of the key's body shows up either.
        for line in lines.iter().filter(|l| !l.starts_with("-----")) {
            assert!(!result.message.contains(line), "{}", result.message);
        }
    }
    // Each damage is named for what it is.
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
}

#[tokio::test]
async fn a_bad_client_email_or_subject_is_invalid() {
    for value in [
        json!({"client_email": "indexer", "private_key": pem(3)}),
        json!({"client_email": EMAIL, "private_key": pem(3), "subject": "admin"}),
        json!({"private_key": pem(3)}),
        json!({"client_email": EMAIL}),
    ] {
        let result = run("google_service_account", value).await;
        assert_eq!(result.status, CheckStatus::Invalid, "{}", result.message);
    }
}
