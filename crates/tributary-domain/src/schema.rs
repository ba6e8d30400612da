//! The JSON Schemas of every command and event type: the contract for upstream producers
//! and the check the processor runs on every command it reads.

use jsonschema::Validator;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Whether a type is a command (input) or an event (output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Command,
    Event,
}

/// `(type, kind, schema text)`: one entry per file in `schemas/`.
pub type SchemaEntry = (&'static str, SchemaKind, &'static str);

/// Every schema: identity, credentials and the security log here; the sync path's
/// aggregates (targets, profiles, sync runs) list their own next to them.
pub static SCHEMAS: LazyLock<Vec<SchemaEntry>> = LazyLock::new(|| {
    CORE.iter()
        .chain(crate::target::SCHEMAS)
        .chain(crate::profile::SCHEMAS)
        .chain(crate::sync::SCHEMAS)
        .copied()
        .collect()
});

const CORE: &[SchemaEntry] = &[
    (
        "tributary.dead_letter.recorded.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.dead_letter.recorded.v1.json"),
    ),
    (
        "tributary.dead_letter.redriven.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.dead_letter.redriven.v1.json"),
    ),
    (
        "tributary.org.accept_invitation.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.accept_invitation.v1.json"),
    ),
    (
        "tributary.org.change_role.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.change_role.v1.json"),
    ),
    (
        "tributary.org.create.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.create.v1.json"),
    ),
    (
        "tributary.org.create_api_key.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.create_api_key.v1.json"),
    ),
    (
        "tributary.org.deactivate_member.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.deactivate_member.v1.json"),
    ),
    (
        "tributary.org.delete.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.delete.v1.json"),
    ),
    (
        "tributary.org.invite.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.invite.v1.json"),
    ),
    (
        "tributary.org.join_by_domain.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.join_by_domain.v1.json"),
    ),
    (
        "tributary.org.reactivate_member.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.reactivate_member.v1.json"),
    ),
    (
        "tributary.org.register.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.register.v1.json"),
    ),
    (
        "tributary.org.remove_member.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.remove_member.v1.json"),
    ),
    (
        "tributary.org.rename.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.rename.v1.json"),
    ),
    (
        "tributary.org.revoke_api_key.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.revoke_api_key.v1.json"),
    ),
    (
        "tributary.org.revoke_invitation.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.revoke_invitation.v1.json"),
    ),
    (
        "tributary.org.set_allowed_domains.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.org.set_allowed_domains.v1.json"),
    ),
    (
        "tributary.slug.release.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.slug.release.v1.json"),
    ),
    (
        "tributary.email.claim.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.email.claim.v1.json"),
    ),
    (
        "tributary.email.release.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.email.release.v1.json"),
    ),
    (
        "tributary.user.register.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.user.register.v1.json"),
    ),
    (
        "tributary.user.rename.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.user.rename.v1.json"),
    ),
    (
        "tributary.user.forget.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.user.forget.v1.json"),
    ),
    (
        "tributary.session.end.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.session.end.v1.json"),
    ),
    (
        "tributary.session.refresh.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.session.refresh.v1.json"),
    ),
    (
        "tributary.session.start.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.session.start.v1.json"),
    ),
    (
        "tributary.org.allowed_domains_set.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.allowed_domains_set.v1.json"),
    ),
    (
        "tributary.org.api_key_created.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.api_key_created.v1.json"),
    ),
    (
        "tributary.org.api_key_revoked.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.api_key_revoked.v1.json"),
    ),
    (
        "tributary.org.created.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.created.v1.json"),
    ),
    (
        "tributary.org.deleted.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.deleted.v1.json"),
    ),
    (
        "tributary.org.invitation_accepted.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.invitation_accepted.v1.json"),
    ),
    (
        "tributary.org.invitation_created.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.invitation_created.v1.json"),
    ),
    (
        "tributary.org.invitation_revoked.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.invitation_revoked.v1.json"),
    ),
    (
        "tributary.org.member_added.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.member_added.v1.json"),
    ),
    (
        "tributary.org.member_deactivated.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.member_deactivated.v1.json"),
    ),
    (
        "tributary.org.member_reactivated.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.member_reactivated.v1.json"),
    ),
    (
        "tributary.org.member_removed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.member_removed.v1.json"),
    ),
    (
        "tributary.org.member_role_changed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.member_role_changed.v1.json"),
    ),
    (
        "tributary.org.renamed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.org.renamed.v1.json"),
    ),
    (
        "tributary.slug.released.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.slug.released.v1.json"),
    ),
    (
        "tributary.slug.reserved.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.slug.reserved.v1.json"),
    ),
    (
        "tributary.email.claimed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.email.claimed.v1.json"),
    ),
    (
        "tributary.email.released.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.email.released.v1.json"),
    ),
    (
        "tributary.user.registered.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.user.registered.v1.json"),
    ),
    (
        "tributary.user.renamed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.user.renamed.v1.json"),
    ),
    (
        "tributary.user.forgotten.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.user.forgotten.v1.json"),
    ),
    (
        "tributary.session.ended.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.session.ended.v1.json"),
    ),
    (
        "tributary.session.refreshed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.session.refreshed.v1.json"),
    ),
    (
        "tributary.session.revoked.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.session.revoked.v1.json"),
    ),
    (
        "tributary.session.started.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.session.started.v1.json"),
    ),
    (
        "tributary.command.outcome.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.command.outcome.v1.json"),
    ),
    (
        "tributary.security.login_failed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.security.login_failed.v1.json"),
    ),
    (
        "tributary.snapshot.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.snapshot.v1.json"),
    ),
    (
        "tributary.credential.create.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.create.v1.json"),
    ),
    (
        "tributary.credential.update.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.update.v1.json"),
    ),
    (
        "tributary.credential.rotate.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.rotate.v1.json"),
    ),
    (
        "tributary.credential.confirm_rotation.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.confirm_rotation.v1.json"),
    ),
    (
        "tributary.credential.cancel_rotation.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.cancel_rotation.v1.json"),
    ),
    (
        "tributary.credential.record_test.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.record_test.v1.json"),
    ),
    (
        "tributary.credential.record_reveal.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.record_reveal.v1.json"),
    ),
    (
        "tributary.credential.reencrypt.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.reencrypt.v1.json"),
    ),
    (
        "tributary.credential.store_tokens.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.store_tokens.v1.json"),
    ),
    (
        "tributary.credential.require_reauthorization.v1",
        SchemaKind::Command,
        include_str!(
            "../../../schemas/commands/tributary.credential.require_reauthorization.v1.json"
        ),
    ),
    (
        "tributary.credential.delete.v1",
        SchemaKind::Command,
        include_str!("../../../schemas/commands/tributary.credential.delete.v1.json"),
    ),
    (
        "tributary.credential.created.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.created.v1.json"),
    ),
    (
        "tributary.credential.updated.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.updated.v1.json"),
    ),
    (
        "tributary.credential.rotation_started.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.rotation_started.v1.json"),
    ),
    (
        "tributary.credential.rotated.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.rotated.v1.json"),
    ),
    (
        "tributary.credential.rotation_canceled.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.rotation_canceled.v1.json"),
    ),
    (
        "tributary.credential.tested.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.tested.v1.json"),
    ),
    (
        "tributary.credential.revealed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.revealed.v1.json"),
    ),
    (
        "tributary.credential.reencrypted.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.reencrypted.v1.json"),
    ),
    (
        "tributary.credential.tokens_stored.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.tokens_stored.v1.json"),
    ),
    (
        "tributary.credential.reauthorization_required.v1",
        SchemaKind::Event,
        include_str!(
            "../../../schemas/events/tributary.credential.reauthorization_required.v1.json"
        ),
    ),
    (
        "tributary.credential.deleted.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.credential.deleted.v1.json"),
    ),
    (
        "tributary.vault.data_key_created.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.vault.data_key_created.v1.json"),
    ),
    (
        "tributary.vault.kek_rotated.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.vault.kek_rotated.v1.json"),
    ),
    (
        "tributary.vault.shredded.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.vault.shredded.v1.json"),
    ),
    (
        "tributary.security.oauth_failed.v1",
        SchemaKind::Event,
        include_str!("../../../schemas/events/tributary.security.oauth_failed.v1.json"),
    ),
];

static VALIDATORS: LazyLock<HashMap<&'static str, Validator>> = LazyLock::new(|| {
    SCHEMAS
        .iter()
        .map(|(ty, _, text)| {
            let schema: serde_json::Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("schema of {ty} is not JSON: {e}"));
            // Formats (uuid, date-time) are checked, not just annotations.
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("schema of {ty} does not compile: {e}"));
            (*ty, validator)
        })
        .collect()
});

/// The top-level properties each type marks `writeOnly` (secrets, sealed or not): their
/// values are never repeated in an error message or kept in a dead letter.
static SECRET_FIELDS: LazyLock<HashMap<&'static str, Vec<String>>> = LazyLock::new(|| {
    SCHEMAS
        .iter()
        .map(|(ty, _, text)| {
            let schema: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            let fields = schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, p)| p["writeOnly"] == true)
                .map(|(name, _)| name.clone())
                .collect();
            (*ty, fields)
        })
        .collect()
});

/// Per aggregate (from `x-tributary-topic`), every secret field of any of its commands.
static AGGREGATE_SECRETS: LazyLock<HashMap<String, Vec<String>>> = LazyLock::new(|| {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (ty, kind, text) in SCHEMAS.iter() {
        if *kind != SchemaKind::Command {
            continue;
        }
        let schema: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let Some(aggregate) = schema["x-tributary-topic"]
            .as_str()
            .and_then(|t| t.strip_suffix(".commands"))
        else {
            continue;
        };
        let entry = out.entry(aggregate.to_owned()).or_default();
        for field in secret_fields(ty) {
            if !entry.contains(field) {
                entry.push(field.clone());
            }
        }
    }
    out
});

/// The top-level fields of a type that hold secrets (`writeOnly` in its schema).
pub fn secret_fields(ty: &str) -> &'static [String] {
    SECRET_FIELDS.get(ty).map_or(&[], Vec::as_slice)
}

/// A command record of `aggregate` as a dead letter may keep it: the values of secret
/// fields replaced by `"[redacted]"`. A record of an aggregate whose commands carry
/// secrets that is not a JSON object cannot be told apart from a secret, so nothing of
/// it is kept. Records of other aggregates are kept as they are.
pub fn redact_command(aggregate: &str, payload: &[u8]) -> Vec<u8> {
    let Some(fields) = AGGREGATE_SECRETS.get(aggregate).filter(|f| !f.is_empty()) else {
        return payload.to_vec();
    };
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut map)) => {
            for field in fields {
                if let Some(value) = map.get_mut(field) {
                    *value = serde_json::Value::String("[redacted]".into());
                }
            }
            serde_json::to_vec(&map).unwrap_or_default()
        }
        _ => br#"{"redacted":"the record was not a JSON object and may hold secrets; it is not kept"}"#
            .to_vec(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("no schema is registered for type {0:?}")]
    UnknownType(String),
    #[error("{ty} violates its schema: {details}")]
    Violation { ty: String, details: String },
}

/// Whether a type has a schema of the given kind.
pub fn is_known(ty: &str, kind: SchemaKind) -> bool {
    SCHEMAS.iter().any(|(t, k, _)| *t == ty && *k == kind)
}

/// Validates data against the schema of its type; the error lists every violation with
/// its JSON pointer, so a producer can fix all of them at once.
pub fn validate(ty: &str, data: &serde_json::Value) -> Result<(), SchemaError> {
    let validator = VALIDATORS
        .get(ty)
        .ok_or_else(|| SchemaError::UnknownType(ty.to_owned()))?;
    let details: Vec<String> = validator
        .iter_errors(data)
        .map(|e| {
            let path = e.instance_path.to_string();
            let secret = path
                .split('/')
                .nth(1)
                .is_some_and(|first| secret_fields(ty).iter().any(|f| f == first));
            let at = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            if secret {
                // jsonschema's message quotes the value: not for a secret.
                let rule = e
                    .schema_path
                    .as_str()
                    .rsplit('/')
                    .next()
                    .unwrap_or("schema");
                format!(
                    "at {at}: the value does not satisfy `{rule}` (secret values are not repeated)"
                )
            } else {
                format!("at {at}: {e}")
            }
        })
        .collect();
    if details.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Violation {
            ty: ty.to_owned(),
            details: details.join("; "),
        })
    }
}

/// The schema document of a type, for the API and for producers.
pub fn schema_text(ty: &str) -> Option<&'static str> {
    SCHEMAS
        .iter()
        .find(|(t, _, _)| *t == ty)
        .map(|(_, _, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_neither_quoted_nor_kept() {
        let data = serde_json::json!({
            "credential_id": "01a2163a-9d9c-7613-9e7f-5214abbea4e4",
            "org_id": "01a2163a-9d9c-7613-9e7f-5214abbea4e4",
            "kind": "github_token", "name": "x", "actor": "system:test",
            "at": "2030-01-01T00:00:00Z",
            "secrets": { "token": { "sealed": "ghp_plaintext_secret_value", "mask": "x" } },
        });
        let err = validate("tributary.credential.create.v1", &data).unwrap_err();
        assert!(!err.to_string().contains("ghp_plaintext"), "{err}");
        assert!(err.to_string().contains("/secrets/token/sealed"), "{err}");
        let kept = redact_command("credential", &serde_json::to_vec(&data).unwrap());
        let kept = String::from_utf8(kept).unwrap();
        assert!(
            !kept.contains("ghp_plaintext") && kept.contains("[redacted]"),
            "{kept}"
        );
        let garbage = redact_command("credential", b"{not json ghp_plaintext_secret_value");
        assert!(!String::from_utf8_lossy(&garbage).contains("ghp_plaintext"));
        // Other aggregates' records are kept as they are.
        assert_eq!(redact_command("org", b"not json"), b"not json");
    }

    #[test]
    fn every_schema_compiles() {
        assert_eq!(VALIDATORS.len(), SCHEMAS.len());
    }

    #[test]
    fn violations_name_the_field() {
        let err = validate(
            "tributary.org.create.v1",
            &serde_json::json!({"org_id": "not-a-uuid", "slug": "acme"}),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("name"), "{text}");
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert_eq!(
            validate("tributary.nope.v1", &serde_json::json!({})),
            Err(SchemaError::UnknownType("tributary.nope.v1".into()))
        );
    }
}
