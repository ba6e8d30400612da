//! Email addresses and domains in the one spelling every aggregate compares.

pub const EMAIL_MAX_CHARS: usize = 254;
const LOCAL_MAX_CHARS: usize = 64;
const DOMAIN_MAX_CHARS: usize = 253;

/// Trims and lowercases an address, and checks its shape: one `@`, a non-empty local
/// part of at most 64 characters, a domain of non-empty labels with at least one dot, no
/// whitespace or control characters, at most 254 characters. Not a full RFC 5322 parser:
/// whether an address works is proven by mail reaching it, not by its syntax.
pub fn normalize_email(s: &str) -> Result<String, String> {
    let email = s.trim().to_lowercase();
    if email.is_empty() {
        return Err("the email address is empty".into());
    }
    if email.chars().count() > EMAIL_MAX_CHARS {
        return Err(format!(
            "the email address is longer than {EMAIL_MAX_CHARS} characters"
        ));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{email:?} contains whitespace or control characters"
        ));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(format!("{email:?} has no @"));
    };
    if domain.contains('@') {
        return Err(format!("{email:?} has more than one @"));
    }
    if local.is_empty() || local.chars().count() > LOCAL_MAX_CHARS {
        return Err(format!(
            "the part before the @ of {email:?} must have 1 to {LOCAL_MAX_CHARS} characters"
        ));
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(format!(
            "the domain of {email:?} must be dot-separated names, like example.com"
        ));
    }
    Ok(email)
}

/// The part after the `@` of a normalized address (empty when there is none).
pub fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Trims and lowercases a domain an org allows sign-ups from, and checks that it is a
/// hostname of at least two labels of ASCII letters, digits and inner hyphens
/// (internationalized domains in their `xn--` form).
pub fn normalize_domain(s: &str) -> Result<String, String> {
    let domain = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.len() > DOMAIN_MAX_CHARS
        || domain.split('.').count() < 2
        || !domain.split('.').all(label_ok)
    {
        return Err(format!(
            "{s:?} is not a domain; use a name like example.com"
        ));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lowercased() {
        assert_eq!(
            normalize_email("  Alice.Smith@Example.COM ").unwrap(),
            "alice.smith@example.com"
        );
        assert_eq!(email_domain("alice@example.com"), "example.com");
        assert_eq!(email_domain("nobody"), "");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "alice@example..com",
            "alice@.example.com",
            "a@b@example.com",
            "al ice@example.com",
            "alice@exa\tmple.com",
            long.as_str(),
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_are_hostnames() {
        assert_eq!(normalize_domain(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(
            normalize_domain("xn--bcher-kva.de").unwrap(),
            "xn--bcher-kva.de"
        );
        for bad in [
            "",
            "com",
            "-a.com",
            "a-.com",
            "a..com",
            "a b.com",
            "*.a.com",
            "bücher.de",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad:?}");
        }
    }
}
