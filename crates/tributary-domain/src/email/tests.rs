use super::*;
use crate::schema;
use crate::testkit::{given, hash, ix, round_trips, sealed, sealed_hash, step, when};
use serde_json::{Value, json};

fn claim(email: &str, user: UserId, then: Value) -> Value {
    json!({
        "email_index": ix(email),
        "email": sealed(email),
        "user_id": user,
        "name": sealed("Alice"),
        "password_hash": sealed_hash(),
        "then": then,
    })
}

fn new_org(org: OrgId) -> Value {
    json!({ "kind": "new_org", "org_id": org, "slug": "acme", "name": "Acme" })
}

fn claimed(user: UserId) -> Option<EmailState> {
    given::<Email>(&[EmailEvent::Claimed(EmailClaimed {
        email_index: ix("alice@acme.com"),
        user_id: user,
    })])
}

#[test]
fn a_free_address_is_claimed_and_a_new_org_handed_to_the_slug() {
    let (user, org) = (UserId::new(), OrgId::new());
    let decision = when::<Email>(None, CLAIM, claim("alice@acme.com", user, new_org(org))).unwrap();
    assert_eq!(
        decision.events,
        vec![EmailEvent::Claimed(EmailClaimed {
            email_index: ix("alice@acme.com"),
            user_id: user
        })]
    );
    assert!(!decision.completes);
    let next = &decision.follow_ups[0];
    assert_eq!((next.aggregate, next.key.as_str()), ("slug", "acme"));
    assert_eq!(next.command_type, slug::CREATE_ORG);
    assert_eq!(next.data["founder"]["user_id"], json!(user));
    assert_eq!(next.data["founder"]["password_hash"], json!(sealed_hash()));
    assert_eq!(next.org_id, Some(org));
}

#[test]
fn joining_by_domain_and_accepting_an_invitation_go_to_the_org() {
    let (user, org, invitation) = (UserId::new(), OrgId::new(), InvitationId::new());
    let join = json!({ "kind": "join_by_domain", "org_id": org, "email_domain": "acme.com" });
    let decision = when::<Email>(None, CLAIM, claim("alice@acme.com", user, join)).unwrap();
    let next = &decision.follow_ups[0];
    assert_eq!(
        (next.aggregate, next.command_type),
        ("org", org::JOIN_BY_DOMAIN)
    );
    assert_eq!(next.data["new_user"]["name"], json!(sealed("Alice")));

    let accept = json!({
        "kind": "accept_invitation",
        "org_id": org,
        "invitation_id": invitation,
        "token_hash": hash('a'),
        "at": "2030-01-01T00:00:00Z",
    });
    let decision = when::<Email>(None, CLAIM, claim("alice@acme.com", user, accept)).unwrap();
    let next = &decision.follow_ups[0];
    assert_eq!(
        (next.aggregate, next.command_type),
        ("org", org::ACCEPT_INVITATION)
    );
    assert_eq!(next.data["at"], "2030-01-01T00:00:00Z");
    assert_eq!(next.data["token_hash"], json!(hash('a')));
    assert_eq!(next.key, org.to_string());
}

#[test]
fn an_address_held_by_another_user_is_taken() {
    let state = claimed(UserId::new());
    let rejection = when::<Email>(
        state.as_ref(),
        CLAIM,
        claim("alice@acme.com", UserId::new(), new_org(OrgId::new())),
    )
    .unwrap_err();
    assert_eq!(rejection.code, RejectionCode::EmailTaken);
    assert!(rejection.follow_ups.is_empty());
}

#[test]
fn a_retried_claim_is_handed_on_again_without_new_events() {
    let user = UserId::new();
    let state = claimed(user);
    let decision = when::<Email>(
        state.as_ref(),
        CLAIM,
        claim("alice@acme.com", user, new_org(OrgId::new())),
    )
    .unwrap();
    assert!(decision.events.is_empty());
    assert_eq!(decision.follow_ups.len(), 1);
    assert!(!decision.completes);
}

#[test]
fn release_frees_only_the_holders_address() {
    let user = UserId::new();
    let state = claimed(user);
    let stranger = json!({ "email_index": ix("alice@acme.com"), "user_id": UserId::new() });
    assert!(
        when::<Email>(state.as_ref(), RELEASE, stranger)
            .unwrap()
            .events
            .is_empty()
    );
    let holder =
        json!({ "email_index": ix("alice@acme.com"), "user_id": user, "org_id": OrgId::new() });
    let (after, decision) = step::<Email>(state, RELEASE, holder);
    assert!(decision.completes);
    assert_eq!(after.as_ref().unwrap().user_id, None);
    let again = when::<Email>(
        after.as_ref(),
        CLAIM,
        claim("alice@acme.com", UserId::new(), new_org(OrgId::new())),
    )
    .unwrap();
    assert_eq!(again.events.len(), 1);
}

#[test]
fn addresses_travel_only_as_a_blind_index_and_sealed() {
    let mut data = claim("alice@acme.com", UserId::new(), new_org(OrgId::new()));
    data["email_index"] = json!("alice@acme.com");
    assert!(schema::validate(CLAIM, &data).is_err());
    let command = Email::parse_command(CLAIM, data).unwrap();
    let rejection = Email::decide(None, &command).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Invalid);
    assert!(!rejection.reason.contains("alice"), "{}", rejection.reason);

    let mut data = claim("alice@acme.com", UserId::new(), new_org(OrgId::new()));
    data["email"] = json!("alice@acme.com");
    assert!(schema::validate(CLAIM, &data).is_err());
    let command = Email::parse_command(CLAIM, data).unwrap();
    let rejection = Email::decide(None, &command).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Invalid);
    assert!(!rejection.reason.contains("alice"), "{}", rejection.reason);
}

#[test]
fn plaintext_passwords_never_pass() {
    let mut data = claim("alice@acme.com", UserId::new(), new_org(OrgId::new()));
    data["password_hash"] = json!("hunter2");
    assert!(schema::validate(CLAIM, &data).is_err());
    data["name"] = json!("Alice");
    let command = Email::parse_command(CLAIM, data).unwrap();
    assert_eq!(
        Email::decide(None, &command).unwrap_err().code,
        RejectionCode::Invalid
    );
}

#[test]
fn a_bad_org_name_is_refused_before_the_address_is_claimed() {
    let mut then = new_org(OrgId::new());
    then["name"] = json!("Acme\u{0007}");
    let rejection = when::<Email>(None, CLAIM, claim("alice@acme.com", UserId::new(), then));
    assert_eq!(rejection.unwrap_err().code, RejectionCode::Invalid);
}

#[test]
fn the_org_of_a_claim_is_the_one_it_goes_to() {
    let org = OrgId::new();
    let command =
        Email::parse_command(CLAIM, claim("alice@acme.com", UserId::new(), new_org(org))).unwrap();
    assert_eq!(Email::org_of(&command), Some(org));
    assert_eq!(Email::target(&command), ix("alice@acme.com"));
}

#[test]
fn state_and_events_round_trip() {
    let state = claimed(UserId::new()).unwrap();
    round_trips("email", &ix("alice@acme.com"), &state);
    let event = EmailEvent::Released(EmailReleased {
        email_index: ix("alice@acme.com"),
        user_id: UserId::new(),
    });
    let bytes = serde_json::to_vec(&event).unwrap();
    assert_eq!(EmailEvent::decode(RELEASED, &bytes).unwrap(), event);
    assert!(EmailEvent::decode("tributary.email.nope.v1", &bytes).is_err());
}
