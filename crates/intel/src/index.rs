//! The indicator index over sled trees, and the cross-case links it
//! raises.
//!
//! Keys: `K = kind code ‖ value` (values never hold a zero byte), `0` a
//! zero byte.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `intel_ioc` | `K` | first and last sighting (ms) |
//! | `intel_sight` | `K‖0‖case` | first and last sighting in the case, its jobs |
//! | `intel_case` | `case‖0‖K` | first sighting in the case |
//! | `intel_job` | `job‖0‖K` | the job's sighting (count, first offset, sources) |
//! | `intel_jobs` | `job` | the case and the indexing time: the job is indexed (written last) |
//! | `intel_cases` | `case` | first indexing time |
//! | `intel_links` | `A‖0‖B‖0‖K` (both directions) | first linked (ms) and the job that linked |
//!
//! Every look-up is a get or a prefix scan; nothing is counted in place,
//! so indexing a job again (after a crash) changes nothing. Whether an
//! indicator is **common** (on the stop list, or seen in more cases than
//! the threshold) is decided when asked, so an indicator that becomes
//! common stops linking everywhere at once; common indicators are kept.

use crate::{Indicator, JobIndicators, Kind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why the index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("indicator index: {0}")]
    Db(#[from] sled::Error),
    #[error("indicator index: damaged record in {tree}: {why}")]
    Damaged { tree: &'static str, why: String },
    #[error("indicator index: bad identifier {0:?}")]
    BadId(String),
}

/// When an indicator counts as common.
#[derive(Debug, Clone)]
pub struct CommonRule {
    /// Seen in more cases than this is common...
    pub min_cases: u64,
    /// ...or in more than this share of all cases (whichever is larger).
    pub share: f64,
    /// The lab's stop list (normalised indicators).
    pub stop: BTreeSet<Indicator>,
}

impl Default for CommonRule {
    fn default() -> Self {
        Self {
            min_cases: 20,
            share: 0.05,
            stop: BTreeSet::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Span {
    first_ms: i64,
    last_ms: i64,
    /// A known-file set named it (NSRL-known): common for good.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    known: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CaseSighting {
    first_ms: i64,
    last_ms: i64,
    jobs: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobSighting {
    count: u64,
    first_offset: u64,
    sources: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobMark {
    case: String,
    indexed_ms: i64,
    indicators: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinkRecord {
    first_ms: i64,
    job: String,
}

/// A link between two cases: an indicator both hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub other_case: String,
    pub indicator: Indicator,
    pub first_ms: i64,
    /// The job whose indexing raised the link.
    pub job: String,
}

/// An indicator as one case or job holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSeen {
    pub indicator: Indicator,
    pub first_ms: i64,
    pub last_ms: i64,
    pub jobs: u32,
    pub count: u64,
}

/// The sightings of an indicator in one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSightings {
    pub case: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub jobs: Vec<String>,
}

/// The class of an address that is not public (`private`, `loopback`,
/// ...), which makes it common: every lab's images hold them.
fn address_class(i: &Indicator) -> Option<&'static str> {
    let class = match i.kind {
        Kind::Ipv4 => trawl_features::validate::ipv4_class(i.value.parse().ok()?),
        Kind::Ipv6 => trawl_features::validate::ipv6_class(i.value.parse().ok()?),
        _ => return None,
    };
    (class != "public").then_some(class)
}

/// What indexing one job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    /// Indicators written.
    pub indicators: u64,
    /// Links raised, from the job's case to others (new ones only).
    pub new_links: Vec<Link>,
    /// The job had been indexed already: nothing changed.
    pub already: bool,
}

/// The indicator index.
#[derive(Clone)]
pub struct Index {
    ioc: sled::Tree,
    sight: sled::Tree,
    case: sled::Tree,
    job: sled::Tree,
    jobs: sled::Tree,
    cases: sled::Tree,
    links: sled::Tree,
    rule: CommonRule,
}

fn key(i: &Indicator) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + i.value.len());
    k.push(i.kind.code());
    k.extend_from_slice(i.value.as_bytes());
    k
}

fn unkey(k: &[u8]) -> Option<Indicator> {
    let (&code, v) = k.split_first()?;
    let kind = Kind::ALL.into_iter().find(|k| k.code() == code)?;
    Some(Indicator {
        kind,
        value: String::from_utf8(v.to_vec()).ok()?,
    })
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            v.push(0);
        }
        v.extend_from_slice(p);
    }
    v
}

fn check_id(id: &str) -> Result<(), IndexError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:@".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(IndexError::BadId(id.to_string()))
    }
}

fn dec<T: for<'a> Deserialize<'a>>(tree: &'static str, v: &[u8]) -> Result<T, IndexError> {
    serde_json::from_slice(v).map_err(|e| IndexError::Damaged {
        tree,
        why: e.to_string(),
    })
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    // plain records of strings and integers: serialising cannot fail
    serde_json::to_vec(v).unwrap_or_default()
}

impl Index {
    /// Opens (or creates) the index's trees in `db`.
    ///
    /// # Errors
    /// The database failing.
    pub fn open(db: &sled::Db, rule: CommonRule) -> Result<Self, IndexError> {
        Ok(Self {
            ioc: db.open_tree("intel_ioc")?,
            sight: db.open_tree("intel_sight")?,
            case: db.open_tree("intel_case")?,
            job: db.open_tree("intel_job")?,
            jobs: db.open_tree("intel_jobs")?,
            cases: db.open_tree("intel_cases")?,
            links: db.open_tree("intel_links")?,
            rule,
        })
    }

    /// Whether `job` is indexed.
    ///
    /// # Errors
    /// The database failing.
    pub fn is_indexed(&self, job: &str) -> Result<bool, IndexError> {
        Ok(self.jobs.contains_key(job.as_bytes())?)
    }

    /// Cases with anything indexed.
    ///
    /// # Errors
    /// The database failing.
    pub fn total_cases(&self) -> Result<u64, IndexError> {
        Ok(self.cases.len() as u64)
    }

    /// The cases where `i` was seen, at most `limit` of them.
    ///
    /// # Errors
    /// The database failing.
    pub fn cases_of(&self, i: &Indicator, limit: usize) -> Result<Vec<String>, IndexError> {
        let mut prefix = key(i);
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.sight.scan_prefix(&prefix).take(limit) {
            let (k, _) = kv?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    /// Whether `i` is common now (see [`Index::common_reason`]).
    ///
    /// # Errors
    /// The database failing.
    pub fn is_common(&self, i: &Indicator) -> Result<bool, IndexError> {
        Ok(self.common_reason(i)?.is_some())
    }

    /// Why `i` is common now, if it is: on the lab's stop list, a file a
    /// known-file set names, an address that is not public (private,
    /// loopback, documentation ...), or seen in more cases than
    /// `max(min_cases, share × all cases)`. Common indicators are kept but
    /// never link cases.
    ///
    /// # Errors
    /// The database failing.
    pub fn common_reason(&self, i: &Indicator) -> Result<Option<String>, IndexError> {
        if self.rule.stop.contains(i) {
            return Ok(Some("on the lab's stop list".into()));
        }
        if let Some(class) = address_class(i) {
            return Ok(Some(format!("{class} address")));
        }
        if let Some(v) = self.ioc.get(key(i))?
            && dec::<Span>("intel_ioc", &v)?.known
        {
            return Ok(Some("known file (known-file set)".into()));
        }
        let total = self.total_cases()?;
        let share = (self.rule.share * total as f64).floor() as u64;
        let limit = self.rule.min_cases.max(share);
        if self.cases_of(i, limit as usize + 1)?.len() as u64 > limit {
            return Ok(Some(format!("seen in more than {limit} cases")));
        }
        Ok(None)
    }

    /// Every case where `i` was seen: first and last sighting, jobs.
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn sightings(&self, i: &Indicator) -> Result<Vec<CaseSightings>, IndexError> {
        let mut prefix = key(i);
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.sight.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let cs: CaseSighting = dec("intel_sight", &v)?;
            out.push(CaseSightings {
                case: String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                first_ms: cs.first_ms,
                last_ms: cs.last_ms,
                jobs: cs.jobs.into_iter().collect(),
            });
        }
        Ok(out)
    }

    /// Every case with anything indexed, in order.
    ///
    /// # Errors
    /// The database failing.
    pub fn cases(&self) -> Result<Vec<String>, IndexError> {
        let mut out = Vec::new();
        for kv in self.cases.iter() {
            let (k, _) = kv?;
            out.push(String::from_utf8_lossy(&k).into_owned());
        }
        Ok(out)
    }

    /// Indexes a completed job's indicators under its case, and raises the
    /// links to the other cases that hold its uncommon indicators.
    /// Indexing a job twice changes nothing.
    ///
    /// # Errors
    /// Bad identifiers, the database failing.
    pub fn add_job(
        &self,
        case: &str,
        job: &str,
        now_ms: i64,
        found: &JobIndicators,
    ) -> Result<Indexed, IndexError> {
        check_id(case)?;
        check_id(job)?;
        if self.is_indexed(job)? {
            return Ok(Indexed {
                already: true,
                ..Default::default()
            });
        }
        if !self.cases.contains_key(case.as_bytes())? {
            self.cases.insert(
                case.as_bytes(),
                enc(&Span {
                    first_ms: now_ms,
                    last_ms: now_ms,
                    known: false,
                }),
            )?;
        }
        let mut out = Indexed::default();
        for (ind, s) in &found.indicators {
            let k = key(ind);
            // the indicator
            let mut span = match self.ioc.get(&k)? {
                Some(v) => dec::<Span>("intel_ioc", &v)?,
                None => Span {
                    first_ms: now_ms,
                    last_ms: now_ms,
                    known: false,
                },
            };
            span.first_ms = span.first_ms.min(now_ms);
            span.last_ms = span.last_ms.max(now_ms);
            span.known |= s.known;
            self.ioc.insert(&k, enc(&span))?;
            // its sighting in the case
            let sk = join(&[&k, case.as_bytes()]);
            let mut cs = match self.sight.get(&sk)? {
                Some(v) => dec::<CaseSighting>("intel_sight", &v)?,
                None => CaseSighting {
                    first_ms: now_ms,
                    last_ms: now_ms,
                    jobs: BTreeSet::new(),
                },
            };
            cs.first_ms = cs.first_ms.min(now_ms);
            cs.last_ms = cs.last_ms.max(now_ms);
            cs.jobs.insert(job.to_string());
            self.sight.insert(&sk, enc(&cs))?;
            let ck = join(&[case.as_bytes(), &k]);
            if !self.case.contains_key(&ck)? {
                self.case.insert(&ck, enc(&now_ms))?;
            }
            self.job.insert(
                join(&[job.as_bytes(), &k]),
                enc(&JobSighting {
                    count: s.count,
                    first_offset: s.first_offset,
                    sources: s.sources.clone(),
                }),
            )?;
            out.indicators += 1;
        }
        // links: the job's uncommon indicators held by other cases
        for ind in found.indicators.keys() {
            if self.is_common(ind)? {
                continue;
            }
            let k = key(ind);
            let mut prefix = k.clone();
            prefix.push(0);
            for kv in self.sight.scan_prefix(&prefix) {
                let (sk, _) = kv?;
                let other = String::from_utf8_lossy(&sk[prefix.len()..]).into_owned();
                if other == case {
                    continue;
                }
                let ab = join(&[case.as_bytes(), other.as_bytes(), &k]);
                if self.links.contains_key(&ab)? {
                    continue;
                }
                let rec = enc(&LinkRecord {
                    first_ms: now_ms,
                    job: job.to_string(),
                });
                self.links.insert(ab, rec.clone())?;
                self.links
                    .insert(join(&[other.as_bytes(), case.as_bytes(), &k]), rec)?;
                out.new_links.push(Link {
                    other_case: other,
                    indicator: ind.clone(),
                    first_ms: now_ms,
                    job: job.to_string(),
                });
            }
        }
        // written last: the job is indexed
        self.jobs.insert(
            job.as_bytes(),
            enc(&JobMark {
                case: case.to_string(),
                indexed_ms: now_ms,
                indicators: out.indicators,
            }),
        )?;
        Ok(out)
    }

    /// The links of `case`: per other case, the shared indicators that are
    /// not common now. (What a user of `case` may be told of the other
    /// cases is the caller's business: this is the index's whole answer.)
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn links(&self, case: &str) -> Result<BTreeMap<String, Vec<Link>>, IndexError> {
        check_id(case)?;
        let mut prefix = case.as_bytes().to_vec();
        prefix.push(0);
        let mut out: BTreeMap<String, Vec<Link>> = BTreeMap::new();
        for kv in self.links.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let rest = &k[prefix.len()..];
            let Some(z) = rest.iter().position(|&b| b == 0) else {
                continue;
            };
            let other = String::from_utf8_lossy(&rest[..z]).into_owned();
            let Some(ind) = unkey(&rest[z + 1..]) else {
                continue;
            };
            if self.is_common(&ind)? {
                continue;
            }
            let rec: LinkRecord = dec("intel_links", &v)?;
            out.entry(other.clone()).or_default().push(Link {
                other_case: other,
                indicator: ind,
                first_ms: rec.first_ms,
                job: rec.job,
            });
        }
        Ok(out)
    }

    /// What `case` holds, for sharing: per indicator its first and last
    /// sighting in the case, the case's jobs holding it and how many times
    /// they saw it.
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn case_items(&self, case: &str) -> Result<Vec<ItemSeen>, IndexError> {
        let mut out = Vec::new();
        for ind in self.case_indicators(case)? {
            let sk = join(&[&key(&ind), case.as_bytes()]);
            let Some(v) = self.sight.get(&sk)? else {
                continue;
            };
            let cs: CaseSighting = dec("intel_sight", &v)?;
            let mut count = 0u64;
            for job in &cs.jobs {
                if let Some(v) = self.job.get(join(&[job.as_bytes(), &key(&ind)]))? {
                    count += dec::<JobSighting>("intel_job", &v)?.count;
                }
            }
            out.push(ItemSeen {
                indicator: ind,
                first_ms: cs.first_ms,
                last_ms: cs.last_ms,
                jobs: cs.jobs.len() as u32,
                count: count.max(1),
            });
        }
        Ok(out)
    }

    /// What one job held, for sharing (first and last seen: when it was
    /// indexed); `None` when the job is not indexed.
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn job_items(&self, job: &str) -> Result<Option<Vec<ItemSeen>>, IndexError> {
        check_id(job)?;
        let Some(mark) = self.jobs.get(job.as_bytes())? else {
            return Ok(None);
        };
        let mark: JobMark = dec("intel_jobs", &mark)?;
        let mut prefix = job.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.job.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let Some(ind) = unkey(&k[prefix.len()..]) else {
                continue;
            };
            let js: JobSighting = dec("intel_job", &v)?;
            out.push(ItemSeen {
                indicator: ind,
                first_ms: mark.indexed_ms,
                last_ms: mark.indexed_ms,
                jobs: 1,
                count: js.count.max(1),
            });
        }
        Ok(Some(out))
    }

    /// The indicators linking the most cases: per uncommon indicator, the
    /// cases it links through links first raised in `[from_ms, to_ms]`,
    /// most cases first (ties by indicator), at most `limit` of them.
    /// Common indicators (now) are left out, as from [`Index::links`].
    ///
    /// # Errors
    /// The database failing, a damaged record.
    pub fn most_linked(
        &self,
        limit: usize,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(Indicator, Vec<String>)>, IndexError> {
        let mut per: BTreeMap<Indicator, BTreeSet<String>> = BTreeMap::new();
        for kv in self.links.iter() {
            let (k, v) = kv?;
            let mut parts = k.splitn(3, |&b| b == 0);
            let (Some(a), Some(b), Some(ik)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Some(ind) = unkey(ik) else { continue };
            let rec: LinkRecord = dec("intel_links", &v)?;
            if rec.first_ms < from_ms || rec.first_ms > to_ms {
                continue;
            }
            let cases = per.entry(ind).or_default();
            cases.insert(String::from_utf8_lossy(a).into_owned());
            cases.insert(String::from_utf8_lossy(b).into_owned());
        }
        let mut out = Vec::new();
        for (ind, cases) in per {
            if !self.is_common(&ind)? {
                out.push((ind, cases.into_iter().collect::<Vec<_>>()));
            }
        }
        out.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then_with(|| x.0.cmp(&y.0)));
        out.truncate(limit);
        Ok(out)
    }

    /// The indicators of `case`.
    ///
    /// # Errors
    /// The database failing.
    pub fn case_indicators(&self, case: &str) -> Result<Vec<Indicator>, IndexError> {
        check_id(case)?;
        let mut prefix = case.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.case.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some(i) = unkey(&k[prefix.len()..]) {
                out.push(i);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sighting;

    fn found(list: &[(Kind, &str)]) -> JobIndicators {
        let mut j = JobIndicators::default();
        for (k, v) in list {
            j.indicators.insert(
                Indicator {
                    kind: *k,
                    value: v.to_string(),
                },
                Sighting {
                    count: 1,
                    first_offset: 0,
                    sources: ["email".to_string()].into(),
                    known: false,
                },
            );
        }
        j
    }

    fn index(rule: CommonRule) -> Index {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Index::open(&db, rule).unwrap()
    }

    fn ind(k: Kind, v: &str) -> Indicator {
        Indicator {
            kind: k,
            value: v.into(),
        }
    }

    #[test]
    fn links_appear_for_exactly_the_shared_indicators() {
        let ix = index(CommonRule::default());
        let a = ix
            .add_job(
                "CASE-A",
                "J1",
                1000,
                &found(&[
                    (Kind::Email, "x@evil.example"),
                    (Kind::Domain, "evil.example"),
                    (Kind::Ipv4, "185.199.108.153"),
                ]),
            )
            .unwrap();
        assert!(a.new_links.is_empty());
        let b = ix
            .add_job(
                "CASE-B",
                "J2",
                2000,
                &found(&[(Kind::Domain, "evil.example"), (Kind::Ipv4, "45.33.32.156")]),
            )
            .unwrap();
        assert_eq!(b.new_links.len(), 1);
        assert_eq!(b.new_links[0].other_case, "CASE-A");
        assert_eq!(b.new_links[0].indicator, ind(Kind::Domain, "evil.example"));
        let c = ix
            .add_job(
                "CASE-C",
                "J3",
                3000,
                &found(&[
                    (Kind::Ipv4, "45.33.32.156"),
                    (Kind::Email, "nobody@else.example"),
                ]),
            )
            .unwrap();
        assert_eq!(c.new_links.len(), 1);
        // a fourth case with nothing shared
        ix.add_job(
            "CASE-D",
            "J4",
            4000,
            &found(&[(Kind::Md5, "0cc175b9c0f1b6a831c399e269772661")]),
        )
        .unwrap();
        let la = ix.links("CASE-A").unwrap();
        assert_eq!(la.keys().collect::<Vec<_>>(), ["CASE-B"]);
        let lb = ix.links("CASE-B").unwrap();
        assert_eq!(lb.keys().collect::<Vec<_>>(), ["CASE-A", "CASE-C"]);
        assert_eq!(lb["CASE-C"][0].indicator, ind(Kind::Ipv4, "45.33.32.156"));
        assert_eq!(lb["CASE-C"][0].job, "J3");
        assert!(ix.links("CASE-D").unwrap().is_empty());
        // indexing a job again changes nothing
        let again = ix
            .add_job(
                "CASE-B",
                "J2",
                9000,
                &found(&[(Kind::Domain, "evil.example")]),
            )
            .unwrap();
        assert!(again.already);
        assert_eq!(ix.links("CASE-A").unwrap()["CASE-B"][0].first_ms, 2000);
        assert_eq!(ix.case_indicators("CASE-B").unwrap().len(), 2);
        let items = ix.case_items("CASE-A").unwrap();
        assert_eq!(items.len(), 3);
        assert!(
            items
                .iter()
                .all(|i| i.jobs == 1 && i.count == 1 && i.first_ms == 1000)
        );
        let j = ix.job_items("J3").unwrap().unwrap();
        assert_eq!(j.len(), 2);
        assert!(j.iter().all(|i| i.first_ms == 3000));
        assert!(ix.job_items("J404").unwrap().is_none());
        assert_eq!(ix.total_cases().unwrap(), 4);
    }

    #[test]
    fn known_files_and_private_addresses_never_link() {
        let ix = index(CommonRule::default());
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let mut a = found(&[(Kind::Sha256, sha), (Kind::Ipv4, "192.168.1.10")]);
        ix.add_job("C1", "J1", 0, &a).unwrap();
        // the second case's file system names the file as known
        a.indicators.get_mut(&ind(Kind::Sha256, sha)).unwrap().known = true;
        ix.add_job("C2", "J2", 0, &a).unwrap();
        assert!(ix.links("C1").unwrap().is_empty());
        assert_eq!(
            ix.common_reason(&ind(Kind::Sha256, sha)).unwrap().unwrap(),
            "known file (known-file set)"
        );
        assert_eq!(
            ix.common_reason(&ind(Kind::Ipv4, "192.168.1.10"))
                .unwrap()
                .unwrap(),
            "private address"
        );
        let s = ix.sightings(&ind(Kind::Sha256, sha)).unwrap();
        assert_eq!(
            s.iter().map(|c| c.case.as_str()).collect::<Vec<_>>(),
            ["C1", "C2"]
        );
        assert_eq!(s[1].jobs, ["J2"]);
        assert_eq!(ix.cases().unwrap(), ["C1", "C2"]);
    }

    #[test]
    fn common_indicators_are_kept_but_never_link() {
        let stop = [ind(Kind::Domain, "microsoft.com")].into();
        let ix = index(CommonRule {
            min_cases: 2,
            share: 0.0,
            stop,
        });
        for (i, case) in ["C1", "C2"].iter().enumerate() {
            ix.add_job(
                case,
                &format!("J{i}"),
                0,
                &found(&[
                    (Kind::Domain, "microsoft.com"),
                    (Kind::Domain, "shared.example"),
                ]),
            )
            .unwrap();
        }
        // on the stop list: no link; the other links
        let l = ix.links("C1").unwrap();
        assert_eq!(
            l["C2"]
                .iter()
                .map(|x| x.indicator.value.as_str())
                .collect::<Vec<_>>(),
            ["shared.example"]
        );
        // seen in a third case: more than 2 cases, common now, links gone
        ix.add_job("C3", "J9", 0, &found(&[(Kind::Domain, "shared.example")]))
            .unwrap();
        assert!(ix.links("C1").unwrap().is_empty());
        assert!(ix.is_common(&ind(Kind::Domain, "shared.example")).unwrap());
        assert_eq!(
            ix.cases_of(&ind(Kind::Domain, "microsoft.com"), 10)
                .unwrap(),
            ["C1", "C2"]
        );
    }

    #[test]
    fn most_linked_counts_cases_per_uncommon_indicator_in_the_period() {
        let ix = index(CommonRule {
            min_cases: 3,
            share: 0.0,
            stop: [ind(Kind::Domain, "stop.example")].into(),
        });
        let three = [
            (Kind::Domain, "three.example"),
            (Kind::Domain, "stop.example"),
            (Kind::Ipv4, "10.0.0.1"),
        ];
        ix.add_job("C1", "J1", 1000, &found(&three)).unwrap();
        ix.add_job(
            "C2",
            "J2",
            2000,
            &found(&[three[0], three[1], three[2], (Kind::Email, "two@x.example")]),
        )
        .unwrap();
        ix.add_job(
            "C3",
            "J3",
            3000,
            &found(&[three[0], (Kind::Email, "two@x.example")]),
        )
        .unwrap();
        let top = ix.most_linked(10, 0, i64::MAX).unwrap();
        assert_eq!(
            top,
            [
                (
                    ind(Kind::Domain, "three.example"),
                    vec!["C1".into(), "C2".into(), "C3".into()]
                ),
                (
                    ind(Kind::Email, "two@x.example"),
                    vec!["C2".to_string(), "C3".to_string()]
                ),
            ]
        );
        // the stop-listed domain and the private address never linked
        assert_eq!(ix.most_linked(1, 0, i64::MAX).unwrap().len(), 1);
        // links first raised at 3000 only: C3's
        let late = ix.most_linked(10, 2500, 4000).unwrap();
        assert_eq!(late.len(), 2);
        assert_eq!(late[0].1, ["C1", "C2", "C3"]);
        assert!(ix.most_linked(10, 0, 999).unwrap().is_empty());
    }

    #[test]
    fn bad_identifiers_are_refused() {
        let ix = index(CommonRule::default());
        for bad in ["", "a\0b", "../x", "with space"] {
            assert!(matches!(
                ix.add_job(bad, "J1", 0, &JobIndicators::default()),
                Err(IndexError::BadId(_))
            ));
        }
    }
}
