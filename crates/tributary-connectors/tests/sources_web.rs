//! The web source against a fake site on 127.0.0.1: robots.txt with a Disallow and a
//! Crawl-delay, a sitemap index, pages with every kind of link, a 404, a PDF, a redirect,
//! a 401 and a page that answers 429 once.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tributary_connectors::source::web::{WebConfig, WebMode};
use tributary_connectors::source::{
    Batch, BuildContext, Connectors, Mode, Source, SourceError, Start,
};

#[derive(Clone)]
struct Site {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn spawn_site() -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let site = Site {
        base: format!("http://{addr}"),
        hits: Arc::default(),
    };
    let app = Router::new().fallback(serve).with_state(site.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    site
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    ))
    .into_response()
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

async fn serve(State(site): State<Site>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    let hits = {
        let mut hits = site.hits.lock().unwrap();
        let count = hits.entry(path.clone()).or_insert(0);
        *count += 1;
        *count
    };
    let base = &site.base;
    match path.as_str() {
        "/robots.txt" => "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.05\n".into_response(),
        "/sitemap.xml" => xml(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <sitemap><loc>{base}/sitemap-pages.xml</loc></sitemap>
              <sitemap><loc>{base}/sitemap-gone.xml</loc></sitemap>
            </sitemapindex>"#
        )),
        "/sitemap-pages.xml" => xml(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url><loc>{base}/</loc><lastmod>2024-01-01</lastmod></url>
              <url><loc>{base}/docs/a</loc><lastmod>2024-01-01</lastmod></url>
              <url><loc>{base}/docs/a#intro</loc><lastmod>2024-01-01</lastmod></url>
              <url><loc>{base}/docs/b</loc><lastmod>2024-03-01T12:00:00+00:00</lastmod></url>
              <url><loc>{base}/missing</loc><lastmod>2024-01-01</lastmod></url>
              <url><loc>{base}/file.pdf</loc><lastmod>2024-01-01</lastmod></url>
              <url><loc>{base}/private/secret</loc><lastmod>2024-05-01</lastmod></url>
              <url><loc>https://elsewhere.example/x</loc><lastmod>2024-05-01</lastmod></url>
            </urlset>"#
        )),
        "/" => page(
            "Home",
            &format!(
                r##"<h1>Home</h1><p>Welcome.</p>
                <a href="docs/a">relative</a> <a href="/docs/b#section">fragment</a>
                <a href="{base}/docs/c">absolute</a> <a href="https://elsewhere.example/page">off-site</a>
                <a href="/private/secret">disallowed</a> <a href="/missing">missing</a>
                <a href="/file.pdf">pdf</a> <a href="mailto:team@example.com">mail</a>
                <a href="/old">old</a> <a href="#top">top</a>"##
            ),
        ),
        "/docs/a" => page(
            "A",
            r#"<p>Alpha page.</p><a href="../">up</a> <a href="b">b</a> <a href="/old">old</a>"#,
        ),
        "/docs/b" => page("B", r#"<p>Beta page.</p><a href="/docs/deep/1">deeper</a>"#),
        "/docs/deep/1" => page("Deep 1", r#"<p>One.</p><a href="/docs/deep/2">deeper</a>"#),
        "/docs/deep/2" => page("Deep 2", "<p>Two.</p>"),
        "/docs/c" if hits == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response(),
        "/docs/c" => page("C", "<p>Gamma page.</p>"),
        "/old" => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, "/docs/a")],
        )
            .into_response(),
        "/file.pdf" => ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.4").into_response(),
        "/private/secret" => page("Secret", "<p>Never to be fetched.</p>"),
        "/locked" => StatusCode::UNAUTHORIZED.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn config(site: &Site, mode: WebMode) -> WebConfig {
    let mut config = WebConfig::new(site.url("/"), mode);
    config.politeness_delay_ms = 0;
    config.batch_size = 3;
    config.max_depth = 2;
    config
}

fn build(
    config: &WebConfig,
    mode: Mode,
    checkpoint: Option<Value>,
    resuming: bool,
) -> Box<dyn Source> {
    let connectors = Connectors::builtin();
    connectors
        .get("web")
        .expect("web is registered")
        .build(BuildContext {
            config: serde_json::to_value(config).unwrap(),
            credential: None,
            start: Start {
                mode,
                checkpoint,
                resuming,
                now: Utc::now(),
            },
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            work_dir: std::env::temp_dir(),
        })
        .unwrap()
}

/// Every batch of a run; rate limits are retried at once and counted.
async fn drain(source: &mut dyn Source) -> (Vec<Batch>, usize) {
    let mut batches = Vec::new();
    let mut rate_limits = 0;
    loop {
        match source.next_batch().await {
            Ok(Some(batch)) => batches.push(batch),
            Ok(None) => return (batches, rate_limits),
            Err(SourceError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_secs(1));
                rate_limits += 1;
                assert!(rate_limits < 5, "the rate limit does not go away");
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

fn ids(batches: &[Batch]) -> BTreeSet<String> {
    batches
        .iter()
        .flat_map(|b| b.documents.iter().map(|d| d.id.clone()))
        .collect()
}

fn failures(batches: &[Batch]) -> BTreeSet<String> {
    batches
        .iter()
        .flat_map(|b| b.failures.iter().map(|f| f.id.clone()))
        .collect()
}

fn warnings(batches: &[Batch]) -> Vec<String> {
    batches.iter().flat_map(|b| b.warnings.clone()).collect()
}

fn set(site: &Site, paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| site.url(p)).collect()
}

#[tokio::test]
async fn a_crawl_follows_same_site_links_within_robots_and_depth() {
    let site = spawn_site().await;
    let (batches, rate_limits) = drain(&mut *build(
        &config(&site, WebMode::Crawl),
        Mode::Full,
        None,
        false,
    ))
    .await;

    assert_eq!(
        ids(&batches),
        set(
            &site,
            &["/", "/docs/a", "/docs/b", "/docs/c", "/docs/deep/1"]
        )
    );
    assert_eq!(failures(&batches), set(&site, &["/missing"]));
    assert_eq!(
        rate_limits, 1,
        "the 429 reached the caller once, then the page came"
    );
    assert_eq!(site.hits("/docs/c"), 2);

    assert_eq!(site.hits("/private/secret"), 0, "robots.txt disallows it");
    assert_eq!(site.hits("/docs/deep/2"), 0, "beyond max_depth");
    assert_eq!(site.hits("/robots.txt"), 1);
    assert_eq!(site.hits("/docs/a"), 2, "once as a link, once through /old");
    let warnings = warnings(&batches);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("/file.pdf is application/pdf")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("disallows") && w.contains("/private/secret")),
        "{warnings:?}"
    );

    let docs: Vec<_> = batches.iter().flat_map(|b| &b.documents).collect();
    let home = docs.iter().find(|d| d.id == site.url("/")).unwrap();
    assert_eq!(home.title.as_deref(), Some("Home"));
    assert!(
        home.sections[0].text.starts_with("Home\n\nWelcome."),
        "{}",
        home.sections[0].text
    );
    assert_eq!(
        home.sections[0].link.as_deref(),
        Some(site.url("/").as_str())
    );
    assert_eq!(docs.len(), 5, "no page twice");
    assert_eq!(batches.last().unwrap().progress.done, 6);
}

#[tokio::test]
async fn a_resumed_crawl_goes_on_from_its_queue() {
    let site = spawn_site().await;
    let config = config(&site, WebMode::Crawl);
    let mut source = build(&config, Mode::Full, None, false);
    let first = source.next_batch().await.unwrap().unwrap();
    drop(source);
    assert_eq!(
        ids(std::slice::from_ref(&first)),
        set(&site, &["/", "/docs/a", "/docs/b"])
    );
    assert_eq!(first.checkpoint["mode"], "crawl");

    let (rest, _) = drain(&mut *build(
        &config,
        Mode::Full,
        Some(first.checkpoint.clone()),
        true,
    ))
    .await;
    assert_eq!(ids(&rest), set(&site, &["/docs/c", "/docs/deep/1"]));
    assert_eq!(failures(&rest), set(&site, &["/missing"]));
    assert_eq!(site.hits("/"), 1, "nothing fetched twice");
    assert_eq!(site.hits("/docs/b"), 1);
}

#[tokio::test]
async fn path_filters_bound_the_crawl() {
    let site = spawn_site().await;
    let mut config = config(&site, WebMode::Crawl);
    config.exclude_paths = vec!["/docs/b".into(), "/docs/c".into()];
    let (batches, _) = drain(&mut *build(&config, Mode::Full, None, false)).await;
    assert_eq!(ids(&batches), set(&site, &["/", "/docs/a"]));
    assert_eq!(
        site.hits("/docs/b") + site.hits("/docs/c") + site.hits("/docs/deep/1"),
        0
    );
}

#[tokio::test]
async fn a_sitemap_run_reads_listed_pages_and_an_incremental_one_only_newer_ones() {
    let site = spawn_site().await;
    let config = config(&site, WebMode::Sitemap);
    let (batches, _) = drain(&mut *build(&config, Mode::Full, None, false)).await;

    assert_eq!(ids(&batches), set(&site, &["/", "/docs/a", "/docs/b"]));
    assert_eq!(failures(&batches), set(&site, &["/missing"]));
    assert_eq!(batches[0].progress.total, Some(5));
    assert_eq!(site.hits("/private/secret"), 0);
    assert_eq!(
        site.hits("/docs/a"),
        1,
        "the fragment variant is the same page"
    );
    let b = batches
        .iter()
        .flat_map(|b| &b.documents)
        .find(|d| d.id == site.url("/docs/b"))
        .unwrap();
    assert_eq!(
        b.updated_at,
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).single()
    );
    let warnings = warnings(&batches);
    for expected in [
        "sitemap-gone.xml is skipped",
        "1 sitemap URL(s) are on another site",
        "1 sitemap URL(s) are disallowed",
        "application/pdf",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(expected)),
            "{expected}: {warnings:?}"
        );
    }

    let checkpoint = batches.last().unwrap().checkpoint.clone();
    assert_eq!(checkpoint["max_lastmod"], json!("2024-03-01T12:00:00Z"));
    let (again, _) = drain(&mut *build(
        &config,
        Mode::Incremental,
        Some(checkpoint),
        false,
    ))
    .await;
    assert_eq!(ids(&again), set(&site, &["/docs/b"]));
    assert_eq!(again.last().unwrap().progress.total, Some(1));
}

#[tokio::test]
async fn list_ids_reads_the_sitemap_without_fetching_pages() {
    let site = spawn_site().await;
    let mut source = build(&config(&site, WebMode::Sitemap), Mode::Full, None, false);
    let listed = source.list_ids().await.unwrap();
    assert_eq!(
        listed,
        ["/", "/docs/a", "/docs/b", "/file.pdf", "/missing"].map(|p| site.url(p))
    );
    assert_eq!(site.hits("/"), 0);

    let check = source.check().await.unwrap();
    assert!(check.contains("lists 5 pages"), "{check}");
    assert!(
        check.contains("50 ms apart"),
        "Crawl-delay raises the delay: {check}"
    );
}

#[tokio::test]
async fn list_ids_in_crawl_mode_crawls() {
    let site = spawn_site().await;
    let mut source = build(&config(&site, WebMode::Crawl), Mode::Full, None, false);
    let listed = loop {
        match source.list_ids().await {
            Ok(ids) => break ids,
            Err(SourceError::RateLimited { .. }) => continue,
            Err(e) => panic!("unexpected error: {e}"),
        }
    };
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        set(
            &site,
            &["/", "/docs/a", "/docs/b", "/docs/c", "/docs/deep/1"]
        )
    );
    assert_eq!(
        site.hits("/"),
        1,
        "the crawl went on after the 429 instead of starting over"
    );
}

#[tokio::test]
async fn a_refused_start_url_is_an_auth_error_and_a_missing_sitemap_a_config_error() {
    let site = spawn_site().await;
    let mut locked = config(&site, WebMode::Crawl);
    locked.start_url = site.url("/locked");
    let err = build(&locked, Mode::Full, None, false)
        .next_batch()
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("401"), "{err}");

    let mut no_sitemap = config(&site, WebMode::Sitemap);
    no_sitemap.sitemap_url = Some(site.url("/nope.xml"));
    let err = build(&no_sitemap, Mode::Full, None, false)
        .next_batch()
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Config { .. }), "{err}");
    assert!(err.to_string().contains("404"), "{err}");

    let mut disallowed = config(&site, WebMode::Crawl);
    disallowed.start_url = site.url("/private/start");
    let err = build(&disallowed, Mode::Full, None, false)
        .next_batch()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disallows the start URL"), "{err}");
}
