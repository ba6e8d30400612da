//! Creating, renaming and deleting an org.

use super::event::{JoinedVia, MemberAdded, OrgCreated, OrgDeleted, OrgEvent, OrgRenamed};
use super::{Founder, OrgState, RegisterOrg, RenameOrg, validate_name};
use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode};
use crate::checks::{validate_email_index, validate_sealed};
use crate::email;
use crate::ids::OrgId;
use crate::role::Role;
use crate::slug::{self, Slug};
use crate::user;

fn release_slug(org_id: OrgId, slug: &str) -> FollowUp {
    FollowUp {
        aggregate: Slug::KIND,
        key: slug.to_owned(),
        command_type: slug::RELEASE,
        data: serde_json::json!({ "slug": slug, "org_id": org_id }),
        org_id: Some(org_id),
    }
}

fn register_founder(org_id: OrgId, founder: &Founder) -> FollowUp {
    user::register_follow_up(
        founder.user_id,
        &founder.email_index,
        &founder.new_user(),
        Some(org_id),
    )
}

fn validate_founder(founder: &Founder) -> Result<(), Rejection> {
    validate_email_index(&founder.email_index)?;
    validate_sealed("email", &founder.email)?;
    validate_sealed("name", &founder.name)?;
    validate_sealed("password_hash", &founder.password_hash)
}

pub(super) fn register(
    state: Option<&OrgState>,
    c: &RegisterOrg,
) -> Result<Decision<OrgEvent>, Rejection> {
    let release_email = || {
        c.founder
            .as_ref()
            .map(|f| email::release_follow_up(&f.email_index, f.user_id, Some(c.org_id)))
    };
    let Some(existing) = state else {
        let checked = validate_name(&c.name)
            .and_then(|()| c.founder.as_ref().map_or(Ok(()), validate_founder));
        if let Err(rejection) = checked {
            return Err(rejection
                .with_follow_up(release_slug(c.org_id, &c.slug))
                .with_follow_ups(release_email()));
        }
        let mut events = vec![OrgEvent::Created(OrgCreated {
            org_id: c.org_id,
            slug: c.slug.clone(),
            name: c.name.trim().to_owned(),
        })];
        if let (None, Some(admin)) = (&c.founder, &c.admin) {
            validate_email_index(&admin.email_index)?;
            events.push(OrgEvent::MemberAdded(MemberAdded {
                org_id: c.org_id,
                user_id: admin.user_id,
                email_index: admin.email_index.clone(),
                role: Role::Admin,
                via: JoinedVia::Founder,
                invitation_id: None,
            }));
        }
        let Some(founder) = &c.founder else {
            return Ok(Decision::done(events));
        };
        events.push(OrgEvent::MemberAdded(MemberAdded {
            org_id: c.org_id,
            user_id: founder.user_id,
            email_index: founder.email_index.clone(),
            role: Role::Admin,
            via: JoinedVia::Founder,
            invitation_id: None,
        }));
        return Ok(Decision::handed_on(
            events,
            register_founder(c.org_id, founder),
        ));
    };
    // A sign-up retried under a new command id: this org is its own, so carry on.
    if let Some(founder) = &c.founder
        && existing.slug == c.slug
        && !existing.deleted
        && existing
            .members
            .get(&founder.user_id)
            .is_some_and(|m| m.via == JoinedVia::Founder)
    {
        return Ok(Decision::handed_on(
            Vec::new(),
            register_founder(c.org_id, founder),
        ));
    }
    let rejection = Rejection::new(
        RejectionCode::Conflict,
        format!("organization {} already exists; choose a new id", c.org_id),
    )
    .with_follow_ups(release_email());
    // The slug was reserved for this attempt; give it back unless the existing org
    // holds it.
    if existing.slug == c.slug && !existing.deleted {
        Err(rejection)
    } else {
        Err(rejection.with_follow_up(release_slug(c.org_id, &c.slug)))
    }
}

pub(super) fn rename(org: &OrgState, c: &RenameOrg) -> Result<Decision<OrgEvent>, Rejection> {
    validate_name(&c.name)?;
    let name = c.name.trim();
    if name == org.name {
        return Ok(Decision::done(Vec::new()));
    }
    Ok(Decision::done(vec![OrgEvent::Renamed(OrgRenamed {
        org_id: c.org_id,
        name: name.to_owned(),
        previous_name: org.name.clone(),
    })]))
}

pub(super) fn delete(
    org: &OrgState,
    c: &super::DeleteOrg,
) -> Result<Decision<OrgEvent>, Rejection> {
    Ok(Decision::done(vec![OrgEvent::Deleted(OrgDeleted {
        org_id: c.org_id,
        slug: org.slug.clone(),
    })])
    .with_follow_up(release_slug(c.org_id, &org.slug)))
}
