//! Org-wide settings: the domains people may join from, and API keys.

use super::event::{AllowedDomainsSet, ApiKeyCreated, ApiKeyRevoked, OrgEvent};
use super::validate::validate_prefix;
use super::{
    CreateApiKey, MAX_ALLOWED_DOMAINS, OrgState, RevokeApiKey, SetAllowedDomains, validate_name,
};
use crate::aggregate::{Decision, Rejection, RejectionCode};
use crate::checks::{validate_actor, validate_hash};
use crate::email::normalize_domain;

type Decided = Result<Decision<OrgEvent>, Rejection>;

pub(super) fn set_allowed_domains(org: &OrgState, c: &SetAllowedDomains) -> Decided {
    validate_actor(c.actor.as_deref())?;
    let mut domains = c
        .domains
        .iter()
        .map(|d| normalize_domain(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Rejection::new(RejectionCode::Invalid, e))?;
    domains.sort();
    domains.dedup();
    if domains.len() > MAX_ALLOWED_DOMAINS {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            format!("an org allows at most {MAX_ALLOWED_DOMAINS} domains"),
        ));
    }
    if domains == org.allowed_domains {
        return Ok(Decision::done(Vec::new()));
    }
    Ok(Decision::done(vec![OrgEvent::AllowedDomainsSet(
        AllowedDomainsSet {
            org_id: c.org_id,
            domains,
            actor: c.actor.clone(),
        },
    )]))
}

pub(super) fn create_api_key(org: &OrgState, c: &CreateApiKey) -> Decided {
    validate_name(&c.name)?;
    validate_prefix(&c.prefix)?;
    validate_hash("secret_hash", &c.secret_hash)?;
    validate_actor(c.actor.as_deref())?;
    if org.api_keys.contains_key(&c.key_id) {
        return Err(Rejection::new(
            RejectionCode::Conflict,
            format!("API key {} already exists; choose a new id", c.key_id),
        ));
    }
    Ok(Decision::done(vec![OrgEvent::ApiKeyCreated(
        ApiKeyCreated {
            org_id: c.org_id,
            key_id: c.key_id,
            name: c.name.trim().to_owned(),
            role: c.role,
            prefix: c.prefix.clone(),
            secret_hash: c.secret_hash.clone(),
            expires_at: c.expires_at,
            actor: c.actor.clone(),
        },
    )]))
}

pub(super) fn revoke_api_key(org: &OrgState, c: &RevokeApiKey) -> Decided {
    validate_actor(c.actor.as_deref())?;
    let key = org.api_keys.get(&c.key_id).ok_or_else(|| {
        Rejection::new(
            RejectionCode::NotFound,
            format!("API key {} does not exist", c.key_id),
        )
    })?;
    if key.revoked {
        return Ok(Decision::done(Vec::new()));
    }
    Ok(Decision::done(vec![OrgEvent::ApiKeyRevoked(
        ApiKeyRevoked {
            org_id: c.org_id,
            key_id: c.key_id,
            actor: c.actor.clone(),
        },
    )]))
}
