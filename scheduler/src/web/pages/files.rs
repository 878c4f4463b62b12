//! A job's file-system files (the `files` analysis): search by path or
//! digest, filters (allocated, deleted, known, notable), pages of
//! [`FILES_PER_PAGE`].

use super::super::i18n::Lang;
use super::{layout_signed, url_part};
use crate::core::Caller;
use maud::{Markup, html};
use trawl_core::FileRecord;
use trawl_store::JobRecord;

/// Files listed per page.
pub const FILES_PER_PAGE: usize = 100;

/// The search, filter and page of the files list (query string).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct FilesQuery {
    /// A part of the path (any case), or a digest (MD5, SHA-1, SHA-256) or
    /// its first 8 or more hex digits.
    pub q: String,
    /// `all` (default), `allocated`, `deleted` (deleted and orphan),
    /// `known`, `notable`.
    pub show: String,
    /// From 0.
    pub page: usize,
}

fn is_hex(s: &str) -> bool {
    s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `f` passes the query's search and filter.
fn selected(f: &FileRecord, q: &FilesQuery, needle: &str) -> bool {
    let shown = match q.show.as_str() {
        "allocated" => f.alloc == "allocated",
        "deleted" => f.alloc != "allocated",
        "known" => f.known.as_deref() == Some("known"),
        "notable" => f.known.as_deref() == Some("notable"),
        _ => true,
    };
    if !shown {
        return false;
    }
    if needle.is_empty() {
        return true;
    }
    if is_hex(needle) {
        let hit = [&f.md5, &f.sha1, &f.sha256]
            .into_iter()
            .flatten()
            .any(|d| d.starts_with(needle));
        if hit {
            return true;
        }
    }
    f.path.to_lowercase().contains(needle)
}

/// The files the query selects, in listing order.
pub fn select<'a>(files: &'a [FileRecord], q: &FilesQuery) -> Vec<&'a FileRecord> {
    let needle = q.q.trim().to_lowercase();
    files.iter().filter(|f| selected(f, q, &needle)).collect()
}

/// The link to the files list searching `path` (the dashboard's links from
/// features and YARA hits to their files).
pub fn files_link(job_id: &str, path: &str) -> String {
    ["/jobs/", &url_part(job_id), "/files?q=", &url_part(path)].concat()
}

/// The files page. `files` is `None` until the job is complete.
pub fn files(
    l: Lang,
    c: &Caller,
    csrf: &str,
    job: &JobRecord,
    files: Option<&[FileRecord]>,
    q: &FilesQuery,
) -> Markup {
    let id = url_part(&job.job_id);
    let base = ["/jobs/", &id, "/files"].concat();
    let body = html! {
        h1 { (l.t("files")) " — " (l.t("job")) " " a href={ "/jobs/" (id) } { (job.job_id) } }
        @match files {
            None => { p { (l.t("when_complete")) } }
            Some(all) => {
                @let hits = select(all, q);
                @let pages = hits.len().div_ceil(FILES_PER_PAGE).max(1);
                @let page = q.page.min(pages - 1);
                form method="get" action=(base) id="files-search" {
                    label { (l.t("files_search")) " " input type="search" name="q" value=(q.q); }
                    " "
                    select name="show" {
                        @for (v, k) in [("all", "files_all"), ("allocated", "files_allocated"), ("deleted", "files_deleted"), ("known", "files_known"), ("notable", "files_notable")] {
                            option value=(v) selected[q.show == v || (q.show.is_empty() && v == "all")] { (l.t(k)) }
                        }
                    }
                    " "
                    button { (l.t("files_go")) }
                }
                p id="files-count" { (l.int(hits.len() as u64)) " / " (l.int(all.len() as u64)) }
                table id="files" {
                    tr {
                        th { (l.t("files_path")) } th class="num" { (l.t("files_inode")) }
                        th { (l.t("kind")) } th { (l.t("files_alloc")) }
                        th class="num" { (l.t("size")) } th { "MD5" } th { (l.t("files_set")) }
                    }
                    @for f in hits.iter().skip(page * FILES_PER_PAGE).take(FILES_PER_PAGE) {
                        tr class=(f.known.as_deref().unwrap_or("")) {
                            td class="mono" { (f.path) }
                            td class="num" { (f.inode) }
                            td { (l.word("fkind", &f.kind)) }
                            td { (l.word("falloc", &f.alloc)) }
                            td class="num" { (l.int(f.size)) }
                            td class="mono" { (f.md5.as_deref().unwrap_or("")) }
                            td { @if let Some(k) = &f.known { (l.word("fknown", k)) " (" (f.known_set.as_deref().unwrap_or("")) ")" } }
                        }
                    }
                }
                @if pages > 1 {
                    p id="files-pages" {
                        @if page > 0 {
                            a href={ (base) "?q=" (url_part(&q.q)) "&show=" (url_part(&q.show)) "&page=" (page - 1) } { "←" }
                            " "
                        }
                        (page + 1) " / " (pages)
                        @if page + 1 < pages {
                            " "
                            a href={ (base) "?q=" (url_part(&q.q)) "&show=" (url_part(&q.show)) "&page=" (page + 1) } { "→" }
                        }
                    }
                }
            }
        }
    };
    layout_signed(l, c, csrf, &job.job_id, body)
}
