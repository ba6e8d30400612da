use super::*;
use crate::testkit::{at, hash, round_trips, step, when};
use serde_json::{Value, json};

struct Fixture {
    session: SessionId,
    user: UserId,
    org: OrgId,
}

impl Fixture {
    fn new() -> Self {
        Self {
            session: SessionId::new(),
            user: UserId::new(),
            org: OrgId::new(),
        }
    }

    fn start(&self) -> Value {
        json!({
            "session_id": self.session,
            "user_id": self.user,
            "org_id": self.org,
            "role": "curator",
            "token_hash": hash('a'),
            "expires_at": "2030-01-31T00:00:00Z",
            "at": "2030-01-01T00:00:00Z",
        })
    }

    fn refresh(&self, presented: char, next: char) -> Value {
        json!({
            "session_id": self.session,
            "presented_hash": hash(presented),
            "next_hash": hash(next),
            "expires_at": "2030-02-01T00:00:00Z",
            "at": "2030-01-02T00:00:00Z",
            "org_id": self.org,
        })
    }

    fn end(&self) -> Value {
        json!({ "session_id": self.session, "org_id": self.org, "reason": "logout" })
    }

    fn started(&self) -> Option<SessionState> {
        step::<Session>(None, START, self.start()).0
    }
}

fn code(result: Result<Decision<SessionEvent>, Rejection>) -> RejectionCode {
    result.unwrap_err().code
}

#[test]
fn start_opens_a_session_once() {
    let f = Fixture::new();
    let (state, decision) = step::<Session>(None, START, f.start());
    assert_eq!(decision.events.len(), 1);
    let state = state.unwrap();
    assert_eq!(state.status, SessionStatus::Active);
    assert_eq!(state.token_hash, hash('a'));
    assert_eq!(
        code(when::<Session>(Some(&state), START, f.start())),
        RejectionCode::Conflict
    );
    let mut backwards = Fixture::new().start();
    backwards["expires_at"] = json!("2029-12-31T00:00:00Z");
    assert_eq!(
        code(when::<Session>(None, START, backwards)),
        RejectionCode::Invalid
    );
}

#[test]
fn refresh_with_the_current_token_rotates_it() {
    let f = Fixture::new();
    let (state, decision) = step::<Session>(f.started(), REFRESH, f.refresh('a', 'b'));
    assert_eq!(
        decision.events,
        vec![SessionEvent::Refreshed(SessionRefreshed {
            session_id: f.session,
            user_id: f.user,
            org_id: f.org,
            role: Role::Curator,
            next_hash: hash('b'),
            expires_at: at("2030-02-01T00:00:00Z"),
            previous_org_id: None,
        })]
    );
    let state = state.unwrap();
    assert_eq!(state.token_hash, hash('b'));
    assert_eq!(state.used_hashes, vec![hash('a')]);
    assert_eq!(state.expires_at, at("2030-02-01T00:00:00Z"));
}

#[test]
fn a_replaced_token_presented_again_revokes_the_whole_session() {
    let f = Fixture::new();
    let (state, _) = step::<Session>(f.started(), REFRESH, f.refresh('a', 'b'));
    // The thief (or the victim) comes back with the first token.
    let (state, decision) = step::<Session>(state, REFRESH, f.refresh('a', 'c'));
    assert!(decision.completes);
    assert_eq!(
        decision.events,
        vec![SessionEvent::Revoked(SessionClosed {
            session_id: f.session,
            user_id: f.user,
            org_id: f.org,
            reason: REUSE.into(),
        })]
    );
    assert_eq!(state.as_ref().unwrap().status, SessionStatus::Revoked);
    // Even the current token is worthless now.
    assert_eq!(
        code(when::<Session>(
            state.as_ref(),
            REFRESH,
            f.refresh('b', 'd')
        )),
        RejectionCode::SessionInvalid
    );
}

#[test]
fn an_unknown_token_is_refused_without_revoking() {
    let f = Fixture::new();
    let state = f.started();
    assert_eq!(
        code(when::<Session>(
            state.as_ref(),
            REFRESH,
            f.refresh('z', 'b')
        )),
        RejectionCode::SessionInvalid
    );
    assert_eq!(
        code(when::<Session>(None, REFRESH, f.refresh('a', 'b'))),
        RejectionCode::SessionInvalid
    );
}

#[test]
fn an_expired_session_cannot_be_refreshed() {
    let f = Fixture::new();
    let mut late = f.refresh('a', 'b');
    late["at"] = json!("2030-01-31T00:00:00Z");
    late["expires_at"] = json!("2030-03-01T00:00:00Z");
    assert_eq!(
        code(when::<Session>(f.started().as_ref(), REFRESH, late)),
        RejectionCode::SessionInvalid
    );
}

#[test]
fn refresh_can_switch_the_org_when_it_names_the_role() {
    let f = Fixture::new();
    let other = OrgId::new();
    let mut switch = f.refresh('a', 'b');
    switch["org_id"] = json!(other);
    assert_eq!(
        code(when::<Session>(
            f.started().as_ref(),
            REFRESH,
            switch.clone()
        )),
        RejectionCode::Invalid
    );
    switch["role"] = json!("admin");
    let (state, decision) = step::<Session>(f.started(), REFRESH, switch);
    let SessionEvent::Refreshed(e) = &decision.events[0] else {
        panic!("not refreshed")
    };
    assert_eq!(
        (e.org_id, e.role, e.previous_org_id),
        (other, Role::Admin, Some(f.org))
    );
    let state = state.unwrap();
    assert_eq!((state.org_id, state.role), (other, Role::Admin));
}

#[test]
fn the_next_token_must_be_new() {
    let f = Fixture::new();
    assert_eq!(
        code(when::<Session>(
            f.started().as_ref(),
            REFRESH,
            f.refresh('a', 'a')
        )),
        RejectionCode::Invalid
    );
}

#[test]
fn end_is_idempotent_and_final() {
    let f = Fixture::new();
    let (state, decision) = step::<Session>(f.started(), END, f.end());
    assert_eq!(decision.events.len(), 1);
    assert_eq!(state.as_ref().unwrap().status, SessionStatus::Ended);
    assert!(
        when::<Session>(state.as_ref(), END, f.end())
            .unwrap()
            .events
            .is_empty()
    );
    assert!(
        when::<Session>(None, END, f.end())
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(
        code(when::<Session>(
            state.as_ref(),
            REFRESH,
            f.refresh('a', 'b')
        )),
        RejectionCode::SessionInvalid
    );
}

#[test]
fn end_names_the_sessions_org() {
    let f = Fixture::new();
    let mut end = f.end();
    end["org_id"] = json!(OrgId::new());
    assert_eq!(
        code(when::<Session>(f.started().as_ref(), END, end)),
        RejectionCode::SessionInvalid
    );
}

#[test]
fn only_the_latest_replaced_hashes_are_kept() {
    let f = Fixture::new();
    let mut state = f.started().unwrap();
    for i in 0..USED_HASHES_KEPT + 5 {
        let next = format!("{:064x}", i + 1);
        state = Session::evolve(
            Some(state),
            &SessionEvent::Refreshed(SessionRefreshed {
                session_id: f.session,
                user_id: f.user,
                org_id: f.org,
                role: Role::Member,
                next_hash: next,
                expires_at: at("2030-02-01T00:00:00Z"),
                previous_org_id: None,
            }),
        );
    }
    assert_eq!(state.used_hashes.len(), USED_HASHES_KEPT);
    assert!(!state.used_hashes.contains(&hash('a')));
    assert_eq!(
        state.used_hashes.last().unwrap(),
        &format!("{:064x}", USED_HASHES_KEPT + 4)
    );
}

#[test]
fn every_command_names_its_org() {
    let f = Fixture::new();
    for (ty, data) in [
        (START, f.start()),
        (REFRESH, f.refresh('a', 'b')),
        (END, f.end()),
    ] {
        let command = Session::parse_command(ty, data).unwrap();
        assert_eq!(Session::org_of(&command), Some(f.org));
        assert_eq!(Session::target(&command), f.session.to_string());
    }
}

#[test]
fn state_and_events_round_trip() {
    let f = Fixture::new();
    let (state, decision) = step::<Session>(f.started(), REFRESH, f.refresh('a', 'b'));
    round_trips("session", &f.session.to_string(), &state.unwrap());
    let bytes = serde_json::to_vec(&decision.events[0]).unwrap();
    assert_eq!(
        SessionEvent::decode(REFRESHED, &bytes).unwrap(),
        decision.events[0]
    );
    assert_eq!(decision.events[0].org_id(), f.org);
}
