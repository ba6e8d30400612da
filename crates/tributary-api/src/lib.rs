//! The HTTP API: a thin command gateway plus queries over the read models.

pub mod account;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod catalog;
pub mod commands;
pub mod credentials;
pub mod dead_letters;
pub mod forget;
pub mod gateway;
pub mod members;
pub mod oauth;
pub mod ops;
pub mod orgs;
pub mod paging;
mod people;
pub mod problem;
pub mod security;
pub mod state;
pub mod sync_runs;
pub mod waiters;

pub use state::{AppState, ReadinessProbe};

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    info(title = "Tributary", description = "Keeps retrieval systems fed with documents from the tools teams use."),
    tags((name = "orgs", description = "Organizations (tenants)"), (name = "commands", description = "Command outcomes"), (name = "auth", description = "Accounts, sign-in and tokens"), (name = "members", description = "Members, roles, invitations, allowed domains"), (name = "api-keys", description = "API keys for upstream systems"), (name = "credentials", description = "Encrypted credentials for sources and destinations"), (name = "security", description = "Audit log and encryption keys"), (name = "catalog", description = "The connector and destination kinds this build knows"), (name = "targets", description = "Configured destinations of an org"), (name = "profiles", description = "Connections: a source, its credential, its targets and its schedule"), (name = "sync", description = "Sync runs: state, counts, progress, failures"))
)]
struct ApiDoc;

/// The `bearer` scheme: an access token from `/auth/login` or an API key. Each
/// operation lists, as its scope, the least role it needs (`member`, `curator`,
/// `admin`); no scope means any signed-in caller.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An access token (JWT) or an API key (trk_...)"))
                    .build(),
            ),
        );
    }
}

/// The `/api/v1` routes and the OpenAPI document generated from them.
pub fn v1() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::create_org, orgs::list_orgs))
        .routes(routes!(orgs::get_org, orgs::update_org, orgs::delete_org))
        .routes(routes!(commands::get_command))
        .routes(routes!(account::signup))
        .routes(routes!(account::login))
        .routes(routes!(account::refresh))
        .routes(routes!(account::switch_org))
        .routes(routes!(account::logout))
        .routes(routes!(forget::forget_me))
        .routes(routes!(account::me))
        .routes(routes!(members::list_members))
        .routes(routes!(members::change_role))
        .routes(routes!(members::deactivate))
        .routes(routes!(members::reactivate))
        .routes(routes!(members::remove))
        .routes(routes!(bulk::bulk_members))
        .routes(routes!(members::invite, members::list_invitations))
        .routes(routes!(members::accept))
        .routes(routes!(members::set_allowed_domains))
        .routes(routes!(members::create_api_key, members::list_api_keys))
        .routes(routes!(members::revoke_api_key))
        .routes(routes!(security::list))
        .routes(routes!(credentials::create, credentials::list))
        .routes(routes!(
            credentials::get,
            credentials::update,
            credentials::delete
        ))
        .routes(routes!(credentials::test))
        .routes(routes!(credentials::rotate))
        .routes(routes!(credentials::confirm_rotation))
        .routes(routes!(credentials::cancel_rotation))
        .routes(routes!(credentials::reveal))
        .routes(routes!(credentials::kinds))
        .routes(routes!(sync_runs::list))
        .routes(routes!(sync_runs::get))
        .routes(routes!(sync_runs::cancel))
        .routes(routes!(sync_runs::sync_profile))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::get))
        .routes(routes!(dead_letters::redrive_letters))
        .routes(routes!(audit::audit))
        .routes(routes!(audit::encryption))
        .routes(routes!(audit::rotate))
        .routes(routes!(oauth::providers))
        .routes(routes!(oauth::start))
        .routes(routes!(oauth::callback))
        .routes(routes!(catalog::discovery::list_connectors))
        .routes(routes!(catalog::discovery::list_destinations))
        .routes(routes!(
            catalog::targets::create_target,
            catalog::targets::list_targets
        ))
        .routes(routes!(
            catalog::targets::get_target,
            catalog::targets::update_target,
            catalog::targets::delete_target
        ))
        .routes(routes!(catalog::targets::check_target))
        .routes(routes!(
            catalog::profiles::create_profile,
            catalog::profiles::list_profiles
        ))
        .routes(routes!(
            catalog::profiles::get_profile,
            catalog::profiles::update_profile,
            catalog::profiles::delete_profile
        ))
        .routes(routes!(catalog::profiles::pause_profile))
        .routes(routes!(catalog::profiles::resume_profile))
        .routes(routes!(catalog::profiles::check_profile))
        .split_for_parts()
}

pub fn router(state: AppState) -> Router {
    let (api, mut doc) = v1();
    doc.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    let doc = std::sync::Arc::new(doc);
    let api = api
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
