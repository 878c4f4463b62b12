//! The STIX 2.1 bundle.

use crate::ids::{self, STIX_NAMESPACE};
use crate::{ItemKind, Prepared, Ready, ShareError, ShareSet, Tlp, Written, json, prepare};
use serde_json::{Map, Value, json};

/// The extension that carries TLP 2.0 levels in STIX (OASIS).
const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// The indicator type of everything shared: seen in evidence, not judged.
const INDICATOR_TYPE: &str = "anomalous-activity";

/// The format's bounds of `count` and `number_observed`.
const MAX_COUNT: u64 = 999_999_999;

/// OASIS's TLP 2.0 marking definition of a level, as published.
pub(crate) fn marking_definition(tlp: Tlp) -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp.stix_marking_id(),
        "created": "2022-10-01T00:00:00.000Z",
        "name": tlp.label(),
        "extensions": {
            TLP2_EXTENSION: {
                "extension_type": "property-extension",
                "tlp_2_0": tlp.name(),
            }
        }
    })
}

/// The STIX cyber-observable type, the `hashes` key of a digest, of a kind
/// (`None`: STIX has no object for it).
fn sco_type(kind: ItemKind) -> Option<(&'static str, Option<&'static str>)> {
    Some(match kind {
        ItemKind::Domain => ("domain-name", None),
        ItemKind::Url => ("url", None),
        ItemKind::Ipv4 => ("ipv4-addr", None),
        ItemKind::Ipv6 => ("ipv6-addr", None),
        ItemKind::Email => ("email-addr", None),
        ItemKind::Md5 => ("file", Some("MD5")),
        ItemKind::Sha1 => ("file", Some("SHA-1")),
        ItemKind::Sha256 => ("file", Some("SHA-256")),
        ItemKind::Bitcoin | ItemKind::Iban | ItemKind::Phone | ItemKind::YaraRule => return None,
    })
}

/// A domain name STIX validators take: LDH labels of 1 to 63 characters,
/// not starting or ending with `-`, 253 characters at most (trawl-intel's
/// normalised domains are of this form; A-labels included).
fn hostname(v: &str) -> bool {
    v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// An e-mail address of the form stix2-validator checks `email-addr`
/// values against (`[A-Za-z0-9_.+-]+@` and a dotted domain): a narrower
/// form than RFC 5322's, so an address outside it (a quote in the local
/// part) has no STIX object; it still goes to MISP.
fn stix_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-'))
        && domain.contains('.')
        && !domain.starts_with('.')
        && domain
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.'))
        && domain
            .split_once('.')
            .is_some_and(|(first, _)| !first.is_empty())
}

/// Whether STIX can carry the value as an object of its kind.
fn in_stix(kind: ItemKind, v: &str) -> bool {
    match kind {
        ItemKind::Domain => hostname(v),
        ItemKind::Email => stix_email(v),
        _ => sco_type(kind).is_some(),
    }
}

/// A STIX pattern string literal: `'` and `\` escaped by a backslash.
fn literal(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('\'');
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('\'');
    s
}

/// The STIX pattern of an indicator (`None` for the kinds STIX has no
/// object for): `[domain-name:value = '…']`, `[file:hashes.'SHA-256' = '…']`.
pub fn indicator_pattern(kind: ItemKind, value: &str) -> Option<String> {
    let (ty, hash) = sco_type(kind)?;
    Some(match hash {
        Some(h) => format!("[file:hashes.'{h}' = {}]", literal(value)),
        None => format!("[{ty}:value = {}]", literal(value)),
    })
}

/// The cyber-observable of an item and its id (UUIDv5 over the canonical
/// JSON of the id-contributing properties: `value`, or `hashes`).
fn observable(it: &Ready, marking: &str) -> Option<(String, Value)> {
    if !in_stix(it.kind, &it.value) {
        return None;
    }
    let (ty, hash) = sco_type(it.kind)?;
    let mut contributing = Map::new();
    match hash {
        Some(h) => {
            let mut hashes = Map::new();
            hashes.insert(h.into(), Value::String(it.value.clone()));
            contributing.insert("hashes".into(), Value::Object(hashes));
        }
        None => {
            contributing.insert("value".into(), Value::String(it.value.clone()));
        }
    }
    let id = format!(
        "{ty}--{}",
        ids::uuid5(
            &STIX_NAMESPACE,
            &json::canonical(&Value::Object(contributing.clone()))
        )
    );
    let mut obj = contributing;
    obj.insert("type".into(), ty.into());
    obj.insert("spec_version".into(), "2.1".into());
    obj.insert("id".into(), id.clone().into());
    obj.insert("object_marking_refs".into(), json!([marking]));
    Some((id, Value::Object(obj)))
}

fn times(n: u64) -> String {
    if n == 1 {
        "1 time".into()
    } else {
        format!("{n} times")
    }
}

fn jobs(n: u32) -> String {
    if n == 1 {
        "1 job".into()
    } else {
        format!("{n} jobs")
    }
}

/// "seen N time(s) in J job(s)", the description of a shared item.
pub(crate) fn seen(sightings: u64, j: u32) -> String {
    format!("seen {} in {}", times(sightings), jobs(j))
}

struct Ctx<'a> {
    p: &'a Prepared<'a>,
    identity: String,
    marking: &'static str,
    created: String,
}

impl Ctx<'_> {
    fn id(&self, ty: &str, parts: &[&str]) -> String {
        let mut all = vec![self.p.identity_uuid.as_str(), ty];
        all.extend_from_slice(parts);
        format!("{ty}--{}", ids::derived(&all))
    }

    /// The common properties of a domain object or relationship.
    fn sdo(&self, ty: &str, id: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), ty.into());
        m.insert("spec_version".into(), "2.1".into());
        m.insert("id".into(), id.into());
        m.insert("created".into(), self.created.clone().into());
        m.insert("modified".into(), self.created.clone().into());
        m.insert("created_by_ref".into(), self.identity.clone().into());
        m.insert("object_marking_refs".into(), json!([self.marking]));
        m
    }
}

/// Writes the STIX 2.1 bundle of a set: OASIS's TLP 2.0 marking definition
/// of the export's level, the lab's `identity`, and per item its
/// cyber-observable, an `indicator`, an `observed-data` and a `sighting`;
/// the YARA sources as `indicator`s with `pattern_type` `yara`.
pub fn stix_bundle(set: &ShareSet) -> Result<Written, ShareError> {
    let p = prepare(set)?;
    let created = ids::stix_time(p.created_ms).ok_or(ShareError::Time {
        what: "the export time".into(),
        ms: p.created_ms,
    })?;
    let cx = Ctx {
        identity: format!("identity--{}", p.identity_uuid),
        marking: p.tlp.stix_marking_id(),
        created,
        p: &p,
    };
    let mut objects = vec![marking_definition(p.tlp)];
    let mut identity = cx.sdo("identity", &cx.identity);
    identity.insert("name".into(), p.identity_name.into());
    identity.insert("identity_class".into(), "organization".into());
    objects.push(Value::Object(identity));

    let mut not_in_format = 0;
    for it in &p.items {
        let Some((sco_id, sco)) = observable(it, cx.marking) else {
            not_in_format += 1;
            continue;
        };
        let (Some(pattern), Some(first), Some(last)) = (
            indicator_pattern(it.kind, &it.value),
            ids::stix_time(it.first_ms),
            ids::stix_time(it.last_ms),
        ) else {
            // prepare() checked the instants and the kind has an SCO.
            not_in_format += 1;
            continue;
        };
        let kind = it.kind.name();
        let description = format!(
            "{kind} {}, first {first}, last {last}",
            seen(it.sightings, it.jobs)
        );
        let indicator_id = cx.id("indicator", &[kind, &it.value]);
        let mut indicator = cx.sdo("indicator", &indicator_id);
        indicator.insert("name".into(), format!("{kind} {}", it.value).into());
        indicator.insert("description".into(), description.into());
        indicator.insert("indicator_types".into(), json!([INDICATOR_TYPE]));
        indicator.insert("pattern".into(), pattern.into());
        indicator.insert("pattern_type".into(), "stix".into());
        indicator.insert("pattern_version".into(), "2.1".into());
        indicator.insert("valid_from".into(), first.clone().into());

        let observed_id = cx.id("observed-data", &[kind, &it.value]);
        let mut observed = cx.sdo("observed-data", &observed_id);
        observed.insert("first_observed".into(), first.clone().into());
        observed.insert("last_observed".into(), last.clone().into());
        observed.insert(
            "number_observed".into(),
            it.sightings.clamp(1, MAX_COUNT).into(),
        );
        observed.insert("object_refs".into(), json!([sco_id]));

        let sighting_id = cx.id("sighting", &[kind, &it.value]);
        let mut sighting = cx.sdo("sighting", &sighting_id);
        sighting.insert("sighting_of_ref".into(), indicator_id.into());
        sighting.insert("observed_data_refs".into(), json!([observed_id]));
        sighting.insert("where_sighted_refs".into(), json!([cx.identity]));
        sighting.insert("count".into(), it.sightings.min(MAX_COUNT).into());
        sighting.insert("first_seen".into(), first.into());
        sighting.insert("last_seen".into(), last.into());

        objects.push(sco);
        objects.push(Value::Object(indicator));
        objects.push(Value::Object(observed));
        objects.push(Value::Object(sighting));
    }
    for (i, y) in p.yara.iter().enumerate() {
        let id = cx.id("indicator", &["yara", &i.to_string(), &y.name, &y.text]);
        let mut indicator = cx.sdo("indicator", &id);
        indicator.insert("name".into(), y.name.clone().into());
        indicator.insert(
            "description".into(),
            format!("YARA source {}", y.name).into(),
        );
        indicator.insert("indicator_types".into(), json!([INDICATOR_TYPE]));
        indicator.insert("pattern".into(), y.text.clone().into());
        indicator.insert("pattern_type".into(), "yara".into());
        indicator.insert("valid_from".into(), cx.created.clone().into());
        objects.push(Value::Object(indicator));
    }
    let bundle_id = format!(
        "bundle--{}",
        ids::derived(&[
            &p.identity_uuid,
            "bundle",
            p.title,
            &p.created_ms.to_string(),
            p.tlp.name()
        ])
    );
    let count = objects.len();
    let bundle = json!({"type": "bundle", "id": bundle_id, "objects": objects});
    Ok(Written {
        bytes: json::pretty(&bundle),
        objects: count,
        withheld: p.withheld,
        not_in_format,
    })
}
