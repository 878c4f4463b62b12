//! The links page: the other cases sharing indicators with a case (the
//! whole lab for an admin), as a graph and a table. What it shows comes
//! from [`crate::core::Scheduler::links`] only, which audits every case it
//! reveals: the other case's id, whom to contact and the shared values the
//! asking case holds — never the other case's jobs (but to admins).

use super::super::charts::{self, Node};
use super::super::i18n::Lang;
use super::{layout_signed, url_part};
use crate::core::Caller;
use crate::intel::CaseLink;
use maud::{Markup, html};
use std::collections::BTreeMap;
use trawl_intel::{Indicator, Kind};

/// Most indicators drawn in the graph; the table lists them all.
pub const GRAPH_MAX: usize = 200;

/// The query of `/links`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct LinksQuery {
    pub case: String,
}

/// An indicator as the pages show it: a card number's keyed hash only
/// by its first hex digits.
pub fn indicator_label(l: Lang, i: &Indicator) -> (String, String) {
    let kind = l.word("ioc", i.kind.name());
    let value = if i.kind == Kind::CcnHmac {
        let p: String = i.value.chars().take(8).collect();
        format!("{p}…")
    } else {
        i.value.clone()
    };
    (kind, value)
}

/// What the page shows.
pub enum LinksView<'a> {
    /// The caller reads no case: the cases to choose from (maybe none).
    Choose(&'a [String]),
    /// The links of `case` (empty: the whole lab, for an admin).
    Links {
        case: &'a str,
        links: &'a [(String, CaseLink)],
    },
    /// The index is off.
    Off,
}

/// The graph of the links: asking cases left, shared indicators in the
/// middle, other cases right; an edge per sharing.
fn graph(l: Lang, links: &[(String, CaseLink)]) -> (Markup, bool) {
    let mut left: Vec<String> = Vec::new();
    let mut right: Vec<String> = Vec::new();
    let mut mid: Vec<Indicator> = Vec::new();
    let mut mid_at: BTreeMap<&Indicator, usize> = BTreeMap::new();
    let mut edges = std::collections::BTreeSet::new();
    let mut capped = false;
    let pos = |v: &mut Vec<String>, s: &str| match v.iter().position(|x| x == s) {
        Some(p) => p,
        None => {
            v.push(s.to_string());
            v.len() - 1
        }
    };
    for (asking, link) in links {
        for (ind, _) in &link.shared {
            let m = match mid_at.get(ind) {
                Some(m) => *m,
                None if mid.len() < GRAPH_MAX => {
                    mid.push(ind.clone());
                    mid_at.insert(ind, mid.len() - 1);
                    mid.len() - 1
                }
                None => {
                    capped = true;
                    continue;
                }
            };
            let a = pos(&mut left, asking);
            let b = pos(&mut right, &link.other_case);
            edges.insert((0, a, m));
            edges.insert((1, m, b));
        }
    }
    let case_node = |c: &String, class| Node {
        key: c.clone(),
        label: format!("{} {c}", l.t("case")),
        class,
    };
    let cols = [
        left.iter().map(|c| case_node(c, "case")).collect(),
        mid.iter()
            .map(|i| {
                let (k, v) = indicator_label(l, i);
                Node {
                    key: [i.kind.name(), ":", &v].concat(),
                    label: format!("{k}: {v}"),
                    class: "indicator",
                }
            })
            .collect(),
        right.iter().map(|c| case_node(c, "other")).collect(),
    ];
    let desc = format!(
        "{}: {}. {}: {}.",
        l.t("shared_indicators"),
        mid.len(),
        l.t("other_cases"),
        right.join(", ")
    );
    let edges: Vec<_> = edges.into_iter().collect();
    let svg = charts::columns(
        "links-graph",
        l.t("links_graph"),
        &desc,
        [l.t("case"), l.t("shared_indicators"), l.t("other_case")],
        &cols,
        &edges,
    );
    (svg, capped)
}

pub fn links(l: Lang, c: &Caller, csrf: &str, view: &LinksView) -> Markup {
    let admin = c.all_cases();
    let body = match view {
        LinksView::Off => html! {
            h1 { (l.t("links_title")) }
            p class="note" id="intel-off" { (l.t("intel_off")) }
        },
        LinksView::Choose(cases) => html! {
            h1 { (l.t("links_title")) }
            @if cases.is_empty() {
                p id="no-case" { (l.t("no_case_links")) }
            } @else {
                p { (l.t("pick_case")) }
                ul id="case-choice" {
                    @for k in cases.iter() {
                        li { a href={ "/links?case=" (url_part(k)) } { (l.t("case")) " " (k) } }
                    }
                }
            }
        },
        LinksView::Links { case, links } => {
            let now = trawl_store::now_ms();
            let whole = case.is_empty();
            let (svg, capped) = graph(l, links);
            html! {
                @if whole {
                    h1 { (l.t("links_lab")) }
                } @else {
                    h1 { (l.t("links_title")) " — " (l.t("case")) " " (case) }
                }
                p class="note" { (l.t("links_note")) }
                @if links.is_empty() {
                    p id="no-links" { (l.t("no_links")) }
                } @else {
                    (svg)
                    @if capped {
                        p class="note" id="links-capped" { (l.t("links_capped")) }
                    }
                    table id="links" {
                        caption { (l.t("chart_table")) }
                        thead { tr {
                            @if whole { th { (l.t("case")) } }
                            th { (l.t("other_case")) }
                            th { (l.t("contacts")) }
                            th { (l.t("indicator")) }
                            th { (l.t("value")) }
                            th { (l.t("first_linked")) }
                            @if admin {
                                th { (l.t("own_jobs")) }
                                th { (l.t("other_jobs")) }
                            }
                        } }
                        tbody {
                            @for (asking, link) in links.iter() {
                                @for (ind, first) in &link.shared {
                                    @let (k, v) = indicator_label(l, ind);
                                    tr data-other=(link.other_case) data-kind=(ind.kind.name()) {
                                        @if whole { td { (asking) } }
                                        td class="other" { (link.other_case) }
                                        td { (link.contacts.join(", ")) }
                                        td { (k) }
                                        td class="mono" { (v) }
                                        td { (l.ago(*first, now)) }
                                        @if admin {
                                            td { (job_links(&link.own_jobs)) }
                                            td { (job_links(&link.other_jobs)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout_signed(l, c, csrf, l.t("links"), body)
}

fn job_links(jobs: &[String]) -> Markup {
    html! {
        @for (i, j) in jobs.iter().enumerate() {
            @if i > 0 { ", " }
            a href={ "/jobs/" (url_part(j)) } { (j) }
        }
    }
}
