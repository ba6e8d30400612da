//! HTML to text for the sources that read pages (filesystem, web): one parse gives the
//! readable text, the title, the links and the page's robots directives.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// What a source needs from one HTML page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Page {
    /// `<title>`, else the first `<h1>`, whitespace collapsed.
    pub(crate) title: Option<String>,
    /// The visible text: blocks separated by blank lines, whitespace collapsed except in
    /// `<pre>`; scripts, styles and the head left out.
    pub(crate) text: String,
    /// `href`s of `<a>` and `<area>`, as written (relative ones unresolved).
    pub(crate) links: Vec<String>,
    /// `<base href>`, which relative links resolve against when present.
    pub(crate) base: Option<String>,
    /// `<meta name="robots" content="noindex">`: the page asks not to be indexed.
    pub(crate) noindex: bool,
    /// `<meta name="robots" content="nofollow">`: the page asks that its links be ignored.
    pub(crate) nofollow: bool,
}

/// Elements whose content is never text a reader sees.
const HIDDEN: &[&str] = &[
    "head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
    "select", "button",
];

/// Elements that start and end a paragraph.
const PARAGRAPHS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "table",
    "ul",
    "ol",
    "dl",
    "figure",
    "hr",
    "address",
    "details",
    "fieldset",
    "form",
];

/// Elements that start and end a line.
const LINES: &[&str] = &[
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "nav",
    "aside",
    "tr",
    "dt",
    "dd",
    "caption",
    "figcaption",
    "summary",
    "legend",
    "body",
    "html",
    "center",
    "option",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    Space,
    Line,
    Paragraph,
}

#[derive(Default)]
struct Text {
    out: String,
    pending: Option<Break>,
}

impl Text {
    fn want(&mut self, brk: Break) {
        self.pending = Some(self.pending.map_or(brk, |p| p.max(brk)));
    }

    fn push(&mut self, s: &str) {
        if let Some(brk) = self.pending.take()
            && !self.out.is_empty()
        {
            self.out.push_str(match brk {
                Break::Space => " ",
                Break::Line => "\n",
                Break::Paragraph => "\n\n",
            });
        }
        self.out.push_str(s);
    }

    fn push_collapsed(&mut self, raw: &str) {
        if raw.starts_with(char::is_whitespace) {
            self.want(Break::Space);
        }
        for (i, word) in raw.split_whitespace().enumerate() {
            if i > 0 {
                self.want(Break::Space);
            }
            self.push(word);
        }
        if raw.ends_with(char::is_whitespace) {
            self.want(Break::Space);
        }
    }
}

/// Parses a page. Never fails: broken HTML gives whatever text the parser recovers.
pub(crate) fn parse(source: &str) -> Page {
    let html = Html::parse_document(source);
    let mut page = Page::default();
    let mut text = Text::default();
    let mut hidden = 0usize;
    let mut pre = 0usize;
    let mut title: Option<String> = None;
    let mut in_title = false;
    let mut h1: Option<String> = None;
    let mut in_h1 = false;

    for edge in html.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    match name {
                        "title" if title.is_none() => in_title = true,
                        "h1" if h1.is_none() && hidden == 0 => in_h1 = true,
                        "a" | "area" => {
                            if let Some(href) = el.attr("href") {
                                page.links.push(href.trim().to_owned());
                            }
                        }
                        "base" if page.base.is_none() => {
                            page.base = el.attr("href").map(|h| h.trim().to_owned());
                        }
                        "meta" => {
                            let robots = el
                                .attr("name")
                                .is_some_and(|n| n.eq_ignore_ascii_case("robots"));
                            if robots && let Some(content) = el.attr("content") {
                                for directive in content.split(',') {
                                    match directive.trim().to_ascii_lowercase().as_str() {
                                        "noindex" => page.noindex = true,
                                        "nofollow" => page.nofollow = true,
                                        "none" => {
                                            page.noindex = true;
                                            page.nofollow = true;
                                        }
                                        _ => {}
                                    }
                                }
                            }
                        }
                        "br" => text.want(Break::Line),
                        "li" => {
                            text.want(Break::Line);
                            if hidden == 0 {
                                text.push("-");
                                text.want(Break::Space);
                            }
                        }
                        "td" | "th" => text.want(Break::Space),
                        _ => {}
                    }
                    if HIDDEN.contains(&name) {
                        hidden += 1;
                    }
                    if name == "pre" {
                        pre += 1;
                    }
                    if PARAGRAPHS.contains(&name) {
                        text.want(Break::Paragraph);
                    } else if LINES.contains(&name) {
                        text.want(Break::Line);
                    }
                }
                Node::Text(t) => {
                    if in_title {
                        title.get_or_insert_with(String::new).push_str(t);
                    }
                    if in_h1 {
                        h1.get_or_insert_with(String::new).push_str(t);
                    }
                    if hidden > 0 {
                        continue;
                    }
                    if pre > 0 {
                        text.push(t);
                    } else {
                        text.push_collapsed(t);
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    let name = el.name();
                    match name {
                        "title" => in_title = false,
                        "h1" => in_h1 = false,
                        _ => {}
                    }
                    if HIDDEN.contains(&name) {
                        hidden = hidden.saturating_sub(1);
                    }
                    if name == "pre" {
                        pre = pre.saturating_sub(1);
                    }
                    if PARAGRAPHS.contains(&name) {
                        text.want(Break::Paragraph);
                    } else if LINES.contains(&name) || name == "li" {
                        text.want(Break::Line);
                    }
                }
            }
        }
    }

    page.title = title
        .or(h1)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty());
    page.text = text.out;
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_visible_text_in_blocks() {
        let page = parse(
            r#"<!doctype html><html><head><title> The  Title </title>
            <style>body { color: red }</style><script>var x = "hidden";</script></head>
            <body><h1>Heading</h1><p>First   paragraph with <b>bold</b>
            text.</p><ul><li>one</li><li>two</li></ul><pre>  keep
  spaces</pre><p>a&amp;b&nbsp;c<br>next line</p></body></html>"#,
        );
        assert_eq!(page.title.as_deref(), Some("The Title"));
        assert_eq!(
            page.text,
            "Heading\n\nFirst paragraph with bold text.\n\n- one\n- two\n\n  keep\n  spaces\n\na&b c\nnext line"
        );
    }

    #[test]
    fn collects_links_base_and_robots_directives() {
        let page = parse(
            r#"<html><head><base href="/docs/"><meta name="ROBOTS" content="noindex, nofollow"></head>
            <body><a href=" a.html ">A</a><a name="x">no href</a><map><area href="/b"></map></body></html>"#,
        );
        assert_eq!(page.links, ["a.html", "/b"]);
        assert_eq!(page.base.as_deref(), Some("/docs/"));
        assert!(page.noindex && page.nofollow);
    }

    #[test]
    fn falls_back_to_the_first_h1_for_the_title() {
        let page = parse("<body><h1>Only <i>heading</i></h1><h1>Second</h1></body>");
        assert_eq!(page.title.as_deref(), Some("Only heading"));
        assert_eq!(parse("<p>no title</p>").title, None);
    }
}
