use serde::{Deserialize, Serialize};

/// Discard takes no settings; the empty object still refuses unknown fields, so a typo
/// meant for another kind is caught.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardConfig {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_an_example() {
        assert_eq!(
            serde_json::from_value::<DiscardConfig>(json!({})).unwrap(),
            DiscardConfig {}
        );
        assert!(serde_json::from_value::<DiscardConfig>(json!({ "path": "x" })).is_err());
    }

    #[test]
    fn generates_one() {
        assert_eq!(
            serde_json::to_value(DiscardConfig::default()).unwrap(),
            json!({})
        );
    }
}
