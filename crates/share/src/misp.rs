//! The MISP event, in MISP's JSON format (`{"Event": {…}}`).

use crate::stix::seen;
use crate::{ItemKind, Prepared, ShareError, ShareSet, Tlp, Written, ids, json, prepare};
use serde_json::{Value, json};

/// MISP's attribute type, category and `to_ids` default of a kind (pairs
/// from MISP's `describeTypes.json`, `category_type_mappings`).
pub(crate) fn attribute_type(kind: ItemKind) -> (&'static str, &'static str, bool) {
    match kind {
        ItemKind::Domain => ("domain", "Network activity", true),
        ItemKind::Url => ("url", "Network activity", true),
        ItemKind::Ipv4 | ItemKind::Ipv6 => ("ip-dst", "Network activity", true),
        ItemKind::Email => ("email-src", "Payload delivery", true),
        ItemKind::Md5 => ("md5", "Payload delivery", true),
        ItemKind::Sha1 => ("sha1", "Payload delivery", true),
        ItemKind::Sha256 => ("sha256", "Payload delivery", true),
        ItemKind::Bitcoin => ("btc", "Financial fraud", true),
        ItemKind::Iban => ("iban", "Financial fraud", true),
        ItemKind::Phone => ("phone-number", "Person", false),
        ItemKind::YaraRule => ("text", "Other", false),
    }
}

/// The event's distribution: TLP:CLEAR to all communities (3), TLP:GREEN
/// to this community (1), anything stricter to the organisation only (0).
fn distribution(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "3",
        Tlp::Green => "1",
        Tlp::Amber | Tlp::AmberStrict | Tlp::Red => "0",
    }
}

/// The event of a checked set, its uuid and its attributes' values.
pub(crate) struct Event {
    pub uuid: String,
    pub value: Value,
    pub attribute_values: Vec<String>,
    pub withheld: usize,
}

fn time_err(ms: i64) -> ShareError {
    ShareError::Time {
        what: "the export time".into(),
        ms,
    }
}

pub(crate) fn event(p: &Prepared<'_>) -> Result<Event, ShareError> {
    let uuid = ids::derived(&[&p.identity_uuid, "misp-event", p.title]);
    let date = ids::date(p.created_ms).ok_or_else(|| time_err(p.created_ms))?;
    let timestamp = (p.created_ms / 1000).to_string();
    let mut attributes = Vec::with_capacity(p.items.len() + p.yara.len());
    let mut values = Vec::with_capacity(attributes.capacity());
    for it in &p.items {
        let (ty, category, to_ids) = attribute_type(it.kind);
        let (Some(first), Some(last)) = (ids::misp_time(it.first_ms), ids::misp_time(it.last_ms))
        else {
            return Err(ShareError::Time {
                what: format!("{} {:?} first or last seen", it.kind, it.value),
                ms: it.first_ms,
            });
        };
        let mut comment = seen(it.sightings, it.jobs);
        if it.kind == ItemKind::YaraRule {
            comment = format!("YARA rule name; {comment}");
        }
        let kind = it.kind.name();
        attributes.push(json!({
            "type": ty,
            "category": category,
            "value": it.value,
            "to_ids": to_ids,
            "uuid": ids::derived(&[&uuid, "misp-attribute", kind, &it.value]),
            "timestamp": timestamp,
            "first_seen": first,
            "last_seen": last,
            "comment": comment,
            "distribution": "5",
        }));
        values.push(it.value.clone());
    }
    for (i, y) in p.yara.iter().enumerate() {
        attributes.push(json!({
            "type": "yara",
            "category": "Payload installation",
            "value": y.text,
            "to_ids": true,
            "uuid": ids::derived(&[&uuid, "misp-yara", &i.to_string(), &y.name, &y.text]),
            "timestamp": timestamp,
            "comment": format!("YARA source {}", y.name),
            "distribution": "5",
        }));
        values.push(y.text.clone());
    }
    let value = json!({"Event": {
        "info": p.title,
        "date": date,
        "timestamp": timestamp,
        "uuid": uuid,
        "analysis": "2",
        "threat_level_id": "4",
        "distribution": distribution(p.tlp),
        "published": false,
        "Orgc": {"name": p.identity_name, "uuid": p.identity_uuid},
        "Tag": [{"name": p.tlp.misp_tag()}],
        "Attribute": attributes,
    }});
    Ok(Event {
        uuid,
        value,
        attribute_values: values,
        withheld: p.withheld,
    })
}

/// Writes the MISP event of a set: one attribute per shared item and per
/// YARA source, the event tagged with the export's TLP (MISP's `tlp`
/// taxonomy, TLP 2.0 names). Its uuid is derived from the identity and the
/// title, so a later export of the same scope updates the same event.
pub fn misp_event(set: &ShareSet) -> Result<Written, ShareError> {
    let p = prepare(set)?;
    let e = event(&p)?;
    Ok(Written {
        bytes: json::pretty(&e.value),
        objects: e.attribute_values.len(),
        withheld: e.withheld,
        not_in_format: 0,
    })
}
