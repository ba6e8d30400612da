use super::*;
use crate::OrgId;

fn create(org_id: OrgId, slug: &str) -> SlugCommand {
    SlugCommand::CreateOrg(CreateOrg {
        org_id,
        slug: slug.into(),
        name: "Acme".into(),
        founder: None,
        admin: None,
    })
}

fn reserved(org_id: OrgId) -> SlugState {
    Slug::evolve(
        None,
        &SlugEvent {
            slug: "acme".into(),
            org_id,
            kind: SlugEventKind::Reserved,
        },
    )
}

#[test]
fn a_free_slug_is_reserved_and_the_creation_handed_to_the_org() {
    let org = OrgId::new();
    let decision = Slug::decide(None, &create(org, "acme")).unwrap();
    assert_eq!(decision.events.len(), 1);
    assert!(!decision.completes);
    assert_eq!(decision.follow_ups[0].aggregate, "org");
    assert_eq!(decision.follow_ups[0].key, org.to_string());
}

#[test]
fn a_slug_held_by_another_org_is_taken() {
    let state = reserved(OrgId::new());
    let rejection = Slug::decide(Some(&state), &create(OrgId::new(), "acme")).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::SlugTaken);
}

#[test]
fn a_retried_creation_is_handed_on_again_without_new_events() {
    let org = OrgId::new();
    let state = reserved(org);
    let decision = Slug::decide(Some(&state), &create(org, "acme")).unwrap();
    assert!(decision.events.is_empty());
    assert_eq!(decision.follow_ups.len(), 1);
}

#[test]
fn release_frees_only_the_holders_slug() {
    let org = OrgId::new();
    let state = reserved(org);
    let stranger = SlugCommand::Release(ReleaseSlug {
        slug: "acme".into(),
        org_id: OrgId::new(),
    });
    assert!(
        Slug::decide(Some(&state), &stranger)
            .unwrap()
            .events
            .is_empty()
    );
    let holder = SlugCommand::Release(ReleaseSlug {
        slug: "acme".into(),
        org_id: org,
    });
    let events = Slug::decide(Some(&state), &holder).unwrap().events;
    let after = Slug::evolve(Some(state), &events[0]);
    assert_eq!(after.org_id, None);
    let again = Slug::decide(Some(&after), &create(OrgId::new(), "acme")).unwrap();
    assert_eq!(again.events.len(), 1);
}

#[test]
fn an_invalid_slug_is_rejected_before_anything_is_reserved() {
    let rejection = Slug::decide(None, &create(OrgId::new(), "Not A Slug")).unwrap_err();
    assert_eq!(rejection.code, RejectionCode::Invalid);
}
