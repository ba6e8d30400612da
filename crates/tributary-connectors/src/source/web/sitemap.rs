//! Sitemap files (sitemaps.org): a `<urlset>` of pages or a `<sitemapindex>` of sitemaps.

use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sitemap {
    /// Locations of further sitemap files.
    Index(Vec<String>),
    /// Page locations, each with its `<lastmod>` when present and readable.
    Urls(Vec<(String, Option<DateTime<Utc>>)>),
}

/// Parses a sitemap; the error says what is wrong, for a message naming the file.
pub(crate) fn parse(xml: &str) -> Result<Sitemap, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("it is not valid XML ({e})"))?;
    let root = doc.root_element();
    match root.tag_name().name() {
        "sitemapindex" => Ok(Sitemap::Index(
            entries(root, "sitemap")
                .filter_map(|s| child_text(s, "loc").map(str::to_owned))
                .collect(),
        )),
        "urlset" => Ok(Sitemap::Urls(
            entries(root, "url")
                .filter_map(|u| {
                    let loc = child_text(u, "loc")?;
                    Some((loc.to_owned(), child_text(u, "lastmod").and_then(lastmod)))
                })
                .collect(),
        )),
        other => Err(format!(
            "its root element is <{other}>, not <urlset> or <sitemapindex>"
        )),
    }
}

fn entries<'a, 'input>(
    root: roxmltree::Node<'a, 'input>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'input>> {
    root.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// W3C datetime as sitemaps use it: a date, or a date and time with a zone.
pub(crate) fn lastmod(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%:z") {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_str(&text.replace('Z', "+00:00"), "%Y-%m-%dT%H:%M%:z") {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn reads_a_urlset_with_lastmods() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url><loc> https://a.example/x </loc><lastmod>2024-03-01</lastmod></url>
              <url><loc>https://a.example/y</loc><lastmod>2024-03-02T10:30:00+02:00</lastmod></url>
              <url><loc>https://a.example/z</loc><lastmod>soon</lastmod></url>
              <url><lastmod>2024-03-02</lastmod></url>
            </urlset>"#;
        let Sitemap::Urls(urls) = parse(xml).unwrap() else {
            panic!("not a urlset");
        };
        assert_eq!(
            urls,
            [
                (
                    "https://a.example/x".to_owned(),
                    Some(Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap())
                ),
                (
                    "https://a.example/y".to_owned(),
                    Some(Utc.with_ymd_and_hms(2024, 3, 2, 8, 30, 0).unwrap())
                ),
                ("https://a.example/z".to_owned(), None),
            ]
        );
    }

    #[test]
    fn reads_an_index_and_rejects_other_documents() {
        let xml =
            "<sitemapindex><sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>";
        assert_eq!(
            parse(xml).unwrap(),
            Sitemap::Index(vec!["https://a.example/s1.xml".into()])
        );
        assert!(parse("<html></html>").unwrap_err().contains("<html>"));
        assert!(parse("not xml").unwrap_err().contains("not valid XML"));
    }

    #[test]
    fn lastmod_accepts_minutes_with_z() {
        assert_eq!(
            lastmod("2024-01-02T03:04Z"),
            Some(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 0).unwrap())
        );
    }
}
