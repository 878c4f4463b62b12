//! The MISP feed directory: `manifest.json`, `hashes.csv` and one
//! `<uuid>.json` per event, as a MISP instance subscribes to it.

use crate::misp::{Event, event};
use crate::{ShareError, ShareSet, json, prepare};
use md5::Digest as _;
use serde_json::{Map, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What [`misp_feed`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedWritten {
    /// (path relative to the directory, SHA-256 hex), sorted by path.
    pub files: Vec<(String, String)>,
    /// SHA-256 hex of the listing: one `"{sha256}  {path}\n"` per file, in
    /// that order (what `sha256sum` prints, sorted).
    pub digest: String,
    pub events: usize,
    pub attributes: usize,
    /// Items withheld from all the events (marked stricter than their
    /// set's TLP).
    pub withheld: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShareError + '_ {
    move |source| ShareError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An empty directory to write into: `dir` made if absent, refused if it
/// holds anything or is not a directory.
fn empty_dir(dir: &Path) -> Result<(), ShareError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if !m.is_dir() => Err(ShareError::FeedDir {
            path: dir.to_path_buf(),
            reason: "exists and is not a directory".into(),
        }),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
            if entries.next().is_some() {
                Err(ShareError::FeedDir {
                    path: dir.to_path_buf(),
                    reason: "is not empty (a feed is written into an empty or absent directory, never over files)".into(),
                })
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io(dir))
        }
        Err(e) => Err(ShareError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// Writes a new file (never over an existing one).
fn create(path: PathBuf, bytes: &[u8]) -> Result<(), ShareError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io(&path))?;
    f.write_all(bytes).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))
}

/// The manifest entry of an event: its header without the attributes.
fn manifest_entry(e: &Event) -> Value {
    let mut m = Map::new();
    if let Some(Value::Object(ev)) = e.value.get("Event") {
        for k in [
            "info",
            "date",
            "analysis",
            "threat_level_id",
            "timestamp",
            "Orgc",
            "Tag",
        ] {
            if let Some(v) = ev.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
    }
    Value::Object(m)
}

/// Writes a MISP feed of the sets into `dir` (empty or absent): each set's
/// event (as [`crate::misp_event`] writes it) as `<uuid>.json`, the
/// `manifest.json` of the events' headers, and `hashes.csv` (`md5 of the
/// value,event uuid` per attribute). Every set is checked before anything
/// is written; two sets making the same event (same identity and title)
/// are refused.
pub fn misp_feed(sets: &[ShareSet], dir: &Path) -> Result<FeedWritten, ShareError> {
    let mut events: Vec<Event> = Vec::with_capacity(sets.len());
    for s in sets {
        let p = prepare(s)?;
        events.push(event(&p)?);
    }
    for (second, e) in events.iter().enumerate() {
        if let Some(first) = events[..second].iter().position(|o| o.uuid == e.uuid) {
            return Err(ShareError::DuplicateEvent {
                first,
                second,
                uuid: e.uuid.clone(),
            });
        }
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(events.len() + 2);
    let mut manifest = Map::new();
    let mut hashes = String::new();
    for e in &events {
        files.push((format!("{}.json", e.uuid), json::pretty(&e.value)));
        manifest.insert(e.uuid.clone(), manifest_entry(e));
        for v in &e.attribute_values {
            hashes.push_str(&hex::encode(md5::Md5::digest(v.as_bytes())));
            hashes.push(',');
            hashes.push_str(&e.uuid);
            hashes.push('\n');
        }
    }
    files.push((
        "manifest.json".into(),
        json::pretty(&Value::Object(manifest)),
    ));
    files.push(("hashes.csv".into(), hashes.into_bytes()));
    files.sort_by(|a, b| a.0.cmp(&b.0));

    empty_dir(dir)?;
    let mut listing = Vec::with_capacity(files.len());
    let mut lines = String::new();
    for (name, bytes) in &files {
        create(dir.join(name), bytes)?;
        let sum = hex::encode(sha2::Sha256::digest(bytes));
        lines.push_str(&format!("{sum}  {name}\n"));
        listing.push((name.clone(), sum));
    }
    Ok(FeedWritten {
        files: listing,
        digest: hex::encode(sha2::Sha256::digest(lines.as_bytes())),
        events: events.len(),
        attributes: events.iter().map(|e| e.attribute_values.len()).sum(),
        withheld: events.iter().map(|e| e.withheld).sum(),
    })
}
