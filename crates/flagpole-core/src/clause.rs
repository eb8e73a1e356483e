//! Clauses: compiled once from [`model::Clause`], then tested against contexts.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::attribute::{AttrRef, AttrValue, Names};
use crate::context::Context;
use crate::error::{Path, Sink};
use crate::model::{self, Operator};
use crate::snapshot::CompiledSegment;

/// A regex may compile to at most this much memory; stops pathological patterns from
/// a dashboard user eating the server and every SDK.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A clause ready to test. Values are parsed and typed; nothing is parsed on the hot path
/// except the context's own semver and date strings.
#[derive(Debug)]
pub(crate) struct CompiledClause {
    attr: AttrRef,
    negate: bool,
    test: Test,
}

#[derive(Debug)]
enum Test {
    In {
        strings: StrList,
        numbers: Box<[f64]>,
        bools: [bool; 2],
        ci: bool,
    },
    Str {
        op: StrOp,
        values: StrList,
        ci: bool,
    },
    Regex(Box<[Regex]>),
    Number(Cmp, Box<[f64]>),
    Semver(Cmp, Box<[semver::Version]>),
    /// Epoch milliseconds.
    Date(Cmp, Box<[i64]>),
    Exists,
    Segment(Box<[usize]>),
}

#[derive(Debug, Clone, Copy)]
enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Cmp {
    #[inline]
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Lte => ord != Ordering::Greater,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Gte => ord != Ordering::Less,
        }
    }
}

/// Compiles one clause, reporting problems under `path` (e.g. `config.rules[0].clauses[1]`).
pub(crate) fn compile(
    clause: &model::Clause,
    path: &Path<'_>,
    segments: &HashMap<&str, usize>,
    names: &mut Names,
    sink: &mut Sink<'_>,
) -> Option<CompiledClause> {
    let op = clause.op;
    let attr = if op == Operator::InSegment {
        AttrRef::Key // unused: membership reads the key and the segment's own clauses
    } else {
        match AttrRef::parse(&clause.attribute, names) {
            Ok(a) => a,
            Err(msg) => {
                sink.push(format!("{path}.attribute"), msg);
                return None;
            }
        }
    };
    if op == Operator::Exists {
        if !clause.values.is_empty() {
            sink.push(format!("{path}.values"), "`exists` takes no values");
            return None;
        }
        return Some(CompiledClause {
            attr,
            negate: clause.negate,
            test: Test::Exists,
        });
    }
    if op == Operator::Unknown {
        sink.push(format!("{path}.op"), "unknown operator");
        return None;
    }
    if clause.values.is_empty() {
        sink.push(format!("{path}.values"), "at least one value is required");
        return None;
    }
    let ci = clause.case_insensitive;
    let mut ok = true;
    // Runs `f` over each value, reporting failures at `values[i]`.
    let mut each = |f: &mut dyn FnMut(&Value) -> Result<(), String>| {
        for (i, v) in clause.values.iter().enumerate() {
            if let Err(msg) = f(v) {
                sink.push(format!("{path}.values[{i}]"), msg);
                ok = false;
            }
        }
    };
    let test = match op {
        Operator::In => {
            let (mut strings, mut numbers, mut bools) =
                (StrList::builder(&clause.values), Vec::new(), [false; 2]);
            each(&mut |v| match v {
                Value::String(s) => {
                    strings.push(&fold(s, ci));
                    Ok(())
                }
                Value::Number(n) => {
                    numbers.push(n.as_f64().unwrap_or(f64::NAN));
                    Ok(())
                }
                Value::Bool(b) => {
                    bools[usize::from(*b)] = true;
                    Ok(())
                }
                _ => Err("expected a string, number or boolean".into()),
            });
            Test::In {
                strings: strings.finish(),
                numbers: numbers.into(),
                bools,
                ci,
            }
        }
        Operator::Contains | Operator::StartsWith | Operator::EndsWith => {
            let op = match op {
                Operator::Contains => StrOp::Contains,
                Operator::StartsWith => StrOp::StartsWith,
                _ => StrOp::EndsWith,
            };
            let mut values = StrList::builder(&clause.values);
            each(&mut |v| {
                values.push(&fold(expect_str(v)?, ci));
                Ok(())
            });
            Test::Str {
                op,
                values: values.finish(),
                ci,
            }
        }
        Operator::Matches => {
            let mut regexes = Vec::new();
            each(&mut |v| {
                let re = RegexBuilder::new(expect_str(v)?)
                    .case_insensitive(ci)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("invalid regex: {}", first_line(&e.to_string())))?;
                regexes.push(re);
                Ok(())
            });
            Test::Regex(regexes.into())
        }
        Operator::Eq | Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
            let mut numbers = Vec::new();
            each(&mut |v| {
                let n = v.as_f64().ok_or("expected a number")?;
                numbers.push(n);
                Ok(())
            });
            Test::Number(numeric_cmp(op), numbers.into())
        }
        Operator::SemverEq
        | Operator::SemverLt
        | Operator::SemverLte
        | Operator::SemverGt
        | Operator::SemverGte => {
            let mut versions = Vec::new();
            each(&mut |v| {
                let s = expect_str(v)?;
                let parsed = parse_semver(s).ok_or_else(|| format!("invalid semver `{s}`"))?;
                versions.push(parsed);
                Ok(())
            });
            Test::Semver(numeric_cmp(op), versions.into())
        }
        Operator::Before | Operator::After => {
            let mut dates = Vec::new();
            each(&mut |v| {
                let ms = parse_date(v)
                    .ok_or("expected an RFC 3339 date-time string or epoch milliseconds")?;
                dates.push(ms);
                Ok(())
            });
            let cmp = if op == Operator::Before {
                Cmp::Lt
            } else {
                Cmp::Gt
            };
            Test::Date(cmp, dates.into())
        }
        Operator::InSegment => {
            let mut idx = Vec::new();
            each(&mut |v| {
                let key = expect_str(v)?;
                let i = segments
                    .get(key)
                    .ok_or_else(|| format!("unknown segment `{key}`"))?;
                idx.push(*i);
                Ok(())
            });
            Test::Segment(idx.into())
        }
        Operator::Exists | Operator::Unknown => unreachable!("handled above"),
    };
    ok.then_some(CompiledClause {
        attr,
        negate: clause.negate,
        test,
    })
}

impl CompiledClause {
    /// Segment indices this clause refers to, for cycle detection.
    pub(crate) fn segment_refs(&self) -> &[usize] {
        match &self.test {
            Test::Segment(s) => s,
            _ => &[],
        }
    }

    /// Does the context satisfy this clause? Never fails: a missing attribute or one of a
    /// type the operator cannot compare makes the clause not match, negated or not.
    #[inline(always)]
    pub(crate) fn matches(&self, ctx: &Context, segments: &[CompiledSegment]) -> bool {
        // The commonest path (a string attribute) is inlined into evaluation; segments
        // and JSON attributes are out of line.
        let outcome = match &self.test {
            Test::Exists => Some(self.attr.lookup(ctx).is_some()),
            Test::Segment(list) => segment_outcome(list, ctx, segments),
            _ => match self.attr.lookup(ctx) {
                None => None,
                Some(AttrValue::Str(s)) => self.test_str(s),
                Some(AttrValue::Json(v)) => self.test_json(v),
            },
        };
        match outcome {
            Some(m) => m != self.negate,
            None => false,
        }
    }

    /// [`Self::matches`] for a non-string attribute value.
    #[inline(never)]
    fn test_json(&self, value: &Value) -> Option<bool> {
        match value {
            Value::Array(items) => {
                // A list attribute matches if any element does.
                let mut any_applicable = false;
                let mut hit = false;
                for item in items {
                    match Scalar::of(item).and_then(|s| self.test_scalar(s)) {
                        Some(true) => {
                            hit = true;
                            break;
                        }
                        Some(false) => any_applicable = true,
                        None => {}
                    }
                }
                // An empty list is a list in which nothing matches, so a negated
                // clause matches it ("none of the groups is admin"); a non-empty list
                // with no comparable element is of the wrong type and never matches.
                (hit || any_applicable || items.is_empty()).then_some(hit)
            }
            v => Scalar::of(v).and_then(|s| self.test_scalar(s)),
        }
    }

    /// [`Self::test_scalar`] for a string attribute, with the commonest clause (a
    /// case-sensitive `in` over strings) inlined into [`Self::matches`].
    #[inline(always)]
    fn test_str(&self, s: &str) -> Option<bool> {
        match &self.test {
            Test::In {
                strings, ci: false, ..
            } => {
                for v in strings.iter_bytes() {
                    if crate::index::bytes_eq(s.as_bytes(), v) {
                        return Some(true);
                    }
                }
                Some(false)
            }
            _ => self.test_scalar(Scalar::Str(s)),
        }
    }

    /// `None` when the value's type cannot be compared by this operator.
    #[inline]
    fn test_scalar(&self, value: Scalar<'_>) -> Option<bool> {
        match (&self.test, value) {
            (Test::In { strings, ci, .. }, Scalar::Str(s)) => {
                Some(strings.iter().any(|v| eq_folded(s, v, *ci)))
            }
            (Test::In { numbers, .. }, Scalar::Num(n)) => Some(numbers.contains(&n)),
            (Test::In { bools, .. }, Scalar::Bool(b)) => Some(bools[usize::from(b)]),
            (Test::Str { op, values, ci }, Scalar::Str(s)) => {
                Some(values.iter().any(|v| str_test(*op, s, v, *ci)))
            }
            (Test::Regex(res), Scalar::Str(s)) => Some(res.iter().any(|re| re.is_match(s))),
            (Test::Number(cmp, values), Scalar::Num(n)) => Some(
                values
                    .iter()
                    .any(|v| n.partial_cmp(v).is_some_and(|ord| cmp.holds(ord))),
            ),
            (Test::Semver(cmp, values), Scalar::Str(s)) => {
                let version = parse_semver(s)?;
                Some(values.iter().any(|v| cmp.holds(version.cmp_precedence(v))))
            }
            (Test::Date(cmp, values), scalar) => {
                let ms = match scalar {
                    Scalar::Str(s) => parse_rfc3339_ms(s)?,
                    Scalar::Num(n) => finite_ms(n)?,
                    Scalar::Bool(_) => return None,
                };
                Some(values.iter().any(|v| cmp.holds(ms.cmp(v))))
            }
            _ => None,
        }
    }
}

/// Membership in any of the segments: `None` when all of them are invalid.
#[inline(never)]
fn segment_outcome(list: &[usize], ctx: &Context, segments: &[CompiledSegment]) -> Option<bool> {
    let mut any_known = false;
    let mut member = false;
    for &i in list.iter() {
        match segments[i].contains(ctx, segments) {
            Some(true) => {
                member = true;
                break;
            }
            Some(false) => any_known = true,
            None => {}
        }
    }
    (member || any_known).then_some(member)
}

/// A context value an operator can compare.
#[derive(Debug, Clone, Copy)]
enum Scalar<'c> {
    Str(&'c str),
    Num(f64),
    Bool(bool),
}

impl<'c> Scalar<'c> {
    #[inline]
    fn of(v: &'c Value) -> Option<Scalar<'c>> {
        match v {
            Value::String(s) => Some(Scalar::Str(s)),
            Value::Number(n) => n.as_f64().map(Scalar::Num),
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            _ => None,
        }
    }
}

fn numeric_cmp(op: Operator) -> Cmp {
    match op {
        Operator::Eq | Operator::SemverEq => Cmp::Eq,
        Operator::Lt | Operator::SemverLt => Cmp::Lt,
        Operator::Lte | Operator::SemverLte => Cmp::Lte,
        Operator::Gt | Operator::SemverGt => Cmp::Gt,
        _ => Cmp::Gte,
    }
}

fn expect_str(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| "expected a string".to_string())
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

/// Lowercases by Unicode simple case mapping, char by char, when case-insensitive. The same
/// mapping is applied lazily to context values, so both sides fold identically.
fn fold(s: &str, ci: bool) -> Cow<'_, str> {
    if ci {
        Cow::Owned(s.chars().flat_map(char::to_lowercase).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// A clause's strings packed into one buffer: one allocation per clause (for the usual
/// handful of values) rather than one per value, as allocation dominated compiling; and
/// matching scans contiguous memory.
#[derive(Debug)]
struct StrList {
    text: Box<str>,
    /// Where each string ends in `text`; each starts where the previous one ends.
    ends: Ends,
}

struct StrListBuilder {
    text: String,
    ends: Ends,
}

/// Up to this many values, a [`StrList`] keeps their ends inline.
const INLINE_ENDS: usize = 4;

#[derive(Debug)]
enum Ends {
    Inline(u8, [usize; INLINE_ENDS]),
    Heap(Vec<usize>),
}

impl Ends {
    fn with_capacity(n: usize) -> Ends {
        if n <= INLINE_ENDS {
            Ends::Inline(0, [0; INLINE_ENDS])
        } else {
            Ends::Heap(Vec::with_capacity(n))
        }
    }

    fn push(&mut self, end: usize) {
        match self {
            Ends::Inline(n, ends) if usize::from(*n) < INLINE_ENDS => {
                ends[usize::from(*n)] = end;
                *n += 1;
            }
            Ends::Inline(_, ends) => {
                let mut heap = ends.to_vec();
                heap.push(end);
                *self = Ends::Heap(heap);
            }
            Ends::Heap(ends) => ends.push(end),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[usize] {
        match self {
            Ends::Inline(n, ends) => &ends[..usize::from(*n)],
            Ends::Heap(ends) => ends,
        }
    }
}

impl StrList {
    /// A builder with room for the string values among `values`.
    fn builder(values: &[Value]) -> StrListBuilder {
        let (count, bytes) = values
            .iter()
            .filter_map(Value::as_str)
            .fold((0, 0), |(n, b), s| (n + 1, b + s.len()));
        StrListBuilder {
            text: String::with_capacity(bytes),
            ends: Ends::with_capacity(count),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.as_slice().iter().map(move |&end| {
            let s = &self.text[start..end];
            start = end;
            s
        })
    }

    /// [`Self::iter`] as bytes, skipping the char-boundary checks of slicing a `str`.
    #[inline]
    fn iter_bytes(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.as_slice().iter().map(move |&end| {
            let s = &self.text.as_bytes()[start..end];
            start = end;
            s
        })
    }
}

impl StrListBuilder {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    fn finish(self) -> StrList {
        StrList {
            text: self.text.into_boxed_str(),
            ends: self.ends,
        }
    }
}

fn lower(s: &str) -> impl DoubleEndedIterator<Item = char> + Clone + '_ {
    s.chars().flat_map(char::to_lowercase)
}

#[inline]
fn eq_folded(attr: &str, folded: &str, ci: bool) -> bool {
    if ci {
        lower(attr).eq(folded.chars())
    } else {
        // Inlined word compares: `in` over a few short strings is the commonest clause.
        crate::index::bytes_eq(attr.as_bytes(), folded.as_bytes())
    }
}

fn str_test(op: StrOp, attr: &str, folded: &str, ci: bool) -> bool {
    if !ci {
        return match op {
            StrOp::Contains => attr.contains(folded),
            StrOp::StartsWith => attr.starts_with(folded),
            StrOp::EndsWith => attr.ends_with(folded),
        };
    }
    // Case-insensitive without allocating: compare lowercase char streams.
    let starts = |haystack: &str| {
        let mut h = lower(haystack);
        folded.chars().all(|c| h.next() == Some(c))
    };
    match op {
        StrOp::StartsWith => starts(attr),
        StrOp::EndsWith => {
            let mut h = lower(attr).rev();
            folded.chars().rev().all(|c| h.next() == Some(c))
        }
        StrOp::Contains => {
            folded.is_empty() || attr.char_indices().any(|(i, _)| starts(&attr[i..]))
        }
    }
}

/// Semantic versions, accepting an optional leading `v` (`v1.2.3`) as most tooling does.
fn parse_semver(s: &str) -> Option<semver::Version> {
    let s = s.strip_prefix('v').unwrap_or(s);
    semver::Version::parse(s).ok()
}

/// Dates in clause values: RFC 3339 strings or epoch milliseconds.
fn parse_date(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_rfc3339_ms(s),
        Value::Number(n) => finite_ms(n.as_f64()?),
        _ => None,
    }
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

fn finite_ms(n: f64) -> Option<i64> {
    // ±8.64e15 ms is the range of ECMAScript dates; beyond it a number is not a date.
    (n.is_finite() && n.abs() <= 8.64e15).then_some(n.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_string_ops() {
        assert!(str_test(StrOp::Contains, "Hello WORLD", "o wo", true));
        assert!(!str_test(StrOp::Contains, "Hello WORLD", "o wo", false));
        assert!(str_test(StrOp::StartsWith, "ÉCOLE", "éc", true));
        assert!(str_test(StrOp::EndsWith, "straSSE", "sse", true));
        assert!(!str_test(StrOp::EndsWith, "se", "sse", true));
        assert!(eq_folded("ÅSE", "åse", true));
    }

    #[test]
    fn str_lists_round_trip_inline_and_on_the_heap() {
        for n in [0, 1, INLINE_ENDS, INLINE_ENDS + 3] {
            let values: Vec<Value> = (0..n).map(|i| Value::from("é".repeat(i))).collect();
            let mut builder = StrList::builder(&values);
            for v in &values {
                builder.push(v.as_str().unwrap());
            }
            let list = builder.finish();
            let strings: Vec<&str> = list.iter().collect();
            let bytes: Vec<&[u8]> = list.iter_bytes().collect();
            let expected: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            assert_eq!(strings, expected);
            assert_eq!(
                bytes,
                expected.iter().map(|s| s.as_bytes()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(finite_ms(f64::INFINITY), None);
    }
}
