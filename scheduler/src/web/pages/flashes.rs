//! The flashes page (analysts and admins): each alert flash with its TLP,
//! state, indicators, rule set and retrohunt progress.

use super::super::i18n::Lang;
use super::alerts::tlp_badge;
use super::layout_signed;
use crate::core::Caller;
use crate::intel::flash::RetroProgress;
use maud::{Markup, html};
use trawl_intel::flash::FlashRecord;

pub fn flashes(
    l: Lang,
    c: &Caller,
    csrf: &str,
    list: Option<&[(FlashRecord, RetroProgress)]>,
) -> Markup {
    let now = trawl_store::now_ms();
    let body = html! {
        h1 { (l.t("flashes")) }
        @match list {
            None => { p class="note" id="intel-off" { (l.t("intel_off")) } }
            Some([]) => { p id="no-flashes" { (l.t("no_flashes")) } }
            Some(list) => {
                table id="flashes" {
                    thead {
                        tr {
                            th rowspan="2" { (l.t("flash")) }
                            th rowspan="2" { "TLP" }
                            th rowspan="2" { (l.t("state")) }
                            th rowspan="2" { (l.t("publisher")) }
                            th rowspan="2" { (l.t("published")) }
                            th rowspan="2" { (l.t("indicators")) }
                            th rowspan="2" { (l.t("rule_set")) }
                            th colspan="6" { (l.t("retrohunt")) }
                        }
                        tr {
                            th class="num" { (l.t("jobs")) }
                            th class="num" { (l.t("retro_done")) }
                            th class="num" { (l.t("retro_running")) }
                            th class="num" { (l.t("retro_failed")) }
                            th class="num" { (l.t("hits")) }
                            th class="num" { (l.t("bytes_scanned")) }
                        }
                    }
                    tbody {
                        @for (f, p) in list {
                            @let st = if f.active() { "active" } else { "withdrawn" };
                            tr id={ "flash-" (f.id) } data-flash=(f.id) data-state=(st) {
                                td { span class="mono" { (f.id) } " " b { (f.title) }
                                    @if !f.description.is_empty() { br; span class="note" { (f.description) } }
                                }
                                td { (tlp_badge(f.tlp)) }
                                td { (l.word("fstate", st)) }
                                td { (f.publisher) }
                                td { (l.ago(f.published_ms, now)) }
                                td class="num" { (l.int(f.indicators.len() as u64)) }
                                td class="mono" { (f.ruleset.as_deref().unwrap_or("-")) }
                                td class="num retro-jobs" { (l.int(p.jobs.into())) }
                                td class="num retro-done" { (l.int(p.done.into())) }
                                td class="num" { (l.int(p.running.into())) }
                                td class="num" { (l.int(p.failed.into())) }
                                td class="num retro-hits" { (l.int(p.hits)) }
                                td class="num" { (l.bytes(p.bytes)) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout_signed(l, c, csrf, l.t("flashes"), body)
}
