//! Short-lived access tokens: HS256 JWTs with a key id (`kid`) in the header.
//!
//! The server both issues and checks these tokens, so a shared secret (HMAC-SHA256) is enough;
//! public-key algorithms only pay off when third parties verify. Exactly one algorithm is
//! accepted and it is fixed here, never taken from the token, which closes the classic
//! `alg: none` and RS256/HS256 confusion holes.
//!
//! Keys rotate without logging anyone out: the ring holds several keys, the first one signs,
//! and every listed key verifies, selected by the token's `kid`. To rotate, put a new key
//! first and drop the old one once the longest access-token lifetime has passed.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Fewest random bytes in a signing secret: HMAC-SHA256 gains nothing from more than 32 and
/// is weakened by fewer.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest key id; longer than any sane id, shorter than a base64url secret, so a secret
/// pasted in the wrong place is refused as an id and never repeated in an error message.
pub const MAX_KID_LENGTH: usize = 32;
/// How far past `exp` a token is still accepted, for clock skew between servers.
pub const LEEWAY_SECONDS: u64 = 5;
/// Longer tokens are refused before any parsing.
const MAX_TOKEN_LENGTH: usize = 8 * 1024;

const SPEC_FORMAT: &str = "expected \"kid:secret[,kid:secret...]\" where kid is 1-32 characters \
     of A-Z a-z 0-9 . _ - and secret is base64url without padding of at least 32 random bytes \
     (for example `openssl rand 32 | basenc --base64url | tr -d =`)";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The organization the token acts in.
    pub org: Uuid,
    /// The user's role in `org` when the token was issued.
    pub role: String,
    pub iss: String,
    pub aud: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Unique token id (UUIDv7).
    pub jti: Uuid,
}

/// The key configuration is unusable. Messages say what is expected and never contain a
/// secret: entries are named by position, or by key id once the id has been validated.
#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error("the JWT key list is empty; {SPEC_FORMAT}")]
    Empty,
    #[error("JWT key #{position} is not of the form kid:secret; {SPEC_FORMAT}")]
    MissingColon { position: usize },
    #[error("JWT key #{position} has an invalid key id; {SPEC_FORMAT}")]
    InvalidKid { position: usize },
    #[error("the secret of JWT key {kid:?} is not valid base64url without padding; {SPEC_FORMAT}")]
    BadBase64 { kid: String },
    #[error(
        "the secret of JWT key {kid:?} is {bytes} bytes long, HS256 needs at least {min} random bytes; {SPEC_FORMAT}"
    )]
    ShortSecret {
        kid: String,
        bytes: usize,
        min: usize,
    },
    #[error("JWT key id {kid:?} is listed twice; every key needs its own id")]
    DuplicateKid { kid: String },
    #[error("the JWT issuer is empty; set it to this server's name, e.g. \"tributary\"")]
    EmptyIssuer,
    #[error("the JWT audience is empty; set it to the API's name, e.g. \"tributary-api\"")]
    EmptyAudience,
}

/// Why a token was refused. All of them mean 401 to a client; the variant is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token names a signing key this server does not have (it may have been retired)")]
    UnknownKey,
    #[error("the token's signature does not match its contents")]
    BadSignature,
    #[error("the token is not signed with HS256, the only algorithm accepted")]
    WrongAlgorithm,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
}

#[derive(Clone)]
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Signing and verification keys plus the issuer and audience every token must carry.
#[derive(Clone)]
pub struct KeyRing {
    /// Never empty; the first key signs.
    keys: Vec<Key>,
    issuer: String,
    audience: String,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeyRing")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The part of a JOSE header that decides how to verify; read before trusting anything.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

impl KeyRing {
    /// Parses `"kid:secret[,kid:secret...]"`, where each secret is base64url without padding
    /// of at least 32 bytes. The first key signs; every key verifies, so keep an old key
    /// listed until the tokens it signed have expired.
    pub fn from_spec(spec: &str, issuer: &str, audience: &str) -> Result<Self, KeyConfigError> {
        if issuer.trim().is_empty() {
            return Err(KeyConfigError::EmptyIssuer);
        }
        if audience.trim().is_empty() {
            return Err(KeyConfigError::EmptyAudience);
        }
        if spec.trim().is_empty() {
            return Err(KeyConfigError::Empty);
        }
        let mut keys: Vec<Key> = Vec::new();
        for (index, entry) in spec.split(',').enumerate() {
            let position = index + 1;
            let (kid, secret) = entry
                .trim()
                .split_once(':')
                .ok_or(KeyConfigError::MissingColon { position })?;
            let (kid, secret) = (kid.trim(), secret.trim());
            if !is_valid_kid(kid) {
                return Err(KeyConfigError::InvalidKid { position });
            }
            let secret = URL_SAFE_NO_PAD
                .decode(secret)
                .map_err(|_| KeyConfigError::BadBase64 {
                    kid: kid.to_owned(),
                })?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(KeyConfigError::ShortSecret {
                    kid: kid.to_owned(),
                    bytes: secret.len(),
                    min: MIN_SECRET_BYTES,
                });
            }
            if keys.iter().any(|k| k.kid == kid) {
                return Err(KeyConfigError::DuplicateKid {
                    kid: kid.to_owned(),
                });
            }
            keys.push(Key::new(kid.to_owned(), &secret));
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// One random key with id `dev-<random>`, for demos and tests. Tokens it signs die with
    /// the process.
    pub fn generate(issuer: &str, audience: &str) -> Self {
        let mut secret = [0u8; MIN_SECRET_BYTES];
        getrandom::fill(&mut secret)
            .expect("the operating system's random number generator failed");
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix)
            .expect("the operating system's random number generator failed");
        Self {
            keys: vec![Key::new(format!("dev-{}", hex::encode(suffix)), &secret)],
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// The id of the key that signs new tokens.
    pub fn signing_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// Signs an access token for `user` acting in `org` with `role`, valid for `ttl` from now.
    pub fn issue(&self, user: Uuid, org: Uuid, role: &str, ttl: Duration) -> String {
        let iat = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: user,
            org,
            role: role.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat,
            exp: iat.saturating_add(ttl),
            jti: Uuid::now_v7(),
        };
        self.sign(&claims)
    }

    fn sign(&self, claims: &Claims) -> String {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .expect("HS256 signing of serializable claims with an HMAC key cannot fail")
    }

    /// Checks the algorithm (HS256 only), the key id, the signature, expiry (with
    /// [`LEEWAY_SECONDS`]), the issuer and the audience, in that order, and returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LENGTH {
            return Err(TokenError::Malformed);
        }
        let header = read_header(token)?;
        if header.alg != "HS256" {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;

        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);

        // jsonwebtoken checks the signature before it deserializes the claims, so nothing of
        // an unsigned payload is ever parsed into `Claims`.
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                    TokenError::WrongAlgorithm
                }
                _ => TokenError::Malformed,
            })
    }
}

impl Key {
    fn new(kid: String, secret: &[u8]) -> Self {
        Self {
            kid,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

fn is_valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_LENGTH).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn read_header(token: &str) -> Result<RawHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "tributary";
    const AUDIENCE: &str = "tributary-api";
    const HOUR: Duration = Duration::from_secs(3600);

    fn secret(byte: u8) -> String {
        URL_SAFE_NO_PAD.encode([byte; 32])
    }

    fn ring_of(spec: &str) -> KeyRing {
        KeyRing::from_spec(spec, ISSUER, AUDIENCE).unwrap()
    }

    fn k1() -> KeyRing {
        ring_of(&format!("k1:{}", secret(1)))
    }

    fn b64(json: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
    }

    fn claims_now(ring: &KeyRing, exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: Uuid::now_v7(),
            org: Uuid::now_v7(),
            role: "member".to_owned(),
            iss: ring.issuer.clone(),
            aud: ring.audience.clone(),
            iat: now - 3600,
            exp: now + exp_offset,
            jti: Uuid::now_v7(),
        }
    }

    #[test]
    fn a_ring_can_be_shared_between_request_handlers() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<KeyRing>();
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims() {
        let ring = k1();
        let (user, org) = (Uuid::now_v7(), Uuid::now_v7());
        let before = chrono::Utc::now().timestamp();
        let token = ring.issue(user, org, "admin", Duration::from_secs(900));
        let claims = ring.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.org), (user, org));
        assert_eq!(claims.role, "admin");
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            (ISSUER, AUDIENCE)
        );
        assert!(claims.iat >= before && claims.iat <= before + 2);
        assert_eq!(claims.exp, claims.iat + 900);
        assert_eq!(claims.jti.get_version_num(), 7);
    }

    #[test]
    fn the_header_names_the_signing_key_and_hs256() {
        let ring = k1();
        let token = ring.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);
        let header = read_header(&token).unwrap();
        assert_eq!(header.alg, "HS256");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(ring.signing_kid(), "k1");
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let ring = k1();
        let token = ring.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["role"] = "admin".into();
        let forged = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
        assert_eq!(ring.verify(&forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused() {
        let ring = k1();
        let claims = serde_json::to_value(claims_now(&ring, 600)).unwrap();
        for alg in ["none", "None", "NONE"] {
            let header = serde_json::json!({ "alg": alg, "typ": "JWT", "kid": "k1" });
            let token = format!("{}.{}.", b64(&header), b64(&claims));
            assert_eq!(
                ring.verify(&token),
                Err(TokenError::WrongAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn an_hs256_token_without_a_signature_is_refused() {
        let ring = k1();
        let claims = serde_json::to_value(claims_now(&ring, 600)).unwrap();
        let header = serde_json::json!({ "alg": "HS256", "typ": "JWT", "kid": "k1" });
        let token = format!("{}.{}.", b64(&header), b64(&claims));
        assert_eq!(ring.verify(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_token_signed_with_another_secret_under_the_same_kid_is_refused() {
        let ring = k1();
        let impostor = ring_of(&format!("k1:{}", secret(2)));
        let token = impostor.issue(Uuid::now_v7(), Uuid::now_v7(), "admin", HOUR);
        assert_eq!(ring.verify(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn an_unknown_or_missing_kid_is_refused() {
        let ring = k1();
        let other = ring_of(&format!("k9:{}", secret(1)));
        let token = other.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);
        assert_eq!(ring.verify(&token), Err(TokenError::UnknownKey));

        let claims = claims_now(&ring, 600);
        let no_kid = Header::new(Algorithm::HS256);
        let token =
            jsonwebtoken::encode(&no_kid, &claims, &EncodingKey::from_secret(&[1; 32])).unwrap();
        assert_eq!(ring.verify(&token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn other_algorithms_are_refused_even_with_the_right_secret() {
        let ring = k1();
        let claims = claims_now(&ring, 600);
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some("k1".to_owned());
            let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&[1; 32]))
                .unwrap();
            assert_eq!(
                ring.verify(&token),
                Err(TokenError::WrongAlgorithm),
                "{alg:?}"
            );
        }
        // RS256 header over an HMAC signature: the key-confusion attack.
        let good = ring.sign(&claims);
        let parts: Vec<&str> = good.split('.').collect();
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": "k1" });
        let confused = format!("{}.{}.{}", b64(&header), parts[1], parts[2]);
        assert_eq!(ring.verify(&confused), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let ring = k1();
        let expired = ring.sign(&claims_now(&ring, -(LEEWAY_SECONDS as i64) - 10));
        assert_eq!(ring.verify(&expired), Err(TokenError::Expired));
        // Within the leeway a just-expired token is still accepted.
        let skewed = ring.sign(&claims_now(&ring, -2));
        assert!(ring.verify(&skewed).is_ok());
    }

    #[test]
    fn a_zero_ttl_token_expires_once_the_leeway_has_passed() {
        let ring = k1();
        let token = ring.issue(Uuid::now_v7(), Uuid::now_v7(), "member", Duration::ZERO);
        let claims = ring.verify(&token).unwrap();
        assert_eq!(claims.exp, claims.iat);
        let later = Claims {
            exp: claims.exp - LEEWAY_SECONDS as i64 - 1,
            ..claims
        };
        assert_eq!(ring.verify(&ring.sign(&later)), Err(TokenError::Expired));
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let ring = k1();
        let spec = format!("k1:{}", secret(1));
        let foreign = KeyRing::from_spec(&spec, "someone-else", AUDIENCE).unwrap();
        let token = foreign.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);
        assert_eq!(ring.verify(&token), Err(TokenError::WrongIssuer));

        let elsewhere = KeyRing::from_spec(&spec, ISSUER, "another-api").unwrap();
        let token = elsewhere.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);
        assert_eq!(ring.verify(&token), Err(TokenError::WrongAudience));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
        let old = ring_of(&format!("k1:{}", secret(1)));
        let token_before = old.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);

        let rotated = ring_of(&format!("k2:{}, k1:{}", secret(2), secret(1)));
        assert_eq!(rotated.signing_kid(), "k2");
        assert!(rotated.verify(&token_before).is_ok());

        let token_after = rotated.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);
        assert_eq!(
            read_header(&token_after).unwrap().kid.as_deref(),
            Some("k2")
        );
        assert!(rotated.verify(&token_after).is_ok());

        // Once k1 is dropped its tokens stop working.
        let retired = ring_of(&format!("k2:{}", secret(2)));
        assert_eq!(retired.verify(&token_before), Err(TokenError::UnknownKey));
    }

    #[test]
    fn garbage_is_malformed() {
        let ring = k1();
        for token in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.sig"] {
            assert_eq!(ring.verify(token), Err(TokenError::Malformed), "{token:?}");
        }
        let huge = format!("{}.e30.sig", "a".repeat(MAX_TOKEN_LENGTH));
        assert_eq!(ring.verify(&huge), Err(TokenError::Malformed));
    }

    #[test]
    fn a_signed_token_missing_claims_is_malformed() {
        let ring = k1();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".to_owned());
        let exp = chrono::Utc::now().timestamp() + 600;
        let claims = serde_json::json!({ "iss": ISSUER, "aud": AUDIENCE, "exp": exp });
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&[1; 32])).unwrap();
        assert_eq!(ring.verify(&token), Err(TokenError::Malformed));
    }

    #[test]
    fn generated_rings_work_and_differ() {
        let a = KeyRing::generate(ISSUER, AUDIENCE);
        let b = KeyRing::generate(ISSUER, AUDIENCE);
        assert!(a.signing_kid().starts_with("dev-"));
        assert_ne!(a.signing_kid(), b.signing_kid());
        let token = a.issue(Uuid::now_v7(), Uuid::now_v7(), "member", HOUR);
        assert!(a.verify(&token).is_ok());
        assert!(b.verify(&token).is_err());
    }

    #[test]
    fn debug_shows_kids_but_no_secret() {
        let s = secret(42);
        let ring = ring_of(&format!("primary:{s}"));
        let debug = format!("{ring:?}");
        assert!(debug.contains("primary"), "{debug}");
        assert!(!debug.contains(&s), "{debug}");
        assert!(!debug.contains("42, 42"), "{debug}");
    }

    #[test]
    fn bad_specs_are_refused_with_messages_that_hide_the_secret() {
        let long = secret(7);
        let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
        let padded = base64::engine::general_purpose::URL_SAFE.encode([7u8; 32]);
        type Expect = fn(&KeyConfigError) -> bool;
        let cases: Vec<(String, Expect, &str)> = vec![
            ("".into(), |e| matches!(e, KeyConfigError::Empty), ""),
            ("  ".into(), |e| matches!(e, KeyConfigError::Empty), ""),
            (
                long.clone(),
                |e| matches!(e, KeyConfigError::MissingColon { position: 1 }),
                &long,
            ),
            (
                format!("k1:{long},"),
                |e| matches!(e, KeyConfigError::MissingColon { position: 2 }),
                &long,
            ),
            (
                format!(":{long}"),
                |e| matches!(e, KeyConfigError::InvalidKid { position: 1 }),
                &long,
            ),
            (
                format!("{long}:{long}"),
                |e| matches!(e, KeyConfigError::InvalidKid { position: 1 }),
                &long,
            ),
            (
                format!("k1:{short}"),
                |e| {
                    matches!(
                        e,
                        KeyConfigError::ShortSecret {
                            bytes: 16,
                            min: 32,
                            ..
                        }
                    )
                },
                &short,
            ),
            (
                format!("k1:{padded}"),
                |e| matches!(e, KeyConfigError::BadBase64 { .. }),
                &padded,
            ),
            (
                "k1:not*base64*at*all*not*base64*at*all*not*base64".into(),
                |e| matches!(e, KeyConfigError::BadBase64 { .. }),
                "not*base64",
            ),
            (
                format!("k1:{long},k1:{}", secret(8)),
                |e| matches!(e, KeyConfigError::DuplicateKid { kid } if kid == "k1"),
                &long,
            ),
        ];
        for (spec, expected, secret) in cases {
            let err = KeyRing::from_spec(&spec, ISSUER, AUDIENCE).unwrap_err();
            assert!(expected(&err), "{spec:?} gave {err:?}");
            let message = err.to_string();
            if !secret.is_empty() {
                assert!(!message.contains(secret), "{message}");
            }
            assert!(!format!("{err:?}").contains(&long), "{err:?}");
            if !matches!(err, KeyConfigError::DuplicateKid { .. }) {
                assert!(message.contains("kid:secret"), "{message}");
            }
        }
    }

    #[test]
    fn issuer_and_audience_are_required() {
        let spec = format!("k1:{}", secret(1));
        assert!(matches!(
            KeyRing::from_spec(&spec, "", AUDIENCE),
            Err(KeyConfigError::EmptyIssuer)
        ));
        assert!(matches!(
            KeyRing::from_spec(&spec, ISSUER, " "),
            Err(KeyConfigError::EmptyAudience)
        ));
    }
}
