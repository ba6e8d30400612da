//! The authorization-code flow against the fake provider, over real HTTP on loopback.

use chrono::Utc;
use serde_json::json;
use tributary_oauth::fake::{FakeProvider, Fault};
use tributary_oauth::{
    AuthStyle, CallbackParams, OAuthError, ProviderConfig, StateClaims, StateError, StateSigner,
    TokenSet, Url, authorize_url, exchange_code, http_client,
};
use uuid::Uuid;

const KEY: [u8; 32] = [42; 32];

fn redirect_uri() -> Url {
    Url::parse("http://127.0.0.1:9/oauth/fake/callback").unwrap()
}

/// Starts a flow for `provider` and lets the fake approve it: returns the callback parameters
/// and the nonce the state was issued with.
async fn approve(fake: &FakeProvider, provider: &ProviderConfig) -> (CallbackParams, Uuid) {
    let signer = StateSigner::new(KEY);
    let now = Utc::now();
    let claims = StateClaims::new(&provider.name, Uuid::new_v4(), Uuid::new_v4(), None, now);
    let nonce = claims.nonce;
    let challenge = provider.pkce.then(|| signer.pkce_challenge_for(nonce));
    let state = signer.issue(claims, now);
    let url = authorize_url(provider, &redirect_uri(), &state, challenge.as_ref());
    let params = fake.approve(&url).await.unwrap();
    assert_eq!(params.state.as_deref(), Some(state.as_str()));
    (params, nonce)
}

async fn userinfo_status(fake: &FakeProvider, tokens: &TokenSet) -> u16 {
    reqwest::Client::new()
        .get(fake.userinfo_url())
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn full_code_flow_with_pkce() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let signer = StateSigner::new(KEY);
    let (params, nonce) = approve(&fake, &provider).await;

    // The callback: verify the state, then exchange with the verifier derived again.
    let claims = signer
        .verify(params.state.as_deref().unwrap(), "fake", Utc::now())
        .unwrap();
    assert_eq!(claims.nonce, nonce);
    let code = params.code("fake").unwrap();
    let verifier = signer.pkce_verifier_for(claims.nonce);
    let before = Utc::now();
    let http = http_client().unwrap();
    let redirect = redirect_uri();
    let exchange = exchange_code(&http, &provider, &redirect, code, Some(verifier));
    assert_send(&exchange);
    let tokens = exchange.await.unwrap();

    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.scopes, ["read", "write"]);
    assert_eq!(tokens.token_type, "bearer");
    let expires_at = tokens.expires_at.unwrap();
    assert!(expires_at >= before + chrono::TimeDelta::seconds(3599));
    assert!(expires_at <= Utc::now() + chrono::TimeDelta::seconds(3600));
    assert_eq!(userinfo_status(&fake, &tokens).await, 200);
    assert_eq!(fake.token_calls(), 1);
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn the_fake_rejects_a_wrong_or_missing_pkce_verifier() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let signer = StateSigner::new(KEY);
    let http = http_client().unwrap();

    let (params, _nonce) = approve(&fake, &provider).await;
    let wrong = signer.pkce_verifier_for(Uuid::new_v4());
    let err = exchange_code(
        &http,
        &provider,
        &redirect_uri(),
        params.code("fake").unwrap(),
        Some(wrong),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err}");
    assert!(
        err.to_string().contains("code_verifier does not match"),
        "{err}"
    );

    let (params, _nonce) = approve(&fake, &provider).await;
    let err = exchange_code(
        &http,
        &provider,
        &redirect_uri(),
        params.code("fake").unwrap(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err}");
}

#[tokio::test]
async fn a_code_is_single_use_and_expires() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let signer = StateSigner::new(KEY);
    let http = http_client().unwrap();

    let (params, nonce) = approve(&fake, &provider).await;
    let code = params.code("fake").unwrap();
    exchange_code(
        &http,
        &provider,
        &redirect_uri(),
        code,
        Some(signer.pkce_verifier_for(nonce)),
    )
    .await
    .unwrap();
    let err = exchange_code(
        &http,
        &provider,
        &redirect_uri(),
        code,
        Some(signer.pkce_verifier_for(nonce)),
    )
    .await
    .unwrap_err();
    assert!(err.needs_reauthorization(), "{err}");
    assert!(err.to_string().contains("already used"), "{err}");
    assert!(
        err.to_string().contains("reconnect the credential"),
        "{err}"
    );
    assert!(
        !err.to_string().contains(code),
        "the code must not leak: {err}"
    );

    let (params, nonce) = approve(&fake, &provider).await;
    fake.advance_clock(std::time::Duration::from_secs(61));
    let err = exchange_code(
        &http,
        &provider,
        &redirect_uri(),
        params.code("fake").unwrap(),
        Some(signer.pkce_verifier_for(nonce)),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

#[tokio::test]
async fn redirect_uri_must_match() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let signer = StateSigner::new(KEY);
    let (params, nonce) = approve(&fake, &provider).await;
    let other = Url::parse("http://127.0.0.1:9/elsewhere").unwrap();
    let err = exchange_code(
        &http_client().unwrap(),
        &provider,
        &other,
        params.code("fake").unwrap(),
        Some(signer.pkce_verifier_for(nonce)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err}");
}

#[tokio::test]
async fn denied_authorization_is_access_denied() {
    let fake = FakeProvider::start().await.unwrap();
    fake.deny_authorization(true);
    let provider = fake.provider_config("fake");
    let (params, nonce) = approve(&fake, &provider).await;
    // The state still comes back, so the callback knows whose flow failed.
    let claims = StateSigner::new(KEY)
        .verify(params.state.as_deref().unwrap(), "fake", Utc::now())
        .unwrap();
    assert_eq!(claims.nonce, nonce);
    let err = params.code("fake").unwrap_err();
    assert!(matches!(err, OAuthError::AccessDenied { .. }), "{err}");
    assert!(err.needs_reauthorization());
    assert_eq!(fake.token_calls(), 0);
}

#[tokio::test]
async fn tampered_or_foreign_state_is_refused_on_callback() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let (params, _) = approve(&fake, &provider).await;
    let state = params.state.unwrap();
    let signer = StateSigner::new(KEY);

    let mut tampered = state.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        signer.verify(&tampered, "fake", Utc::now()),
        Err(StateError::BadSignature)
    );
    assert!(matches!(
        signer.verify(&state, "github", Utc::now()),
        Err(StateError::WrongProvider { .. })
    ));
    assert_eq!(
        signer.verify(&state, "fake", Utc::now() + chrono::TimeDelta::minutes(11)),
        Err(StateError::Expired)
    );
}

#[tokio::test]
async fn basic_auth_and_wrong_credentials() {
    let fake = FakeProvider::start().await.unwrap();
    let signer = StateSigner::new(KEY);
    let http = http_client().unwrap();

    let mut provider = fake.provider_config("fake");
    provider.auth_style = AuthStyle::BasicAuth;
    let (params, nonce) = approve(&fake, &provider).await;
    exchange_code(
        &http,
        &provider,
        &redirect_uri(),
        params.code("fake").unwrap(),
        Some(signer.pkce_verifier_for(nonce)),
    )
    .await
    .unwrap();

    provider.client_secret = Some("not-the-right-secret".to_owned());
    let (params, nonce) = approve(&fake, &provider).await;
    let err = exchange_code(
        &http,
        &provider,
        &redirect_uri(),
        params.code("fake").unwrap(),
        Some(signer.pkce_verifier_for(nonce)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OAuthError::Misconfigured { .. }), "{err}");
    assert!(err.to_string().contains("an admin must fix"), "{err}");
    assert!(!err.to_string().contains("not-the-right-secret"), "{err}");
}

#[tokio::test]
async fn provider_quirks_with_http_200_errors() {
    let fake = FakeProvider::start().await.unwrap();
    let provider = fake.provider_config("fake");
    let signer = StateSigner::new(KEY);
    let http = http_client().unwrap();

    let cases = [
        // Slack's oauth.v2.access.
        (
            json!({"ok": false, "error": "invalid_code"}),
            "InvalidGrant",
        ),
        // GitHub's access_token endpoint.
        (
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
            "InvalidGrant",
        ),
        (
            json!({"ok": false, "error": "bad_client_secret"}),
            "Misconfigured",
        ),
        (json!({"ok": false, "error": "ratelimited"}), "Transient"),
        (json!({"ok": true, "team": {"id": "T1"}}), "InvalidResponse"),
    ];
    for (body, expected) in cases {
        fake.inject(Fault::Status200Body(body.clone()), 1);
        let (params, nonce) = approve(&fake, &provider).await;
        let err = exchange_code(
            &http,
            &provider,
            &redirect_uri(),
            params.code("fake").unwrap(),
            Some(signer.pkce_verifier_for(nonce)),
        )
        .await
        .unwrap_err();
        let debug = format!("{err:?}");
        assert!(debug.starts_with(expected), "{body}: {debug}");
    }
}

#[tokio::test]
async fn access_tokens_expire_at_the_userinfo_endpoint() {
    let fake = FakeProvider::start().await.unwrap();
    fake.set_expires_in(30);
    let provider = fake.provider_config("fake");
    let signer = StateSigner::new(KEY);
    let (params, nonce) = approve(&fake, &provider).await;
    let tokens = exchange_code(
        &http_client().unwrap(),
        &provider,
        &redirect_uri(),
        params.code("fake").unwrap(),
        Some(signer.pkce_verifier_for(nonce)),
    )
    .await
    .unwrap();
    assert!(tributary_oauth::needs_refresh(
        tokens.expires_at,
        Utc::now(),
        tributary_oauth::refresh::DEFAULT_REFRESH_SKEW
    ));
    assert_eq!(userinfo_status(&fake, &tokens).await, 200);
    fake.advance_clock(std::time::Duration::from_secs(31));
    assert_eq!(userinfo_status(&fake, &tokens).await, 401);
}
