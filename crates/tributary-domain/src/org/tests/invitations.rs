use super::*;
use crate::InvitationId;
use crate::testkit::{hash, ix, sealed, step, when};
use crate::{email, user};

struct Invited {
    org: OrgId,
    invitation: InvitationId,
    state: Option<OrgState>,
}

/// An org with one invitation for bob@acme.com as curator, valid until 8 January 2030.
fn invited() -> Invited {
    let (org, admin, state) = founded();
    let invitation = InvitationId::new();
    let (state, decision) = step::<Org>(
        state,
        INVITE,
        json!({
            "org_id": org,
            "invitation_id": invitation,
            "email_index": ix("bob@acme.com"),
            "email": sealed("bob@acme.com"),
            "role": "curator",
            "token_hash": hash('a'),
            "expires_at": "2030-01-08T00:00:00Z",
            "actor": actor(admin),
        }),
    );
    assert!(
        matches!(&decision.events[..], [OrgEvent::InvitationCreated(e)] if e.email_index == ix("bob@acme.com") && e.role == Role::Curator)
    );
    Invited {
        org,
        invitation,
        state,
    }
}

impl Invited {
    fn accept(&self, user: UserId) -> Value {
        json!({
            "org_id": self.org,
            "invitation_id": self.invitation,
            "token_hash": hash('a'),
            "user_id": user,
            "email_index": ix("bob@acme.com"),
            "at": "2030-01-02T00:00:00Z",
        })
    }

    fn accept_signing_up(&self, user: UserId) -> Value {
        let mut data = self.accept(user);
        data["new_user"] = new_user();
        data
    }

    fn refused(&self, data: Value) -> Rejection {
        when::<Org>(self.state.as_ref(), ACCEPT_INVITATION, data).unwrap_err()
    }
}

#[test]
fn an_existing_user_accepts_and_becomes_a_member_with_the_invited_role() {
    let i = invited();
    let bob = UserId::new();
    let (state, decision) = step::<Org>(i.state.clone(), ACCEPT_INVITATION, i.accept(bob));
    assert!(decision.completes);
    assert!(decision.follow_ups.is_empty());
    assert_eq!(decision.events.len(), 2);
    assert!(matches!(&decision.events[1], OrgEvent::MemberAdded(m)
        if m.role == Role::Curator && m.via == JoinedVia::Invitation && m.invitation_id == Some(i.invitation)));
    let state = state.unwrap();
    assert_eq!(state.members[&bob].email_index, ix("bob@acme.com"));
    assert_eq!(state.invitations[&i.invitation].accepted_by, Some(bob));
}

#[test]
fn a_new_user_accepting_is_registered_next() {
    let i = invited();
    let bob = UserId::new();
    let decision = when::<Org>(
        i.state.as_ref(),
        ACCEPT_INVITATION,
        i.accept_signing_up(bob),
    )
    .unwrap();
    assert!(!decision.completes);
    assert_eq!(decision.events.len(), 2);
    let next = &decision.follow_ups[0];
    assert_eq!(
        (next.aggregate, next.command_type),
        ("user", user::REGISTER)
    );
    assert_eq!(next.data["email_index"], json!(ix("bob@acme.com")));
    assert_eq!(next.data["email"], json!(sealed("bob@acme.com")));
}

#[test]
fn an_expired_invitation_is_invalid() {
    let i = invited();
    let mut late = i.accept(UserId::new());
    late["at"] = json!("2030-01-08T00:00:00Z");
    let rejection = i.refused(late);
    assert_eq!(rejection.code, RejectionCode::InvitationInvalid);
    assert!(rejection.reason.contains("expired"), "{}", rejection.reason);
}

#[test]
fn a_wrong_token_is_invalid() {
    let i = invited();
    let mut wrong = i.accept(UserId::new());
    wrong["token_hash"] = json!(hash('b'));
    let rejection = i.refused(wrong);
    assert_eq!(rejection.code, RejectionCode::InvitationInvalid);
    assert!(rejection.reason.contains("token"), "{}", rejection.reason);
}

#[test]
fn another_address_is_invalid() {
    let i = invited();
    let mut other = i.accept(UserId::new());
    other["email_index"] = json!(ix("eve@acme.com"));
    let rejection = i.refused(other);
    assert_eq!(rejection.code, RejectionCode::InvitationInvalid);
    assert!(
        rejection.reason.contains("another email"),
        "{}",
        rejection.reason
    );
}

#[test]
fn an_invitation_is_used_once() {
    let i = invited();
    let (state, _) = step::<Org>(i.state.clone(), ACCEPT_INVITATION, i.accept(UserId::new()));
    let rejection =
        when::<Org>(state.as_ref(), ACCEPT_INVITATION, i.accept(UserId::new())).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::InvitationInvalid);
    assert!(
        rejection.reason.contains("already used"),
        "{}",
        rejection.reason
    );
}

#[test]
fn unknown_and_revoked_invitations_are_invalid() {
    let i = invited();
    let mut unknown = i.accept(UserId::new());
    unknown["invitation_id"] = json!(InvitationId::new());
    assert_eq!(i.refused(unknown).code, RejectionCode::InvitationInvalid);

    let revoke = json!({ "org_id": i.org, "invitation_id": i.invitation });
    let (state, decision) = step::<Org>(i.state.clone(), REVOKE_INVITATION, revoke.clone());
    assert_eq!(decision.events.len(), 1);
    assert!(
        when::<Org>(state.as_ref(), REVOKE_INVITATION, revoke)
            .unwrap()
            .events
            .is_empty()
    );
    let rejection =
        when::<Org>(state.as_ref(), ACCEPT_INVITATION, i.accept(UserId::new())).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::InvitationInvalid);
    assert!(rejection.reason.contains("revoked"), "{}", rejection.reason);

    let stranger = json!({ "org_id": i.org, "invitation_id": InvitationId::new() });
    assert_eq!(
        when::<Org>(i.state.as_ref(), REVOKE_INVITATION, stranger)
            .unwrap_err()
            .code,
        RejectionCode::NotFound
    );
}

#[test]
fn a_refused_sign_up_gives_its_address_back_and_a_signed_in_user_has_nothing_to_give() {
    let i = invited();
    let bob = UserId::new();
    let mut wrong = i.accept_signing_up(bob);
    wrong["token_hash"] = json!(hash('b'));
    let rejection = i.refused(wrong);
    assert_eq!(rejection.follow_ups.len(), 1);
    let release = &rejection.follow_ups[0];
    assert_eq!(
        (release.aggregate, release.command_type),
        ("email", email::RELEASE)
    );
    assert_eq!(release.key, ix("bob@acme.com"));
    assert_eq!(release.data["user_id"], json!(bob));

    let mut wrong = i.accept(bob);
    wrong["token_hash"] = json!(hash('b'));
    assert!(i.refused(wrong).follow_ups.is_empty());
}

#[test]
fn a_retried_sign_up_by_invitation_carries_on_without_events() {
    let i = invited();
    let bob = UserId::new();
    let (state, _) = step::<Org>(i.state.clone(), ACCEPT_INVITATION, i.accept_signing_up(bob));
    let again = when::<Org>(state.as_ref(), ACCEPT_INVITATION, i.accept_signing_up(bob)).unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.follow_ups[0].command_type, user::REGISTER);
    // The address is not released: that sign-up succeeded.
    assert!(
        again
            .follow_ups
            .iter()
            .all(|f| f.command_type != email::RELEASE)
    );
}

#[test]
fn members_cannot_be_invited_or_accept_again() {
    let i = invited();
    let bob = UserId::new();
    let state = with_member(i.state.clone(), bob, "bob@acme.com", Role::Member);
    let rejection = when::<Org>(state.as_ref(), ACCEPT_INVITATION, i.accept(bob)).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Conflict);
    let invite = json!({
        "org_id": i.org,
        "invitation_id": InvitationId::new(),
        "email_index": ix("bob@acme.com"),
        "email": sealed("bob@acme.com"),
        "role": "member",
        "token_hash": hash('b'),
        "expires_at": "2030-01-08T00:00:00Z",
    });
    assert_eq!(
        when::<Org>(state.as_ref(), INVITE, invite)
            .unwrap_err()
            .code,
        RejectionCode::Conflict
    );
}

#[test]
fn an_invitation_id_is_used_once() {
    let i = invited();
    let again = json!({
        "org_id": i.org,
        "invitation_id": i.invitation,
        "email_index": ix("carol@acme.com"),
        "email": sealed("carol@acme.com"),
        "role": "member",
        "token_hash": hash('b'),
        "expires_at": "2030-01-08T00:00:00Z",
    });
    assert_eq!(
        when::<Org>(i.state.as_ref(), INVITE, again)
            .unwrap_err()
            .code,
        RejectionCode::Conflict
    );
}
