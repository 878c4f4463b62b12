//! Report paths: the one place a path inside a report folder is built.
//!
//! Names carried by results become file and folder names: a feature's
//! recorder (`features/NAME.txt`), a carved file's type and extension
//! (`carved/TYPE/OFFSET.EXT`), an image's name (one report folder per image
//! in `trawl scan`), a job id (the top folder of the dashboard's archive).
//! Results come from workers and schedulers, which may be compromised, so
//! every such name is checked twice:
//!
//! 1. against its allowed set where it enters ([`NameCheck`], used by
//!    [`check_names`] before a report is written and by the scheduler when
//!    a worker reports a task): feature recorders are the scanners' names,
//!    `NAME_stopped` and `alerts`
//!    ([`trawl_features::is_recorder_name`]); carved types and
//!    extensions those of the carver's type table or of a custom type as
//!    the carver derives it ([`trawl_carve::is_output_type`]);
//!    YARA targets `image`, a shard record's scope or a carved file's path;
//! 2. where the file is created: a [`RelPath`] can only be made of checked
//!    components, and [`ReportDir::file`], the only function that turns one
//!    into a file-system path, checks every component again and that the
//!    result is the report folder followed by plain names. Folders are
//!    created by [`ReportDir::create_dir`] and files by
//!    [`ReportDir::create_file`], which check that the folder resolves
//!    (symbolic links followed) inside the report folder and refuse to
//!    write through a symbolic link in the file's place.
//!
//! A path component is refused when it is empty, `.` or `..`, longer than
//! 255 bytes, or holds `/`, `\` or a control character (NUL included).
//! Refusals name the field, the record and the value, escaped
//! ([`quote`]).

use crate::ReportError;
use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Longest path component accepted, in bytes (file systems allow 255).
pub const MAX_COMPONENT: usize = 255;
/// Characters of a refused value shown in an error.
const MAX_SHOWN: usize = 120;
/// Refusals listed in one error (the rest are counted).
const MAX_LISTED: usize = 10;

/// `value` quoted for an error message: quotes, backslashes and control
/// characters escaped (`"\0"`, `"\n"`, `"\u{1b}"`), cut after 120
/// characters (the full length given).
pub fn quote(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_SHOWN).collect();
        format!("{head:?}… ({} bytes)", value.len())
    }
}

/// Why `name` cannot be one component of a report path, if it cannot.
pub fn component_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name == "." || name == ".." {
        Some("a reference to a folder (. or ..)")
    } else if name.len() > MAX_COMPONENT {
        Some("longer than 255 bytes")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator (/ or \\)")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character (NUL, newline, ...)")
    } else {
        None
    }
}

/// A name refused as (part of) a report path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// What the name is, and the record it came from when known
    /// (`feature 3 (offset 4096): scanner`).
    pub field: String,
    /// The value as received, quoted ([`quote`]).
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

impl NameError {
    fn new(field: impl Into<String>, value: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: quote(value),
            reason: reason.into(),
        }
    }

    /// The same refusal, with the record it came from before the field.
    fn at(mut self, record: String) -> Self {
        self.field = format!("{record}: {}", self.field);
        self
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} refused: {}", self.field, self.value, self.reason)
    }
}

impl std::error::Error for NameError {}

fn component(field: &str, name: &str) -> Result<(), NameError> {
    match component_problem(name) {
        Some(why) => Err(NameError::new(field, name, why)),
        None => Ok(()),
    }
}

/// Checks a feature's recorder name (`features/NAME.txt`): a scanner's
/// name, `NAME_stopped` or `alerts`.
///
/// # Errors
/// Anything else, named.
pub fn check_scanner(name: &str) -> Result<(), NameError> {
    const FIELD: &str = "feature scanner";
    component(FIELD, name)?;
    if !trawl_features::is_recorder_name(name) {
        return Err(NameError::new(
            FIELD,
            name,
            "not a feature recorder of trawl (a scanner's name, NAME_stopped or alerts)",
        ));
    }
    Ok(())
}

/// Checks a carved file's type (the folder `carved/TYPE/`): a type of the
/// carver's type table, or a custom type's name as the carver derives it.
///
/// # Errors
/// Anything else, named.
pub fn check_carved_type(name: &str) -> Result<(), NameError> {
    const FIELD: &str = "carved file type";
    component(FIELD, name)?;
    if !trawl_carve::is_output_type(name) {
        return Err(NameError::new(
            FIELD,
            name,
            "not a carved file type (a built-in type, or 1 to 32 of a-z 0-9 _ - for a custom type)",
        ));
    }
    Ok(())
}

/// Checks a carved file's extension (`carved/TYPE/OFFSET.EXT`).
///
/// # Errors
/// Anything but an extension the carver gives, named.
pub fn check_carved_extension(ext: &str) -> Result<(), NameError> {
    const FIELD: &str = "carved file extension";
    component(FIELD, ext)?;
    if !trawl_carve::is_output_extension(ext) {
        return Err(NameError::new(
            FIELD,
            ext,
            "not a carved file extension (a built-in one, or 1 to 32 of A-Z a-z 0-9 _ - for a custom type)",
        ));
    }
    Ok(())
}

/// Targets of YARA records that are not carved files: the image, and the
/// scopes of a shard's partial records (`trawl_yara::scope`).
const YARA_TARGETS: [&str; 5] = ["image", "shard", "shard:matched", "hit", "hit:spans"];

/// Checks a YARA match's target: `image`, a shard record's scope, or the
/// report path of a carved file (`carved/TYPE/OFFSET.EXT`, each part as the
/// carver names it).
///
/// # Errors
/// Anything else, named.
pub fn check_yara_target(target: &str) -> Result<(), NameError> {
    const FIELD: &str = "YARA target";
    if YARA_TARGETS.contains(&target) {
        return Ok(());
    }
    // A file-system file (`fs:PARTITION_OFFSET/PATH`): written only inside
    // yara/matches.jsonl, never made a path of the report folder.
    if let Some(rest) = target.strip_prefix("fs:") {
        let ok = rest.split_once('/').is_some_and(|(part, path)| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && part.parse::<u64>().is_ok()
                && !path.is_empty()
                && path.len() <= 16 * 1024
                && !path.contains('\0')
        });
        if ok {
            return Ok(());
        }
        return Err(NameError::new(
            FIELD,
            target,
            "not a file-system file's target fs:PARTITION_OFFSET/PATH",
        ));
    }
    let carved = target
        .strip_prefix("carved/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(ty, file)| Some((ty, file.split_once('.')?)))
        .filter(|(_, (off, _))| !off.is_empty() && off.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(ty, (off, ext))| Some((ty, off.parse::<u64>().ok()?, ext)));
    let Some((ty, offset, ext)) = carved else {
        return Err(NameError::new(
            FIELD,
            target,
            "neither image, a shard record nor a carved file's path carved/TYPE/OFFSET.EXT",
        ));
    };
    let rel = RelPath::carved_file(ty, offset, ext).map_err(|e| e.at(FIELD.into()))?;
    if rel.as_str() != target {
        return Err(NameError::new(
            FIELD,
            target,
            format!("not in the form of a carved file's path ({rel})"),
        ));
    }
    Ok(())
}

/// A relative path inside a report folder, made only of checked components
/// joined by `/`. Turned into a file-system path by [`ReportDir::file`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

impl RelPath {
    /// A path from `/`-separated components, each checked (`field` names
    /// what the path is in a refusal).
    ///
    /// # Errors
    /// A component that cannot be part of a report path.
    pub fn parse(field: &str, path: &str) -> Result<Self, NameError> {
        for c in path.split('/') {
            if let Some(why) = component_problem(c) {
                return Err(NameError::new(
                    field,
                    path,
                    format!("component {}: {why}", quote(c)),
                ));
            }
        }
        Ok(Self(path.to_string()))
    }

    /// A path of one component, e.g. an image's report folder in
    /// `trawl scan`.
    ///
    /// # Errors
    /// A name that cannot be a path component.
    pub fn name(field: &str, name: &str) -> Result<Self, NameError> {
        component(field, name)?;
        Ok(Self(name.to_string()))
    }

    /// `features/NAME.txt`, the feature file of recorder `scanner`.
    ///
    /// # Errors
    /// As [`check_scanner`].
    pub fn feature_file(scanner: &str) -> Result<Self, NameError> {
        check_scanner(scanner)?;
        Ok(Self(format!("features/{scanner}.txt")))
    }

    /// `features/NAME.pcap`, the packets of recorder `scanner`.
    ///
    /// # Errors
    /// As [`check_scanner`].
    pub fn pcap_file(scanner: &str) -> Result<Self, NameError> {
        check_scanner(scanner)?;
        Ok(Self(format!("features/{scanner}.pcap")))
    }

    /// `features/annotated/NAME.txt`, feature file `scanner` with the file
    /// holding each feature.
    ///
    /// # Errors
    /// As [`check_scanner`].
    pub fn annotated_feature_file(scanner: &str) -> Result<Self, NameError> {
        check_scanner(scanner)?;
        Ok(Self(format!("features/annotated/{scanner}.txt")))
    }

    /// `features/NAME_histogram.txt`, the histogram of recorder `scanner`.
    ///
    /// # Errors
    /// As [`check_scanner`].
    pub fn histogram_file(scanner: &str) -> Result<Self, NameError> {
        check_scanner(scanner)?;
        Ok(Self(format!("features/{scanner}_histogram.txt")))
    }

    /// `carved/TYPE/OFFSET.EXT`, a carved file.
    ///
    /// # Errors
    /// As [`check_carved_type`] and [`check_carved_extension`].
    pub fn carved_file(file_type: &str, offset: u64, ext: &str) -> Result<Self, NameError> {
        check_carved_type(file_type)?;
        check_carved_extension(ext)?;
        Ok(Self(format!("carved/{file_type}/{offset}.{ext}")))
    }

    /// This path inside folder `top` (`TOP/PATH`).
    ///
    /// # Errors
    /// A `top` that cannot be a path component.
    pub fn under(&self, field: &str, top: &str) -> Result<Self, NameError> {
        component(field, top)?;
        Ok(Self(format!("{top}/{}", self.0)))
    }

    /// The folder holding this path, if it is not at the top.
    pub fn parent(&self) -> Option<Self> {
        self.0.rsplit_once('/').map(|(p, _)| Self(p.to_string()))
    }

    /// The path, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names of a set of results checked against their allowed sets; the
/// refusals are collected (the first ten kept, all counted).
#[derive(Debug, Default)]
pub struct NameCheck {
    count: usize,
    first: Vec<NameError>,
}

impl NameCheck {
    fn push(&mut self, e: NameError) {
        self.count += 1;
        if self.first.len() < MAX_LISTED {
            self.first.push(e);
        }
    }

    /// Feature number `index` (at image `offset`), of recorder `scanner`.
    pub fn feature(&mut self, index: usize, offset: u64, scanner: &str) {
        if let Err(e) = check_scanner(scanner) {
            self.push(e.at(format!("feature {index} (offset {offset})")));
        }
    }

    /// Carved file number `index` (at image `offset`).
    pub fn carved(&mut self, index: usize, offset: u64, file_type: &str, ext: &str) {
        let at = || format!("carved file {index} (offset {offset})");
        if let Err(e) = check_carved_type(file_type) {
            self.push(e.at(at()));
        }
        if let Err(e) = check_carved_extension(ext) {
            self.push(e.at(at()));
        }
    }

    /// YARA match number `index` (target at image `offset`).
    pub fn yara(&mut self, index: usize, offset: u64, target: &str) {
        if let Err(e) = check_yara_target(target) {
            self.push(e.at(format!("YARA match {index} (offset {offset})")));
        }
    }

    /// The refusals, if any.
    ///
    /// # Errors
    /// At least one name was refused.
    pub fn finish(self) -> Result<(), Refused> {
        if self.count == 0 {
            Ok(())
        } else {
            Err(Refused {
                count: self.count,
                first: self.first,
            })
        }
    }
}

/// Names of a set of results refused as report paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// How many names were refused.
    pub count: usize,
    /// The first ones (at most ten).
    pub first: Vec<NameError>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} name{} in the results cannot be report paths: ",
            self.count,
            if self.count == 1 { "" } else { "s" }
        )?;
        for (i, e) in self.first.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        if self.count > self.first.len() {
            write!(f, "; and {} more", self.count - self.first.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// Checks every name of `r` that becomes (or names) a report path: the
/// features' recorders, the carved files' types and extensions, the YARA
/// matches' targets.
///
/// # Errors
/// The names refused.
pub fn check_names(r: &crate::JobResults) -> Result<(), Refused> {
    let mut c = NameCheck::default();
    for (i, f) in r.features.iter().enumerate() {
        c.feature(i, f.offset, &f.scanner);
    }
    for (i, f) in r.carved.iter().enumerate() {
        c.carved(i, f.offset, &f.file_type, &f.extension);
    }
    for (i, y) in r.yara.iter().enumerate() {
        c.yara(i, y.target_offset, &y.target);
    }
    c.finish()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A report folder: every path inside it is built by [`ReportDir::file`].
#[derive(Debug)]
pub struct ReportDir {
    root: PathBuf,
    /// The folder with symbolic links resolved, once created.
    real: OnceLock<PathBuf>,
    /// Folders created and found inside the report folder.
    checked: Mutex<HashSet<PathBuf>>,
}

impl ReportDir {
    /// The report folder `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            real: OnceLock::new(),
            checked: Mutex::new(HashSet::new()),
        }
    }

    /// The folder, as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file-system path of `rel` inside the report folder: the only
    /// function that builds one. Every component of `rel` is checked again
    /// (as [`component_problem`]), and the result must be the report folder
    /// followed by plain names only.
    ///
    /// # Errors
    /// A component that cannot be part of a report path.
    pub fn file(&self, rel: &RelPath) -> Result<PathBuf, ReportError> {
        let mut p = self.root.clone();
        for c in rel.0.split('/') {
            if let Some(why) = component_problem(c) {
                return Err(NameError::new(
                    "report path",
                    &rel.0,
                    format!("component {}: {why}", quote(c)),
                )
                .into());
            }
            p.push(c);
        }
        let inside = p.strip_prefix(&self.root).is_ok_and(|r| {
            r.components().count() > 0 && r.components().all(|c| matches!(c, Component::Normal(_)))
        });
        if !inside {
            return Err(NameError::new(
                "report path",
                &rel.0,
                format!("not inside the report folder {}", self.root.display()),
            )
            .into());
        }
        Ok(p)
    }

    /// The report folder with symbolic links resolved, creating it first.
    fn real_root(&self) -> Result<&Path, ReportError> {
        if let Some(r) = self.real.get() {
            return Ok(r);
        }
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let real = fs::canonicalize(&self.root).map_err(io(&self.root))?;
        Ok(self.real.get_or_init(|| real))
    }

    /// Creates the report folder itself.
    ///
    /// # Errors
    /// File-system errors, naming the folder.
    pub fn create_root(&self) -> Result<(), ReportError> {
        self.real_root().map(|_| ())
    }

    /// Creates folder `path` (one of [`ReportDir::file`]'s paths, or the
    /// root) and those above it, and checks that it resolves inside the
    /// report folder.
    fn ensure_dir(&self, path: &Path) -> Result<(), ReportError> {
        let real_root = self.real_root()?;
        let seen = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(path);
        if seen {
            return Ok(());
        }
        fs::create_dir_all(path).map_err(io(path))?;
        let real = fs::canonicalize(path).map_err(io(path))?;
        if !real.starts_with(real_root) {
            return Err(ReportError::Other(format!(
                "{} resolves to {}, outside the report folder {}: refusing to write there",
                path.display(),
                real.display(),
                self.root.display()
            )));
        }
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf());
        Ok(())
    }

    /// Creates folder `rel` (and those above it) inside the report folder.
    ///
    /// # Errors
    /// As [`ReportDir::file`]; file-system errors; a folder that resolves
    /// (through a symbolic link) outside the report folder.
    pub fn create_dir(&self, rel: &RelPath) -> Result<PathBuf, ReportError> {
        let p = self.file(rel)?;
        self.ensure_dir(&p)?;
        Ok(p)
    }

    /// Creates (or truncates) file `rel` for writing, with its folders. A
    /// symbolic link in the file's place is not followed: refused.
    ///
    /// # Errors
    /// As [`ReportDir::create_dir`]; file-system errors, naming the file.
    pub fn create_file(&self, rel: &RelPath) -> Result<(PathBuf, fs::File), ReportError> {
        let p = self.file(rel)?;
        match p.parent() {
            Some(parent) => self.ensure_dir(parent)?,
            None => self.create_root()?,
        }
        let mut o = fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(libc::O_NOFOLLOW);
        }
        match o.open(&p) {
            Ok(f) => Ok((p, f)),
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(ReportError::Other(format!(
                "{}: a symbolic link is in the place of this report file: refusing to follow it",
                p.display()
            ))),
            Err(e) => Err(io(&p)(e)),
        }
    }

    /// Every folder and file under the report folder, sorted, as checked
    /// relative paths (`true` for a folder): what packing the report takes.
    ///
    /// # Errors
    /// File-system errors; a symbolic link, or a name that cannot be part
    /// of a report path.
    pub fn list(&self) -> Result<Vec<(RelPath, bool)>, ReportError> {
        let mut out = Vec::new();
        let mut stack: Vec<Option<RelPath>> = vec![None];
        while let Some(rel) = stack.pop() {
            let dir = match &rel {
                Some(r) => self.file(r)?,
                None => self.root.clone(),
            };
            let mut names = Vec::new();
            for e in fs::read_dir(&dir).map_err(io(&dir))? {
                let e = e.map_err(io(&dir))?;
                let name = e.file_name();
                let Some(name) = name.to_str() else {
                    return Err(NameError::new(
                        "report file name",
                        &name.to_string_lossy(),
                        "not UTF-8",
                    )
                    .into());
                };
                names.push(name.to_string());
            }
            names.sort();
            let mut subdirs = Vec::new();
            for name in names {
                let child = match &rel {
                    Some(r) => RelPath::parse("report file", &format!("{}/{name}", r.0))?,
                    None => RelPath::name("report file", &name)?,
                };
                let p = self.file(&child)?;
                let t = fs::symlink_metadata(&p).map_err(io(&p))?.file_type();
                if t.is_dir() {
                    out.push((child.clone(), true));
                    subdirs.push(child);
                } else if t.is_file() {
                    out.push((child, false));
                } else {
                    return Err(ReportError::Other(format!(
                        "{}: neither a file nor a folder (a symbolic link?): not packed",
                        p.display()
                    )));
                }
            }
            stack.extend(subdirs.into_iter().rev().map(Some));
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn components_refused_and_why() {
        for (name, why) in [
            ("", "empty"),
            (".", "a reference to a folder (. or ..)"),
            ("..", "a reference to a folder (. or ..)"),
            ("/tmp/x", "contains a path separator (/ or \\)"),
            ("a/b", "contains a path separator (/ or \\)"),
            ("..\\x", "contains a path separator (/ or \\)"),
            ("a\0b", "contains a control character (NUL, newline, ...)"),
            ("a\nb", "contains a control character (NUL, newline, ...)"),
        ] {
            assert_eq!(component_problem(name), Some(why), "{name:?}");
        }
        assert_eq!(
            component_problem(&"x".repeat(256)),
            Some("longer than 255 bytes")
        );
        for ok in ["email", "disk 1.E01", "trawl-job-7", "é.raw", "..x", "x.."] {
            assert_eq!(component_problem(ok), None, "{ok:?}");
        }
    }

    #[test]
    fn refusals_name_the_field_and_escape_the_value() {
        let e = RelPath::feature_file("../../../../tmp/y").unwrap_err();
        assert_eq!(
            e.to_string(),
            "feature scanner \"../../../../tmp/y\" refused: contains a path separator (/ or \\)"
        );
        let e = RelPath::feature_file("em\0ail\n").unwrap_err();
        assert_eq!(e.value, "\"em\\0ail\\n\"");
        let e = RelPath::feature_file("emails").unwrap_err();
        assert!(e.reason.starts_with("not a feature recorder"), "{e}");
        let e = RelPath::carved_file("jpg", 7, "../x").unwrap_err();
        assert_eq!(e.field, "carved file extension");
        let long = "a".repeat(1000);
        let e = RelPath::feature_file(&long).unwrap_err();
        assert!(e.value.ends_with("… (1000 bytes)"), "{}", e.value);
        assert!(e.value.len() < 200);
    }

    #[test]
    fn yara_targets() {
        for ok in [
            "image",
            "shard:matched",
            "hit",
            "hit:spans",
            "carved/jpg/1024.jpg",
            "carved/none/0.bin",
        ] {
            check_yara_target(ok).unwrap();
        }
        for bad in [
            "",
            "carved/../1.jpg",
            "carved/jpg/../../x.jpg",
            "carved/jpg/1.jpg/..",
            "carved/jpg/01x.jpg",
            "carved/jpg/1.j/pg",
            "carved/jpg/+1.jpg",
            "/etc/passwd",
            "imagex",
        ] {
            assert!(check_yara_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_are_built_inside_the_folder() {
        let t = tempfile::tempdir().unwrap();
        let d = ReportDir::new(t.path().join("out"));
        let rel = RelPath::carved_file("jpg", 10, "jpg").unwrap();
        assert_eq!(
            d.file(&rel).unwrap(),
            t.path().join("out").join("carved/jpg/10.jpg")
        );
        // Only checked components exist in a RelPath, but file() checks
        // them again whatever a RelPath holds.
        for forged in ["../x", "/tmp/x", "a//b", "a/./b", "", "a/\0"] {
            let e = d.file(&RelPath(forged.into())).unwrap_err();
            assert!(e.to_string().starts_with("report path "), "{e}");
        }
        assert!(!t.path().join("out").exists(), "file() creates nothing");
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_inside_the_folder_are_not_followed_out() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir_all(out.join("carved")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("features")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("m.csv"), out.join("carved/manifest.csv"))
            .unwrap();
        let d = ReportDir::new(&out);
        let e = d
            .create_file(&RelPath::feature_file("email").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("outside the report folder"), "{e}");
        let e = d
            .create_file(&RelPath::parse("t", "carved/manifest.csv").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        // and packing refuses the link
        assert!(d.list().is_err());
    }

    /// Whether `p` is `root` followed by plain names only.
    fn lexically_inside(root: &Path, p: &Path) -> bool {
        p.strip_prefix(root).is_ok_and(|r| {
            r.components().count() > 0 && r.components().all(|c| matches!(c, Component::Normal(_)))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random names, as one component and as a `/`-separated path,
        /// through every constructor: whatever is built lies inside DIR,
        /// lexically and once created with symbolic links resolved.
        #[test]
        fn random_names_never_leave_the_folder(
            name in prop_oneof![
                // any bytes
                proptest::collection::vec(any::<u8>(), 0..40)
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                // pieces of names, valid and hostile, in any order
                proptest::collection::vec(
                    proptest::sample::select(vec![
                        "..", ".", "/", "\\", "\0", "\n", "email", "jpg", "_stopped",
                        "alerts", "tmp", "a", " ", "é", "~", ":", "-",
                    ]),
                    0..8,
                )
                .prop_map(|v| v.concat()),
            ],
            offset in any::<u64>(),
        ) {
            let built: Vec<Result<RelPath, NameError>> = vec![
                RelPath::feature_file(&name),
                RelPath::histogram_file(&name),
                RelPath::carved_file(&name, offset, "jpg"),
                RelPath::carved_file("jpg", offset, &name),
                RelPath::name("t", &name),
                RelPath::parse("t", &name),
                RelPath::name("t", "x").and_then(|r| r.under("t", &name)),
            ];
            for rel in built.into_iter().flatten() {
                let t = tempfile::tempdir().unwrap();
                // DIR is two levels down, so `..` would land in folders
                // the test owns and can look at.
                let root = t.path().join("p/q/out");
                let d = ReportDir::new(&root);
                let p = d.file(&rel).unwrap();
                prop_assert!(lexically_inside(&root, &p), "{rel} -> {}", p.display());
                let (created, _f) = d.create_file(&rel).unwrap();
                prop_assert_eq!(&created, &p);
                let real_root = std::fs::canonicalize(&root).unwrap();
                let real_parent = std::fs::canonicalize(p.parent().unwrap()).unwrap();
                prop_assert!(real_parent.starts_with(&real_root));
                prop_assert!(std::fs::symlink_metadata(&p).unwrap().is_file());
                // Nothing appeared beside DIR.
                let beside: Vec<_> = std::fs::read_dir(t.path().join("p/q")).unwrap()
                    .map(|e| e.unwrap().file_name()).collect();
                prop_assert!(beside.iter().all(|n| n == "out"), "{beside:?}");
                prop_assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
                prop_assert_eq!(std::fs::read_dir(t.path().join("p")).unwrap().count(), 1);
            }
        }

        /// `file` itself, given any string as a RelPath (as if a caller
        /// forged one): refused, or inside DIR.
        #[test]
        fn file_refuses_or_stays_inside(s in r"[a./\\\x00-\x1f]{0,16}|\PC{0,24}") {
            let root = PathBuf::from("/report/out");
            let d = ReportDir::new(&root);
            if let Ok(p) = d.file(&RelPath(s.clone())) {
                prop_assert!(lexically_inside(&root, &p), "{s:?} -> {}", p.display());
            }
        }
    }
}
