//! The organization aggregate: the tenant, with its members, invitations, allowed sign-up
//! domains and API keys. Created only through its slug reservation.

mod command;
mod event;
mod lifecycle;
mod members;
mod settings;
mod state;
#[cfg(test)]
mod tests;
mod validate;

pub use command::{
    AcceptInvitation, ChangeRole, CreateApiKey, DeleteOrg, ExistingUser, Founder, Invite,
    JoinByDomain, MemberCommand, OrgCommand, RegisterOrg, RenameOrg, RevokeApiKey,
    RevokeInvitation, SetAllowedDomains,
};
pub use event::{
    AllowedDomainsSet, ApiKeyCreated, ApiKeyRevoked, InvitationAccepted, InvitationCreated,
    InvitationRevoked, JoinedVia, MemberAdded, MemberChanged, MemberRoleChanged, OrgCreated,
    OrgDeleted, OrgEvent, OrgRenamed,
};
pub use state::{ApiKey, Invitation, Member, OrgState};
pub use validate::{
    API_KEY_PREFIX_MAX_CHARS, MAX_ALLOWED_DOMAINS, NAME_MAX_CHARS, validate_name, validate_slug,
};

use crate::aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode, parse_data};
use crate::email;
use crate::ids::{OrgId, UserId};

pub const REGISTER: &str = "tributary.org.register.v1";
pub const RENAME: &str = "tributary.org.rename.v1";
pub const DELETE: &str = "tributary.org.delete.v1";
pub const INVITE: &str = "tributary.org.invite.v1";
pub const ACCEPT_INVITATION: &str = "tributary.org.accept_invitation.v1";
pub const REVOKE_INVITATION: &str = "tributary.org.revoke_invitation.v1";
pub const JOIN_BY_DOMAIN: &str = "tributary.org.join_by_domain.v1";
pub const CHANGE_ROLE: &str = "tributary.org.change_role.v1";
pub const DEACTIVATE_MEMBER: &str = "tributary.org.deactivate_member.v1";
pub const REACTIVATE_MEMBER: &str = "tributary.org.reactivate_member.v1";
pub const REMOVE_MEMBER: &str = "tributary.org.remove_member.v1";
pub const SET_ALLOWED_DOMAINS: &str = "tributary.org.set_allowed_domains.v1";
pub const CREATE_API_KEY: &str = "tributary.org.create_api_key.v1";
pub const REVOKE_API_KEY: &str = "tributary.org.revoke_api_key.v1";

pub const CREATED: &str = "tributary.org.created.v1";
pub const RENAMED: &str = "tributary.org.renamed.v1";
pub const DELETED: &str = "tributary.org.deleted.v1";
pub const MEMBER_ADDED: &str = "tributary.org.member_added.v1";
pub const MEMBER_ROLE_CHANGED: &str = "tributary.org.member_role_changed.v1";
pub const MEMBER_DEACTIVATED: &str = "tributary.org.member_deactivated.v1";
pub const MEMBER_REACTIVATED: &str = "tributary.org.member_reactivated.v1";
pub const MEMBER_REMOVED: &str = "tributary.org.member_removed.v1";
pub const INVITATION_CREATED: &str = "tributary.org.invitation_created.v1";
pub const INVITATION_ACCEPTED: &str = "tributary.org.invitation_accepted.v1";
pub const INVITATION_REVOKED: &str = "tributary.org.invitation_revoked.v1";
pub const ALLOWED_DOMAINS_SET: &str = "tributary.org.allowed_domains_set.v1";
pub const API_KEY_CREATED: &str = "tributary.org.api_key_created.v1";
pub const API_KEY_REVOKED: &str = "tributary.org.api_key_revoked.v1";

pub struct Org;

impl Aggregate for Org {
    const KIND: &'static str = "org";
    const COMMAND_TYPES: &'static [&'static str] = &[
        REGISTER,
        RENAME,
        DELETE,
        INVITE,
        ACCEPT_INVITATION,
        REVOKE_INVITATION,
        JOIN_BY_DOMAIN,
        CHANGE_ROLE,
        DEACTIVATE_MEMBER,
        REACTIVATE_MEMBER,
        REMOVE_MEMBER,
        SET_ALLOWED_DOMAINS,
        CREATE_API_KEY,
        REVOKE_API_KEY,
    ];

    type State = OrgState;
    type Command = OrgCommand;
    type Event = OrgEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        use OrgCommand as C;
        match command_type {
            REGISTER => parse_data(data).map(C::Register),
            RENAME => parse_data(data).map(C::Rename),
            DELETE => parse_data(data).map(C::Delete),
            INVITE => parse_data(data).map(C::Invite),
            ACCEPT_INVITATION => parse_data(data).map(C::AcceptInvitation),
            REVOKE_INVITATION => parse_data(data).map(C::RevokeInvitation),
            JOIN_BY_DOMAIN => parse_data(data).map(C::JoinByDomain),
            CHANGE_ROLE => parse_data(data).map(C::ChangeRole),
            DEACTIVATE_MEMBER => parse_data(data).map(C::DeactivateMember),
            REACTIVATE_MEMBER => parse_data(data).map(C::ReactivateMember),
            REMOVE_MEMBER => parse_data(data).map(C::RemoveMember),
            SET_ALLOWED_DOMAINS => parse_data(data).map(C::SetAllowedDomains),
            CREATE_API_KEY => parse_data(data).map(C::CreateApiKey),
            REVOKE_API_KEY => parse_data(data).map(C::RevokeApiKey),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the org aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        command.org_id().to_string()
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        Some(command.org_id())
    }

    fn decide(
        state: Option<&OrgState>,
        command: &OrgCommand,
    ) -> Result<Decision<OrgEvent>, Rejection> {
        use OrgCommand as C;
        let org = || live(state, command.org_id());
        match command {
            C::Register(c) => lifecycle::register(state, c),
            C::Rename(c) => lifecycle::rename(org()?, c),
            C::Delete(c) => lifecycle::delete(org()?, c),
            C::Invite(c) => members::invite(org()?, c),
            C::AcceptInvitation(c) => org().and_then(|org| members::accept(org, c)).map_err(|r| {
                r.with_follow_ups(release_email(
                    c.new_user.is_some(),
                    &c.email_index,
                    c.user_id,
                    c.org_id,
                ))
            }),
            C::RevokeInvitation(c) => members::revoke_invitation(org()?, c),
            C::JoinByDomain(c) => org()
                .and_then(|org| members::join_by_domain(org, c))
                .map_err(|r| {
                    r.with_follow_ups(release_email(
                        c.new_user.is_some(),
                        &c.email_index,
                        c.user_id,
                        c.org_id,
                    ))
                }),
            C::ChangeRole(c) => members::change_role(org()?, c),
            C::DeactivateMember(c) => members::deactivate(org()?, c),
            C::ReactivateMember(c) => members::reactivate(org()?, c),
            C::RemoveMember(c) => members::remove(org()?, c),
            C::SetAllowedDomains(c) => settings::set_allowed_domains(org()?, c),
            C::CreateApiKey(c) => settings::create_api_key(org()?, c),
            C::RevokeApiKey(c) => settings::revoke_api_key(org()?, c),
        }
    }

    fn evolve(state: Option<OrgState>, event: &OrgEvent) -> OrgState {
        // An event without its creation cannot come from our log; keep a state that says
        // so rather than panic in a replay.
        state
            .unwrap_or_else(|| OrgState::new(event.org_id(), String::new(), String::new()))
            .apply(event)
    }

    fn event_type(event: &OrgEvent) -> &'static str {
        event.event_type()
    }
}

/// The org a command may act on: it exists and is not deleted.
fn live(state: Option<&OrgState>, org_id: OrgId) -> Result<&OrgState, Rejection> {
    state.filter(|s| !s.deleted).ok_or_else(|| {
        Rejection::new(
            RejectionCode::NotFound,
            format!("organization {org_id} does not exist"),
        )
    })
}

/// A sign-up refused at the org gives its email address back.
fn release_email(
    signing_up: bool,
    email_index: &str,
    user_id: UserId,
    org_id: OrgId,
) -> Option<FollowUp> {
    signing_up.then(|| email::release_follow_up(email_index, user_id, Some(org_id)))
}
