//! Puts the credential into the Airbyte source's config, and takes an updated credential
//! back out of a config the source rewrote (a CONTROL message after a token refresh).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::source::{Result, SourceError};

/// The config written for the source: `config` with the credential's fields placed at
/// their pointers, or merged into the top level (objects merged field by field, the
/// credential winning) when there are no pointers.
pub(crate) fn merge(
    config: &Map<String, Value>,
    credential: Option<&Value>,
    fields: Option<&BTreeMap<String, String>>,
) -> Result<Value> {
    let mut merged = Value::Object(config.clone());
    let Some(credential) = credential else {
        return Ok(merged);
    };
    let Value::Object(credential) = credential else {
        return Err(SourceError::Config {
            message: "the credential is not a JSON object, so it cannot be merged into the Airbyte source's config; use a credential kind with named fields".to_owned(),
        });
    };
    match fields {
        None => deep_merge(&mut merged, &Value::Object(credential.clone())),
        Some(fields) => {
            for (field, pointer) in fields {
                let Some(value) = credential.get(field) else {
                    continue;
                };
                let slot = slot_at(&mut merged, pointer).ok_or_else(|| SourceError::Config {
                    message: format!(
                        "`credential_fields.{field}` points into a value of `config` that is not an object ({pointer}); point it at a field of an object"
                    ),
                })?;
                *slot = value.clone();
            }
        }
    }
    Ok(merged)
}

fn deep_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                match into.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v);
                    }
                    _ => {
                        into.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}

/// The value at `pointer`, created (with objects on the way) when missing; `None` when
/// the way goes through something that is not an object.
fn slot_at<'a>(mut value: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
    for segment in pointer.split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        if value.is_null() {
            *value = Value::Object(Map::new());
        }
        value = value.as_object_mut()?.entry(key).or_insert(Value::Null);
    }
    Some(value)
}

/// The credential as the new config has it: each credential field read back from where
/// [`merge`] put it. Fields the new config lacks keep their value; config fields that are
/// not in the credential are not taken (they are the profile's, not the credential's).
pub(crate) fn project(
    credential: &Value,
    fields: Option<&BTreeMap<String, String>>,
    new_config: &Value,
) -> Value {
    match fields {
        None => project_value(credential, new_config),
        Some(fields) => {
            let mut out = credential.clone();
            if let Value::Object(out) = &mut out {
                for (field, pointer) in fields {
                    if let Some(v) = new_config.pointer(pointer) {
                        out.insert(field.clone(), v.clone());
                    }
                }
            }
            out
        }
    }
}

fn project_value(credential: &Value, new: &Value) -> Value {
    match (credential, new) {
        (Value::Object(cred), Value::Object(new)) => Value::Object(
            cred.iter()
                .map(|(k, v)| {
                    let v = match new.get(k) {
                        Some(n) => project_value(v, n),
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (_, new) => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merges_into_the_top_level_by_default() {
        let config = map(json!({ "repos": ["a/b"], "auth": { "kind": "pat", "x": 1 } }));
        let cred = json!({ "token": "t", "auth": { "x": 2 } });
        assert_eq!(
            merge(&config, Some(&cred), None).unwrap(),
            json!({ "repos": ["a/b"], "token": "t", "auth": { "kind": "pat", "x": 2 } })
        );
        assert_eq!(merge(&config, None, None).unwrap(), Value::Object(config));
    }

    #[test]
    fn places_fields_at_their_pointers() {
        let config = map(json!({ "credentials": { "option_title": "PAT Credentials" } }));
        let fields = BTreeMap::from([
            (
                "token".to_owned(),
                "/credentials/personal_access_token".to_owned(),
            ),
            ("base_url".to_owned(), "/api/url".to_owned()),
        ]);
        let cred = json!({ "token": "ghp_1", "base_url": "https://x", "check_url": "https://y" });
        assert_eq!(
            merge(&config, Some(&cred), Some(&fields)).unwrap(),
            json!({
                "credentials": { "option_title": "PAT Credentials", "personal_access_token": "ghp_1" },
                "api": { "url": "https://x" }
            })
        );
        let bad = map(json!({ "credentials": "nope" }));
        assert!(merge(&bad, Some(&cred), Some(&fields)).is_err());
        assert!(merge(&config, Some(&json!("s")), None).is_err());
    }

    #[test]
    fn projects_the_credential_back_out() {
        let cred = json!({ "access_token": "old", "refresh_token": "r1", "provider": "x" });
        let new = json!({ "access_token": "new", "refresh_token": "r2", "start_date": "2024" });
        assert_eq!(
            project(&cred, None, &new),
            json!({ "access_token": "new", "refresh_token": "r2", "provider": "x" })
        );
        let fields = BTreeMap::from([("token".to_owned(), "/credentials/token".to_owned())]);
        let cred = json!({ "token": "old" });
        let new = json!({ "credentials": { "token": "new", "kind": "oauth" } });
        assert_eq!(
            project(&cred, Some(&fields), &new),
            json!({ "token": "new" })
        );
    }
}
