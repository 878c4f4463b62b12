//! YARA with yara-x, exact across shards.
//!
//! A rule set is a list of source files; each compiles into its own
//! namespace (many public sets reuse rule names across files), with the
//! external variables `filename`, `filepath`, `extension`, `filetype` and
//! `owner` declared. A rule yara-x refuses is listed with its file, line,
//! column and reason, and the rest of the set compiles anyway, unless the
//! user asks for strict mode.
//!
//! The answer for the raw image equals `yara -s RULES IMAGE`: the same
//! matching rules and the same (rule, string, offset) matches, each once, in
//! image coordinates, whatever the shard size. How:
//!
//! 1. **Per shard** (parallel): the shard's window — the shard plus its
//!    margin (at least [`MIN_FORWARD`] past the end, read from the evidence
//!    when the margin is smaller) and [`BACK_CONTEXT`] bytes before its
//!    start, so `fullword` and word-boundary checks see the preceding bytes —
//!    is scanned with the *occurrence form* of the rules
//!    ([`classify::occurrence_rule`]: each rule's patterns under the
//!    condition `any of them`). yara-x reports a pattern's matches only as
//!    far as its rule's condition needs them — a pattern used as `$a at 0`
//!    is looked for at offset 0 of the scanned buffer only, one behind a
//!    failed `filesize` bound or header test (`uint16(0) == ..`) not at
//!    all, and a window's offset 0, size and first bytes are not the
//!    image's — so the real conditions are never evaluated on a window.
//!    The occurrence form reports every occurrence of every pattern. An
//!    occurrence counts when it starts in the shard's own range (where the
//!    window gives it the image's context). Rules whose condition is a
//!    disjunction of "pattern found" tests naming every pattern
//!    ([`RuleClass::Shard`]) are decided here: they match the image iff one
//!    of their patterns occurs in some shard. For the others, the shard
//!    lists where their patterns occur.
//! 2. **Whole image** (one task after the shards): rules that cannot match
//!    without a pattern match and had no occurrence anywhere are known not
//!    to match. The remaining candidates — rules with occurrences, rules
//!    whose condition may hold without any (`filesize`, fixed-offset reads,
//!    modules, `not $a`, other rules), and rules whose occurrence form
//!    yara-x refused — are evaluated with their real conditions by yara-x
//!    over the image: block by block, and only around the listed
//!    occurrences, for conditions on context-free pattern matches alone;
//!    as one buffer otherwise. Their matches are final.
//!
//! Carved files are scanned as files, with the external variables set from
//! the carving (name, path, extension, type), by the shard that carves
//! them; a file inside the shard's window that no rule can match given the
//! occurrences the shard found and the file's own facts is not scanned
//! (see [`ShardHits`]).

mod classify;
mod index;

pub use classify::{RuleClass, RuleInfo, classify_source};
pub use index::RuleSetIndex;
/// The scanner type of [`CompiledRules::file_scanner`].
pub use yara_x::Scanner;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use trawl_core::spec::RuleSource;
use trawl_core::{Note, ScannerStat, Shard, YaraMatch, YaraString};
use trawl_evidence::{Evidence, EvidenceError};

/// Why a YARA step failed.
#[derive(Debug, thiserror::Error)]
pub enum YaraError {
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cancelled")]
    Cancelled,
}

/// A rule by (namespace, identifier).
pub type RuleKey = (String, String);

/// Bytes before a shard's start included in its window (context for
/// `fullword` and `\b`).
pub const BACK_CONTEXT: u64 = 4096;
/// Bytes past a shard's end always included in its window (matches longer
/// than this are beyond what YARA engines match anyway).
pub const MIN_FORWARD: u64 = 64 << 10;
/// Default per-scan timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Default maximum matches per pattern (YARA's own default).
pub const DEFAULT_MAX_MATCHES: usize = 1_000_000;
/// A scan slower than this is reported as a slow-rule warning.
pub const SLOW_SCAN: Duration = Duration::from_secs(30);

/// Images smaller than this are scanned with the whole rule set rather
/// than the subset their facts leave live.
pub const PRUNE_MIN_IMAGE: u64 = 256 << 20;

/// External variables every rule set declares (as YARA users pass them with
/// `-d`): empty for the image, set per carved file.
pub const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// `scope` of a per-shard result (see [`YaraMatch`] in shard outputs).
pub mod scope {
    /// A shard-decided rule: `matched` in this window or not, with the
    /// string matches starting in the shard.
    pub const SHARD: &str = "shard";
    /// A rule decided on the whole image that had a pattern match in this
    /// shard (a candidate for the whole-image step).
    pub const HIT: &str = "hit";
    /// A [`HIT`] of a rule evaluated block by block, whose strings are the
    /// spans of every match of its patterns starting in the shard (or one
    /// span over the whole shard when there are too many to list): the
    /// whole-image step needs to read only around them.
    pub const HIT_SPANS: &str = "hit:spans";
}

/// Above this many matches of one rule in one shard, its hit spans are
/// replaced by one span over the shard.
pub const MAX_HIT_SPANS: usize = 4096;

/// A diagnostic of a rule set compilation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// `error` (the rule or file was refused) or `warning`.
    pub severity: String,
    pub message: String,
    /// The refused rule, when one rule was refused.
    pub rule: String,
}

/// Syntax errors of the sources (a parse only, no compilation): what can be
/// told cheaply before any rule is compiled.
pub fn syntax_errors(sources: &[RuleSource]) -> Vec<Diagnostic> {
    use yara_x_parser::ast::Error as E;
    let mut out = Vec::new();
    for s in sources {
        let ast = yara_x_parser::ast::AST::from(s.text.as_str());
        for e in ast.errors() {
            let (message, span) = match e {
                E::SyntaxError { message, span }
                | E::InvalidInteger { message, span }
                | E::InvalidFloat { message, span }
                | E::InvalidRegexpModifier { message, span }
                | E::InvalidEscapeSequence { message, span } => {
                    (format!("syntax error: {message}"), span.clone())
                }
                E::InvalidUTF8(span) => ("invalid UTF-8".to_string(), span.clone()),
                E::UnexpectedEscapeSequence(span) => {
                    ("unexpected escape sequence".to_string(), span.clone())
                }
            };
            let before = &s.text.as_bytes()[..span.start().min(s.text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            let column = (before.len()
                - before
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map(|p| p + 1)
                    .unwrap_or(0)) as u32
                + 1;
            out.push(Diagnostic {
                file: s.name.clone(),
                line,
                column,
                severity: "error".into(),
                message,
                rule: String::new(),
            });
        }
    }
    out
}

/// BLAKE3 digest of a rule set's sources (names and texts, in order).
pub fn digest(sources: &[RuleSource]) -> String {
    let mut h = blake3::Hasher::new();
    for s in sources {
        h.update(&(s.name.len() as u64).to_le_bytes());
        h.update(s.name.as_bytes());
        h.update(&(s.text.len() as u64).to_le_bytes());
        h.update(s.text.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// A compiled rule set, built once and shared by every scan.
pub struct CompiledRules {
    rules: yara_x::Rules,
    digest: String,
    diagnostics: Vec<Diagnostic>,
    rule_count: usize,
    /// What a scan reports for each rule matching with no pattern match,
    /// by (namespace, rule), target left empty (see [`Verdict::Known`]).
    bare: std::sync::OnceLock<std::collections::HashMap<(String, String), YaraMatch>>,
}

/// Per-scan limits of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub max_matches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            max_matches: DEFAULT_MAX_MATCHES,
        }
    }
}

impl Limits {
    /// Limits from a job's settings (0 keeps a default).
    pub fn from_settings(timeout_seconds: u32, max_matches: u32) -> Self {
        let d = Self::default();
        Self {
            timeout: if timeout_seconds > 0 {
                Duration::from_secs(u64::from(timeout_seconds))
            } else {
                d.timeout
            },
            max_matches: if max_matches > 0 {
                max_matches as usize
            } else {
                d.max_matches
            },
        }
    }
}

impl std::fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRules")
            .field("digest", &self.digest)
            .field("rules", &self.rule_count)
            .field("diagnostics", &self.diagnostics.len())
            .finish()
    }
}

/// The namespace of a source file.
pub fn namespace_of(name: &str) -> String {
    name.to_string()
}

fn label_pos(v: &serde_json::Value) -> (String, u32, u32) {
    let label = v["labels"].as_array().and_then(|l| l.first());
    let origin = label
        .and_then(|l| l["code_origin"].as_str())
        .unwrap_or_default()
        .to_string();
    let line = label.and_then(|l| l["line"].as_u64()).unwrap_or(0) as u32;
    let column = label.and_then(|l| l["column"].as_u64()).unwrap_or(0) as u32;
    (origin, line, column)
}

fn diagnostic<E: serde::Serialize + std::fmt::Display>(
    e: &E,
    severity: &str,
    fallback_file: &str,
    rule: &str,
) -> Diagnostic {
    let v = serde_json::to_value(e).unwrap_or_default();
    let (origin, line, column) = label_pos(&v);
    let title = v["title"].as_str().map(str::to_string);
    let label_text = v["labels"]
        .as_array()
        .and_then(|l| l.first())
        .and_then(|l| l["text"].as_str())
        .map(str::to_string);
    let message = match (title, label_text) {
        (Some(t), Some(l)) if !l.is_empty() => format!("{t}: {l}"),
        (Some(t), _) => t,
        _ => e.to_string().lines().next().unwrap_or_default().to_string(),
    };
    Diagnostic {
        file: if origin.is_empty() {
            fallback_file.to_string()
        } else {
            origin
        },
        line,
        column,
        severity: severity.into(),
        message,
        rule: rule.into(),
    }
}

fn new_compiler<'a>() -> Result<yara_x::Compiler<'a>, YaraError> {
    let mut c = yara_x::Compiler::new();
    c.enable_includes(false);
    for ext in EXTERNALS {
        c.define_global(ext, "")
            .map_err(|e| YaraError::Settings(format!("declaring external {ext}: {e}")))?;
    }
    Ok(c)
}

impl CompiledRules {
    /// Compiles `sources` (one namespace each).
    ///
    /// # Errors
    /// No rule compiled at all; in strict mode, any refused rule or file.
    pub fn compile(sources: &[RuleSource], strict: bool) -> Result<Self, YaraError> {
        let mut compiler = new_compiler()?;
        let mut diagnostics = Vec::new();
        for s in sources {
            let ns = namespace_of(&s.name);
            compiler.new_namespace(&ns);
            let _ = compiler
                .add_source(yara_x::SourceCode::from(s.text.as_str()).with_origin(s.name.as_str()));
        }
        // Rules refused one by one, with their reasons; the errors of whole
        // files (syntax errors, unknown modules) are listed too.
        for (rule, reason) in compiler.ignored_rules() {
            match reason {
                yara_x::IgnoredRuleReason::CompileError(e) => {
                    diagnostics.push(diagnostic(e, "error", "", rule));
                }
                other => diagnostics.push(Diagnostic {
                    file: String::new(),
                    line: 0,
                    column: 0,
                    severity: "error".into(),
                    message: format!("rule ignored: {other:?}"),
                    rule: rule.into(),
                }),
            }
        }
        for e in compiler.errors() {
            let d = diagnostic(e, "error", "", "");
            // Already listed with its rule?
            let listed = diagnostics.iter().any(|x| {
                x.file == d.file
                    && x.line == d.line
                    && x.column == d.column
                    && x.message == d.message
            });
            if !listed {
                diagnostics.push(d);
            }
        }
        for w in compiler.warnings() {
            diagnostics.push(diagnostic(w, "warning", "", ""));
        }
        if strict && diagnostics.iter().any(|d| d.severity == "error") {
            let first = diagnostics
                .iter()
                .find(|d| d.severity == "error")
                .cloned()
                .unwrap_or_else(|| Diagnostic {
                    file: String::new(),
                    line: 0,
                    column: 0,
                    severity: "error".into(),
                    message: "compilation failed".into(),
                    rule: String::new(),
                });
            return Err(YaraError::Settings(format!(
                "strict mode: {}:{}:{}: {}",
                first.file, first.line, first.column, first.message
            )));
        }
        let rules = compiler.build();
        let rule_count = rules.iter().len();
        if rule_count == 0 && !sources.is_empty() {
            let why = diagnostics
                .iter()
                .find(|d| d.severity == "error")
                .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
                .unwrap_or_else(|| "no rules in the sources".into());
            return Err(YaraError::Settings(format!("no YARA rule compiled: {why}")));
        }
        Ok(Self {
            rules,
            digest: digest(sources),
            diagnostics,
            rule_count,
            bare: std::sync::OnceLock::new(),
        })
    }

    /// The BLAKE3 of the sources.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Compilation errors and warnings.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
    /// Number of rules compiled.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }
    /// (namespace, rule) of every public rule compiled.
    pub fn rule_names(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .rules
            .iter()
            .filter(|r| !r.is_private())
            .map(|r| (r.namespace().to_string(), r.identifier().to_string()))
            .collect();
        v.sort();
        v
    }
    fn scanner(&self, limits: Limits) -> yara_x::Scanner<'_> {
        let mut s = yara_x::Scanner::new(&self.rules);
        s.set_timeout(limits.timeout);
        s.max_matches_per_pattern(limits.max_matches);
        s
    }

    /// Scans one carved file (its bytes), with the external variables set.
    ///
    /// # Errors
    /// None today; kept fallible for symmetry.
    pub fn scan_file(
        &self,
        scanner: &mut yara_x::Scanner<'_>,
        data: &[u8],
        target: &str,
        target_offset: u64,
        externals: &[(&str, &str)],
    ) -> Result<(Vec<YaraMatch>, Option<Note>), YaraError> {
        for (k, v) in externals {
            let _ = scanner.set_global(k, *v);
        }
        match scanner.scan(data) {
            Ok(results) => Ok((
                results
                    .matching_rules()
                    .map(|r| final_match(&r, target, target_offset))
                    .collect(),
                None,
            )),
            Err(e) => Ok((
                Vec::new(),
                Some(Note {
                    analysis: "yara".into(),
                    offset: target_offset,
                    message: format!("YARA scan of {target} failed: {e}"),
                }),
            )),
        }
    }

    /// A scanner for [`CompiledRules::scan_file`].
    pub fn file_scanner(&self, limits: Limits) -> yara_x::Scanner<'_> {
        self.scanner(limits)
    }

    /// Calls `scan` on every item, in parallel: the items cut into a few
    /// runs of about equal `size` (twice the pool's threads), one scanner
    /// per run (making a scanner costs more than scanning a small file).
    /// The results are in the items' order.
    pub fn scan_in_groups<T: Sync, R: Send>(
        &self,
        limits: Limits,
        items: &[T],
        size: impl Fn(&T) -> u64,
        scan: impl Fn(&mut yara_x::Scanner<'_>, &T) -> R + Sync,
    ) -> Vec<R> {
        use rayon::prelude::*;
        let total: u64 = items.iter().map(&size).sum();
        let groups = (rayon::current_num_threads() * 2).max(1) as u64;
        let per_group = total.div_ceil(groups).max(1);
        let mut bounds = vec![0usize];
        let mut acc = 0u64;
        for (i, it) in items.iter().enumerate() {
            acc += size(it);
            if acc >= per_group && i + 1 < items.len() {
                bounds.push(i + 1);
                acc = 0;
            }
        }
        bounds.push(items.len());
        bounds
            .windows(2)
            .collect::<Vec<_>>()
            .into_par_iter()
            .flat_map_iter(|w| {
                let mut scanner = self.file_scanner(limits);
                items[w[0]..w[1]]
                    .iter()
                    .map(|it| scan(&mut scanner, it))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The match [`CompiledRules::scan_file`] reports for rule `rule` of
    /// `namespace` matching `target` with no pattern match; `None` when the
    /// rule is not in the compiled set (refused by yara-x: it never
    /// matches).
    fn bare_match(
        &self,
        namespace: &str,
        rule: &str,
        target: &str,
        target_offset: u64,
    ) -> Option<YaraMatch> {
        let bare = self.bare.get_or_init(|| {
            self.rules
                .iter()
                .map(|r| {
                    let m = rule_match(&r, String::new(), 0, Vec::new());
                    ((m.namespace.clone(), m.rule.clone()), m)
                })
                .collect()
        });
        let mut m = bare
            .get(&(namespace.to_string(), rule.to_string()))?
            .clone();
        m.target = target.to_string();
        m.target_offset = target_offset;
        Some(m)
    }
}

/// A rule set: its sources, its index (rules, classes, dependencies), and
/// its full compilation (made when first needed).
pub struct RuleSet {
    sources: Vec<RuleSource>,
    digest: String,
    index: RuleSetIndex,
    strict: bool,
    full: std::sync::OnceLock<Result<SharedRules, String>>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("digest", &self.digest)
            .finish()
    }
}

impl RuleSet {
    /// The BLAKE3 of the sources.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// The index.
    pub fn index(&self) -> &RuleSetIndex {
        &self.index
    }
    /// The whole set compiled (once).
    ///
    /// # Errors
    /// Nothing compiled; strict mode with a refused rule.
    pub fn full(&self) -> Result<SharedRules, YaraError> {
        self.full
            .get_or_init(|| compile_cached(&self.sources, self.strict).map_err(|e| e.to_string()))
            .clone()
            .map_err(YaraError::Settings)
    }

    /// The rules of this set an image may match, compiled: rules whose
    /// condition is already false given the image's size and the integers
    /// at constant offsets it reads (`uint16(0) == 0x5a4d` on a disk image,
    /// `filesize < 100KB` on a 1 GiB image) are left out.
    ///
    /// # Errors
    /// Evidence read errors; the subset failing to compile.
    pub fn for_image(self: &Arc<Self>, evidence: &dyn Evidence) -> Result<ImageRules, YaraError> {
        let size = evidence.size();
        let err = std::cell::RefCell::new(None);
        let read = |off: u64, n: usize| -> Option<Vec<u8>> {
            let mut b = vec![0u8; n];
            match evidence.read_exact_at(off, &mut b) {
                Ok(()) => Some(b),
                Err(e) => {
                    *err.borrow_mut() = Some(e);
                    None
                }
            }
        };
        let live = self.index.live(size, &read);
        if let Some(e) = err.into_inner() {
            return Err(e.into());
        }
        // A small image is scanned with the whole set (compiled once per
        // process, shared by every small image); a large one with only the
        // rules it may match (the compilation pays for itself many times).
        // What the shards scan: the occurrence form of the same rules
        // (every occurrence of their patterns, whatever their conditions),
        // compiled beside them (the two compilations are independent).
        let small = size < PRUNE_MIN_IMAGE;
        let (compiled, occurrences) = if live.is_empty() {
            (None, (None, HashSet::new()))
        } else {
            let (compiled, occurrences) = rayon::join(
                || -> Result<Option<SharedRules>, YaraError> {
                    let c = if small {
                        self.full()
                    } else {
                        compile_cached(&self.index.subset(&live), false)
                    };
                    match c {
                        Ok(c) => Ok(Some(c)),
                        Err(YaraError::Settings(m)) if m.contains("no YARA rule compiled") => {
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                },
                || {
                    self.occurrences_of(if small {
                        self.index.all()
                    } else {
                        live.clone()
                    })
                },
            );
            (compiled?, occurrences)
        };
        // Rules whose occurrences the shards report: held by both
        // compilations (a rule yara-x refuses never matches; its occurrence
        // form may still compile, and is then ignored).
        let (occurrences, occ_known) = match (compiled.as_ref(), occurrences) {
            (Some(c), (Some(occ), held)) => {
                let accepted: HashSet<(&str, &str)> = c
                    .rules
                    .iter()
                    .map(|r| (r.namespace(), r.identifier()))
                    .collect();
                let known: HashSet<index::RuleRef> = held
                    .into_iter()
                    .filter(|&(f, r)| {
                        let file = &self.index.files[f];
                        accepted.contains(&(file.name.as_str(), file.rules[r].name.as_str()))
                    })
                    .collect();
                (Some(occ), known)
            }
            _ => (None, HashSet::new()),
        };
        let live_set: HashSet<index::RuleRef> = live.iter().copied().collect();
        // Decided on the whole image whatever the shards find: rules whose
        // condition may hold without a pattern match, and rules whose
        // occurrences the shards cannot report (their occurrence form did
        // not compile, or their file could not be cut into rules).
        let always: Vec<(String, String)> = live
            .iter()
            .filter_map(|&(f, r)| {
                let file = &self.index.files[f];
                let rule = &file.rules[r];
                let unknown = rule.has_patterns && !occ_known.contains(&(f, r));
                ((rule.class == RuleClass::Always || unknown) && !rule.private)
                    .then(|| (namespace_of(&file.name), rule.name.clone()))
            })
            .collect();
        let diagnostics = compiled
            .as_ref()
            .map(|c| c.diagnostics().to_vec())
            .unwrap_or_default();
        let searches_always = compiled.as_ref().is_some_and(|c| self.searches_always(c));
        Ok(ImageRules {
            set: self.clone(),
            live_rules: live.len(),
            occurrences,
            occ_known: Arc::new(occ_known),
            live_set,
            always,
            searches_always,
            diagnostics,
        })
    }

    /// Whether some rule `compiled` holds surely makes a scan with the whole
    /// set search for patterns (see [`ImageRules::searches_always`]): it
    /// reaches a pattern test first, in a file without global rules. The
    /// whole set holds every rule `compiled` holds (and maybe more: this
    /// errs only towards "maybe not").
    fn searches_always(&self, compiled: &CompiledRules) -> bool {
        compiled.rules.iter().any(|r| {
            self.index
                .get(r.namespace(), r.identifier())
                .is_some_and(|((f, _), info)| {
                    info.searches && !self.index.files[f].rules.iter().any(|x| x.global)
                })
        })
    }

    /// The occurrence form (see [`classify::occurrence_rule`]) of `refs`,
    /// compiled (cached by its sources), and the rules it holds. A rule
    /// refused in that form is left out: its occurrences are unknown.
    fn occurrences_of(
        &self,
        refs: Vec<index::RuleRef>,
    ) -> (Option<SharedRules>, HashSet<index::RuleRef>) {
        let (sources, held) = self.index.occurrence_subset(&refs);
        if held.is_empty() {
            return (None, HashSet::new());
        }
        match compile_cached(&sources, false) {
            Ok(occ) => {
                let compiled_keys: HashSet<(&str, &str)> = occ
                    .rules
                    .iter()
                    .map(|r| (r.namespace(), r.identifier()))
                    .collect();
                let known = held
                    .into_iter()
                    .filter(|&(f, r)| {
                        let file = &self.index.files[f];
                        compiled_keys.contains(&(file.name.as_str(), file.rules[r].name.as_str()))
                    })
                    .collect();
                (Some(occ), known)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the occurrence form of the YARA rules did not compile; every rule with patterns is evaluated on the whole image");
                (None, HashSet::new())
            }
        }
    }
}

/// Rule sets of this process, by digest (parsed and indexed once).
static SETS: std::sync::Mutex<Vec<(String, bool, Arc<RuleSet>)>> =
    std::sync::Mutex::new(Vec::new());

/// The rule set of `sources`, indexed once per process.
pub fn rule_set(sources: &[RuleSource], strict: bool) -> Arc<RuleSet> {
    let d = digest(sources);
    let mut sets = SETS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, _, s)) = sets.iter().find(|(k, st, _)| *k == d && *st == strict) {
        return s.clone();
    }
    let set = Arc::new(RuleSet {
        sources: sources.to_vec(),
        digest: d.clone(),
        index: RuleSetIndex::new(sources),
        strict,
        full: std::sync::OnceLock::new(),
    });
    if sets.len() >= CACHE_SETS {
        sets.remove(0);
    }
    sets.push((d, strict, set.clone()));
    set
}

/// What [`ImageRules::scan_carved`] found and did.
#[derive(Debug, Default)]
pub struct CarvedScan {
    pub matches: Vec<YaraMatch>,
    pub notes: Vec<Note>,
    /// Bytes of the files scanned.
    pub bytes: u64,
    /// Files (and their bytes) whose matches were known without a scan
    /// (most often: no rule could match).
    pub skipped_files: u64,
    pub skipped_bytes: u64,
}

/// Match ranges kept per rule and shard for the carved files (past this,
/// the rule's matches count as unknown there).
const MAX_RULE_RANGES: usize = 1 << 16;

/// What a shard's YARA scan saw of each rule, so that the shard's carved
/// files no rule can match are not scanned (the answer is already known).
///
/// The shard is scanned with the occurrence form of the rules (see
/// [`classify::occurrence_rule`]): every occurrence of every pattern of the
/// rules it holds is reported, whatever their conditions — not only the
/// matches yara-x keeps for rules true on the window. A carved file is a
/// range of the image. A pattern that matches only its own bytes (see
/// [`RuleInfo::context_free`]) matches inside the file iff the scan found
/// an occurrence crossing the file's range, when the range lies inside the
/// scanned window. So a rule that needs a pattern match
/// ([`RuleClass::Gated`], [`RuleClass::Shard`]) and had none there cannot
/// match the file; any other rule is evaluated on the file's facts (size,
/// integers at fixed offsets, `pe.is_pe`) with its patterns unknown — or
/// known absent. A file is scanned unless every public rule is decided:
/// false, or true with no pattern matching inside the file (a rule on
/// magic numbers and size: its match is then known, and lists no string).
#[derive(Debug, Default)]
pub struct ShardHits {
    /// The window scanned, `[start, end)` in the image.
    start: u64,
    end: u64,
    /// Rules whose every occurrence in the window the scan reported (None:
    /// the scan did not complete, nothing known).
    known: Option<Arc<HashSet<index::RuleRef>>>,
    /// Occurrence ranges of rules with occurrences in the window, sorted by
    /// start, the second field holding the running maximum end (for the
    /// overlap test); None: not all listed (a pattern reached the match
    /// cap).
    hits: std::collections::HashMap<index::RuleRef, Option<Vec<(u64, u64)>>>,
    /// Public rules a carved file's facts must be checked against: all but
    /// the pattern-gated ones whose occurrences are all known.
    check: Vec<index::RuleRef>,
    /// Pattern-gated public rules whose occurrences are all known.
    gated: HashSet<index::RuleRef>,
}

impl ShardHits {
    fn record(&mut self, rf: index::RuleRef, mut ranges: Vec<(u64, u64)>, capped: bool) {
        if capped || ranges.len() > MAX_RULE_RANGES {
            self.hits.insert(rf, None);
            return;
        }
        if ranges.is_empty() {
            return;
        }
        ranges.sort_unstable();
        let mut max_end = 0;
        for r in &mut ranges {
            max_end = max_end.max(r.1);
            r.1 = max_end;
        }
        self.hits.insert(rf, Some(ranges));
    }

    /// Whether every occurrence of `rf`'s patterns in the window is known.
    fn knows(&self, rf: index::RuleRef) -> bool {
        self.known.as_ref().is_some_and(|k| k.contains(&rf))
            && !matches!(self.hits.get(&rf), Some(None))
    }

    fn prepare(&mut self, idx: &RuleSetIndex) {
        if self.known.is_none() {
            return;
        }
        for rf in idx.all() {
            let info = &idx.files[rf.0].rules[rf.1];
            if info.private {
                continue;
            }
            if info.context_free
                && self.knows(rf)
                && matches!(info.class, RuleClass::Gated | RuleClass::Shard)
            {
                self.gated.insert(rf);
            } else {
                self.check.push(rf);
            }
        }
    }

    /// Whether `rf`'s patterns have a match crossing `[start, end)` (a
    /// range inside the window): Some(false) only when that is known not to
    /// be so.
    fn matched_in(
        &self,
        idx: &RuleSetIndex,
        rf: index::RuleRef,
        start: u64,
        end: u64,
    ) -> Option<bool> {
        if !idx.files[rf.0].rules[rf.1].context_free || !self.knows(rf) {
            return None;
        }
        match self.hits.get(&rf) {
            None => Some(false),
            Some(None) => None,
            Some(Some(v)) => {
                let n = v.partition_point(|&(s, _)| s < end);
                Some(n > 0 && v[n - 1].1 > start)
            }
        }
    }
}

/// What is known of a carved file before scanning it (see [`ShardHits`]).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Some rule's outcome depends on what only a scan can tell.
    Scan,
    /// Every public rule is decided by the file's facts and the shard's
    /// matches: these match (none: the file matches nothing), each with no
    /// pattern match inside the file — what a scan would report.
    Known(Vec<index::RuleRef>),
}

/// What is known of `data`, the bytes of the carved file at image offset
/// `offset`, from the shard's scan and the file's facts.
fn carved_verdict(
    idx: &RuleSetIndex,
    hits: Option<&ShardHits>,
    offset: u64,
    data: &[u8],
) -> Verdict {
    let end = offset + data.len() as u64;
    // Without the shard's matches over the file (no scan, an incomplete
    // one, or the file past its window), only the facts of the file.
    let hits = hits.filter(|h| h.known.is_some() && offset >= h.start && end <= h.end);
    let read = |r: classify::Read, off: i64| -> Option<i64> {
        let o = usize::try_from(off).ok()?;
        let b = data.get(o..o.checked_add(usize::from(r.bytes))?)?;
        Some(r.decode(b))
    };
    let env = |patterns| classify::Env {
        patterns,
        filesize: i64::try_from(data.len()).ok(),
        read: Some(&read),
    };
    let mut matching = Vec::new();
    // The rule under the file's facts, `matched` telling whether its
    // patterns match in the file (None: unknown). A true rule is known to
    // match only when no pattern of it matches in the file (the match then
    // lists none) and nothing outside its condition bears on it (another
    // rule, a global rule of its file).
    let mut decide = |rf: index::RuleRef, matched: Option<bool>| -> bool {
        let info = &idx.files[rf.0].rules[rf.1];
        let absent = !info.has_patterns || matched == Some(false);
        match classify::eval(&info.condition, &env(absent.then_some(false))) {
            classify::Tri::False => true,
            classify::Tri::True if absent && info.deps.is_empty() => {
                matching.push(rf);
                true
            }
            _ => false,
        }
    };
    let decided = match hits {
        // Gated rules with matches crossing the file, then everything else
        // (gated rules without are false).
        Some(h) => {
            h.hits.keys().filter(|rf| h.gated.contains(rf)).all(|&rf| {
                let matched = h.matched_in(idx, rf, offset, end);
                matched == Some(false) || decide(rf, matched)
            }) && h
                .check
                .iter()
                .all(|&rf| decide(rf, h.matched_in(idx, rf, offset, end)))
        }
        None => idx.files.iter().enumerate().all(|(f, file)| {
            file.rules
                .iter()
                .enumerate()
                .all(|(r, info)| info.private || decide((f, r), None))
        }),
    };
    if decided {
        matching.sort_unstable();
        Verdict::Known(matching)
    } else {
        Verdict::Scan
    }
}

/// A rule set prepared for one image (see [`RuleSet::for_image`]).
pub struct ImageRules {
    set: Arc<RuleSet>,
    live_rules: usize,
    /// The occurrence form of the rules the image may match, which the
    /// shards scan (None: nothing to scan).
    occurrences: Option<SharedRules>,
    /// The rules whose occurrences the shards report.
    occ_known: Arc<HashSet<index::RuleRef>>,
    /// The rules the image's facts leave live.
    live_set: HashSet<index::RuleRef>,
    /// Live, public rules decided on the whole image whatever the shards find.
    always: Vec<(String, String)>,
    /// See [`ImageRules::searches_always`].
    searches_always: bool,
    /// Errors and warnings of compiling the live rules.
    diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Debug for ImageRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageRules")
            .field("set", &self.set.digest)
            .field("live_rules", &self.live_rules)
            .field("always", &self.always.len())
            .finish()
    }
}

impl ImageRules {
    /// The rule set.
    pub fn set(&self) -> &Arc<RuleSet> {
        &self.set
    }
    /// Number of rules the image may match.
    pub fn live_rules(&self) -> usize {
        self.live_rules
    }
    /// Rules evaluated on the whole image even without pattern hits.
    pub fn always_rules(&self) -> &[(String, String)] {
        &self.always
    }

    /// Whether the shards report every occurrence of the patterns of rule
    /// `rule` of `namespace` (a rule without patterns has none to report),
    /// so that the whole-image step may read only around them.
    pub fn occurrences_known(&self, namespace: &str, rule: &str) -> bool {
        self.set
            .index
            .get(namespace, rule)
            .is_some_and(|(rf, info)| !info.has_patterns || self.occ_known.contains(&rf))
    }

    /// What compiling the rules this image may match reported: refused rules
    /// (file, line, column, reason) and warnings, as report notes.
    pub fn diagnostic_notes(&self) -> Vec<Note> {
        self.diagnostics
            .iter()
            .map(|d| Note {
                analysis: "yara".into(),
                offset: 0,
                message: format!(
                    "{}: {}:{}:{}{}: {}",
                    if d.severity == "error" {
                        "rule refused by yara-x"
                    } else {
                        "rule warning"
                    },
                    d.file,
                    d.line,
                    d.column,
                    if d.rule.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.rule)
                    },
                    d.message
                ),
            })
            .collect()
    }

    /// Scans a shard. `data` holds `[shard.start, shard.scan_end)`; the
    /// window is widened from the evidence when needed (see the module docs).
    /// Also returns what the scan saw of every rule, for
    /// [`ImageRules::scan_carved`].
    ///
    /// # Errors
    /// Evidence read errors, cancellation. A timeout is a note, not an error.
    pub fn scan_shard(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        limits: Limits,
        cancel: &AtomicBool,
    ) -> Result<(Vec<YaraMatch>, Vec<Note>, ScannerStat, ShardHits), YaraError> {
        if cancel.load(Ordering::Relaxed) {
            return Err(YaraError::Cancelled);
        }
        let t = Instant::now();
        let size = evidence.size();
        let win_start = shard.start.saturating_sub(BACK_CONTEXT);
        let win_end = shard.scan_end.max((shard.end + MIN_FORWARD).min(size));
        let owned;
        let mapped = evidence.mapped(win_start, (win_end - win_start) as usize);
        let window: &[u8] = if win_start == shard.start && win_end == shard.scan_end {
            data
        } else if let Some(m) = mapped {
            // A raw image: the window straight from the mapping, no copy.
            m
        } else {
            let mut v = Vec::with_capacity((win_end - win_start) as usize);
            if win_start < shard.start {
                let mut head = vec![0u8; (shard.start - win_start) as usize];
                evidence.read_exact_at(win_start, &mut head)?;
                v.extend_from_slice(&head);
            }
            v.extend_from_slice(data);
            if win_end > shard.scan_end {
                let mut tail = vec![0u8; (win_end - shard.scan_end) as usize];
                evidence.read_exact_at(shard.scan_end, &mut tail)?;
                v.extend_from_slice(&tail);
            }
            owned = v;
            &owned
        };
        let mut notes = Vec::new();
        let mut out = Vec::new();
        let Some(occurrences) = &self.occurrences else {
            // No rule can match the image: nothing scanned, nothing known.
            return Ok((
                Vec::new(),
                Vec::new(),
                ScannerStat {
                    scanner: "yara".into(),
                    bytes: shard.len(),
                    nanos: t.elapsed().as_nanos() as u64,
                    findings: 0,
                    skipped_bytes: shard.len(),
                },
                ShardHits::default(),
            ));
        };
        let mut seen = ShardHits {
            start: win_start,
            end: win_end,
            ..Default::default()
        };
        let mut scanner = occurrences.scanner(limits);
        let results = match scanner.scan(window) {
            Ok(r) => Some(r),
            Err(yara_x::ScanError::Timeout) => {
                notes.push(Note {
                    analysis: "yara".into(),
                    offset: shard.start,
                    message: format!(
                        "YARA scan of bytes {}..{} timed out after {:?}; rules matching only there may be missed",
                        shard.start, shard.end, limits.timeout
                    ),
                });
                None
            }
            Err(e) => {
                notes.push(Note {
                    analysis: "yara".into(),
                    offset: shard.start,
                    message: format!(
                        "YARA scan of bytes {}..{} failed: {e}",
                        shard.start, shard.end
                    ),
                });
                None
            }
        };
        if let Some(results) = results {
            let own = |m_start: u64| {
                let abs = win_start + m_start;
                (abs >= shard.start && abs < shard.end).then_some(abs)
            };
            // Every rule is `any of them` here: a rule that did not match
            // has no occurrence in the window.
            seen.known = Some(self.occ_known.clone());
            for rule in results.matching_rules().include_private(true) {
                let entry = self.set.index.get(rule.namespace(), rule.identifier());
                // A rule yara-x refuses in its real form never matches.
                if !entry.is_some_and(|(rf, _)| self.occ_known.contains(&rf)) {
                    continue;
                }
                let info = entry.map(|(_, i)| i);
                let class = info.map_or(RuleClass::Always, |i| i.class);
                let mut strings = Vec::new();
                // Some pattern reached the per-scan match cap: matches past
                // it are not listed here.
                let mut capped = false;
                // Every occurrence in the window (for the carved files).
                let mut ranges: Vec<(u64, u64)> = Vec::new();
                for p in rule.patterns().include_private(true) {
                    let matches = p.matches();
                    capped |= matches.len() >= limits.max_matches;
                    for m in matches {
                        if ranges.len() <= MAX_RULE_RANGES {
                            let r = m.range();
                            let a = win_start + r.start as u64;
                            ranges.push((a, a + (r.len() as u64).max(1)));
                        }
                        if let Some(abs) = own(m.range().start as u64) {
                            strings.push(YaraString {
                                // A private pattern still counts as a hit.
                                id: if p.is_private() {
                                    String::new()
                                } else {
                                    p.identifier().to_string()
                                },
                                offset: abs,
                                length: m.range().len() as u64,
                            });
                        }
                    }
                }
                if let Some((rf, _)) = entry {
                    seen.record(rf, ranges, capped);
                }
                match class {
                    // The rule matches the image iff one of its patterns
                    // occurs: a match starting in this shard's own range
                    // (where the window holds the context the image gives
                    // it; an occurrence only at the window's edges may be an
                    // artefact of the cut and belongs to another shard).
                    RuleClass::Shard => {
                        if rule.is_private() || strings.is_empty() {
                            continue;
                        }
                        strings.retain(|s| !s.id.is_empty());
                        out.push(shard_record(&rule, scope::SHARD, true, strings));
                    }
                    RuleClass::Gated | RuleClass::Always => {
                        if strings.is_empty() {
                            continue;
                        }
                        if info.is_some_and(|i| i.blockable) {
                            let spans = if capped || strings.len() > MAX_HIT_SPANS {
                                vec![YaraString {
                                    id: String::new(),
                                    offset: shard.start,
                                    length: shard.len(),
                                }]
                            } else {
                                strings
                                    .into_iter()
                                    .map(|s| YaraString {
                                        id: String::new(),
                                        ..s
                                    })
                                    .collect()
                            };
                            out.push(shard_record(&rule, scope::HIT_SPANS, false, spans));
                        } else {
                            out.push(shard_record(&rule, scope::HIT, false, Vec::new()));
                        }
                    }
                }
            }
        }
        if mapped.is_some() && win_start < shard.start {
            // The context before the shard belongs to the shard before,
            // maybe released already: keep it out of this process again.
            evidence.release(win_start, shard.start);
        }
        let elapsed = t.elapsed();
        if elapsed > SLOW_SCAN {
            notes.push(Note {
                analysis: "yara".into(),
                offset: shard.start,
                message: format!(
                    "slow rules: scanning bytes {}..{} took {:.1} s",
                    shard.start,
                    shard.end,
                    elapsed.as_secs_f64()
                ),
            });
        }
        let stat = ScannerStat {
            scanner: "yara".into(),
            bytes: shard.len(),
            nanos: elapsed.as_nanos() as u64,
            findings: out.iter().filter(|m| m.target == "image").count() as u64,
            skipped_bytes: 0,
        };
        seen.prepare(&self.set.index);
        Ok((out, notes, stat, seen))
    }

    /// Scans carved files as files, with the whole rule set and the
    /// external variables set from the carving (`filename` is
    /// `OFFSET.EXT`, `filepath` the report path, `extension`, `filetype`);
    /// matches are final, targeted at the report path. `window` holds image
    /// bytes from an offset (a shard's buffer from its start): files inside it
    /// are scanned there, others read from `evidence` and their pages
    /// released after. Files are scanned in parallel, one scanner per
    /// thread. Files inside `hits`' window that no rule can match (see
    /// [`ShardHits`]) are not scanned.
    ///
    /// # Errors
    /// The rule set failing to compile, evidence read errors, cancellation.
    pub fn scan_carved(
        &self,
        evidence: &dyn Evidence,
        (window_start, window): (u64, &[u8]),
        files: &[trawl_core::CarvedFile],
        hits: Option<&ShardHits>,
        limits: Limits,
        cancel: &AtomicBool,
    ) -> Result<CarvedScan, YaraError> {
        if files.is_empty() {
            return Ok(CarvedScan::default());
        }
        let full = self.set.full()?;
        let window_end = window_start + window.len() as u64;
        // Matches, note, bytes scanned, skipped.
        type One = (Vec<YaraMatch>, Option<Note>, u64, bool);
        let scan_one = |scanner: &mut yara_x::Scanner<'_>,
                        c: &trawl_core::CarvedFile|
         -> Result<One, YaraError> {
            if cancel.load(Ordering::Relaxed) {
                return Err(YaraError::Cancelled);
            }
            let end = c.offset.saturating_add(c.length);
            let path = c.report_path();
            let name = format!("{}.{}", c.offset, c.extension);
            let externals = [
                ("filename", name.as_str()),
                ("filepath", path.as_str()),
                ("extension", c.extension.as_str()),
                ("filetype", c.file_type.as_str()),
            ];
            if !contiguous(c) {
                // Pieces of the image (a file carved from a chosen space):
                // scanned as its bytes end to end, never judged by what
                // the image scan saw of the pieces.
                if c.length > MAX_PIECED as u64 {
                    let note = Note {
                        analysis: "yara".into(),
                        offset: c.offset,
                        message: format!(
                            "{path} not scanned: {} bytes in {} pieces, more than the {MAX_PIECED} assembled in memory",
                            c.length,
                            c.byte_runs.len()
                        ),
                    };
                    return Ok((Vec::new(), Some(note), 0, false));
                }
                let data = pieces(evidence, c)?;
                let n = data.len() as u64;
                let (m, note) = full.scan_file(scanner, &data, &path, c.offset, &externals)?;
                for r in &c.byte_runs {
                    evidence.release(r.img_offset, r.img_offset.saturating_add(r.len));
                }
                return Ok((m, note, n, false));
            }
            if c.offset >= window_start && end <= window_end {
                let data =
                    &window[(c.offset - window_start) as usize..(end - window_start) as usize];
                if let Verdict::Known(rules) = carved_verdict(&self.set.index, hits, c.offset, data)
                {
                    // Known without scanning: what matches (often nothing).
                    let m = rules
                        .into_iter()
                        .filter_map(|(f, r)| {
                            let file = &self.set.index.files[f];
                            full.bare_match(
                                &namespace_of(&file.name),
                                &file.rules[r].name,
                                &path,
                                c.offset,
                            )
                        })
                        .collect();
                    return Ok((m, None, 0, true));
                }
                let (m, note) = full.scan_file(scanner, data, &path, c.offset, &externals)?;
                return Ok((m, note, c.length, false));
            }
            let data = evidence.region(c.offset, end)?;
            let n = data.len() as u64;
            let (m, note) = full.scan_file(scanner, &data, &path, c.offset, &externals)?;
            drop(data);
            // Scanned once: keep the pages out of this process.
            evidence.release(c.offset, end);
            Ok((m, note, n, false))
        };
        let each = full
            .scan_in_groups(limits, files, |c| c.length, scan_one)
            .into_iter()
            .collect::<Result<Vec<One>, YaraError>>()?;
        let mut out = CarvedScan::default();
        for ((m, note, n, skipped), c) in each.into_iter().zip(files) {
            out.matches.extend(m);
            out.notes.extend(note);
            out.bytes += n;
            if skipped {
                out.skipped_bytes += c.length;
                out.skipped_files += 1;
            }
        }
        Ok(out)
    }

    /// Splits whole-image candidates into those evaluated block by block
    /// ([`ImageRules::scan_blocks`]: conditions on pattern matches alone) and
    /// those that need the image as one buffer (modules, `filesize`, data
    /// reads, other rules).
    ///
    /// When the whole set may scan the image without searching it for
    /// patterns (see [`ImageRules::searches_always`]), every candidate needs
    /// the image as one buffer: yara-x's block scanner always searches.
    pub fn split_whole(&self, candidates: &[(String, String)]) -> (Vec<RuleKey>, Vec<RuleKey>) {
        if !self.searches_always {
            return (Vec::new(), candidates.to_vec());
        }
        candidates.iter().cloned().partition(|(ns, r)| {
            self.set
                .index
                .get(ns, r)
                .is_some_and(|(_, info)| info.blockable)
        })
    }

    /// Whether a scan of the image with the whole rule set surely searches
    /// it for patterns: some rule it evaluates whatever the data (in a file
    /// without global rules, which could stop the evaluation of the others)
    /// reaches a pattern test first. yara-x searches lazily, when a
    /// condition first needs a pattern, and only then reports the strings
    /// of the rules that match — whichever rule made it search. When this
    /// holds, the whole-image step makes its own scans search too (blocks
    /// always do; a scan of a subset is given a rule that searches); when
    /// it does not, the whole set evaluates the candidates, as the
    /// reference does.
    pub fn searches_always(&self) -> bool {
        self.searches_always
    }

    /// Evaluates `candidates` whose conditions depend on pattern matches
    /// only, over the image read block by block (the shard size, with
    /// [`BACK_CONTEXT`] before and [`MIN_FORWARD`] after each block, like the
    /// shards): the same matches as one scan of the whole image, in bounded
    /// memory — each block's pages are released once scanned.
    ///
    /// `windows` (sorted `[from, to)` ranges; see [`hit_windows`]) limits
    /// the reading to the regions around the candidates' pattern matches
    /// that the shards listed: every match lies in one, with the context
    /// its shard saw, so the conditions evaluate as over the whole image.
    /// `None` reads the whole image.
    ///
    /// # Errors
    /// The subset failing to compile, or the evidence failing to read.
    pub fn scan_blocks(
        &self,
        evidence: &dyn Evidence,
        block: u64,
        candidates: &[(String, String)],
        windows: Option<&[(u64, u64)]>,
        limits: Limits,
        cancel: &AtomicBool,
    ) -> Result<(Vec<YaraMatch>, Vec<Note>), YaraError> {
        let Some(subset) = self.compile_candidates(candidates)? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut scanner = yara_x::blocks::Scanner::new(&subset.rules);
        scanner.set_timeout(limits.timeout);
        scanner.max_matches_per_pattern(limits.max_matches);
        let size = evidence.size();
        let whole = [(0, size)];
        let regions = windows.unwrap_or(&whole);
        let block = block.max(1 << 20);
        let t = Instant::now();
        let mut notes = Vec::new();
        let mut bytes = 0u64;
        for &(region_start, region_end) in regions {
            let region_end = region_end.min(size);
            let mut start = region_start;
            while start < region_end {
                if cancel.load(Ordering::Relaxed) {
                    return Err(YaraError::Cancelled);
                }
                // Blocks overlap by the shards' context, within the region;
                // a region not much longer than a block is read at once.
                let from = start.saturating_sub(BACK_CONTEXT).max(region_start);
                let to = if region_end - from <= block + BACK_CONTEXT + MIN_FORWARD {
                    region_end
                } else {
                    (start + block + MIN_FORWARD).min(region_end)
                };
                let data = evidence.region(from, to)?;
                let scanned = scanner.scan(from as usize, &data).map(|_| ());
                drop(data);
                evidence.release(from, to);
                bytes += to - from;
                if let Err(e) = scanned {
                    notes.push(Note {
                        analysis: "yara".into(),
                        offset: start,
                        message: format!(
                            "YARA whole-image evaluation failed at bytes {from}..{to}: {e}; {} rule(s) undecided",
                            candidates.len()
                        ),
                    });
                    return Ok((Vec::new(), notes));
                }
                if to == region_end {
                    break;
                }
                start += block;
            }
        }
        if bytes == 0 {
            // No region to read (no match anywhere): the conditions are
            // still evaluated, over no data.
            if let Err(e) = scanner.scan(0, &[]) {
                notes.push(Note {
                    analysis: "yara".into(),
                    offset: 0,
                    message: format!(
                        "YARA whole-image evaluation failed: {e}; {} rule(s) undecided",
                        candidates.len()
                    ),
                });
                return Ok((Vec::new(), notes));
            }
        }
        let (out, more) = whole_outcome(candidates, scanner.finish());
        notes.extend(more);
        tracing::info!(
            candidates = candidates.len(),
            windows = regions.len(),
            bytes,
            image = size,
            seconds = t.elapsed().as_secs_f64(),
            "YARA whole-image evaluation in blocks"
        );
        Ok((out, notes))
    }

    /// Evaluates `candidates` (namespace, rule) on the whole image `data`,
    /// compiling only them and what they depend on.
    ///
    /// # Errors
    /// The subset failing to compile.
    pub fn scan_whole(
        &self,
        data: &[u8],
        candidates: &[(String, String)],
        limits: Limits,
    ) -> Result<(Vec<YaraMatch>, Vec<Note>), YaraError> {
        let Some(subset) = self.compile_candidates(candidates)? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut scanner = subset.scanner(limits);
        let t = Instant::now();
        let scanned = scanner.scan(data);
        tracing::info!(
            candidates = candidates.len(),
            bytes = data.len(),
            seconds = t.elapsed().as_secs_f64(),
            "YARA whole-image evaluation"
        );
        Ok(whole_outcome(candidates, scanned))
    }

    /// The live rules among `candidates`, compiled with what they depend
    /// on; `None` when there are none (pruned by the image's facts, or in
    /// files that did not compile, which are listed as refused elsewhere).
    fn compile_candidates(&self, candidates: &[RuleKey]) -> Result<Option<SharedRules>, YaraError> {
        let refs: Vec<index::RuleRef> = candidates
            .iter()
            .filter_map(|(ns, r)| self.set.index.get(ns, r).map(|(rf, _)| rf))
            .filter(|rf| self.live_set.contains(rf))
            .collect();
        if refs.is_empty() {
            return Ok(None);
        }
        // A rule yara-x decides by how the set numbered its patterns is
        // evaluated with the whole set, as the reference compiles it (the
        // other candidates give the same answer there); so is every rule
        // when the whole set may not search the image for patterns.
        if !self.searches_always
            || refs
                .iter()
                .any(|&(f, r)| self.set.index.files[f].rules[r].layout_dependent)
        {
            return match self.set.full() {
                Ok(c) => Ok(Some(c)),
                Err(YaraError::Settings(m)) if m.contains("no YARA rule compiled") => Ok(None),
                Err(e) => Err(e),
            };
        }
        // The whole set searches the image for patterns whatever it holds:
        // the subset must too (its rules may all be decided without a
        // pattern, and would then report no strings). A rule of its own,
        // last (the numbering of the others is kept), searches first.
        let mut sources = self.set.index.subset(&refs);
        sources.push(RuleSource {
            name: SEARCH_NAMESPACE.into(),
            text: SEARCH_RULE.into(),
        });
        match compile_cached(&sources, false) {
            Ok(c) => Ok(Some(c)),
            Err(YaraError::Settings(m)) if m.contains("no YARA rule compiled") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The namespace of [`SEARCH_RULE`] (no rule file can be named so).
const SEARCH_NAMESPACE: &str = "<trawl: pattern search>";
/// A rule whose evaluation makes yara-x search the data for patterns (its
/// own pattern, 16 arbitrary bytes, practically never occurs; its result
/// is never reported).
const SEARCH_RULE: &str = "private rule pattern_search { strings: $s = { 9F 3A 71 C4 0B E8 52 D6 2F 8C 17 A9 64 F0 3B 5E } condition: $s }\n";

/// The regions the whole-image step reads for rules evaluated block by
/// block, from the spans `(offset, length)` of their matches listed by the
/// shards ([`scope::HIT_SPANS`]): each span widened as a shard's window is
/// ([`BACK_CONTEXT`] before, [`MIN_FORWARD`] after), clipped to the image,
/// sorted and merged into `[from, to)` ranges.
///
/// A region grown past `block` bytes is cut before the next span, at a
/// point no listed span crosses (so no match is seen truncated at a
/// region's start); the new region starts up to [`BACK_CONTEXT`] before
/// that span.
pub fn hit_windows(
    spans: impl IntoIterator<Item = (u64, u64)>,
    size: u64,
    block: u64,
) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = spans
        .into_iter()
        .filter(|&(off, _)| off < size)
        .map(|(off, len)| (off, off.saturating_add(len.max(1)).min(size)))
        .collect();
    spans.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    // The furthest end of the spans seen so far.
    let mut reach = 0u64;
    for (start, end) in spans {
        let from = start.saturating_sub(BACK_CONTEXT);
        let to = end.saturating_add(MIN_FORWARD).min(size);
        match out.last_mut() {
            Some(last) if from <= last.1 && (last.1 - last.0 < block || reach > start) => {
                last.1 = last.1.max(to);
            }
            Some(last) if from <= last.1 => {
                // Cut: the region is long enough and nothing crosses `reach`.
                let cut = from.max(reach).max(last.0);
                out.push((cut, to));
            }
            _ => out.push((from, to)),
        }
        reach = reach.max(end);
    }
    out
}

/// The final image matches of the whole-image step among `candidates`
/// (the subset compiled for them may hold the rules they depend on), or a
/// note that they stay undecided.
fn whole_outcome(
    candidates: &[RuleKey],
    scanned: Result<yara_x::ScanResults<'_, '_>, yara_x::ScanError>,
) -> (Vec<YaraMatch>, Vec<Note>) {
    match scanned {
        Ok(results) => {
            let wanted: HashSet<&RuleKey> = candidates.iter().collect();
            let out = results
                .matching_rules()
                .filter(|rule| {
                    wanted.contains(&(rule.namespace().to_string(), rule.identifier().to_string()))
                })
                .map(|rule| final_match(&rule, "image", 0))
                .collect();
            (out, Vec::new())
        }
        Err(e) => (
            Vec::new(),
            vec![Note {
                analysis: "yara".into(),
                offset: 0,
                message: format!(
                    "YARA whole-image evaluation failed: {e}; {} rule(s) undecided",
                    candidates.len()
                ),
            }],
        ),
    }
}

fn metadata_json(rule: &yara_x::Rule) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in rule.metadata() {
        let val = match v {
            yara_x::MetaValue::Integer(i) => serde_json::json!(i),
            yara_x::MetaValue::Float(f) => serde_json::json!(f),
            yara_x::MetaValue::Bool(b) => serde_json::json!(b),
            yara_x::MetaValue::String(s) => serde_json::json!(s),
            yara_x::MetaValue::Bytes(b) => serde_json::json!(String::from_utf8_lossy(b)),
        };
        m.insert(k.to_string(), val);
    }
    serde_json::Value::Object(m).to_string()
}

/// A record of `rule` for `target`: its identity, tags and metadata as the
/// compiled rules give them, with `strings`.
fn rule_match(
    rule: &yara_x::Rule,
    target: String,
    target_offset: u64,
    strings: Vec<YaraString>,
) -> YaraMatch {
    YaraMatch {
        target,
        target_offset,
        rule: rule.identifier().to_string(),
        namespace: rule.namespace().to_string(),
        tags: rule.tags().map(|t| t.identifier().to_string()).collect(),
        metadata_json: metadata_json(rule),
        strings,
    }
}

fn shard_record(
    rule: &yara_x::Rule,
    scope: &str,
    matched: bool,
    strings: Vec<YaraString>,
) -> YaraMatch {
    let target = if matched {
        format!("{scope}:matched")
    } else {
        scope.to_string()
    };
    rule_match(rule, target, 0, strings)
}

/// Whether a carved file's bytes are the image's `[offset, offset +
/// length)` (no byte runs, or runs that say so).
fn contiguous(c: &trawl_core::CarvedFile) -> bool {
    c.byte_runs
        .iter()
        .all(|r| r.img_offset.checked_sub(r.file_offset) == Some(c.offset))
}

/// A carved file's bytes read through its byte runs.
fn pieces(evidence: &dyn Evidence, c: &trawl_core::CarvedFile) -> Result<Vec<u8>, YaraError> {
    let mut data = vec![0u8; c.length.min(MAX_PIECED as u64) as usize];
    for r in &c.byte_runs {
        let s = usize::try_from(r.file_offset).unwrap_or(usize::MAX);
        let e = s.saturating_add(usize::try_from(r.len).unwrap_or(usize::MAX));
        let Some(dst) = data.get_mut(s..e) else {
            return Err(YaraError::Settings(format!(
                "carved file at {}: byte run {}+{} past its length {}",
                c.offset, r.file_offset, r.len, c.length
            )));
        };
        evidence.read_exact_at(r.img_offset, dst)?;
    }
    Ok(data)
}

/// The largest carved file in pieces scanned (assembled in memory).
const MAX_PIECED: usize = 1 << 30;

fn final_match(rule: &yara_x::Rule, target: &str, base: u64) -> YaraMatch {
    let mut strings = Vec::new();
    for p in rule.patterns() {
        for m in p.matches() {
            strings.push(YaraString {
                id: p.identifier().to_string(),
                offset: m.range().start as u64,
                length: m.range().len() as u64,
            });
        }
    }
    strings.sort();
    rule_match(rule, target.to_string(), base, strings)
}

/// Merges per-shard records into the image's shard-decided matches, and the
/// hits that make rules candidates of the whole-image step.
///
/// Returns (final matches of shard-decided rules, candidate rules with hits).
/// A pattern's matches are capped image-wide at `max_matches` (the first
/// ones by offset, as a scan of the whole image keeps them); capped
/// patterns are listed in the returned notes.
pub fn merge_shard_records(
    records: &[YaraMatch],
    max_matches: usize,
) -> (Vec<YaraMatch>, Vec<(String, String)>, Vec<Note>) {
    let mut shard: BTreeMap<(String, String), (bool, YaraMatch)> = BTreeMap::new();
    let mut hits: Vec<(String, String)> = Vec::new();
    for r in records {
        let key = (r.namespace.clone(), r.rule.clone());
        if r.target.starts_with(scope::SHARD) {
            let matched = r.target.ends_with(":matched");
            let e = shard.entry(key).or_insert_with(|| {
                (
                    false,
                    YaraMatch {
                        target: "image".into(),
                        strings: Vec::new(),
                        ..r.clone()
                    },
                )
            });
            e.0 |= matched;
            e.1.strings.extend(r.strings.iter().cloned());
        } else if r.target.starts_with(scope::HIT) {
            hits.push(key);
        }
    }
    hits.sort();
    hits.dedup();
    let max = if max_matches == 0 {
        DEFAULT_MAX_MATCHES
    } else {
        max_matches
    };
    let mut notes = Vec::new();
    let finals = shard
        .into_values()
        .filter(|(m, _)| *m)
        .map(|(_, mut y)| {
            // Per pattern, in offset order, at most `max` matches.
            y.strings.sort_by(|a, b| (&a.id, a.offset, a.length).cmp(&(&b.id, b.offset, b.length)));
            y.strings.dedup();
            let mut kept = Vec::with_capacity(y.strings.len());
            let mut run = 0usize;
            let mut last_id: Option<String> = None;
            for st in std::mem::take(&mut y.strings) {
                if last_id.as_deref() != Some(st.id.as_str()) {
                    run = 0;
                    last_id = Some(st.id.clone());
                }
                run += 1;
                if run <= max {
                    kept.push(st);
                } else if run == max + 1 {
                    notes.push(Note {
                        analysis: "yara".into(),
                        offset: 0,
                        message: format!(
                            "string {} of rule {}:{} has more than {max} matches; the first {max} are reported",
                            st.id, y.namespace, y.rule
                        ),
                    });
                }
            }
            kept.sort();
            y.strings = kept;
            y
        })
        .collect();
    (finals, hits, notes)
}

/// A rule set shared by the scans of one job (compiled once per worker,
/// cached by digest).
pub type SharedRules = Arc<CompiledRules>;

/// Compiled rule sets of this process, by (digest, strict); each compiled
/// once even when several threads ask at the same time.
type Slot = Arc<std::sync::OnceLock<Result<SharedRules, String>>>;
static CACHE: std::sync::Mutex<Vec<((String, bool), Slot)>> = std::sync::Mutex::new(Vec::new());
const CACHE_SETS: usize = 8;

/// Compiles `sources`, or returns the copy compiled earlier in this process
/// (rule sets are compiled once per worker, keyed by the BLAKE3 of their
/// sources; compiled rules are never read from anywhere else).
///
/// # Errors
/// As [`CompiledRules::compile`].
pub fn compile_cached(sources: &[RuleSource], strict: bool) -> Result<SharedRules, YaraError> {
    let key = (digest(sources), strict);
    let slot: Slot = {
        let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        match c.iter().find(|(k, _)| *k == key) {
            Some((_, s)) => s.clone(),
            None => {
                if c.len() >= CACHE_SETS {
                    c.remove(0);
                }
                let s: Slot = Arc::default();
                c.push((key, s.clone()));
                s
            }
        }
    };
    slot.get_or_init(|| {
        let t = Instant::now();
        let compiled = CompiledRules::compile(sources, strict).map_err(|e| e.to_string())?;
        tracing::info!(
            digest = %compiled.digest(),
            files = sources.len(),
            rules = compiled.rule_count(),
            seconds = t.elapsed().as_secs_f64(),
            "compiled YARA rule set"
        );
        Ok(Arc::new(compiled))
    })
    .clone()
    .map_err(YaraError::Settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_scopes_are_shard_records() {
        for target in [scope::SHARD, "shard:matched", scope::HIT, scope::HIT_SPANS] {
            let y = YaraMatch {
                target: target.into(),
                target_offset: 0,
                rule: "r".into(),
                namespace: "n".into(),
                tags: Vec::new(),
                metadata_json: "{}".into(),
                strings: Vec::new(),
            };
            assert!(y.is_shard_record(), "{target}");
        }
        let carved = YaraMatch {
            target: "carved/jpg/1024.jpg".into(),
            target_offset: 1024,
            rule: "r".into(),
            namespace: "n".into(),
            tags: Vec::new(),
            metadata_json: "{}".into(),
            strings: Vec::new(),
        };
        assert!(!carved.is_shard_record());
    }

    #[test]
    fn hit_windows_widen_clip_and_merge() {
        let size = 10 << 20;
        // Two nearby hits merge; a far one stands alone; one at the end is
        // clipped; a span past the image is dropped.
        let w = hit_windows(
            [
                (100_000, 10),
                (150_000, 20),
                (5 << 20, 4),
                (size - 3, 3),
                (size + 5, 1),
            ],
            size,
            64 << 20,
        );
        assert_eq!(
            w,
            vec![
                (100_000 - BACK_CONTEXT, 150_020 + MIN_FORWARD),
                ((5 << 20) - BACK_CONTEXT, (5 << 20) + 4 + MIN_FORWARD),
                (size - 3 - BACK_CONTEXT, size),
            ]
        );
        assert!(hit_windows([], size, 1 << 20).is_empty());
        // At the image start nothing goes below 0.
        assert_eq!(
            hit_windows([(10, 5)], size, 1 << 20),
            vec![(0, 15 + MIN_FORWARD)]
        );
    }

    #[test]
    fn long_regions_are_cut_where_no_span_crosses() {
        // Hits every 32 KiB over 8 MiB: one region, cut past 1 MiB.
        let spans: Vec<(u64, u64)> = (0..256).map(|i| (i * 32_768 + 5_000, 100)).collect();
        let w = hit_windows(spans.clone(), 64 << 20, 1 << 20);
        assert!(w.len() > 4, "{w:?}");
        for pair in w.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                a.0 < b.0 && b.0 <= a.1,
                "sorted and overlapping: {a:?} {b:?}"
            );
            // No span crosses the start of the next region.
            assert!(
                spans.iter().all(|&(o, l)| !(o < b.0 && o + l > b.0)),
                "span across {}",
                b.0
            );
        }
        // Every span lies in a region with its context.
        for &(o, l) in &spans {
            assert!(
                w.iter()
                    .any(|&(f, t)| f <= o.saturating_sub(BACK_CONTEXT).max(f)
                        && f <= o
                        && o + l + MIN_FORWARD <= t),
                "span {o}"
            );
        }
        // A span overlapping the next one's start is never cut before.
        let w = hit_windows([(0, 2 << 20), (1 << 20, 10)], 64 << 20, 1 << 20);
        assert_eq!(w, vec![(0, (2 << 20) + MIN_FORWARD)]);
    }
}

/// The three-valued evaluation of conditions under a target's facts
/// ([`classify::eval`]: size, integers at fixed offsets, `pe.is_pe`,
/// patterns known absent or unknown) decides rules without a scan: rules
/// dead on an image, carved files known to match or not. Whatever it
/// decides must be what yara-x answers, on generated conditions and data.
#[cfg(test)]
mod facts_tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Patterns no sample holds.
    const PATTERNS: [&str; 4] = [
        "$a = \"TRAWL-ABSENT-A\"",
        "$b = { 00 54 52 41 57 4C 00 }",
        "$c1 = /TRAWL-[0-9]{3}-ABSENT/",
        "$c2 = \"TRAWL-ABSENT-C2\" wide",
    ];

    fn sample(rng: &mut ChaCha8Rng) -> Vec<u8> {
        let len = [0, 1, 2, 3, 4, 7, 8, 64, 100, 257, 1000][rng.gen_range(0..11)];
        let mut v: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        let magic: &[u8] = match rng.gen_range(0..5) {
            0 => b"MZ",
            1 => b"PK\x03\x04",
            2 => b"\xff\xd8\xff",
            _ => b"",
        };
        let n = magic.len().min(v.len());
        v[..n].copy_from_slice(&magic[..n]);
        v
    }

    fn int_atom(rng: &mut ChaCha8Rng) -> String {
        match rng.gen_range(0..6) {
            0 => "filesize".into(),
            1 => format!("filesize + {}", rng.gen_range(0..10)),
            2 => format!(
                "filesize * {}",
                [2i64, 1 << 40, i64::MAX][rng.gen_range(0..3)]
            ),
            3 => format!("{} - filesize", rng.gen_range(0..300)),
            _ => {
                let f = ["uint8", "uint16", "uint32be", "int8", "int16be", "int32"]
                    [rng.gen_range(0..6)];
                let off = rng.gen_range(0..10usize);
                let off = if rng.gen_ratio(1, 5) {
                    format!("uint8({}) + {off}", rng.gen_range(0..4))
                } else {
                    off.to_string()
                };
                format!("{f}({off})")
            }
        }
    }

    fn value(rng: &mut ChaCha8Rng, samples: &[Vec<u8>]) -> String {
        // Values the samples have (sizes, bytes), or small numbers.
        let s = &samples[rng.gen_range(0..samples.len())];
        match rng.gen_range(0..4) {
            0 => s.len().to_string(),
            1 if s.len() >= 2 => (u16::from(s[0]) | (u16::from(s[1]) << 8)).to_string(),
            2 if !s.is_empty() => s[0].to_string(),
            _ => rng.gen_range(-2..300).to_string(),
        }
    }

    fn cond(depth: u32, rng: &mut ChaCha8Rng, samples: &[Vec<u8>], pe: bool) -> String {
        if depth == 0 || rng.gen_ratio(1, 3) {
            let op = ["==", "!=", "<", ">", "<=", ">="][rng.gen_range(0..6)];
            return match rng.gen_range(0..12) {
                0 => "$a".into(),
                1 => format!("$b at {}", rng.gen_range(0..4)),
                2 => format!("#a {op} {}", rng.gen_range(0..3)),
                3 => format!(
                    "{} of them",
                    ["any", "all", "none", "0", "1", "3", "10%", "0%", "100%"][rng.gen_range(0..9)]
                ),
                4 => format!(
                    "{} of ($c*)",
                    ["any", "all", "none", "1", "2", "50%"][rng.gen_range(0..6)]
                ),
                5 => format!(
                    "for {} of ($a, $c*) : (# {op} {})",
                    ["any", "all", "none", "1", "2", "0"][rng.gen_range(0..6)],
                    rng.gen_range(0..2)
                ),
                6 => {
                    let n = rng.gen_range(1..4);
                    let items: Vec<String> = (0..n).map(|_| cond(0, rng, samples, pe)).collect();
                    format!(
                        "{} of ({})",
                        ["any", "all", "none", "1", "2", "0", "50%"][rng.gen_range(0..7)],
                        items.join(", ")
                    )
                }
                7 if pe => "pe.is_pe".into(),
                8 => ["true", "false"][rng.gen_range(0..2)].into(),
                _ => format!("{} {op} {}", int_atom(rng), value(rng, samples)),
            };
        }
        let a = cond(depth - 1, rng, samples, pe);
        let b = cond(depth - 1, rng, samples, pe);
        match rng.gen_range(0..5) {
            0 | 1 => format!("({a} and {b})"),
            2 | 3 => format!("({a} or {b})"),
            _ => format!("not ({a})"),
        }
    }

    #[test]
    fn decided_conditions_are_what_yara_x_answers() {
        let mut decided = 0usize;
        let mut checked = 0usize;
        // More seeds by hand: TRAWL_FACTS_SEEDS=500.
        let seeds: u64 = std::env::var("TRAWL_FACTS_SEEDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6);
        for seed in 0..seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let samples: Vec<Vec<u8>> = (0..24).map(|_| sample(&mut rng)).collect();
            let pe = seed % 2 == 0;
            let mut src = String::new();
            if pe {
                src.push_str("import \"pe\"\n");
            }
            for i in 0..300 {
                let c = cond(rng.gen_range(0..4), &mut rng, &samples, pe);
                // Every pattern used (yara-x refuses unused ones).
                let _ = std::fmt::Write::write_fmt(
                    &mut src,
                    format_args!(
                        "rule r{i} {{ strings: {} condition: ({c}) or (false and any of them) }}\n",
                        PATTERNS.join(" ")
                    ),
                );
            }
            let infos = classify_source(&src);
            let rules = CompiledRules::compile(
                &[RuleSource {
                    name: "gen".into(),
                    text: src.clone(),
                }],
                false,
            )
            .unwrap();
            let compiled: HashSet<String> =
                rules.rule_names().into_iter().map(|(_, r)| r).collect();
            assert!(
                compiled.len() > 250,
                "seed {seed}: {} compiled",
                compiled.len()
            );
            let mut scanner = rules.file_scanner(Limits::default());
            for data in &samples {
                let (m, _) = rules.scan_file(&mut scanner, data, "t", 0, &[]).unwrap();
                let matched: HashSet<&str> = m.iter().map(|y| y.rule.as_str()).collect();
                let read = |r: classify::Read, off: i64| -> Option<i64> {
                    let o = usize::try_from(off).ok()?;
                    Some(r.decode(data.get(o..o.checked_add(usize::from(r.bytes))?)?))
                };
                for info in infos.iter().filter(|i| compiled.contains(&i.name)) {
                    let truth = matched.contains(info.name.as_str());
                    for patterns in [Some(false), None] {
                        let env = classify::Env {
                            patterns,
                            filesize: i64::try_from(data.len()).ok(),
                            read: Some(&read),
                        };
                        let got = classify::eval(&info.condition, &env);
                        checked += 1;
                        if got != classify::Tri::Unknown {
                            decided += 1;
                            assert_eq!(
                                got == classify::Tri::True,
                                truth,
                                "seed {seed}, rule {} on {} bytes {:02x?}..., patterns {patterns:?}: eval says {got:?}, yara-x {truth}",
                                src.lines()
                                    .find(|l| l.starts_with(&format!("rule {} ", info.name)))
                                    .unwrap_or_default(),
                                data.len(),
                                &data[..data.len().min(8)]
                            );
                        }
                    }
                }
            }
        }
        println!(
            "{decided} of {checked} (rule, sample, knowledge) evaluations decided, all as yara-x"
        );
        assert!(
            decided * 3 > checked,
            "too few decided: {decided} of {checked}"
        );
    }
}
