//! Alert flashes and the alerts they raise, over sled trees.
//!
//! A flash (`F000001`) describes a new threat: a title, a TLP level, a set
//! of indicators and/or a YARA rule set. Each hit in a case raises one
//! alert (`AL000001`), once per (flash, case, job, what): raising it again
//! changes nothing, so a restart that replays the work is harmless.
//! Alerts move New → Seen → Dismissed (or New → Dismissed), a dismissal
//! with its reason ([`alert_next`]).
//!
//! Trees: `flashes` (id → record), `alerts` (seq, big-endian → record, so
//! a scan is in raising order), `alert_keys` (the de-duplication key →
//! seq), `retro` (retrohunt job → (flash, source job)).

use crate::{Indicator, Kind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a flash or alert operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("flashes: {0}")]
    Db(#[from] sled::Error),
    #[error("flashes: damaged record in {tree}: {why}")]
    Damaged { tree: &'static str, why: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

pub use trawl_share::Tlp;

/// A flash's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FlashState {
    Active,
    Withdrawn { by: String, ms: i64, reason: String },
}

/// An alert flash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashRecord {
    pub id: String,
    pub title: String,
    pub description: String,
    pub tlp: Tlp,
    pub publisher: String,
    pub published_ms: i64,
    /// Normalised indicators, `kind` and `value`.
    pub indicators: Vec<(String, String)>,
    /// The restricted rule set holding its YARA rules (`flash-F000001`).
    pub ruleset: Option<String>,
    pub state: FlashState,
}

impl FlashRecord {
    pub fn active(&self) -> bool {
        self.state == FlashState::Active
    }

    /// Its indicators, parsed.
    pub fn indicator_set(&self) -> Vec<Indicator> {
        self.indicators
            .iter()
            .filter_map(|(k, v)| {
                Some(Indicator {
                    kind: Kind::parse(k)?,
                    value: v.clone(),
                })
            })
            .collect()
    }
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertWhat {
    /// One of the flash's indicators, seen in the job.
    Indicator {
        indicator_kind: String,
        value: String,
    },
    /// The flash's rules matched the job's evidence.
    Rule { rules: Vec<String>, hits: u64 },
}

impl AlertWhat {
    /// The de-duplication part of the alert's key.
    fn key(&self) -> String {
        match self {
            AlertWhat::Indicator {
                indicator_kind,
                value,
            } => format!("i:{indicator_kind}:{value}"),
            AlertWhat::Rule { .. } => "rule".into(),
        }
    }
}

/// An alert's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertState {
    New,
    Seen { by: String, ms: i64 },
    Dismissed { by: String, ms: i64, reason: String },
}

impl AlertState {
    pub fn name(&self) -> &'static str {
        match self {
            AlertState::New => "new",
            AlertState::Seen { .. } => "seen",
            AlertState::Dismissed { .. } => "dismissed",
        }
    }
}

/// What a user does to an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertEvent {
    Seen { by: String, ms: i64 },
    Dismiss { by: String, ms: i64, reason: String },
}

/// The next state of an alert, or why the event does not apply: New →
/// Seen → Dismissed, New → Dismissed; a dismissal needs a reason; nothing
/// leaves Dismissed; seeing a seen alert is refused (it would rewrite who
/// saw it first).
///
/// # Errors
/// A transition the machine does not have, or a dismissal without reason.
pub fn alert_next(s: &AlertState, e: AlertEvent) -> Result<AlertState, String> {
    match (s, e) {
        (AlertState::New, AlertEvent::Seen { by, ms }) => Ok(AlertState::Seen { by, ms }),
        (AlertState::New | AlertState::Seen { .. }, AlertEvent::Dismiss { by, ms, reason }) => {
            if reason.trim().is_empty() {
                Err("dismissing an alert needs a reason".into())
            } else {
                Ok(AlertState::Dismissed { by, ms, reason })
            }
        }
        (s, e) => Err(format!(
            "an alert that is {} cannot be {}",
            s.name(),
            match e {
                AlertEvent::Seen { .. } => "marked seen",
                AlertEvent::Dismiss { .. } => "dismissed",
            }
        )),
    }
}

/// An alert: a flash's hit in one job of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub seq: u64,
    pub id: String,
    pub case: String,
    pub flash: String,
    pub flash_title: String,
    pub tlp: Tlp,
    pub job: String,
    pub what: AlertWhat,
    pub created_ms: i64,
    pub state: AlertState,
}

/// A retrohunt job: which flash, over which earlier job's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetroRecord {
    pub flash: String,
    pub of_job: String,
    pub case: String,
    pub submitted_ms: i64,
    /// Set when its results were turned into alerts.
    #[serde(default)]
    pub done_ms: i64,
    #[serde(default)]
    pub hits: u64,
}

/// The flash and alert trees.
#[derive(Clone)]
pub struct Flashes {
    flashes: sled::Tree,
    alerts: sled::Tree,
    keys: sled::Tree,
    retro: sled::Tree,
    meta: sled::Tree,
}

fn dec<T: for<'a> Deserialize<'a>>(tree: &'static str, v: &[u8]) -> Result<T, FlashError> {
    serde_json::from_slice(v).map_err(|e| FlashError::Damaged {
        tree,
        why: e.to_string(),
    })
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl Flashes {
    /// Opens (or creates) the trees in `db`.
    ///
    /// # Errors
    /// The database failing.
    pub fn open(db: &sled::Db) -> Result<Self, FlashError> {
        Ok(Self {
            flashes: db.open_tree("flashes")?,
            alerts: db.open_tree("alerts")?,
            keys: db.open_tree("alert_keys")?,
            retro: db.open_tree("retro")?,
            meta: db.open_tree("intel_meta")?,
        })
    }

    fn next(&self, name: &str) -> Result<u64, FlashError> {
        let v = self.meta.update_and_fetch(name, |old| {
            let n = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        Ok(v.and_then(|b| <[u8; 8]>::try_from(&b[..]).ok())
            .map_or(1, u64::from_be_bytes))
    }

    /// Stores a new flash, giving it its id (the record's `id` is
    /// replaced).
    ///
    /// # Errors
    /// The database failing.
    pub fn publish(&self, mut rec: FlashRecord) -> Result<FlashRecord, FlashError> {
        rec.id = format!("F{:06}", self.next("flash_seq")?);
        self.flashes.insert(rec.id.as_bytes(), enc(&rec))?;
        Ok(rec)
    }

    /// Sets the rule set name of a flash (once its rules are stored).
    ///
    /// # Errors
    /// Unknown flash; the database failing.
    pub fn set_ruleset(&self, id: &str, ruleset: &str) -> Result<FlashRecord, FlashError> {
        let mut f = self.flash(id)?;
        f.ruleset = Some(ruleset.to_string());
        self.flashes.insert(id.as_bytes(), enc(&f))?;
        Ok(f)
    }

    /// A flash.
    ///
    /// # Errors
    /// Unknown flash; the database failing.
    pub fn flash(&self, id: &str) -> Result<FlashRecord, FlashError> {
        match self.flashes.get(id.as_bytes())? {
            Some(v) => dec("flashes", &v),
            None => Err(FlashError::NotFound(format!("flash {id:?}"))),
        }
    }

    /// Every flash, oldest first.
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn list(&self) -> Result<Vec<FlashRecord>, FlashError> {
        self.flashes
            .iter()
            .map(|kv| dec("flashes", &kv?.1))
            .collect()
    }

    /// Withdraws an active flash: it raises no more alerts.
    ///
    /// # Errors
    /// Unknown or already withdrawn flash; no reason; the database failing.
    pub fn withdraw(
        &self,
        id: &str,
        by: &str,
        ms: i64,
        reason: &str,
    ) -> Result<FlashRecord, FlashError> {
        let mut f = self.flash(id)?;
        if !f.active() {
            return Err(FlashError::Invalid(format!(
                "flash {id} is already withdrawn"
            )));
        }
        if reason.trim().is_empty() {
            return Err(FlashError::Invalid(
                "withdrawing a flash needs a reason".into(),
            ));
        }
        f.state = FlashState::Withdrawn {
            by: by.into(),
            ms,
            reason: reason.into(),
        };
        self.flashes.insert(id.as_bytes(), enc(&f))?;
        Ok(f)
    }

    /// Raises an alert, unless the same (flash, case, job, what) was raised
    /// before: `Some(new alert)` or `None`.
    ///
    /// # Errors
    /// The database failing.
    pub fn raise(
        &self,
        flash: &FlashRecord,
        case: &str,
        job: &str,
        what: AlertWhat,
        now_ms: i64,
    ) -> Result<Option<AlertRecord>, FlashError> {
        let key = format!("{}\0{case}\0{job}\0{}", flash.id, what.key());
        if self.keys.contains_key(key.as_bytes())? {
            return Ok(None);
        }
        let seq = self.next("alert_seq")?;
        let rec = AlertRecord {
            seq,
            id: format!("AL{seq:06}"),
            case: case.into(),
            flash: flash.id.clone(),
            flash_title: flash.title.clone(),
            tlp: flash.tlp,
            job: job.into(),
            what,
            created_ms: now_ms,
            state: AlertState::New,
        };
        self.alerts.insert(seq.to_be_bytes(), enc(&rec))?;
        // written last: a crash before it raises the alert again, once
        self.keys.insert(key.as_bytes(), &seq.to_be_bytes())?;
        Ok(Some(rec))
    }

    /// Alerts from `from_seq` on (raising order), those `keep` accepts, at
    /// most `limit`.
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn alerts(
        &self,
        from_seq: u64,
        limit: usize,
        mut keep: impl FnMut(&AlertRecord) -> bool,
    ) -> Result<Vec<AlertRecord>, FlashError> {
        let mut out = Vec::new();
        for kv in self.alerts.range(from_seq.to_be_bytes()..) {
            let rec: AlertRecord = dec("alerts", &kv?.1)?;
            if keep(&rec) {
                out.push(rec);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// An alert by id (`AL000012`).
    ///
    /// # Errors
    /// Unknown alert; the database failing.
    pub fn alert(&self, id: &str) -> Result<AlertRecord, FlashError> {
        let seq = id
            .strip_prefix("AL")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| FlashError::NotFound(format!("alert {id:?}")))?;
        match self.alerts.get(seq.to_be_bytes())? {
            Some(v) => dec("alerts", &v),
            None => Err(FlashError::NotFound(format!("alert {id:?}"))),
        }
    }

    /// Moves an alert by `e` ([`alert_next`]).
    ///
    /// # Errors
    /// Unknown alert, a refused transition, the database failing.
    pub fn update_alert(&self, id: &str, e: AlertEvent) -> Result<AlertRecord, FlashError> {
        let mut a = self.alert(id)?;
        a.state = alert_next(&a.state, e).map_err(FlashError::Invalid)?;
        self.alerts.insert(a.seq.to_be_bytes(), enc(&a))?;
        Ok(a)
    }

    /// Records a retrohunt job.
    ///
    /// # Errors
    /// The database failing.
    pub fn add_retro(&self, job: &str, rec: &RetroRecord) -> Result<(), FlashError> {
        self.retro.insert(job.as_bytes(), enc(rec))?;
        Ok(())
    }

    /// The retrohunt a job runs, if it is one.
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn retro_of(&self, job: &str) -> Result<Option<RetroRecord>, FlashError> {
        match self.retro.get(job.as_bytes())? {
            Some(v) => Ok(Some(dec("retro", &v)?)),
            None => Ok(None),
        }
    }

    /// Every retrohunt job, by job id.
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn retros(&self) -> Result<BTreeMap<String, RetroRecord>, FlashError> {
        let mut out = BTreeMap::new();
        for kv in self.retro.iter() {
            let (k, v) = kv?;
            out.insert(String::from_utf8_lossy(&k).into_owned(), dec("retro", &v)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flash(id_hint: &str) -> FlashRecord {
        FlashRecord {
            id: id_hint.into(),
            title: "Campaign X".into(),
            description: String::new(),
            tlp: Tlp::Amber,
            publisher: "ana".into(),
            published_ms: 1,
            indicators: vec![("domain".into(), "evil.com".into())],
            ruleset: None,
            state: FlashState::Active,
        }
    }

    #[test]
    fn tlp_levels_parse_and_order() {
        assert_eq!(Tlp::parse("TLP:AMBER+STRICT"), Some(Tlp::AmberStrict));
        assert_eq!(Tlp::parse("white"), Some(Tlp::Clear));
        assert_eq!(Tlp::parse("purple"), None);
        assert!(
            Tlp::Clear < Tlp::Green && Tlp::Amber < Tlp::AmberStrict && Tlp::AmberStrict < Tlp::Red
        );
        for t in Tlp::ALL {
            assert_eq!(Tlp::parse(t.name()), Some(t));
            assert_eq!(Tlp::parse(t.label()), Some(t));
        }
        assert_eq!(
            serde_json::to_string(&Tlp::AmberStrict).unwrap(),
            "\"amber+strict\""
        );
    }

    #[test]
    fn alert_states_move_forward_only() {
        let seen = AlertEvent::Seen {
            by: "o".into(),
            ms: 2,
        };
        let dismiss = |r: &str| AlertEvent::Dismiss {
            by: "o".into(),
            ms: 3,
            reason: r.into(),
        };
        let s1 = alert_next(&AlertState::New, seen.clone()).unwrap();
        assert_eq!(s1.name(), "seen");
        assert!(alert_next(&s1, seen.clone()).is_err());
        assert!(alert_next(&s1, dismiss("  ")).is_err());
        let s2 = alert_next(&s1, dismiss("false positive: lab test image")).unwrap();
        assert_eq!(s2.name(), "dismissed");
        assert!(alert_next(&s2, seen).is_err());
        assert!(alert_next(&s2, dismiss("again")).is_err());
        assert_eq!(
            alert_next(&AlertState::New, dismiss("known"))
                .unwrap()
                .name(),
            "dismissed"
        );
    }

    #[test]
    fn flashes_get_ids_and_alerts_are_raised_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let fl = Flashes::open(&db).unwrap();
        let f1 = fl.publish(flash("")).unwrap();
        let f2 = fl.publish(flash("")).unwrap();
        assert_eq!((f1.id.as_str(), f2.id.as_str()), ("F000001", "F000002"));
        let what = AlertWhat::Indicator {
            indicator_kind: "domain".into(),
            value: "evil.com".into(),
        };
        let a = fl.raise(&f1, "A", "J1", what.clone(), 5).unwrap().unwrap();
        assert_eq!(a.id, "AL000001");
        assert!(fl.raise(&f1, "A", "J1", what.clone(), 6).unwrap().is_none());
        let b = fl.raise(&f1, "B", "J2", what, 7).unwrap().unwrap();
        let r = fl
            .raise(
                &f2,
                "B",
                "J2",
                AlertWhat::Rule {
                    rules: vec!["r".into()],
                    hits: 2,
                },
                8,
            )
            .unwrap()
            .unwrap();
        assert_eq!(r.seq, 3);
        let of_b: Vec<String> = fl
            .alerts(0, 10, |a| a.case == "B")
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(of_b, [b.id.clone(), r.id.clone()]);
        assert_eq!(fl.alerts(3, 10, |_| true).unwrap().len(), 1);
        let u = fl
            .update_alert(
                &b.id,
                AlertEvent::Seen {
                    by: "o".into(),
                    ms: 9,
                },
            )
            .unwrap();
        assert_eq!(fl.alert(&b.id).unwrap(), u);
        assert!(fl.alert("AL999").is_err() && fl.alert("bogus").is_err());
        let w = fl
            .withdraw(&f1.id, "ana", 10, "superseded by F000002")
            .unwrap();
        assert!(!w.active());
        assert!(fl.withdraw(&f1.id, "ana", 11, "again").is_err());
        assert_eq!(fl.list().unwrap().len(), 2);
    }
}
