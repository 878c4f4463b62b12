//! The page frame, the sign-in page and the refusal pages.

use super::super::i18n::Lang;
use crate::auth::Role;
use crate::core::Caller;
use maud::{DOCTYPE, Markup, html};

/// The page frame: navigation, the signed-in user, sign out.
pub fn layout(l: Lang, who: Option<&Caller>, title: &str, body: Markup) -> Markup {
    frame(l, who, "", title, body)
}

/// The page frame for a signed-in user (with the sign-out button).
pub fn layout_signed(l: Lang, who: &Caller, csrf: &str, title: &str, body: Markup) -> Markup {
    frame(l, Some(who), csrf, title, body)
}

fn frame(l: Lang, who: Option<&Caller>, csrf: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                title { (title) " — trawl" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header {
                    span { "trawl" }
                    @if let Some(c) = who {
                        a href="/cases" { (l.t("cases")) }
                        a href="/pool" { (l.t("capacity")) }
                        a href="/indicators" { (l.t("indicators")) }
                        a href="/links" id="nav-links" { (l.t("links")) }
                        a href="/alerts" id="nav-alerts" title=(l.t("new_alerts")) {
                            (l.t("alerts"))
                            " "
                            span id="alerts-badge" class="badge" hidden data-events="/alerts/events" { "0" }
                        }
                        @if matches!(c.role, Role::Admin | Role::Analyst) {
                            a href="/flashes" id="nav-flashes" { (l.t("flashes")) }
                        }
                        span class="me" {
                            (l.t("signed_in_as")) " " b { (c.user) } " (" (l.word("role", c.role.as_str())) ") "
                            @if !csrf.is_empty() {
                                form method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button { (l.t("sign_out")) }
                                }
                            }
                        }
                    }
                }
                main { (body) }
                script src="/assets/app.js" {}
            }
        }
    }
}

/// The sign-in page, with the pre-login CSRF token and an error, if any.
pub fn login(l: Lang, csrf: &str, error: Option<&str>) -> Markup {
    layout(
        l,
        None,
        l.t("sign_in"),
        html! {
            h1 { (l.t("title")) }
            @if let Some(e) = error {
                p class="err" id="login-error" { (e) }
            }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label { (l.t("token")) " " input type="password" name="token" id="token" size="70" autocomplete="off"; }
                " "
                button id="sign-in" { (l.t("sign_in")) }
            }
        },
    )
}

/// A page of a heading and one paragraph (sign-in refusals, forged forms).
pub fn message(l: Lang, who: Option<&Caller>, title: &str, text: &str) -> Markup {
    layout(
        l,
        who,
        title,
        html! {
            h1 { (title) }
            p { (text) }
        },
    )
}

/// A page for a visitor who is not signed in: a way to sign in.
pub fn unauthorized(l: Lang) -> Markup {
    layout(
        l,
        None,
        l.t("unauth_title"),
        html! {
            h1 { (l.t("unauth_title")) }
            p { (l.t("unauth")) }
            p { a href="/login" { (l.t("sign_in")) } }
        },
    )
}

/// A refusal page for a signed-in user: what happened, a way back, and
/// the sign-out button.
pub fn refusal(l: Lang, who: &Caller, csrf: &str, title: &str, text: &str) -> Markup {
    layout_signed(
        l,
        who,
        csrf,
        title,
        html! {
            h1 { (title) }
            p id="refusal" { (text) }
            p { a id="back" href="/cases" { (l.t("back_to_cases")) } }
        },
    )
}
