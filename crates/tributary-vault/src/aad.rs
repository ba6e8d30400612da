//! Associated data for AES-GCM, shared by wrapping and sealing.

/// Concatenates `parts`, each preceded by its length as 8 bytes big-endian.
///
/// Length prefixes make the encoding injective: without them `("ab", "c")` and `("a", "bc")`
/// would give the same bytes, and a ciphertext for one place would open at the other.
pub(crate) fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let total = parts.iter().map(|p| 8 + p.len()).sum();
    let mut out = Vec::with_capacity(total);
    for part in parts {
        // usize is at most 64 bits on every platform Rust supports, so this never truncates.
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_a_boundary_changes_the_bytes() {
        assert_ne!(
            length_prefixed(&[b"ab", b"c"]),
            length_prefixed(&[b"a", b"bc"])
        );
        assert_ne!(length_prefixed(&[b"", b"x"]), length_prefixed(&[b"x", b""]));
    }
}
