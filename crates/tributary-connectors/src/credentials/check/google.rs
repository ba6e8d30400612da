//! Google service accounts, checked offline: this version makes no call to Google, so a
//! passing check only says that the key is well-formed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{CheckResult, CheckStatus, Inputs};

const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const END: &str = "-----END PRIVATE KEY-----";
/// DER of the AlgorithmIdentifier OID rsaEncryption (1.2.840.113549.1.1.1); Google issues
/// RSA keys only.
const RSA_ENCRYPTION_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

pub(super) fn check(cx: &Inputs<'_>) -> CheckResult {
    match run(cx) {
        Ok(result) | Err(result) => result,
    }
}

fn run(cx: &Inputs<'_>) -> Result<CheckResult, CheckResult> {
    let client_email = cx.required_setting("client_email")?;
    let private_key = cx.required_secret("private_key")?;
    let invalid = |message: String| CheckResult::new(CheckStatus::Invalid, message);

    if !looks_like_email(client_email) {
        return Err(invalid(format!(
            "the client email {client_email} is not an email address: copy client_email from \
             the service account's JSON key file"
        )));
    }
    if let Some(subject) = cx.setting("subject")
        && !looks_like_email(subject)
    {
        return Err(invalid(format!(
            "the impersonated user {subject} is not an email address: enter a Google Workspace \
             user's address, or leave it empty"
        )));
    }
    if let Some(token_uri) = cx.setting("token_uri")
        && !token_uri.starts_with("https://")
    {
        return Err(invalid(format!(
            "the token URI {token_uri} is not an https URL: copy token_uri from the key file or \
             leave it empty for https://oauth2.googleapis.com/token"
        )));
    }
    check_private_key(private_key).map_err(|why| invalid(why.to_owned()))?;

    Ok(CheckResult::new(
        CheckStatus::Ok,
        "key well-formed; not verified against Google",
    )
    .with_identity(Some(client_email.to_owned())))
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Why a private key is not a PEM PKCS#8 RSA key. The reasons never quote the key.
fn check_private_key(pem: &str) -> Result<(), &'static str> {
    let pem = pem.trim();
    if pem.contains("\\n") {
        return Err(
            "the private key contains the two characters \\n instead of line breaks: paste it \
             with real line breaks, or paste the whole JSON key file",
        );
    }
    if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        return Err(
            "the private key is in PKCS#1 form (BEGIN RSA PRIVATE KEY); Google service account \
             keys are PKCS#8 (BEGIN PRIVATE KEY): paste private_key from the JSON key file",
        );
    }
    if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "the private key is encrypted; Google's JSON key files hold an unencrypted key: \
             paste private_key from the JSON key file",
        );
    }
    let body = pem
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or(
            "the private key must start with -----BEGIN PRIVATE KEY----- and end with \
             -----END PRIVATE KEY-----: paste private_key from the service account's JSON key file",
        )?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if base64.is_empty() {
        return Err(
            "the private key is empty between its BEGIN and END lines: paste the whole key",
        );
    }
    let der = STANDARD.decode(base64.as_bytes()).map_err(|_| {
        "the body of the private key is not valid base64, so the key was damaged when copied: \
         paste it again from the JSON key file"
    })?;
    check_pkcs8_rsa(&der)
}

/// The outer structure of a PKCS#8 `PrivateKeyInfo`: one DER SEQUENCE spanning the whole
/// key, starting with version 0 or 1 and the rsaEncryption algorithm.
fn check_pkcs8_rsa(der: &[u8]) -> Result<(), &'static str> {
    const NOT_PKCS8: &str = "the private key decodes but is not a PKCS#8 private key: create \
                             a new JSON key for the service account and paste its private_key";
    if der.first() != Some(&0x30) {
        return Err(NOT_PKCS8);
    }
    let (length, header) = match *der.get(1).ok_or(NOT_PKCS8)? {
        short @ 0..=0x7f => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            if !(1..=4).contains(&count) {
                return Err(NOT_PKCS8);
            }
            let bytes = der.get(2..2 + count).ok_or(NOT_PKCS8)?;
            let length = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (length, 2 + count)
        }
    };
    if header + length != der.len() {
        return Err(NOT_PKCS8);
    }
    let content = &der[header..];
    if !(content.starts_with(&[0x02, 0x01, 0x00]) || content.starts_with(&[0x02, 0x01, 0x01])) {
        return Err(NOT_PKCS8);
    }
    // version (3 bytes), then AlgorithmIdentifier: SEQUENCE tag and length, then the OID.
    if content.get(5..5 + RSA_ENCRYPTION_OID.len()) != Some(RSA_ENCRYPTION_OID) {
        return Err(
            "the private key is not an RSA key; Google service account keys are RSA: create a \
             new JSON key for the service account and paste its private_key",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A structurally valid PKCS#8 RSA key: the real layout with filler key material.
    fn pkcs8(inner_len: usize) -> Vec<u8> {
        let mut content = vec![0x02, 0x01, 0x00, 0x30, 0x0d];
        content.extend_from_slice(RSA_ENCRYPTION_OID);
        content.extend_from_slice(&[0x05, 0x00, 0x04, 0x82]);
        content.extend_from_slice(&u16::try_from(inner_len).unwrap().to_be_bytes());
        content.extend(std::iter::repeat_n(0x5a, inner_len));
        let mut der = vec![0x30, 0x82];
        der.extend_from_slice(&u16::try_from(content.len()).unwrap().to_be_bytes());
        der.extend(content);
        der
    }

    fn pem(der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!("{BEGIN}\n{}\n{END}\n", lines.join("\n"))
    }

    #[test]
    fn accepts_a_pkcs8_rsa_key() {
        assert_eq!(check_private_key(&pem(&pkcs8(1190))), Ok(()));
    }

    #[test]
    fn rejects_damaged_keys() {
        let good = pem(&pkcs8(1190));
        let truncated = pem(&pkcs8(1190)[..600]);
        let not_base64 = good.replacen('A', "!", 1).replacen('M', "!", 1);
        let escaped = good.replace('\n', "\\n");
        let pkcs1 = good.replace("BEGIN PRIVATE", "BEGIN RSA PRIVATE");
        let mut ec = pkcs8(100);
        ec[15] = 0x02;
        for bad in [
            truncated,
            not_base64,
            escaped,
            pkcs1,
            pem(&ec),
            "hello".to_owned(),
        ] {
            assert!(check_private_key(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(looks_like_email("a@b.iam.gserviceaccount.com"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("@b.com"));
        assert!(!looks_like_email("a b@c.com"));
    }
}
