//! What a rule's condition needs to be decided, read from its syntax tree.
//!
//! Every rule's condition is turned into a small owned form ([`Cond`]) that
//! can be evaluated three-valued (true, false, unknown) under partial
//! knowledge:
//!
//! * under "no pattern matched" (a pattern test is false, a count is 0,
//!   everything else unknown) it tells whether a rule is [`RuleClass::Gated`]
//!   — it cannot match without a pattern match;
//! * under the image's *facts* (its size, and integers read at constant
//!   offsets: `uint16(0)`, `uint32be(0x3c)`...) with patterns unknown, it
//!   tells whether a rule is dead for that image (e.g. `uint16(0) == 0x5a4d`
//!   on a disk image, `filesize < 100KB` on a 1 GiB image).
//!
//! Classes:
//! * [`RuleClass::Shard`]: a disjunction of "pattern found" tests (`$a`,
//!   `any of them`, `1 of ($a*)`, `$a or $b`): decided shard by shard.
//! * [`RuleClass::Gated`]: needs a pattern match; evaluated on the whole
//!   image only if some shard found one of its patterns.
//! * [`RuleClass::Always`]: anything else (global rules, `not $a`,
//!   `filesize < 10`, module data, references to other rules): evaluated on
//!   the whole image unless its facts make it false.

use yara_x_parser::ast::{self, Expr, OfItems, Quantifier, RuleFlags, WithSpan};

/// How a rule is decided (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleClass {
    Shard,
    Gated,
    Always,
}

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Unknown,
}

fn not(t: Tri) -> Tri {
    match t {
        Tri::True => Tri::False,
        Tri::False => Tri::True,
        Tri::Unknown => Tri::Unknown,
    }
}

/// An integer read at a constant offset: `uint16(0)`, `int32be(4)`...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Read {
    pub bytes: u8,
    pub signed: bool,
    pub big_endian: bool,
}

impl Read {
    fn parse(name: &str) -> Option<Self> {
        let (signed, rest) = if let Some(r) = name.strip_prefix("uint") {
            (false, r)
        } else if let Some(r) = name.strip_prefix("int") {
            (true, r)
        } else {
            return None;
        };
        let (bits, big_endian) = match rest {
            "8" => (8, false),
            "16" => (16, false),
            "32" => (32, false),
            "8be" => (8, true),
            "16be" => (16, true),
            "32be" => (32, true),
            _ => return None,
        };
        Some(Self {
            bytes: bits / 8,
            signed,
            big_endian,
        })
    }

    /// The value of this read over `bytes` (exactly `self.bytes` long).
    pub fn decode(&self, b: &[u8]) -> i64 {
        let mut v: u64 = 0;
        if self.big_endian {
            for x in b {
                v = (v << 8) | u64::from(*x);
            }
        } else {
            for x in b.iter().rev() {
                v = (v << 8) | u64::from(*x);
            }
        }
        if self.signed {
            let shift = 64 - 8 * u32::from(self.bytes);
            ((v << shift) as i64) >> shift
        } else {
            v as i64
        }
    }
}

/// An integer expression.
#[derive(Debug, Clone)]
pub enum Int {
    Lit(i64),
    Filesize,
    PatternCount,
    Read(Read, Box<Int>),
    Add(Vec<Int>),
    Sub(Vec<Int>),
    Mul(Vec<Int>),
    Neg(Box<Int>),
    Unknown,
}

/// A boolean expression.
#[derive(Debug, Clone)]
pub enum Cond {
    True,
    False,
    /// A pattern test (`$a`, `$a at 0`, `$ in (..)`).
    Pattern,
    /// `<quantifier> of <items>` and `for <quantifier> of <patterns>`.
    Of(Quant, Items),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Cmp(CmpOp, Int, Int),
    /// `pe.is_pe` (the file imports "pe"): false unless the data starts
    /// with "MZ" (yara-x's pe module parses nothing else).
    PeIsPe,
    Unknown,
}

/// The items a quantifier counts.
#[derive(Debug, Clone)]
pub enum Items {
    /// `n` items that share one truth value under any [`Env`]: the
    /// patterns of a set, each tested by the same body (`any of ($a*)`,
    /// `for all of them : (# > 2)`). `None`: the count is not known.
    Same(Option<usize>, Box<Cond>),
    /// Boolean expressions, each its own (`any of (filesize > 10, $a)`).
    Each(Vec<Cond>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Quantifiers of `of` and `for .. of`.
#[derive(Debug, Clone)]
pub enum Quant {
    Any,
    All,
    None,
    /// `N of`: at least N.
    AtLeast(Option<i64>),
    /// `N% of`.
    Percent(Option<i64>),
}

fn lower_int(e: &Expr) -> Int {
    match e {
        Expr::LiteralInteger(i) => Int::Lit(i.value),
        Expr::Filesize { .. } => Int::Filesize,
        Expr::PatternCount(p) if p.range.is_none() => Int::PatternCount,
        Expr::FuncCall(f) if f.object.is_none() && f.args.len() == 1 => {
            match Read::parse(f.identifier.name) {
                Some(r) => Int::Read(r, Box::new(lower_int(&f.args[0]))),
                None => Int::Unknown,
            }
        }
        Expr::Minus(u) => Int::Neg(Box::new(lower_int(&u.operand))),
        Expr::Add(n) => Int::Add(n.operands.iter().map(lower_int).collect()),
        Expr::Sub(n) => Int::Sub(n.operands.iter().map(lower_int).collect()),
        Expr::Mul(n) => Int::Mul(n.operands.iter().map(lower_int).collect()),
        _ => Int::Unknown,
    }
}

fn lower_quant(q: &Quantifier) -> Quant {
    match q {
        Quantifier::Any { .. } => Quant::Any,
        Quantifier::All { .. } => Quant::All,
        Quantifier::None { .. } => Quant::None,
        Quantifier::Expr(e) => Quant::AtLeast(match lower_int(e) {
            Int::Lit(v) => Some(v),
            _ => None,
        }),
        Quantifier::Percentage(e) => Quant::Percent(match lower_int(e) {
            Int::Lit(v) => Some(v),
            _ => None,
        }),
    }
}

/// What lowering a condition needs to know of its rule.
pub struct Scope<'a> {
    /// The file imports the pe module.
    pub pe: bool,
    /// The identifiers of the rule's patterns, in order (`$` for anonymous
    /// ones).
    pub patterns: Vec<&'a str>,
}

impl Scope<'_> {
    /// How many of the rule's patterns a pattern set names.
    fn count(&self, set: &ast::PatternSet) -> Option<usize> {
        match set {
            ast::PatternSet::Them { .. } => Some(self.patterns.len()),
            ast::PatternSet::Set(items) => {
                let n = self
                    .patterns
                    .iter()
                    .filter(|p| {
                        items.iter().any(|i| {
                            if i.wildcard {
                                p.starts_with(i.identifier)
                            } else {
                                **p == i.identifier
                            }
                        })
                    })
                    .count();
                // An unreadable set (no pattern of the rule): not known.
                (n > 0).then_some(n)
            }
        }
    }
}

/// The owned form of a condition.
pub fn lower(e: &Expr, scope: &Scope) -> Cond {
    let lower = |e: &Expr| lower(e, scope);
    match e {
        Expr::FieldAccess(f)
            if scope.pe
                && matches!(
                    f.operands.as_slice(),
                    [Expr::Ident(m), Expr::Ident(x)] if m.name == "pe" && x.name == "is_pe"
                ) =>
        {
            Cond::PeIsPe
        }
        Expr::True { .. } => Cond::True,
        Expr::False { .. } => Cond::False,
        Expr::PatternMatch(_) => Cond::Pattern,
        Expr::Not(u) => Cond::Not(Box::new(lower(&u.operand))),
        Expr::And(n) => Cond::And(n.operands.iter().map(lower).collect()),
        Expr::Or(n) => Cond::Or(n.operands.iter().map(lower).collect()),
        Expr::Eq(b) => Cond::Cmp(CmpOp::Eq, lower_int(&b.lhs), lower_int(&b.rhs)),
        Expr::Ne(b) => Cond::Cmp(CmpOp::Ne, lower_int(&b.lhs), lower_int(&b.rhs)),
        Expr::Lt(b) => Cond::Cmp(CmpOp::Lt, lower_int(&b.lhs), lower_int(&b.rhs)),
        Expr::Gt(b) => Cond::Cmp(CmpOp::Gt, lower_int(&b.lhs), lower_int(&b.rhs)),
        Expr::Le(b) => Cond::Cmp(CmpOp::Le, lower_int(&b.lhs), lower_int(&b.rhs)),
        Expr::Ge(b) => Cond::Cmp(CmpOp::Ge, lower_int(&b.lhs), lower_int(&b.rhs)),
        Expr::Of(of) => match &of.items {
            OfItems::PatternSet(set) => Cond::Of(
                lower_quant(&of.quantifier),
                Items::Same(scope.count(set), Box::new(Cond::Pattern)),
            ),
            OfItems::BoolExprTuple(items) => Cond::Of(
                lower_quant(&of.quantifier),
                Items::Each(items.iter().map(&lower).collect()),
            ),
        },
        Expr::ForOf(f) => Cond::Of(
            lower_quant(&f.quantifier),
            Items::Same(scope.count(&f.pattern_set), Box::new(lower(&f.body))),
        ),
        _ => Cond::Unknown,
    }
}

/// What is known when evaluating a condition.
pub struct Env<'a> {
    /// `Some(false)`: no pattern matched; `None`: unknown.
    pub patterns: Option<bool>,
    pub filesize: Option<i64>,
    /// Reads an integer at a constant offset (None: out of range or unknown).
    pub read: Option<&'a dyn Fn(Read, i64) -> Option<i64>>,
}

fn eval_int(i: &Int, env: &Env) -> Option<i64> {
    match i {
        Int::Lit(v) => Some(*v),
        Int::Filesize => env.filesize,
        Int::PatternCount => match env.patterns {
            Some(false) => Some(0),
            _ => None,
        },
        Int::Read(r, off) => {
            let off = eval_int(off, env)?;
            env.read.and_then(|f| f(*r, off))
        }
        // An overflow is unknown (never a wrapped value yara-x may not
        // compute).
        Int::Neg(x) => eval_int(x, env)?.checked_neg(),
        Int::Add(v) => v
            .iter()
            .try_fold(0i64, |a, x| a.checked_add(eval_int(x, env)?)),
        Int::Mul(v) => v
            .iter()
            .try_fold(1i64, |a, x| a.checked_mul(eval_int(x, env)?)),
        Int::Sub(v) => {
            let mut it = v.iter();
            let first = eval_int(it.next()?, env)?;
            it.try_fold(first, |a, x| a.checked_sub(eval_int(x, env)?))
        }
        Int::Unknown => None,
    }
}

/// A quantifier over `n` items of which at least `yes` and at most
/// `maybe` are true (`n` unknown: `None`), as yara-x decides it: `N of`
/// means at least N, `0 of` (and a percentage rounding up to 0) means none,
/// `P% of` needs `ceil(n * P / 100)`.
fn quantified(q: &Quant, n: Option<usize>, yes: usize, maybe: usize) -> Tri {
    let at_least = |k: usize| {
        if yes >= k {
            Tri::True
        } else if maybe < k {
            Tri::False
        } else {
            Tri::Unknown
        }
    };
    let none = if maybe == 0 {
        Tri::True
    } else if yes > 0 {
        Tri::False
    } else {
        Tri::Unknown
    };
    match q {
        Quant::Any => at_least(1),
        Quant::None => none,
        // A pattern set is never empty (yara-x refuses it).
        Quant::All => match n {
            Some(n) if n > 0 => at_least(n),
            _ if maybe == 0 => Tri::False,
            _ => Tri::Unknown,
        },
        Quant::AtLeast(Some(0)) => none,
        Quant::AtLeast(Some(k)) if *k > 0 => at_least(usize::try_from(*k).unwrap_or(usize::MAX)),
        Quant::Percent(Some(p)) if *p >= 0 => match n {
            Some(n) => {
                let need = (n as f64 * *p as f64 / 100.0).ceil();
                if need <= 0.0 {
                    none
                } else if need >= usize::MAX as f64 {
                    at_least(usize::MAX)
                } else {
                    at_least(need as usize)
                }
            }
            None if maybe == 0 => {
                if *p > 0 {
                    Tri::False
                } else {
                    Tri::True
                }
            }
            None => Tri::Unknown,
        },
        _ => Tri::Unknown,
    }
}

/// `<quantifier> of (<boolean>, ...)` as yara-x evaluates it: item by
/// item, in order, stopping as soon as the outcome is known (`any`: at a
/// true item; `all`: at a false one; `none` and `0 of`: at a true one; `N
/// of`: when N items were true). An undefined item met before that (a read
/// past the end, say) makes the whole expression undefined — neither true
/// nor false, as `not` of it is false too: an unknown item there leaves the
/// outcome unknown.
fn each_of(q: &Quant, items: &[Cond], env: &Env) -> Tri {
    let n = items.len();
    // Some(k): true once k items are true; None: a `none` test.
    let need: Option<usize> = match q {
        Quant::Any => Some(1),
        Quant::All => Some(n),
        Quant::None | Quant::AtLeast(Some(0)) => None,
        Quant::AtLeast(Some(k)) if *k > 0 => Some(usize::try_from(*k).unwrap_or(usize::MAX)),
        Quant::Percent(Some(p)) if *p >= 0 => {
            let k = (n as f64 * *p as f64 / 100.0).ceil();
            if k <= 0.0 {
                None
            } else if k >= usize::MAX as f64 {
                Some(usize::MAX)
            } else {
                Some(k as usize)
            }
        }
        _ => return Tri::Unknown,
    };
    let all = matches!(q, Quant::All);
    let mut yes = 0usize;
    for x in items {
        match eval(x, env) {
            Tri::Unknown => return Tri::Unknown,
            Tri::True => {
                yes += 1;
                match need {
                    None => return Tri::False,
                    Some(k) if yes >= k => return Tri::True,
                    _ => {}
                }
            }
            Tri::False if all => return Tri::False,
            Tri::False => {}
        }
    }
    match need {
        None => Tri::True,
        Some(k) if yes >= k => Tri::True,
        Some(_) => Tri::False,
    }
}

/// Three-valued value of a condition under `env`.
pub fn eval(c: &Cond, env: &Env) -> Tri {
    match c {
        Cond::True => Tri::True,
        Cond::False => Tri::False,
        Cond::Pattern => match env.patterns {
            Some(false) => Tri::False,
            _ => Tri::Unknown,
        },
        Cond::Not(x) => not(eval(x, env)),
        Cond::And(v) => {
            let mut all_true = true;
            for x in v {
                match eval(x, env) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => all_true = false,
                    Tri::True => {}
                }
            }
            if all_true { Tri::True } else { Tri::Unknown }
        }
        Cond::Or(v) => {
            let mut all_false = true;
            for x in v {
                match eval(x, env) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => all_false = false,
                    Tri::False => {}
                }
            }
            if all_false { Tri::False } else { Tri::Unknown }
        }
        Cond::Cmp(op, a, b) => match (eval_int(a, env), eval_int(b, env)) {
            (Some(x), Some(y)) => {
                let r = match op {
                    CmpOp::Eq => x == y,
                    CmpOp::Ne => x != y,
                    CmpOp::Lt => x < y,
                    CmpOp::Gt => x > y,
                    CmpOp::Le => x <= y,
                    CmpOp::Ge => x >= y,
                };
                if r { Tri::True } else { Tri::False }
            }
            _ => Tri::Unknown,
        },
        Cond::Of(q, Items::Same(n, body)) => {
            // Every item has the body's value; with the count unknown, a
            // false body still tells "none is true".
            let t = eval(body, env);
            let count = n.unwrap_or(0);
            let (yes, maybe) = match (t, n) {
                (Tri::False, _) => (0, 0),
                (_, None) => return Tri::Unknown,
                (Tri::True, _) => (count, count),
                (Tri::Unknown, _) => (0, count),
            };
            quantified(q, *n, yes, maybe)
        }
        Cond::Of(q, Items::Each(items)) => each_of(q, items, env),
        Cond::PeIsPe => {
            let mz = Read {
                bytes: 2,
                signed: false,
                big_endian: false,
            };
            match env.read.and_then(|f| f(mz, 0)) {
                Some(v) if v != 0x5a4d => Tri::False,
                _ => Tri::Unknown,
            }
        }
        Cond::Unknown => Tri::Unknown,
    }
}

/// A disjunction of unanchored "pattern found" atoms (`$a`, `any of
/// ($b*)`, `1 of them`) that together name every pattern of the rule: the
/// rule matches iff one of its patterns is found (a pattern the condition
/// leaves out, such as an unused `$_x`, makes it not so).
fn shard_decidable(e: &Expr, scope: &Scope) -> bool {
    fn atoms(e: &Expr, scope: &Scope, covered: &mut [bool]) -> bool {
        let mut name = |want: &str, wildcard: bool| {
            for (i, p) in scope.patterns.iter().enumerate() {
                if (wildcard && p.starts_with(want)) || (!wildcard && *p == want) {
                    covered[i] = true;
                }
            }
        };
        match e {
            Expr::PatternMatch(pm) => {
                if pm.anchor.is_some() || pm.identifier.name == "$" {
                    return false;
                }
                name(pm.identifier.name, false);
                true
            }
            Expr::Of(of) => {
                let one = match &of.quantifier {
                    Quantifier::Any { .. } => true,
                    Quantifier::Expr(n) => matches!(lower_int(n), Int::Lit(1)),
                    _ => false,
                };
                if of.anchor.is_some() || !one {
                    return false;
                }
                match &of.items {
                    OfItems::PatternSet(ast::PatternSet::Them { .. }) => name("$", true),
                    OfItems::PatternSet(ast::PatternSet::Set(items)) => {
                        for i in items {
                            name(i.identifier, i.wildcard);
                        }
                    }
                    OfItems::BoolExprTuple(_) => return false,
                }
                true
            }
            Expr::Or(n) => n.operands.iter().all(|x| atoms(x, scope, covered)),
            _ => false,
        }
    }
    let mut covered = vec![false; scope.patterns.len()];
    !covered.is_empty() && atoms(e, scope, &mut covered) && covered.iter().all(|c| *c)
}

/// Whether a condition holds an `N of <patterns>` whose outcome depends on
/// the numbering of the patterns (see [`RuleInfo::layout_dependent`]).
fn layout_dependent(e: &Expr) -> bool {
    if let Expr::Of(of) = e
        && of.anchor.is_none()
        && matches!(of.items, OfItems::PatternSet(_))
        && let Quantifier::Expr(q) = &of.quantifier
        && !matches!(lower_int(q), Int::Lit(k) if k >= 1)
    {
        return true;
    }
    e.children().any(layout_dependent)
}

/// Whether yara-x may fold an expression to a constant (conservative):
/// literals; arithmetic and comparisons of such; `and`, `or` and `not`
/// holding such an operand (a constant operand removes itself or decides
/// the whole).
fn constant(e: &Expr) -> bool {
    match e {
        Expr::True { .. }
        | Expr::False { .. }
        | Expr::LiteralInteger(_)
        | Expr::LiteralFloat(_)
        | Expr::LiteralString(_) => true,
        Expr::PatternMatch(_)
        | Expr::PatternCount(_)
        | Expr::PatternOffset(_)
        | Expr::PatternLength(_)
        | Expr::Filesize { .. }
        | Expr::Entrypoint { .. }
        | Expr::Ident(_)
        | Expr::FuncCall(_)
        | Expr::FieldAccess(_)
        | Expr::Lookup(_)
        | Expr::Of(_)
        | Expr::ForOf(_)
        | Expr::ForIn(_) => false,
        Expr::And(n) | Expr::Or(n) => n.operands.iter().any(constant),
        Expr::Not(u) => constant(&u.operand),
        _ => {
            let mut children = e.children().peekable();
            children.peek().is_some() && children.all(constant)
        }
    }
}

/// Whether evaluating `e` always reaches a pattern test first (see
/// [`RuleInfo::searches`]).
fn searches_first(e: &Expr) -> bool {
    match e {
        Expr::PatternMatch(_)
        | Expr::PatternCount(_)
        | Expr::PatternOffset(_)
        | Expr::PatternLength(_) => true,
        Expr::Of(of) => matches!(of.items, OfItems::PatternSet(_)),
        Expr::And(n) | Expr::Or(n) => {
            !n.operands.iter().any(constant) && n.operands.first().is_some_and(searches_first)
        }
        Expr::Not(u) => searches_first(&u.operand),
        Expr::Eq(b) | Expr::Ne(b) | Expr::Lt(b) | Expr::Gt(b) | Expr::Le(b) | Expr::Ge(b) => {
            searches_first(&b.lhs)
        }
        _ => false,
    }
}

/// Identifiers a condition references (candidate rule references).
fn idents<'a>(e: &'a Expr<'a>, out: &mut Vec<&'a str>) {
    match e {
        Expr::Ident(i) => out.push(i.name),
        Expr::Of(of) => {
            if let OfItems::BoolExprTuple(items) = &of.items {
                for x in items {
                    idents(x, out);
                }
            }
        }
        _ => {}
    }
    for c in e.children() {
        idents(c, out);
    }
}

/// One rule of a source file.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub name: String,
    pub class: RuleClass,
    pub private: bool,
    pub global: bool,
    /// The rule's condition, for evaluation under an image's facts.
    pub condition: Cond,
    /// Other rules of the same file this rule needs (references; global
    /// rules of the file).
    pub deps: Vec<String>,
    /// The rule declares patterns.
    pub has_patterns: bool,
    /// Every pattern matches on its own bytes alone (no `fullword`, no
    /// base64 modifier, no regexp anchor or word boundary): a match inside a
    /// range of the image is also a match of that range scanned as a file,
    /// and the other way round.
    pub context_free: bool,
    /// The condition depends on pattern matches alone (no module, no
    /// `filesize`, no data reads, no other rule, no variable) and every
    /// pattern is [`RuleInfo::context_free`]: the whole image can be
    /// evaluated in blocks (or regions of it), with the same answer — a
    /// block's first and last bytes hide their surroundings, which
    /// `fullword`, `base64` and regexp assertions would see.
    pub blockable: bool,
    /// The condition holds `N of <patterns>` with N possibly 0 (a literal 0
    /// or an expression), which yara-x decides two ways depending on how
    /// the rule set it was compiled in numbered the patterns: "at least 0"
    /// (always true) when the set's patterns got consecutive numbers, "none"
    /// otherwise — and identical patterns of other rules share numbers. Such
    /// a rule is evaluated only with the whole rule set compiled, as the
    /// reference (yara-x on the image with the whole set) evaluates it.
    pub layout_dependent: bool,
    /// Evaluating the condition always reaches a pattern test first (and no
    /// constant folds it away): the scan that evaluates this rule always
    /// searches the data for patterns. yara-x searches lazily, when a
    /// condition first needs a pattern, and reports the strings of every
    /// matching rule only if some rule made it search.
    pub searches: bool,
    /// Where the rule's identifier starts and where its condition lies in
    /// the source (byte offsets), for [`occurrence_rule`].
    pub ident_start: usize,
    pub condition_span: std::ops::Range<usize>,
}

/// The rule `text` (its declaration, starting at byte `start` of its
/// source) rewritten to report where its patterns occur: the same
/// identifier, tags, metadata and patterns, with the condition `any of
/// them` and no `global` flag (kept `private`). yara-x reports the matches
/// of a pattern only as far as the rule's condition needs them: a pattern
/// used as `$a at 0` is looked for at offset 0 only, one behind `filesize`
/// bounds or a header test (`uint16(0) == ..`) not at all when they fail.
/// Under `any of them` every occurrence of every pattern is reported.
/// `None` for a rule without patterns, or spans outside `text`.
pub fn occurrence_rule(info: &RuleInfo, text: &str, start: usize) -> Option<String> {
    if !info.has_patterns {
        return None;
    }
    let ident = info.ident_start.checked_sub(start)?;
    let cond = info.condition_span.start.checked_sub(start)?
        ..info.condition_span.end.checked_sub(start)?;
    let head = text.get(ident..cond.start)?;
    let tail = text.get(cond.end..)?;
    Some(format!(
        "{}rule {head}any of them{tail}",
        if info.private { "private " } else { "" }
    ))
}

/// Whether an integer expression is a literal.
fn literal(e: &Expr) -> bool {
    matches!(e, Expr::LiteralInteger(_))
}

fn anchor_literal(a: &Option<ast::MatchAnchor>) -> bool {
    match a {
        None => true,
        Some(ast::MatchAnchor::At(at)) => literal(&at.expr),
        Some(ast::MatchAnchor::In(i)) => {
            literal(&i.range.lower_bound) && literal(&i.range.upper_bound)
        }
    }
}

/// Whether `e` depends on pattern matches and literals only (conservative:
/// anything else is not).
pub fn pattern_facts_only(e: &Expr) -> bool {
    match e {
        Expr::True { .. } | Expr::False { .. } | Expr::LiteralInteger(_) => true,
        Expr::PatternMatch(p) => anchor_literal(&p.anchor),
        Expr::PatternCount(p) => p
            .range
            .as_ref()
            .is_none_or(|r| literal(&r.lower_bound) && literal(&r.upper_bound)),
        Expr::PatternOffset(p) | Expr::PatternLength(p) => p.index.as_ref().is_none_or(literal),
        Expr::Not(u) | Expr::Minus(u) => pattern_facts_only(&u.operand),
        Expr::And(n) | Expr::Or(n) | Expr::Add(n) | Expr::Sub(n) | Expr::Mul(n) => {
            n.operands.iter().all(pattern_facts_only)
        }
        Expr::Eq(b) | Expr::Ne(b) | Expr::Lt(b) | Expr::Gt(b) | Expr::Le(b) | Expr::Ge(b) => {
            pattern_facts_only(&b.lhs) && pattern_facts_only(&b.rhs)
        }
        Expr::Of(of) => {
            matches!(of.items, OfItems::PatternSet(_))
                && anchor_literal(&of.anchor)
                && match &of.quantifier {
                    Quantifier::Any { .. } | Quantifier::All { .. } | Quantifier::None { .. } => {
                        true
                    }
                    Quantifier::Expr(e) | Quantifier::Percentage(e) => literal(e),
                }
        }
        _ => false,
    }
}

/// Whether a pattern's matches depend on its own bytes only, not on what
/// surrounds them (see [`RuleInfo::context_free`]).
fn context_free(p: &ast::Pattern) -> bool {
    use ast::PatternModifier as M;
    let modifiers_free = p.modifiers().iter().all(|m| {
        !matches!(
            m,
            M::Fullword { .. } | M::Base64 { .. } | M::Base64Wide { .. }
        )
    });
    modifiers_free
        && match p {
            ast::Pattern::Regexp(r) => !regexp_asserts(r.regexp.src),
            _ => true,
        }
}

/// Whether a regexp holds an assertion about its surroundings: `^`, `$`,
/// `\b`, `\B` outside a character class (conservative: an unreadable
/// regexp counts as asserting).
fn regexp_asserts(src: &str) -> bool {
    let b = src.as_bytes();
    let mut i = 0;
    let mut class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'b' | b'B') if !class => return true,
                    None => return true,
                    _ => {}
                }
                i += 2;
                continue;
            }
            b'[' if !class => {
                class = true;
                // `[]...]` and `[^]...]`: a leading `]` is a member.
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if class => class = false,
            b'^' | b'$' if !class => return true,
            _ => {}
        }
        i += 1;
    }
    class
}

/// Classifies every rule of a source file, in source order.
pub fn classify_source(src: &str) -> Vec<RuleInfo> {
    let ast = ast::AST::from(src);
    let rules: Vec<&ast::Rule> = ast.rules().collect();
    let names: std::collections::HashSet<&str> = rules.iter().map(|r| r.identifier.name).collect();
    let pe = ast.imports().any(|i| i.module_name == "pe");
    let globals: Vec<String> = rules
        .iter()
        .filter(|r| r.flags.contains(RuleFlags::Global))
        .map(|r| r.identifier.name.to_string())
        .collect();
    rules
        .iter()
        .map(|r| {
            let name = r.identifier.name.to_string();
            let global = r.flags.contains(RuleFlags::Global);
            let private = r.flags.contains(RuleFlags::Private);
            let scope = Scope {
                pe,
                patterns: r
                    .patterns
                    .iter()
                    .flatten()
                    .map(|p| p.identifier().name)
                    .collect(),
            };
            let condition = lower(&r.condition, &scope);
            let mut refs = Vec::new();
            idents(&r.condition, &mut refs);
            let mut deps: Vec<String> = refs
                .into_iter()
                .filter(|n| names.contains(n) && *n != name)
                .map(str::to_string)
                .collect();
            deps.extend(globals.iter().filter(|g| **g != name).cloned());
            deps.sort();
            deps.dedup();
            let has_patterns = r.patterns.as_ref().is_some_and(|p| !p.is_empty());
            let no_matches = Env {
                patterns: Some(false),
                filesize: None,
                read: None,
            };
            let class = if !globals.is_empty() || !deps.is_empty() {
                RuleClass::Always
            } else if has_patterns && shard_decidable(&r.condition, &scope) {
                RuleClass::Shard
            } else if has_patterns && eval(&condition, &no_matches) == Tri::False {
                RuleClass::Gated
            } else {
                RuleClass::Always
            };
            let context_free = r
                .patterns
                .as_ref()
                .is_none_or(|ps| ps.iter().all(context_free));
            RuleInfo {
                name,
                class,
                private,
                global,
                has_patterns,
                context_free,
                layout_dependent: layout_dependent(&r.condition),
                searches: !constant(&r.condition) && searches_first(&r.condition),
                blockable: deps.is_empty()
                    && !global
                    && context_free
                    && !layout_dependent(&r.condition)
                    && pattern_facts_only(&r.condition),
                ident_start: r.identifier.span().range().start,
                condition_span: r.condition.span().range(),
                condition,
                deps,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cond: &str) -> RuleInfo {
        let src = format!(
            "import \"pe\"\nrule r {{ strings: $a = \"abc\" $b = \"def\" $c1 = \"x1\" $c2 = \"x2\" condition: {cond} }}"
        );
        classify_source(&src).remove(0)
    }

    #[test]
    fn blockable_conditions_depend_on_pattern_matches_only() {
        for c in [
            "#a >= 3",
            "$a and not $b",
            "2 of them",
            "50% of ($c*)",
            "$a at 100 or $b in (0..4096)",
            "@a[1] < 1000 and !a[1] == 3",
            "#a in (0..100) == 2",
        ] {
            assert!(info(c).blockable, "{c}");
        }
        for c in [
            "uint16(0) == 0x5a4d and $a",
            "$a at filesize - 3",
            "filesize < 100 and $a",
            "pe.is_pe and $a",
            "#a in (0..filesize) > 2",
            "$a at uint32(0x3c)",
            "for any i in (1..#a) : (@a[i] > 10)",
        ] {
            assert!(!info(c).blockable, "{c}");
        }
    }

    #[test]
    fn classes() {
        use RuleClass::*;
        let class = |c: &str| info(c).class;
        assert_eq!(class("$a or $b or $c1 or $c2"), Shard);
        assert_eq!(class("any of them"), Shard);
        assert_eq!(class("1 of ($c*) or $a or $b"), Shard);
        assert_eq!(class("all of them"), Gated);
        assert_eq!(class("$a and $b and any of ($c*)"), Gated);
        assert_eq!(
            class("uint16(0) == 0x5a4d and filesize < 100KB and 2 of them"),
            Gated
        );
        assert_eq!(class("#a > 3 and all of ($c*) and $b"), Gated);
        assert_eq!(class("$a at 0 and $b and $c1 and $c2"), Gated);
        assert_eq!(class("$a at 0 or ($b and $c1 and $c2)"), Gated);
        assert_eq!(class("filesize < 10 or all of them"), Always);
        assert_eq!(class("not $a and $b and $c1 and $c2"), Gated);
        assert_eq!(class("none of them"), Always);
        assert_eq!(class("#a == 0 or all of them"), Always);
        assert_eq!(class("pe.is_pe or all of them"), Always);
        assert_eq!(
            class("for any of ($a, $b) : ($ at 0) and $c1 and $c2"),
            Gated
        );
        assert_eq!(class("for all of them : (# > 1)"), Gated);
        assert_eq!(class("0 of them or all of them"), Always);
        let no_patterns = classify_source("rule r { condition: filesize > 0 }");
        assert_eq!(no_patterns[0].class, Always);
        let global = classify_source(
            "global rule g { condition: filesize > 0 } rule r { strings: $a = \"x\" condition: $a }",
        );
        assert!(global.iter().all(|r| r.class == Always));
        assert_eq!(global[1].deps, vec!["g".to_string()]);
        let refs = classify_source(
            "private rule p { strings: $a = \"x\" condition: $a } rule r { strings: $b = \"y\" condition: $b and p }",
        );
        assert_eq!(refs[1].deps, vec!["p".to_string()]);
        assert_eq!(refs[1].class, Always);
        assert!(refs[0].private);
    }

    #[test]
    fn occurrence_form_keeps_identity_and_drops_the_condition() {
        let src = "import \"pe\"\nglobal private rule g : t1 t2 {\n meta: a = 1 b = \"x\"\n strings: $h = \"%PDF-\" $_u = { 00 11 }\n condition: $h at 0 and filesize < 10 and pe.is_pe\n}\nrule plain { condition: true }\n";
        let infos = classify_source(src);
        let start = src.find("global").unwrap();
        let end = src.find("}\nrule plain").unwrap() + 1;
        let form = occurrence_rule(&infos[0], &src[start..end], start).unwrap();
        assert_eq!(
            form,
            "private rule g : t1 t2 {\n meta: a = 1 b = \"x\"\n strings: $h = \"%PDF-\" $_u = { 00 11 }\n condition: any of them\n}"
        );
        // No patterns: no occurrence form.
        let plain = src.find("rule plain").unwrap();
        assert!(occurrence_rule(&infos[1], &src[plain..], plain).is_none());
        // yara-x takes it, without the import.
        let mut c = yara_x::Compiler::new();
        c.add_source(form.as_str()).unwrap();
    }

    #[test]
    fn set_dependent_behaviours_are_flagged() {
        // A shard rule names every pattern; an unused `$_x` makes the rule
        // gated (its occurrences would not make it match).
        let r =
            classify_source("rule r { strings: $a = \"abc\" $_b = \"def\" condition: $a or $a }");
        assert_eq!(r[0].class, RuleClass::Gated);
        assert_eq!(info("$a or any of ($c*) or $b").class, RuleClass::Shard);
        // `N of <patterns>` with N possibly 0.
        for (c, dep) in [
            ("0 of them", true),
            ("uint8(0) of them and $a", true),
            ("1 of them", false),
            ("0 of them at 0", false),
            ("for 0 of them : (# > 1)", false),
            ("$a and (0 of ($c*))", true),
        ] {
            assert_eq!(info(c).layout_dependent, dep, "{c}");
            assert!(!dep || !info(c).blockable, "{c}");
        }
        // Conditions that always reach a pattern test first.
        for (c, searches) in [
            ("$a and filesize > 0", true),
            ("#a > 2", true),
            ("any of them", true),
            ("not $a and $b and $c1 and $c2", true),
            ("filesize > 0 and $a", false),
            ("$a or true", false),
            ("($a or $b) and (1 == 1)", false),
            ("uint16(0) == 0x5a4d and all of them", false),
        ] {
            assert_eq!(info(c).searches, searches, "{c}");
        }
    }

    #[test]
    fn context_free_patterns() {
        let free = |decl: &str| {
            classify_source(&format!("rule r {{ strings: $a = {decl} condition: $a }}"))[0]
                .context_free
        };
        for d in [
            "\"abc\"",
            "\"abc\" wide nocase xor",
            "{ 4D 5A [2-4] 90 }",
            "/ab[^c]d/",
            "/[a-z0-9._%+-]{1,40}@[a-z0-9.-]{1,60}\\.[a-z]{2,6}/ ascii wide nocase",
            "/a[]^$]b/",
            "/a\\$b\\^/",
        ] {
            assert!(free(d), "{d}");
        }
        for d in [
            "\"abc\" fullword",
            "\"abc\" base64",
            "\"abc\" base64wide",
            "/^abc/",
            "/abc$/",
            "/\\babc/",
            "/a\\Bc/",
            "/ab(c|$)/",
        ] {
            assert!(!free(d), "{d}");
        }
        assert!(classify_source("rule r { condition: filesize > 0 }")[0].context_free);
    }

    #[test]
    fn facts() {
        let header = [0x4du8, 0x5a, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00];
        let read = |r: Read, off: i64| -> Option<i64> {
            let off = usize::try_from(off).ok()?;
            let b = header.get(off..off + usize::from(r.bytes))?;
            Some(r.decode(b))
        };
        let env = |size: i64| Env {
            patterns: None,
            filesize: Some(size),
            read: Some(&read),
        };
        let t = |c: &str, size: i64| eval(&info(c).condition, &env(size));
        assert_eq!(t("uint16(0) == 0x5a4d and $a", 100), Tri::Unknown);
        assert_eq!(t("uint16(0) == 0x4b50 and $a", 100), Tri::False);
        assert_eq!(
            t("uint32be(0) == 0x4d5a9000 and all of them", 100),
            Tri::Unknown
        );
        assert_eq!(t("uint8(1) == 0x5a and uint16(2) == 0x90", 100), Tri::True);
        assert_eq!(t("filesize < 100KB and any of them", 1 << 30), Tri::False);
        assert_eq!(t("filesize < 100KB and any of them", 1000), Tri::Unknown);
        assert_eq!(t("filesize > 1MB", 2 << 20), Tri::True);
        // Reads past the known bytes are unknown, never false.
        assert_eq!(t("uint32(100) == 5 and $a", 1000), Tri::Unknown);
        assert_eq!(t("int8(2) == -112", 10), Tri::True);
        assert_eq!(t("pe.is_pe and filesize < 10", 1000), Tri::False);
        // The header starts with "MZ": pe.is_pe stays unknown.
        assert_eq!(
            t("pe.is_pe and pe.number_of_sections > 0", 1000),
            Tri::Unknown
        );
        let zip = [0x50u8, 0x4b, 0x03, 0x04];
        let read_zip = |r: Read, off: i64| -> Option<i64> {
            let off = usize::try_from(off).ok()?;
            Some(r.decode(zip.get(off..off + usize::from(r.bytes))?))
        };
        let zenv = Env {
            patterns: None,
            filesize: Some(4),
            read: Some(&read_zip),
        };
        let z = |c: &str| eval(&info(c).condition, &zenv);
        assert_eq!(z("pe.is_pe and pe.number_of_sections > 0"), Tri::False);
        assert_eq!(z("not pe.is_pe"), Tri::True);
        assert_eq!(z("pe.number_of_sections > 0"), Tri::Unknown);
        // Without the import, `pe.is_pe` is not the module's.
        let no_import = classify_source("rule r { condition: pe.is_pe }");
        assert_eq!(eval(&no_import[0].condition, &zenv), Tri::Unknown);
        assert_eq!(t("not (filesize < 10) and $a", 1000), Tri::Unknown);
    }
}
