//! Who belongs to an org and how they get in: invitations, allowed domains, roles.

use super::event::{
    InvitationAccepted, InvitationCreated, InvitationRevoked, JoinedVia, MemberAdded,
    MemberChanged, MemberRoleChanged, OrgEvent,
};
use super::{
    AcceptInvitation, ChangeRole, Invite, JoinByDomain, Member, MemberCommand, OrgState,
    RevokeInvitation,
};
use crate::aggregate::{Decision, Rejection, RejectionCode};
use crate::checks::{
    same_hash, validate_actor, validate_email_index, validate_hash, validate_sealed,
};
use crate::email::normalize_domain;
use crate::ids::{OrgId, UserId};
use crate::role::Role;
use crate::user::{self, NewUser};

type Decided = Result<Decision<OrgEvent>, Rejection>;

/// Events that add a member; a sign-up goes on to register the user.
fn admit(
    org_id: OrgId,
    user_id: UserId,
    email_index: &str,
    new_user: Option<&NewUser>,
    events: Vec<OrgEvent>,
) -> Decision<OrgEvent> {
    match new_user {
        Some(new_user) => Decision::handed_on(
            events,
            user::register_follow_up(user_id, email_index, new_user, Some(org_id)),
        ),
        None => Decision::done(events),
    }
}

fn member<'a>(org: &'a OrgState, user_id: &UserId) -> Result<&'a Member, Rejection> {
    org.members.get(user_id).ok_or_else(|| {
        Rejection::new(
            RejectionCode::NotFound,
            format!("user {user_id} is not a member of {}", org.slug),
        )
    })
}

fn last_admin(org: &OrgState, what: &str) -> Rejection {
    Rejection::new(
        RejectionCode::LastAdmin,
        format!(
            "{} needs at least one active admin; make someone else admin before you {what}",
            org.slug
        ),
    )
}

fn already_member(org: &OrgState) -> Rejection {
    Rejection::new(
        RejectionCode::Conflict,
        format!("that email address is already a member of {}", org.slug),
    )
}

pub(super) fn invite(org: &OrgState, c: &Invite) -> Decided {
    validate_email_index(&c.email_index)?;
    validate_sealed("email", &c.email)?;
    validate_hash("token_hash", &c.token_hash)?;
    validate_actor(c.actor.as_deref())?;
    if org.invitations.contains_key(&c.invitation_id) {
        return Err(Rejection::new(
            RejectionCode::Conflict,
            format!(
                "invitation {} already exists; choose a new id",
                c.invitation_id
            ),
        ));
    }
    if org.member_with_email(&c.email_index).is_some() {
        return Err(already_member(org));
    }
    Ok(Decision::done(vec![OrgEvent::InvitationCreated(
        InvitationCreated {
            org_id: c.org_id,
            invitation_id: c.invitation_id,
            email_index: c.email_index.clone(),
            email: c.email.clone(),
            role: c.role,
            expires_at: c.expires_at,
            token_hash: c.token_hash.clone(),
            actor: c.actor.clone(),
        },
    )]))
}

pub(super) fn accept(org: &OrgState, c: &AcceptInvitation) -> Decided {
    validate_email_index(&c.email_index)?;
    c.new_user
        .as_ref()
        .map_or(Ok(()), user::validate_new_user)?;
    let email = &c.email_index;
    let invalid = |why: String| Rejection::new(RejectionCode::InvitationInvalid, why);
    let id = c.invitation_id;
    let invitation = org
        .invitations
        .get(&id)
        .ok_or_else(|| invalid(format!("invitation {id} does not exist")))?;
    if invitation.revoked {
        return Err(invalid(format!("invitation {id} was revoked")));
    }
    // The token and the address are checked before anything else is told, including
    // whether the invitation was used.
    if !same_hash(&invitation.token_hash, &c.token_hash) {
        return Err(invalid(format!("the token does not match invitation {id}")));
    }
    if invitation.email_index != *email {
        return Err(invalid(format!(
            "invitation {id} was sent to another email address"
        )));
    }
    if let Some(by) = invitation.accepted_by {
        // A sign-up retried under a new command id: carry on to the user.
        if by == c.user_id && c.new_user.is_some() && org.members.contains_key(&by) {
            return Ok(admit(
                c.org_id,
                c.user_id,
                email,
                c.new_user.as_ref(),
                Vec::new(),
            ));
        }
        return Err(invalid(format!("invitation {id} was already used")));
    }
    if c.at >= invitation.expires_at {
        return Err(invalid(format!(
            "invitation {id} expired at {}",
            invitation.expires_at.to_rfc3339()
        )));
    }
    if org.members.contains_key(&c.user_id) || org.member_with_email(email).is_some() {
        return Err(already_member(org));
    }
    let events = vec![
        OrgEvent::InvitationAccepted(InvitationAccepted {
            org_id: c.org_id,
            invitation_id: id,
            user_id: c.user_id,
            email_index: email.clone(),
        }),
        OrgEvent::MemberAdded(MemberAdded {
            org_id: c.org_id,
            user_id: c.user_id,
            email_index: email.clone(),
            role: invitation.role,
            via: JoinedVia::Invitation,
            invitation_id: Some(id),
        }),
    ];
    Ok(admit(
        c.org_id,
        c.user_id,
        email,
        c.new_user.as_ref(),
        events,
    ))
}

pub(super) fn revoke_invitation(org: &OrgState, c: &RevokeInvitation) -> Decided {
    validate_actor(c.actor.as_deref())?;
    let invitation = org.invitations.get(&c.invitation_id).ok_or_else(|| {
        Rejection::new(
            RejectionCode::NotFound,
            format!("invitation {} does not exist", c.invitation_id),
        )
    })?;
    // A used or revoked invitation has nothing left to revoke.
    if invitation.revoked || invitation.accepted_by.is_some() {
        return Ok(Decision::done(Vec::new()));
    }
    Ok(Decision::done(vec![OrgEvent::InvitationRevoked(
        InvitationRevoked {
            org_id: c.org_id,
            invitation_id: c.invitation_id,
            actor: c.actor.clone(),
        },
    )]))
}

pub(super) fn join_by_domain(org: &OrgState, c: &JoinByDomain) -> Decided {
    validate_email_index(&c.email_index)?;
    c.new_user
        .as_ref()
        .map_or(Ok(()), user::validate_new_user)?;
    let email = &c.email_index;
    let domain =
        normalize_domain(&c.email_domain).map_err(|e| Rejection::new(RejectionCode::Invalid, e))?;
    if !org.allowed_domains.contains(&domain) {
        return Err(Rejection::new(
            RejectionCode::NotAllowed,
            format!("{} does not let {domain} addresses join", org.slug),
        ));
    }
    if let Some(m) = org.members.get(&c.user_id) {
        // A sign-up retried under a new command id: carry on to the user.
        if c.new_user.is_some() && m.via == JoinedVia::Domain && m.email_index == *email {
            return Ok(admit(
                c.org_id,
                c.user_id,
                email,
                c.new_user.as_ref(),
                Vec::new(),
            ));
        }
        return Err(already_member(org));
    }
    if org.member_with_email(email).is_some() {
        return Err(already_member(org));
    }
    let events = vec![OrgEvent::MemberAdded(MemberAdded {
        org_id: c.org_id,
        user_id: c.user_id,
        email_index: email.clone(),
        role: Role::Member,
        via: JoinedVia::Domain,
        invitation_id: None,
    })];
    Ok(admit(
        c.org_id,
        c.user_id,
        email,
        c.new_user.as_ref(),
        events,
    ))
}

pub(super) fn change_role(org: &OrgState, c: &ChangeRole) -> Decided {
    validate_actor(c.actor.as_deref())?;
    let m = member(org, &c.user_id)?;
    if m.role == c.role {
        return Ok(Decision::done(Vec::new()));
    }
    if org.is_last_active_admin(&c.user_id) {
        return Err(last_admin(org, "change this role"));
    }
    Ok(Decision::done(vec![OrgEvent::MemberRoleChanged(
        MemberRoleChanged {
            org_id: c.org_id,
            user_id: c.user_id,
            from: m.role,
            to: c.role,
            actor: c.actor.clone(),
        },
    )]))
}

fn changed(c: &MemberCommand) -> MemberChanged {
    MemberChanged {
        org_id: c.org_id,
        user_id: c.user_id,
        actor: c.actor.clone(),
    }
}

pub(super) fn deactivate(org: &OrgState, c: &MemberCommand) -> Decided {
    validate_actor(c.actor.as_deref())?;
    if !member(org, &c.user_id)?.active {
        return Ok(Decision::done(Vec::new()));
    }
    if org.is_last_active_admin(&c.user_id) {
        return Err(last_admin(org, "deactivate this admin"));
    }
    Ok(Decision::done(vec![OrgEvent::MemberDeactivated(changed(
        c,
    ))]))
}

pub(super) fn reactivate(org: &OrgState, c: &MemberCommand) -> Decided {
    validate_actor(c.actor.as_deref())?;
    if member(org, &c.user_id)?.active {
        return Ok(Decision::done(Vec::new()));
    }
    Ok(Decision::done(vec![OrgEvent::MemberReactivated(changed(
        c,
    ))]))
}

pub(super) fn remove(org: &OrgState, c: &MemberCommand) -> Decided {
    validate_actor(c.actor.as_deref())?;
    member(org, &c.user_id)?;
    if org.is_last_active_admin(&c.user_id) {
        return Err(last_admin(org, "remove this admin"));
    }
    Ok(Decision::done(vec![OrgEvent::MemberRemoved(changed(c))]))
}
