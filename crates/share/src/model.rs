//! The neutral input of every writer: [`ShareSet`], its [`Item`]s, the
//! [`Tlp`] levels and the [`ItemKind`]s that may be shared.

use serde::{Deserialize, Serialize};

/// Traffic Light Protocol 2.0 levels, from the least to the most
/// restrictive (`Ord` follows that order: `Clear < Green < Amber <
/// AmberStrict < Red`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    #[serde(rename = "amber+strict")]
    AmberStrict,
    Red,
}

impl Tlp {
    /// Every level, least restrictive first.
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// Parses `clear`, `white` (TLP 1.0's name for clear), `green`,
    /// `amber`, `amber+strict` and `red`, in any case, with or without a
    /// `tlp:` prefix; surrounding blanks are ignored.
    pub fn parse(s: &str) -> Option<Tlp> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("tlp:").unwrap_or(&s);
        match s {
            "clear" | "white" => Some(Tlp::Clear),
            "green" => Some(Tlp::Green),
            "amber" => Some(Tlp::Amber),
            "amber+strict" => Some(Tlp::AmberStrict),
            "red" => Some(Tlp::Red),
            _ => None,
        }
    }

    /// The level's name: `clear`, `green`, `amber`, `amber+strict`, `red`.
    pub fn name(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The label as TLP 2.0 writes it: `TLP:AMBER+STRICT`.
    pub fn label(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// The id of OASIS's TLP 2.0 STIX marking definition of this level
    /// (cti-stix-common-objects, `extension-definition--60a3c5c5-…`).
    pub fn stix_marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The tag of MISP's `tlp` taxonomy (TLP 2.0 names): `tlp:amber+strict`.
    pub fn misp_tag(self) -> String {
        format!("tlp:{}", self.name())
    }
}

impl std::fmt::Display for Tlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The kinds of indicators that may be shared. Card numbers (even as
/// keyed hashes) are not among them: [`ItemKind::parse`] refuses
/// `ccn_hmac`, so nothing can hand one to a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Email,
    Domain,
    Url,
    Ipv4,
    Ipv6,
    Bitcoin,
    Iban,
    Phone,
    Md5,
    Sha1,
    Sha256,
    YaraRule,
}

impl ItemKind {
    /// Every kind.
    pub const ALL: [ItemKind; 12] = [
        ItemKind::Email,
        ItemKind::Domain,
        ItemKind::Url,
        ItemKind::Ipv4,
        ItemKind::Ipv6,
        ItemKind::Bitcoin,
        ItemKind::Iban,
        ItemKind::Phone,
        ItemKind::Md5,
        ItemKind::Sha1,
        ItemKind::Sha256,
        ItemKind::YaraRule,
    ];

    /// The kind's name, as trawl-intel writes it.
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Email => "email",
            ItemKind::Domain => "domain",
            ItemKind::Url => "url",
            ItemKind::Ipv4 => "ipv4",
            ItemKind::Ipv6 => "ipv6",
            ItemKind::Bitcoin => "bitcoin",
            ItemKind::Iban => "iban",
            ItemKind::Phone => "phone",
            ItemKind::Md5 => "md5",
            ItemKind::Sha1 => "sha1",
            ItemKind::Sha256 => "sha256",
            ItemKind::YaraRule => "yara_rule",
        }
    }

    /// The kind of a name; `None` for anything else, `ccn_hmac` included.
    pub fn parse(name: &str) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The organisation that shares (the lab).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    /// A UUID in its 8-4-4-4-12 text form (the STIX identity is
    /// `identity--<uuid>`, the MISP `Orgc.uuid` is the same).
    pub uuid: String,
}

/// One indicator with its sightings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub kind: ItemKind,
    /// The normalised value (trawl-intel's normalisation).
    pub value: String,
    /// First and last seen, Unix milliseconds.
    pub first_ms: i64,
    pub last_ms: i64,
    /// How many times it was seen.
    pub sightings: u64,
    /// In how many jobs.
    pub jobs: u32,
    /// The item's own marking: one stricter than the export's TLP is
    /// withheld.
    pub marking: Tlp,
}

/// A YARA source (a flash's rules), shared as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YaraSource {
    pub name: String,
    pub text: String,
}

/// What one export shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSet {
    pub identity: Identity,
    /// The export's TLP: every written object carries it.
    pub tlp: Tlp,
    /// The MISP event's `info`; with the identity, it names the event
    /// (its UUID is derived from both, so a later export of the same
    /// scope updates the same MISP event).
    pub title: String,
    /// The export time, Unix milliseconds (passed in: the output depends
    /// on nothing else).
    pub created_ms: i64,
    pub items: Vec<Item>,
    pub yara: Vec<YaraSource>,
}
