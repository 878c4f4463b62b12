//! A rule set cut into rules: which rules live in which file, their classes,
//! their dependencies, and the text of each, so that a subset of the set can
//! be compiled (the rules an image can still match, the candidates of the
//! whole-image step). A subset keeps every rule in its file's namespace, with
//! the file's imports, so identifiers and results are those of the full set.

use super::classify::{Env, Read, RuleClass, RuleInfo, Tri, classify_source, eval};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use trawl_core::spec::RuleSource;
use yara_x_parser::cst::{CST, SyntaxKind};

/// One source file of a rule set.
#[derive(Debug)]
pub struct FileIndex {
    pub name: String,
    pub text: String,
    /// The file's import statements.
    imports: String,
    pub rules: Vec<RuleInfo>,
    /// The text of each rule (same order as `rules`); `None` when the file
    /// could not be cut (it is then always compiled whole).
    texts: Option<Vec<String>>,
    /// Each rule rewritten to report every occurrence of its patterns (see
    /// [`super::classify::occurrence_rule`]); `None` for a rule without
    /// patterns or a file that could not be cut.
    occurrences: Vec<Option<String>>,
}

/// A rule set's index.
#[derive(Debug)]
pub struct RuleSetIndex {
    pub files: Vec<FileIndex>,
    by_key: HashMap<(String, String), (usize, usize)>,
}

/// (file index, rule index).
pub type RuleRef = (usize, usize);

/// The imports of a source, and each rule declaration with its byte offset.
fn cut(src: &str, expected: usize) -> Option<(String, Vec<(usize, String)>)> {
    let cst = CST::from(src);
    let root = cst.root();
    let mut imports = String::new();
    let mut rules = Vec::new();
    for node in root.children() {
        let span = node.span();
        let text = src.get(span.range())?;
        match node.kind() {
            SyntaxKind::IMPORT_STMT => {
                imports.push_str(text);
                imports.push('\n');
            }
            SyntaxKind::RULE_DECL => rules.push((span.range().start, text.to_string())),
            _ => {}
        }
    }
    (rules.len() == expected).then_some((imports, rules))
}

impl RuleSetIndex {
    /// Indexes the sources (parsing only; nothing is compiled).
    pub fn new(sources: &[RuleSource]) -> Self {
        use rayon::prelude::*;
        // Parsing is per file and independent: in parallel.
        let parsed: Vec<_> = sources
            .par_iter()
            .map(|s| {
                let rules = classify_source(&s.text);
                let cut = cut(&s.text, rules.len());
                (rules, cut)
            })
            .collect();
        let mut files = Vec::with_capacity(sources.len());
        let mut by_key = HashMap::new();
        for (fi, (s, (rules, cut))) in sources.iter().zip(parsed).enumerate() {
            let (imports, texts, occurrences) = match cut {
                Some((i, t)) => {
                    let occ = rules
                        .iter()
                        .zip(&t)
                        .map(|(r, (start, text))| super::classify::occurrence_rule(r, text, *start))
                        .collect();
                    (i, Some(t.into_iter().map(|(_, x)| x).collect()), occ)
                }
                None => (String::new(), None, vec![None; rules.len()]),
            };
            let ns = super::namespace_of(&s.name);
            for (ri, r) in rules.iter().enumerate() {
                by_key.insert((ns.clone(), r.name.clone()), (fi, ri));
            }
            files.push(FileIndex {
                name: s.name.clone(),
                text: s.text.clone(),
                imports,
                rules,
                texts,
                occurrences,
            });
        }
        Self { files, by_key }
    }

    /// A rule by (namespace, name).
    pub fn get(&self, namespace: &str, rule: &str) -> Option<(RuleRef, &RuleInfo)> {
        let &(f, r) = self
            .by_key
            .get(&(namespace.to_string(), rule.to_string()))?;
        Some(((f, r), &self.files[f].rules[r]))
    }

    /// The class of a rule (rules unknown to the index are whole-image).
    pub fn class(&self, namespace: &str, rule: &str) -> RuleClass {
        self.get(namespace, rule)
            .map(|(_, r)| r.class)
            .unwrap_or(RuleClass::Always)
    }

    /// The rules an image may still match: those whose condition is not
    /// false under the image's facts (its size; integers read at constant
    /// offsets through `read_bytes`).
    pub fn live(
        &self,
        size: u64,
        read_bytes: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
    ) -> Vec<RuleRef> {
        let memo: RefCell<HashMap<(Read, i64), Option<i64>>> = RefCell::new(HashMap::new());
        let read = |r: Read, off: i64| -> Option<i64> {
            if let Some(v) = memo.borrow().get(&(r, off)) {
                return *v;
            }
            let v = u64::try_from(off)
                .ok()
                .filter(|o| o.checked_add(u64::from(r.bytes)).is_some_and(|e| e <= size))
                .and_then(|o| read_bytes(o, usize::from(r.bytes)))
                .filter(|b| b.len() == usize::from(r.bytes))
                .map(|b| r.decode(&b));
            memo.borrow_mut().insert((r, off), v);
            v
        };
        let env = Env {
            patterns: None,
            filesize: i64::try_from(size).ok(),
            read: Some(&read),
        };
        let mut out = Vec::new();
        for (fi, f) in self.files.iter().enumerate() {
            for (ri, r) in f.rules.iter().enumerate() {
                if eval(&r.condition, &env) != Tri::False {
                    out.push((fi, ri));
                }
            }
        }
        out
    }

    /// `rules` and every rule they depend on, transitively.
    pub fn closure(&self, rules: &[RuleRef]) -> BTreeSet<RuleRef> {
        let mut need: BTreeSet<RuleRef> = BTreeSet::new();
        let mut stack: Vec<RuleRef> = rules.to_vec();
        while let Some((f, r)) = stack.pop() {
            if !need.insert((f, r)) {
                continue;
            }
            let file = &self.files[f];
            for d in &file.rules[r].deps {
                if let Some(di) = file.rules.iter().position(|x| &x.name == d) {
                    stack.push((f, di));
                }
            }
        }
        need
    }

    /// Every rule of the set.
    pub fn all(&self) -> Vec<RuleRef> {
        self.files
            .iter()
            .enumerate()
            .flat_map(|(f, file)| (0..file.rules.len()).map(move |r| (f, r)))
            .collect()
    }

    /// The sources that report every occurrence of the patterns of `rules`
    /// (each rule rewritten, see [`super::classify::occurrence_rule`]; no
    /// imports, no other rule needed), each file in its own namespace, and
    /// the rules they hold (those with patterns, in files that could be
    /// cut).
    pub fn occurrence_subset(&self, rules: &[RuleRef]) -> (Vec<RuleSource>, Vec<RuleRef>) {
        let mut sorted = rules.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out: Vec<RuleSource> = Vec::new();
        let mut held = Vec::new();
        let mut current = None;
        for (f, r) in sorted {
            let Some(text) = &self.files[f].occurrences[r] else {
                continue;
            };
            if current != Some(f) {
                current = Some(f);
                out.push(RuleSource {
                    name: self.files[f].name.clone(),
                    text: String::new(),
                });
            }
            if let Some(last) = out.last_mut() {
                last.text.push_str(text);
                last.text.push('\n');
            }
            held.push((f, r));
        }
        (out, held)
    }

    /// The sources compiling exactly `rules` and what they depend on (other
    /// rules of their files), each file in its own namespace.
    pub fn subset(&self, rules: &[RuleRef]) -> Vec<RuleSource> {
        let need = self.closure(rules);
        let mut out = Vec::new();
        let mut current: Option<usize> = None;
        let mut text = String::new();
        let flush = |current: Option<usize>, text: &mut String, out: &mut Vec<RuleSource>| {
            if let Some(f) = current {
                out.push(RuleSource {
                    name: self.files[f].name.clone(),
                    text: std::mem::take(text),
                });
            }
        };
        for (f, r) in need {
            if current != Some(f) {
                flush(current, &mut text, &mut out);
                current = Some(f);
                let file = &self.files[f];
                match &file.texts {
                    Some(_) => text.push_str(&file.imports),
                    None => text.push_str(&file.text),
                }
            }
            if let Some(texts) = &self.files[f].texts {
                text.push_str(&texts[r]);
                text.push('\n');
            }
        }
        flush(current, &mut text, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_subsets() {
        let src = "import \"pe\"\n// a comment\nprivate rule p { strings: $a = \"x\" condition: $a }\nrule r1 : t1 { meta: k = \"v\" strings: $b = \"y\" condition: $b and p }\nrule r2 { condition: uint16(0) == 0x5a4d }\n";
        let idx = RuleSetIndex::new(&[RuleSource {
            name: "f.yar".into(),
            text: src.into(),
        }]);
        assert_eq!(idx.files[0].rules.len(), 3);
        let (r1, _) = idx.get("f.yar", "r1").unwrap();
        let sub = idx.subset(&[r1]);
        assert_eq!(sub.len(), 1);
        assert!(sub[0].text.contains("import \"pe\""));
        assert!(sub[0].text.contains("private rule p"));
        assert!(sub[0].text.contains("rule r1 : t1"));
        assert!(!sub[0].text.contains("rule r2"));
        // The subset compiles.
        let mut c = yara_x::Compiler::new();
        c.add_source(sub[0].text.as_str()).unwrap();
        // Facts: an image starting with "PK" kills r2 only.
        let data = b"PK\x03\x04rest".to_vec();
        let live = idx.live(data.len() as u64, &|o, n| {
            data.get(o as usize..o as usize + n).map(<[u8]>::to_vec)
        });
        let names: Vec<&str> = live
            .iter()
            .map(|(f, r)| idx.files[*f].rules[*r].name.as_str())
            .collect();
        assert_eq!(names, vec!["p", "r1"]);
    }
}
