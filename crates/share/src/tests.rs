use super::*;
use proptest::prelude::*;
use serde_json::Value;

const LAB: &str = "6f1c2c43-8a4e-4d0b-9b55-2f0d7e3c9a11";
/// 2026-12-07T10:00:00Z
const T0: i64 = 1_796_637_600_000;

fn item(kind: ItemKind, value: &str, marking: Tlp) -> Item {
    Item {
        kind,
        value: value.into(),
        first_ms: T0 - 86_400_000,
        last_ms: T0 - 3_600_000,
        sightings: 3,
        jobs: 2,
        marking,
    }
}

fn set(tlp: Tlp, items: Vec<Item>) -> ShareSet {
    ShareSet {
        identity: Identity {
            name: "Example lab".into(),
            uuid: LAB.into(),
        },
        tlp,
        title: "case C0001".into(),
        created_ms: T0,
        items,
        yara: vec![],
    }
}

fn every_kind(marking: Tlp) -> Vec<Item> {
    vec![
        item(ItemKind::Domain, "evil.example", marking),
        item(ItemKind::Url, "http://evil.example/a?b=c", marking),
        item(ItemKind::Ipv4, "203.0.113.7", marking),
        item(ItemKind::Ipv6, "2001:db8::7", marking),
        item(ItemKind::Email, "mallory@evil.example", marking),
        item(ItemKind::Md5, &"a".repeat(32), marking),
        item(ItemKind::Sha1, &"b".repeat(40), marking),
        item(ItemKind::Sha256, &"c".repeat(64), marking),
        item(
            ItemKind::Bitcoin,
            "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
            marking,
        ),
        item(ItemKind::Iban, "FR1420041010050500013M02606", marking),
        item(ItemKind::Phone, "+33612345678", marking),
        item(ItemKind::YaraRule, "rules.yar/evil_dropper", marking),
    ]
}

fn parse(w: &Written) -> Value {
    serde_json::from_slice(&w.bytes).expect("the writer's output is JSON")
}

fn objects(bundle: &Value) -> Vec<Value> {
    bundle["objects"].as_array().expect("objects").clone()
}

fn of_type<'a>(objs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["type"] == ty).collect()
}

#[test]
fn tlp_levels_are_ordered_and_parse_by_any_name() {
    assert!(Tlp::Clear < Tlp::Green);
    assert!(Tlp::Green < Tlp::Amber);
    assert!(Tlp::Amber < Tlp::AmberStrict);
    assert!(Tlp::AmberStrict < Tlp::Red);
    for (text, want) in [
        ("clear", Tlp::Clear),
        ("WHITE", Tlp::Clear),
        ("tlp:white", Tlp::Clear),
        ("Green", Tlp::Green),
        ("amber", Tlp::Amber),
        ("TLP:AMBER", Tlp::Amber),
        ("amber+strict", Tlp::AmberStrict),
        ("TLP:Amber+Strict", Tlp::AmberStrict),
        (" red ", Tlp::Red),
    ] {
        assert_eq!(Tlp::parse(text), Some(want), "{text}");
    }
    for bad in [
        "",
        "amber strict",
        "amberstrict",
        "tlp:",
        "yellow",
        "tlp:tlp:red",
    ] {
        assert_eq!(Tlp::parse(bad), None, "{bad}");
    }
    for t in Tlp::ALL {
        assert_eq!(Tlp::parse(t.name()), Some(t));
        assert_eq!(Tlp::parse(t.label()), Some(t));
        assert_eq!(t.label(), format!("TLP:{}", t.name().to_uppercase()));
        // serde uses the names too.
        assert_eq!(serde_json::to_value(t).unwrap(), t.name());
    }
    assert_eq!(Tlp::AmberStrict.misp_tag(), "tlp:amber+strict");
}

#[test]
fn kinds_parse_by_name_and_card_hashes_cannot() {
    for k in ItemKind::ALL {
        assert_eq!(ItemKind::parse(k.name()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.name());
    }
    assert_eq!(ItemKind::parse("ccn_hmac"), None);
    assert_eq!(ItemKind::parse("ccn"), None);
    assert!(serde_json::from_str::<ItemKind>("\"ccn_hmac\"").is_err());
}

#[test]
fn items_stricter_than_the_export_are_withheld_and_counted() {
    let markings = Tlp::ALL;
    for tlp in Tlp::ALL {
        let items: Vec<Item> = markings
            .iter()
            .map(|m| {
                item(
                    ItemKind::Domain,
                    &format!("{}.secret.example", m.name().replace('+', "-")),
                    *m,
                )
            })
            .collect();
        let s = set(tlp, items);
        let stricter = markings.iter().filter(|m| **m > tlp).count();
        let stix = stix_bundle(&s).unwrap();
        let misp = misp_event(&s).unwrap();
        assert_eq!(stix.withheld, stricter, "{tlp}");
        assert_eq!(misp.withheld, stricter, "{tlp}");
        assert_eq!(misp.objects, 5 - stricter);
        // marking + identity + 4 objects per shared domain
        assert_eq!(stix.objects, 2 + 4 * (5 - stricter));
        for m in markings {
            let v = format!("{}.secret.example", m.name().replace('+', "-"));
            let present = |b: &[u8]| String::from_utf8_lossy(b).contains(&v);
            assert_eq!(present(&stix.bytes), m <= tlp, "{tlp} {m} stix");
            assert_eq!(present(&misp.bytes), m <= tlp, "{tlp} {m} misp");
        }
    }
}

#[test]
fn every_stix_object_carries_the_export_marking() {
    for tlp in Tlp::ALL {
        let mut s = set(tlp, every_kind(Tlp::Clear));
        s.yara = vec![YaraSource {
            name: "flash.yar".into(),
            text: "rule r { condition: true }".into(),
        }];
        let w = stix_bundle(&s).unwrap();
        assert_eq!(w.not_in_format, 4, "bitcoin, iban, phone, rule name");
        let b = parse(&w);
        assert_eq!(b["type"], "bundle");
        let objs = objects(&b);
        assert_eq!(objs.len(), w.objects);
        // marking, identity, 8 kinds × 4, one YARA indicator
        assert_eq!(objs.len(), 2 + 8 * 4 + 1);
        let markings = of_type(&objs, "marking-definition");
        assert_eq!(markings.len(), 1);
        assert_eq!(markings[0]["id"], tlp.stix_marking_id());
        assert_eq!(markings[0]["name"], tlp.label());
        assert_eq!(
            markings[0]["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]
                ["tlp_2_0"],
            tlp.name()
        );
        for o in &objs {
            if o["type"] == "marking-definition" {
                continue;
            }
            assert_eq!(
                o["object_marking_refs"],
                serde_json::json!([tlp.stix_marking_id()]),
                "{o}"
            );
            assert_eq!(o["spec_version"], "2.1");
            let sco = [
                "domain-name",
                "url",
                "ipv4-addr",
                "ipv6-addr",
                "email-addr",
                "file",
            ]
            .contains(&o["type"].as_str().unwrap());
            if !sco {
                assert_eq!(o["created_by_ref"], format!("identity--{LAB}"), "{o}");
                assert_eq!(o["created"], "2026-12-07T10:00:00.000Z");
            }
        }
    }
}

#[test]
fn stix_objects_of_an_item_point_at_each_other() {
    let s = set(
        Tlp::Amber,
        vec![item(ItemKind::Sha256, &"C".repeat(64), Tlp::Green)],
    );
    let objs = objects(&parse(&stix_bundle(&s).unwrap()));
    let file = of_type(&objs, "file")[0];
    let ind = of_type(&objs, "indicator")[0];
    let obs = of_type(&objs, "observed-data")[0];
    let sig = of_type(&objs, "sighting")[0];
    let lower = "c".repeat(64);
    assert_eq!(
        file["hashes"]["SHA-256"],
        lower.as_str(),
        "digests are lower-cased"
    );
    assert_eq!(
        ind["pattern"],
        format!("[file:hashes.'SHA-256' = '{lower}']")
    );
    assert_eq!(ind["pattern_type"], "stix");
    assert_eq!(ind["pattern_version"], "2.1");
    assert_eq!(ind["valid_from"], "2026-12-06T10:00:00.000Z");
    assert_eq!(obs["object_refs"], serde_json::json!([file["id"]]));
    assert_eq!(obs["first_observed"], "2026-12-06T10:00:00.000Z");
    assert_eq!(obs["last_observed"], "2026-12-07T09:00:00.000Z");
    assert_eq!(obs["number_observed"], 3);
    assert_eq!(sig["sighting_of_ref"], ind["id"]);
    assert_eq!(sig["observed_data_refs"], serde_json::json!([obs["id"]]));
    assert_eq!(
        sig["where_sighted_refs"],
        serde_json::json!([format!("identity--{LAB}")])
    );
    assert_eq!(sig["count"], 3);
    assert_eq!(sig["first_seen"], obs["first_observed"]);
    assert_eq!(sig["last_seen"], obs["last_observed"]);
    assert_eq!(
        ind["description"],
        "sha256 seen 3 times in 2 jobs, first 2026-12-06T10:00:00.000Z, last 2026-12-07T09:00:00.000Z"
    );
}

#[test]
fn counts_stay_within_the_format_bounds() {
    let mut never = item(ItemKind::Domain, "a.example", Tlp::Clear);
    never.sightings = 0;
    let mut many = item(ItemKind::Domain, "b.example", Tlp::Clear);
    many.sightings = u64::MAX;
    let objs = objects(&parse(
        &stix_bundle(&set(Tlp::Clear, vec![never, many])).unwrap(),
    ));
    let obs = of_type(&objs, "observed-data");
    let sig = of_type(&objs, "sighting");
    assert_eq!(obs[0]["number_observed"], 1);
    assert_eq!(sig[0]["count"], 0);
    assert_eq!(obs[1]["number_observed"], 999_999_999);
    assert_eq!(sig[1]["count"], 999_999_999);
}

#[test]
fn patterns_escape_quotes_and_backslashes() {
    assert_eq!(
        indicator_pattern(ItemKind::Domain, "a'b\\c").unwrap(),
        "[domain-name:value = 'a\\'b\\\\c']"
    );
    assert_eq!(
        indicator_pattern(ItemKind::Url, "http://x/'\\'").unwrap(),
        "[url:value = 'http://x/\\'\\\\\\'']"
    );
    assert_eq!(
        indicator_pattern(ItemKind::Md5, "00").unwrap(),
        "[file:hashes.'MD5' = '00']"
    );
    assert_eq!(
        indicator_pattern(ItemKind::Sha1, "00").unwrap(),
        "[file:hashes.'SHA-1' = '00']"
    );
    assert_eq!(
        indicator_pattern(ItemKind::Ipv4, "1.2.3.4").unwrap(),
        "[ipv4-addr:value = '1.2.3.4']"
    );
    assert_eq!(
        indicator_pattern(ItemKind::Ipv6, "::1").unwrap(),
        "[ipv6-addr:value = '::1']"
    );
    assert_eq!(
        indicator_pattern(ItemKind::Email, "a@b").unwrap(),
        "[email-addr:value = 'a@b']"
    );
    for k in [
        ItemKind::Bitcoin,
        ItemKind::Iban,
        ItemKind::Phone,
        ItemKind::YaraRule,
    ] {
        assert_eq!(indicator_pattern(k, "x"), None);
    }
}

/// SCO ids as the stix2 library computes them (stix2 3.0.2:
/// `DomainName(value=…).id`, `File(hashes=…).id`), escaping included.
#[test]
fn observable_ids_match_the_stix2_library() {
    let s = set(
        Tlp::Clear,
        vec![
            item(ItemKind::Domain, "example.com", Tlp::Clear),
            item(ItemKind::Sha256, &"ab".repeat(32), Tlp::Clear),
        ],
    );
    let objs = objects(&parse(&stix_bundle(&s).unwrap()));
    let ids: Vec<&str> = objs
        .iter()
        .filter(|o| o["type"] == "domain-name" || o["type"] == "file")
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7",
            "file--20432b06-75d2-54b6-80ef-6d923b5d925d"
        ]
    );
    // stix2: DomainName(value='a\\b"c\u00e9\x01').id
    let hostile = serde_json::json!({"value": "a\\b\"c\u{e9}\u{1}"});
    assert_eq!(
        ids::uuid5(&ids::STIX_NAMESPACE, &json::canonical(&hostile)),
        "57dd90ca-c36c-5352-90db-d4da608b3ee1"
    );
}

#[test]
fn output_is_deterministic_and_independent_of_item_order() {
    let mut s = set(Tlp::Amber, every_kind(Tlp::Green));
    let a = stix_bundle(&s).unwrap();
    let m = misp_event(&s).unwrap();
    assert_eq!(a, stix_bundle(&s).unwrap());
    assert_eq!(m, misp_event(&s).unwrap());
    s.items.reverse();
    assert_eq!(a.bytes, stix_bundle(&s).unwrap().bytes);
    assert_eq!(m.bytes, misp_event(&s).unwrap().bytes);
    // Another export time changes the timestamps but not the event's uuid.
    s.created_ms += 1000;
    let m2 = parse(&misp_event(&s).unwrap());
    assert_eq!(m2["Event"]["uuid"], parse(&m)["Event"]["uuid"]);
    assert_ne!(m2["Event"]["timestamp"], parse(&m)["Event"]["timestamp"]);
}

#[test]
fn misp_event_fields() {
    for (tlp, dist) in [
        (Tlp::Clear, "3"),
        (Tlp::Green, "1"),
        (Tlp::Amber, "0"),
        (Tlp::AmberStrict, "0"),
        (Tlp::Red, "0"),
    ] {
        let mut s = set(tlp, every_kind(Tlp::Clear));
        s.yara = vec![YaraSource {
            name: "flash.yar".into(),
            text: "rule r { condition: true }".into(),
        }];
        let w = misp_event(&s).unwrap();
        assert_eq!(w.objects, 13);
        assert_eq!(w.not_in_format, 0);
        let e = &parse(&w)["Event"];
        assert_eq!(e["distribution"], dist);
        assert_eq!(
            e["Tag"],
            serde_json::json!([{"name": format!("tlp:{}", tlp.name())}])
        );
        assert_eq!(e["info"], "case C0001");
        assert_eq!(e["date"], "2026-12-07");
        assert_eq!(e["timestamp"], "1796637600");
        assert_eq!(e["published"], false);
        assert_eq!(e["analysis"], "2");
        assert_eq!(e["threat_level_id"], "4");
        assert_eq!(
            e["Orgc"],
            serde_json::json!({"name": "Example lab", "uuid": LAB})
        );
        let attrs = e["Attribute"].as_array().unwrap();
        let pairs: Vec<(&str, &str)> = attrs
            .iter()
            .map(|a| (a["type"].as_str().unwrap(), a["category"].as_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("email-src", "Payload delivery"),
                ("domain", "Network activity"),
                ("url", "Network activity"),
                ("ip-dst", "Network activity"),
                ("ip-dst", "Network activity"),
                ("btc", "Financial fraud"),
                ("iban", "Financial fraud"),
                ("phone-number", "Person"),
                ("md5", "Payload delivery"),
                ("sha1", "Payload delivery"),
                ("sha256", "Payload delivery"),
                ("text", "Other"),
                ("yara", "Payload installation"),
            ]
        );
        let first = &attrs[0];
        assert_eq!(first["first_seen"], "2026-12-06T10:00:00.000000+00:00");
        assert_eq!(first["last_seen"], "2026-12-07T09:00:00.000000+00:00");
        assert_eq!(first["comment"], "seen 3 times in 2 jobs");
        assert_eq!(first["distribution"], "5");
        assert_eq!(first["to_ids"], true);
        assert_eq!(
            attrs[11]["comment"],
            "YARA rule name; seen 3 times in 2 jobs"
        );
        assert_eq!(attrs[12]["value"], "rule r { condition: true }");
        assert_eq!(attrs[12]["comment"], "YARA source flash.yar");
        let mut uuids: Vec<&str> = attrs.iter().map(|a| a["uuid"].as_str().unwrap()).collect();
        uuids.sort();
        uuids.dedup();
        assert_eq!(uuids.len(), attrs.len(), "attribute uuids are distinct");
    }
}

#[test]
fn singular_counts_read_well() {
    let mut one = item(ItemKind::Domain, "a.example", Tlp::Clear);
    one.sightings = 1;
    one.jobs = 1;
    let e = parse(&misp_event(&set(Tlp::Clear, vec![one])).unwrap());
    assert_eq!(
        e["Event"]["Attribute"][0]["comment"],
        "seen 1 time in 1 job"
    );
}

#[test]
fn empty_sets_are_written() {
    let s = set(Tlp::Green, vec![]);
    let w = stix_bundle(&s).unwrap();
    assert_eq!(w.objects, 2);
    let m = misp_event(&s).unwrap();
    assert_eq!(m.objects, 0);
    assert_eq!(parse(&m)["Event"]["Attribute"], serde_json::json!([]));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let ok = || {
        set(
            Tlp::Amber,
            vec![item(ItemKind::Domain, "a.example", Tlp::Clear)],
        )
    };
    let both = |s: &ShareSet| {
        let a = stix_bundle(s).unwrap_err().to_string();
        let b = misp_event(s).unwrap_err().to_string();
        assert_eq!(a, b);
        a
    };
    let mut s = ok();
    s.identity.uuid = "lab-1".into();
    assert!(both(&s).contains("\"lab-1\" is not a UUID"));
    let mut s = ok();
    s.identity.name = " ".into();
    assert!(both(&s).contains("the identity's name is empty"));
    let mut s = ok();
    s.title.clear();
    assert!(both(&s).contains("the title is empty"));
    let mut s = ok();
    s.created_ms = -5;
    assert!(both(&s).contains("the export time: -5 ms is outside"));
    for (kind, value, why) in [
        (ItemKind::Md5, "abc", "not 32 hex digits"),
        (ItemKind::Sha1, &"g".repeat(40), "not 40 hex digits"),
        (ItemKind::Sha256, &"é".repeat(32), "not 64 hex digits"),
        (ItemKind::Ipv4, "1.2.3.04", "not an IPv4 address"),
        (ItemKind::Ipv6, "2001:db8:::1", "not an IPv6 address"),
        (ItemKind::Email, "a@b@c", "not an e-mail address"),
        (ItemKind::Email, "@b", "not an e-mail address"),
        (ItemKind::Url, "", "empty value"),
    ] {
        let mut s = ok();
        s.items.push(item(kind, value, Tlp::Clear));
        let e = both(&s);
        assert!(e.starts_with(&format!("item 1 ({kind} ")), "{e}");
        assert!(e.contains(why), "{e}");
    }
    let mut s = ok();
    s.items[0].last_ms = s.items[0].first_ms - 1;
    assert!(both(&s).contains("last seen"));
    let mut s = ok();
    s.items[0].first_ms = ids::MAX_MS + 1;
    assert!(both(&s).contains("item 0 (domain \"a.example\") first seen"));
    let mut s = ok();
    s.items.push(item(ItemKind::Ipv4, "10.0.0.1", Tlp::Clear));
    s.items
        .push(item(ItemKind::Domain, "a.example", Tlp::Green));
    assert_eq!(both(&s), "items 0 and 2 are both domain \"a.example\"");
    // A duplicate that is withheld is no duplicate.
    s.items[2].marking = Tlp::Red;
    assert_eq!(stix_bundle(&s).unwrap().withheld, 1);
    let mut s = ok();
    s.yara.push(YaraSource {
        name: "x.yar".into(),
        text: "\n".into(),
    });
    assert_eq!(both(&s), "YARA source 0 (\"x.yar\"): empty rule text");
    // Long values are cut in messages.
    let mut s = ok();
    s.items
        .push(item(ItemKind::Md5, &"z".repeat(500), Tlp::Clear));
    assert!(both(&s).len() < 200);
}

#[test]
fn invalid_items_that_are_withheld_do_not_block_the_export() {
    let s = set(
        Tlp::Green,
        vec![
            item(ItemKind::Domain, "a.example", Tlp::Green),
            item(ItemKind::Md5, "not a digest", Tlp::Red),
        ],
    );
    assert_eq!(misp_event(&s).unwrap().withheld, 1);
}

#[test]
fn ip_addresses_are_written_in_their_canonical_form() {
    let s = set(
        Tlp::Clear,
        vec![item(ItemKind::Ipv6, "2001:DB8:0:0:0:0:0:1", Tlp::Clear)],
    );
    let e = parse(&misp_event(&s).unwrap());
    assert_eq!(e["Event"]["Attribute"][0]["value"], "2001:db8::1");
}

#[test]
fn urls_are_written_as_uris() {
    for (given, want) in [
        ("http://a.example/x?y=1#f", "http://a.example/x?y=1#f"),
        (
            "http://a.example/dl?f=a'b\\c&x=\"y\"",
            "http://a.example/dl?f=a'b%5Cc&x=%22y%22",
        ),
        ("https://a.example/a b/é", "https://a.example/a%20b/%C3%A9"),
        (
            "http://[2001:db8::1]:8080/[x]#a#b",
            "http://[2001:db8::1]:8080/%5Bx%5D#a%23b",
        ),
        (
            "http://a.example/100%25/50%/%zz",
            "http://a.example/100%25/50%25/%25zz",
        ),
        ("mailto:a@b.example", "mailto:a@b.example"),
        ("http://a.example/\u{1}\t", "http://a.example/%01%09"),
    ] {
        assert_eq!(
            checked_value(ItemKind::Url, given).as_deref(),
            Ok(want),
            "{given}"
        );
    }
    for bad in ["a.example/x", "://x", "1http://x", "ht tp://x"] {
        assert!(checked_value(ItemKind::Url, bad).is_err(), "{bad}");
    }
    // The pattern carries the encoded form.
    let s = set(
        Tlp::Clear,
        vec![item(ItemKind::Url, "http://a.example/'\\", Tlp::Clear)],
    );
    let objs = objects(&parse(&stix_bundle(&s).unwrap()));
    assert_eq!(
        of_type(&objs, "indicator")[0]["pattern"],
        "[url:value = 'http://a.example/\\'%5C']"
    );
}

#[test]
fn values_outside_the_stix_forms_go_to_misp_only() {
    let s = set(
        Tlp::Clear,
        vec![
            item(ItemKind::Email, "o'neil@a.example", Tlp::Clear),
            item(ItemKind::Email, "a@localhost", Tlp::Clear),
            item(
                ItemKind::Email,
                "a.b+c_d-e@xn--bcher-kva.example",
                Tlp::Clear,
            ),
            item(ItemKind::Domain, "a_b.example", Tlp::Clear),
            item(ItemKind::Domain, "-a.example", Tlp::Clear),
            item(ItemKind::Domain, "a..example", Tlp::Clear),
            item(
                ItemKind::Domain,
                &format!("{}.example", "a".repeat(64)),
                Tlp::Clear,
            ),
            item(ItemKind::Domain, "xn--mnchen-3ya.example", Tlp::Clear),
        ],
    );
    let w = stix_bundle(&s).unwrap();
    assert_eq!(w.not_in_format, 6);
    let objs = objects(&parse(&w));
    let values: Vec<&str> = objs.iter().filter_map(|o| o["value"].as_str()).collect();
    assert_eq!(
        values,
        ["a.b+c_d-e@xn--bcher-kva.example", "xn--mnchen-3ya.example"]
    );
    assert_eq!(misp_event(&s).unwrap().objects, 8);
}

fn feed_sets() -> Vec<ShareSet> {
    let mut a = set(Tlp::Green, every_kind(Tlp::Clear));
    a.items
        .push(item(ItemKind::Domain, "secret.example", Tlp::Red));
    let mut b = set(
        Tlp::Amber,
        vec![item(ItemKind::Url, "https://b.example/x", Tlp::Amber)],
    );
    b.title = "case C0002".into();
    vec![a, b]
}

#[test]
fn feed_directory_has_manifest_hashes_and_events() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    let w = misp_feed(&feed_sets(), &dir).unwrap();
    assert_eq!((w.events, w.attributes, w.withheld), (2, 13, 1));
    let names: Vec<&str> = w.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4);
    assert!(names.windows(2).all(|p| p[0] < p[1]), "sorted: {names:?}");
    let mut listing = String::new();
    for (name, sum) in &w.files {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(
            sum,
            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        listing.push_str(&format!("{sum}  {name}\n"));
    }
    assert_eq!(
        w.digest,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(listing.as_bytes()))
    );

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let manifest = manifest.as_object().unwrap();
    assert_eq!(manifest.len(), 2);
    let hashes = std::fs::read_to_string(dir.join("hashes.csv")).unwrap();
    assert_eq!(hashes.lines().count(), 13);
    for (uuid, head) in manifest {
        let ev: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{uuid}.json"))).unwrap())
                .unwrap();
        let ev = &ev["Event"];
        assert_eq!(&ev["uuid"], uuid.as_str());
        for k in [
            "info",
            "date",
            "analysis",
            "threat_level_id",
            "timestamp",
            "Orgc",
            "Tag",
        ] {
            assert_eq!(head[k], ev[k], "{k}");
        }
        assert_eq!(head.as_object().unwrap().len(), 7);
        for a in ev["Attribute"].as_array().unwrap() {
            let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(
                a["value"].as_str().unwrap(),
            ));
            assert!(
                hashes.lines().any(|l| l == format!("{md5},{uuid}")),
                "{md5},{uuid}"
            );
        }
        // The event file is misp_event's output.
        let set = feed_sets()
            .into_iter()
            .find(|s| s.title == ev["info"])
            .unwrap();
        assert_eq!(
            std::fs::read(dir.join(format!("{uuid}.json"))).unwrap(),
            misp_event(&set).unwrap().bytes
        );
    }
    assert!(
        !hashes.contains(&hex::encode(<md5::Md5 as md5::Digest>::digest(
            "secret.example"
        )))
    );
}

#[test]
fn feed_never_writes_over_files() {
    let tmp = tempfile::tempdir().unwrap();
    // An existing empty directory is fine.
    let w = misp_feed(&feed_sets(), tmp.path()).unwrap();
    // A second time it is not empty.
    let e = misp_feed(&feed_sets(), tmp.path()).unwrap_err();
    assert!(matches!(e, ShareError::FeedDir { .. }), "{e}");
    assert!(
        e.to_string().contains(&tmp.path().display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("is not empty"), "{e}");
    for (name, sum) in &w.files {
        let bytes = std::fs::read(tmp.path().join(name)).unwrap();
        assert_eq!(
            sum,
            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
    }
    // A file in the way.
    let file = tmp.path().join("hashes.csv");
    let e = misp_feed(&feed_sets(), &file).unwrap_err();
    assert!(e.to_string().contains("is not a directory"), "{e}");
    // Two sets making the same event: nothing is written.
    let dir = tmp.path().join("twice");
    let sets = [feed_sets()[0].clone(), feed_sets()[0].clone()];
    let e = misp_feed(&sets, &dir).unwrap_err();
    assert!(
        matches!(
            e,
            ShareError::DuplicateEvent {
                first: 0,
                second: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(!dir.exists());
    // A bad set: nothing is written either.
    let mut bad = feed_sets();
    bad[1].identity.uuid = "x".into();
    let e = misp_feed(&bad, &dir).unwrap_err();
    assert!(matches!(e, ShareError::IdentityUuid(_)), "{e}");
    assert!(!dir.exists());
}

fn any_kind() -> impl Strategy<Value = ItemKind> {
    prop::sample::select(ItemKind::ALL.to_vec())
}

fn any_tlp() -> impl Strategy<Value = Tlp> {
    prop::sample::select(Tlp::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Any values, any instants: an error or JSON that holds every shared
    /// value intact; never a panic.
    #[test]
    fn writers_never_panic_and_keep_values_intact(
        tlp in any_tlp(),
        raw in prop::collection::vec((any_kind(), any::<String>(), any::<i64>(), 0i64..1_000_000, any::<u64>(), any_tlp()), 0..8),
        title in any::<String>(),
        created in prop_oneof![Just(T0), any::<i64>()],
    ) {
        let items: Vec<Item> = raw.into_iter().map(|(kind, value, first, span, sightings, marking)| Item {
            kind, value, first_ms: first, last_ms: first.saturating_add(span), sightings, jobs: 1, marking,
        }).collect();
        let mut s = set(tlp, items);
        s.title = title;
        s.created_ms = created;
        let stix = stix_bundle(&s);
        let misp = misp_event(&s);
        prop_assert_eq!(stix.is_ok(), misp.is_ok());
        if let (Ok(stix), Ok(misp)) = (stix, misp) {
            let b = parse(&stix);
            let e = parse(&misp);
            prop_assert_eq!(stix.withheld, s.items.iter().filter(|i| i.marking > tlp).count());
            let attrs = e["Event"]["Attribute"].as_array().unwrap();
            prop_assert_eq!(attrs.len(), s.items.len() - misp.withheld);
            for a in attrs {
                let v = a["value"].as_str().unwrap();
                prop_assert!(s.items.iter().any(|i| i.value == v || i.value.eq_ignore_ascii_case(v) || checked_value(i.kind, &i.value).as_deref() == Ok(v)));
            }
            prop_assert_eq!(e["Event"]["info"].as_str().unwrap(), s.title.as_str());
            prop_assert_eq!(objects(&b).len(), stix.objects);
        }
    }
}
