//! The alerts page: the alerts the caller may see
//! ([`crate::core::Scheduler::may_see_alert`]), newest first, each with
//! its flash, the job it names (a link only for a reader of its case),
//! what matched and who handled it; forms to mark it seen or dismiss it
//! with a reason. New rows arrive live: `/assets/app.js` reloads the table
//! (`/alerts?fragment=1`) when `/alerts/events` announces a change.

use super::super::i18n::Lang;
use super::links::indicator_label;
use super::{layout_signed, url_part};
use crate::auth::Perm;
use crate::core::Caller;
use maud::{Markup, html};
use trawl_intel::flash::{AlertRecord, AlertState, AlertWhat, Tlp};
use trawl_intel::{Indicator, Kind};

/// Most alerts shown on the page (the newest).
pub const SHOWN: usize = 1000;

/// The filters of `/alerts` (query string).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct AlertsQuery {
    pub case: String,
    /// `new`, `seen`, `dismissed` or empty (all).
    pub state: String,
    /// `1`: the table alone, for the live reload.
    pub fragment: String,
}

impl AlertsQuery {
    /// The query string of the table alone with these filters.
    pub fn fragment_url(&self) -> String {
        let mut u = String::from("/alerts?fragment=1");
        for (k, v) in [("case", &self.case), ("state", &self.state)] {
            if !v.is_empty() {
                u.push('&');
                u.push_str(k);
                u.push('=');
                u.push_str(&url_part(v));
            }
        }
        u
    }
}

/// A TLP level as a badge.
pub fn tlp_badge(t: Tlp) -> Markup {
    let class = t.name().replace('+', "-");
    html! { span class={ "tlp tlp-" (class) } { (t.label()) } }
}

fn what(l: Lang, w: &AlertWhat) -> Markup {
    match w {
        AlertWhat::Indicator {
            indicator_kind,
            value,
        } => {
            let (k, v) = match Kind::parse(indicator_kind) {
                Some(kind) => indicator_label(
                    l,
                    &Indicator {
                        kind,
                        value: value.clone(),
                    },
                ),
                None => (indicator_kind.clone(), value.clone()),
            };
            html! { (k) ": " span class="mono" { (v) } }
        }
        AlertWhat::Rule { rules, hits } => html! {
            (l.word("ioc", "yara_rule")) ": " span class="mono" { (rules.join(", ")) }
            " — " (l.int(*hits)) " " (l.t("matches"))
        },
    }
}

/// The table of alerts (or the sentence saying there are none): the part
/// reloaded live.
pub fn alerts_table(l: Lang, c: &Caller, csrf: &str, alerts: &[AlertRecord]) -> Markup {
    let now = trawl_store::now_ms();
    html! {
        @if alerts.is_empty() {
            p id="no-alerts" { (l.t("no_alerts")) }
        } @else {
            table id="alerts" {
                thead { tr {
                    th { (l.t("alert")) }
                    th { (l.t("raised")) }
                    th { (l.t("case")) }
                    th { (l.t("flash")) }
                    th { (l.t("job")) }
                    th { (l.t("what")) }
                    th { (l.t("state")) }
                    th { (l.t("handled")) }
                    th {}
                } }
                tbody {
                    @for a in alerts {
                        @let st = a.state.name();
                        tr id={ "alert-" (a.id) } data-alert=(a.id) data-state=(st) data-case=(a.case) {
                            td class="mono" { (a.id) }
                            td { (l.ago(a.created_ms, now)) }
                            td { (a.case) }
                            td { span class="mono" { (a.flash) } " " (a.flash_title) " " (tlp_badge(a.tlp)) }
                            td {
                                @if c.may(Perm::Read, &a.case) {
                                    a class="job" href={ "/jobs/" (url_part(&a.job)) } { (a.job) }
                                } @else {
                                    span class="mono" { (a.job) }
                                }
                            }
                            td { (what(l, &a.what)) }
                            td class={ "astate-" (st) } { (l.word("astate", st)) }
                            td {
                                @match &a.state {
                                    AlertState::New => { "-" }
                                    AlertState::Seen { by, ms } => { (by) ", " (l.datetime(*ms)) }
                                    AlertState::Dismissed { by, ms, reason } => {
                                        (by) ", " (l.datetime(*ms)) br; span class="reason" { (reason) }
                                    }
                                }
                            }
                            td class="actions" {
                                @if st == "new" {
                                    form method="post" action={ "/alerts/" (url_part(&a.id)) "/seen" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button class="mark-seen" { (l.t("mark_seen")) }
                                    }
                                }
                                @if st != "dismissed" {
                                    form method="post" action={ "/alerts/" (url_part(&a.id)) "/dismiss" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="text" name="reason" class="reason" required
                                            maxlength="4096" placeholder=(l.t("dismiss_reason"))
                                            aria-label=(l.t("dismiss_reason"));
                                        " "
                                        button class="dismiss" { (l.t("dismiss")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The alerts page, with an error from a form if any.
pub fn alerts(
    l: Lang,
    c: &Caller,
    csrf: &str,
    q: &AlertsQuery,
    list: Option<&[AlertRecord]>,
    error: Option<&str>,
) -> Markup {
    let mut states = vec![(String::new(), l.t("all").to_string())];
    for s in ["new", "seen", "dismissed"] {
        states.push((s.into(), l.word("astate", s)));
    }
    let body = html! {
        h1 { (l.t("alerts")) }
        @if let Some(e) = error {
            p class="err" id="alert-error" { (e) }
        }
        @match list {
            None => { p class="note" id="intel-off" { (l.t("intel_off")) } }
            Some(list) => {
                form class="filters" method="get" action="/alerts" id="alert-filters" {
                    label { (l.t("case")) " " input type="text" name="case" id="f-case" value=(q.case) maxlength="128"; }
                    label { (l.t("state")) " "
                        select name="state" id="f-state" {
                            @for (v, label) in &states {
                                option value=(v) selected[*v == q.state] { (label) }
                            }
                        }
                    }
                    button id="f-apply" { (l.t("apply")) }
                }
                p class="note" { (l.t("alerts_live")) }
                div id="alerts-live" data-fragment=(q.fragment_url()) {
                    (alerts_table(l, c, csrf, list))
                }
            }
        }
    };
    layout_signed(l, c, csrf, l.t("alerts"), body)
}
