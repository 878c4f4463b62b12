//! The lab's stop list: indicators every lab sees (vendors' update hosts,
//! default certificates' digests ...), kept in the index but never linking
//! cases. One per line: `KIND VALUE` (`domain windowsupdate.com`), or a
//! bare value whose kind is guessed; `#` starts a comment.

use anyhow::{Result, bail};
use std::collections::BTreeSet;
use std::path::Path;
use trawl_intel::{Indicator, IntelConfig, Kind};

/// The kind a bare value most likely is.
fn guess(v: &str) -> Kind {
    let hex = !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit());
    if v.contains("://") {
        Kind::Url
    } else if v.contains('@') {
        Kind::Email
    } else if v.parse::<std::net::Ipv4Addr>().is_ok() {
        Kind::Ipv4
    } else if v.parse::<std::net::Ipv6Addr>().is_ok() {
        Kind::Ipv6
    } else if hex && v.len() == 32 {
        Kind::Md5
    } else if hex && v.len() == 40 {
        Kind::Sha1
    } else if hex && v.len() == 64 {
        Kind::Sha256
    } else {
        Kind::Domain
    }
}

/// Reads a stop list, normalising every entry.
///
/// # Errors
/// Unreadable file; a line that is not an indicator, naming file and line.
pub fn load(path: &Path, cfg: &IntelConfig) -> Result<BTreeSet<Indicator>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("stop list {}: {e}", path.display()))?;
    parse(&text, cfg).map_err(|e| anyhow::anyhow!("stop list {}: {e}", path.display()))
}

fn parse(text: &str, cfg: &IntelConfig) -> Result<BTreeSet<Indicator>> {
    let mut out = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (kind, value) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => match Kind::parse(k) {
                Some(k) => (k, v.trim()),
                None => bail!("line {}: unknown kind {k:?}", n + 1),
            },
            None => (guess(line), line),
        };
        match trawl_intel::normalize_any(kind, value, cfg) {
            Ok(i) => {
                out.insert(i);
            }
            Err(e) => bail!("line {}: {e}", n + 1),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_or_guessed_and_values_normalised() {
        let s = parse(
            "# vendors\ndomain WindowsUpdate.COM\nUpdate.Example.org.  # bare\n8.8.8.8\nHTTP://Www.Example.org/a\nx@Example.ORG\n0CC175B9C0F1B6A831C399E269772661\n",
            &IntelConfig::default(),
        )
        .unwrap();
        let got: Vec<String> = s
            .iter()
            .map(|i| format!("{} {}", i.kind.name(), i.value))
            .collect();
        for want in [
            "domain windowsupdate.com",
            "domain update.example.org",
            "ipv4 8.8.8.8",
            "url http://www.example.org/a",
            "email x@example.org",
            "md5 0cc175b9c0f1b6a831c399e269772661",
        ] {
            assert!(got.iter().any(|g| g == want), "{want} not in {got:?}");
        }
        let e = parse("ok.example\nbogus x\n", &IntelConfig::default()).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
