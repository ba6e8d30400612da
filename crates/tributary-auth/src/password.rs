//! Password policy and storage.
//!
//! Passwords are low-entropy secrets chosen by people, so a leaked hash must be expensive to
//! brute-force: they are stored as argon2id PHC strings with the OWASP baseline parameters
//! (19 MiB of memory, 2 passes, 1 lane) and a random 128-bit salt. The PHC string records the
//! parameters, so raising them later still verifies old hashes.
//!
//! Strength is judged by zxcvbn rather than composition rules ("one digit, one symbol"), which
//! make passwords harder to remember without making them harder to guess. zxcvbn embeds the
//! common-password, name and word lists, so the check needs no I/O.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use zxcvbn::Score;
use zxcvbn::matching::patterns::MatchPattern;

/// Fewest characters (Unicode scalar values) a password may have.
pub const MIN_LENGTH: usize = 12;
/// Most characters a password may have: it bounds the work a login request can cause.
pub const MAX_LENGTH: usize = 1024;

/// OWASP Password Storage Cheat Sheet baseline for argon2id.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The lowest zxcvbn score accepted (3: "safely unguessable", about 10^10 guesses).
const MIN_SCORE: Score = Score::Three;

const USER_INPUT_ADVICE: &str = "do not build the password from your email address or name; \
     a passphrase of a few unrelated words works well";
const DEFAULT_ADVICE: &str =
    "add another word or two; a passphrase of a few unrelated words works well";

/// An argon2id hash, with the same parameters as [`hash`], of a random password nobody knows.
/// [`verify_dummy`] checks against it so an unknown email costs as much as a known one.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$y1tfi5AkA6HK1C94S62xng$9/hQHJB+bBxySp8yx4aKFYgtZbTBoXDL4FhE1pq8s+U";

/// Why a password was refused. The message tells the user what to do and never repeats the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error(
        "the password is too short; use at least {min} characters, a passphrase of a few words works well"
    )]
    TooShort { min: usize },
    #[error("the password is too long; use at most {max} characters")]
    TooLong { max: usize },
    #[error(
        "the password is one of the most common passwords, or little more than one; choose a longer passphrase"
    )]
    Common,
    #[error("the password is too easy to guess: {suggestion}")]
    Guessable { suggestion: String },
}

/// Hashing failed; with a valid password this only happens if the system RNG fails.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the password is longer than {max} characters and was not hashed")]
    TooLong { max: usize },
    #[error("argon2id could not hash the password: {0}")]
    Argon2(#[source] argon2::password_hash::Error),
}

/// Accepts a password only if it is long enough and zxcvbn rates it hard to guess.
///
/// `user_inputs` are the account's own details (email, display name): a password built from
/// them is rejected. Each is also split into its words, so "Alice Smith" catches "alicesmith".
pub fn check_strength(password: &str, user_inputs: &[&str]) -> Result<(), WeakPassword> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(WeakPassword::TooShort { min: MIN_LENGTH });
    }
    if length > MAX_LENGTH {
        return Err(WeakPassword::TooLong { max: MAX_LENGTH });
    }

    let inputs = expand_user_inputs(user_inputs);
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    let sequence = entropy.sequence();

    // zxcvbn does not export its `DictionaryType`, but its `Default` is the common-password list.
    let is_common_entry = |pattern: &MatchPattern| match pattern {
        MatchPattern::Dictionary(d) => d.dictionary_name == Default::default(),
        _ => false,
    };
    // zxcvbn looks at the first 100 characters only, so "whole" means the whole of those.
    let evaluated = length.min(100);
    let whole_is_common = matches!(
        sequence,
        [only] if only.i == 0 && only.j + 1 == evaluated && is_common_entry(&only.pattern)
    );
    if whole_is_common {
        return Err(WeakPassword::Common);
    }
    if entropy.score() >= MIN_SCORE {
        return Ok(());
    }
    // "password123456" is a common password with digits appended: name the real problem. How
    // zxcvbn splits the rest varies between runs ("123456" is both a common password and a
    // sequence), so count only how much of the password the common entries cover.
    let common_chars: usize = sequence
        .iter()
        .filter(|m| is_common_entry(&m.pattern))
        .map(|m| m.j + 1 - m.i)
        .sum();
    if common_chars * 2 >= evaluated {
        return Err(WeakPassword::Common);
    }
    let uses_user_input = sequence.iter().any(|m| match &m.pattern {
        MatchPattern::Dictionary(d) => inputs.contains(&d.matched_word.as_str()),
        _ => false,
    });
    let suggestion = if uses_user_input {
        USER_INPUT_ADVICE.to_owned()
    } else {
        match entropy.feedback().map(ToString::to_string) {
            Some(feedback) if !feedback.trim().is_empty() => feedback.trim().to_owned(),
            _ => DEFAULT_ADVICE.to_owned(),
        }
    };
    Err(WeakPassword::Guessable { suggestion })
}

/// Each input as given, plus its words (split on anything not alphanumeric, at least 3
/// characters) and the words joined, so an email's local part and a full name are covered.
fn expand_user_inputs(user_inputs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for input in user_inputs {
        let input = input.trim().to_lowercase();
        if input.is_empty() {
            continue;
        }
        let words: Vec<&str> = input
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .collect();
        if words.len() > 1 {
            out.push(words.concat());
        }
        out.extend(words.iter().map(|w| (*w).to_owned()));
        if let Some((local, _domain)) = input.split_once('@') {
            out.push(local.to_owned());
        }
        out.push(input);
    }
    out.sort();
    out.dedup();
    out
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .expect("the OWASP argon2id parameters are within argon2's bounds");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id and a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash(password: &str) -> Result<String, HashError> {
    if password.chars().count() > MAX_LENGTH {
        return Err(HashError::TooLong { max: MAX_LENGTH });
    }
    let hash: PasswordHash = argon2()
        .hash_password(password.as_bytes())
        .map_err(HashError::Argon2)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string. False on a mismatch, on a hash that does not
/// parse, and on a password over [`MAX_LENGTH`] (which could never have been stored).
pub fn verify(password: &str, phc: &str) -> bool {
    if password.chars().count() > MAX_LENGTH {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // The parameters come from the PHC string; the instance only fixes the variant we trust.
    argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Does the work of a real [`verify`] against a fixed hash and throws the answer away. Call it
/// when the email is unknown, so response time does not tell which emails have accounts.
pub fn verify_dummy(password: &str) {
    let matched = verify(password, DUMMY_PHC);
    std::hint::black_box(matched);
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "alice.smith@example.com";
    const NAME: &str = "Alice Smith";

    #[test]
    fn hash_then_verify_round_trips_and_rejects_other_passwords() {
        let phc = hash("violet tractor umbrella 58").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("violet tractor umbrella 58", &phc));
        assert!(!verify("violet tractor umbrella 59", &phc));
        assert!(!verify("", &phc));
    }

    #[test]
    fn hashing_twice_uses_different_salts() {
        let a = hash("violet tractor umbrella 58").unwrap();
        let b = hash("violet tractor umbrella 58").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn verify_is_false_for_a_hash_that_does_not_parse() {
        assert!(!verify("violet tractor umbrella 58", "not a phc string"));
        assert!(!verify("violet tractor umbrella 58", ""));
    }

    #[test]
    fn overlong_passwords_are_neither_hashed_nor_verified() {
        let long = "x".repeat(MAX_LENGTH + 1);
        assert!(matches!(
            hash(&long),
            Err(HashError::TooLong { max: MAX_LENGTH })
        ));
        assert!(!verify(&long, DUMMY_PHC));
    }

    #[test]
    fn the_dummy_hash_costs_the_same_as_a_real_one() {
        let dummy = PasswordHash::new(DUMMY_PHC).unwrap();
        let real = hash("violet tractor umbrella 58").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.salt.map(|s| s.len()), real.salt.map(|s| s.len()));
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }

    #[test]
    fn verify_dummy_runs_a_full_verification() {
        let started = std::time::Instant::now();
        verify_dummy("whatever was typed in the form");
        // A parse failure would return in microseconds; argon2id with 19 MiB cannot.
        assert!(started.elapsed() > std::time::Duration::from_millis(1));
    }

    #[test]
    fn short_passwords_are_refused_by_character_count() {
        assert_eq!(
            check_strength("Tr0ub4dor&3", &[]),
            Err(WeakPassword::TooShort { min: MIN_LENGTH })
        );
        // 12 characters but 24 bytes: length is counted in characters.
        assert_ne!(
            check_strength("éééééééééééé", &[]),
            Err(WeakPassword::TooShort { min: MIN_LENGTH })
        );
    }

    #[test]
    fn overlong_passwords_are_refused() {
        let long = "correct horse ".repeat(80);
        assert_eq!(
            check_strength(&long, &[]),
            Err(WeakPassword::TooLong { max: MAX_LENGTH })
        );
    }

    #[test]
    fn common_passwords_are_refused_as_common() {
        let common = [
            "password123456",
            "qwertyuiop123",
            "P@ssw0rd123456",
            "iloveyou12345678",
        ];
        // zxcvbn's choice between equally cheap matches depends on hash-map order, which
        // changes from call to call: repeat so a classification that depends on it shows up.
        for _ in 0..20 {
            for password in common {
                assert_eq!(
                    check_strength(password, &[]),
                    Err(WeakPassword::Common),
                    "{password}"
                );
            }
        }
    }

    #[test]
    fn guessable_passwords_get_zxcvbn_advice() {
        let Err(WeakPassword::Guessable { suggestion }) = check_strength("aaaaaaaaaaaaaa", &[])
        else {
            panic!("a repeated character must be guessable");
        };
        assert!(suggestion.contains("Repeats"), "{suggestion}");
    }

    #[test]
    fn a_strong_passphrase_is_accepted() {
        assert_eq!(
            check_strength("violet tractor umbrella 58", &[EMAIL, NAME]),
            Ok(())
        );
        assert_eq!(
            check_strength("correct horse battery staple", &[EMAIL, NAME]),
            Ok(())
        );
    }

    #[test]
    fn a_password_made_of_the_users_own_details_is_refused() {
        for password in [EMAIL, "Alice.Smith@Example.com", "alicesmith2024!"] {
            let result = check_strength(password, &[EMAIL, NAME]);
            let Err(WeakPassword::Guessable { suggestion }) = result else {
                panic!("{password} was accepted: {result:?}");
            };
            assert!(suggestion.contains("email address or name"), "{suggestion}");
        }
        // Without the user's details the same password would pass: the inputs did the work.
        assert_eq!(check_strength("alicesmith2024!", &[]), Ok(()));
    }

    #[test]
    fn messages_never_contain_the_password() {
        for password in ["password123456", "aaaaaaaaaaaaaa", "hunter2", EMAIL] {
            let err = check_strength(password, &[EMAIL, NAME]).unwrap_err();
            assert!(!err.to_string().contains(password), "{err}");
        }
    }
}
