//! Evaluation: which variant a context gets, and why.
//!
//! Order: off → prerequisites → individual targets → rules (first match) → default serve.
//! Nothing here allocates or fails; errors are values ([`Reason::Error`]) and the caller's
//! default is served.

use serde::Serialize;
use serde_json::Value;

use crate::attribute::{AttrRef, AttrValue};
use crate::bucket::SaltedPrefix;
use crate::context::Context;
use crate::counting::{self, outcome_slot};
use crate::model::FlagKind;
use crate::snapshot::{CompiledFlag, CompiledServe, FlagBody, Snapshot};

/// Why a value was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason<'s> {
    /// The flag is disabled in this environment; the off variant was served.
    Off,
    /// The context key is individually targeted.
    TargetMatch,
    /// A rule matched.
    RuleMatch {
        /// Position of the rule, from 0.
        rule_index: usize,
        /// The rule's id (empty if it has none).
        rule_id: &'s str,
        /// True if the rule served a rollout, so the bucket decided the variant.
        in_rollout: bool,
    },
    /// A prerequisite flag was off or served an unaccepted variant; the off variant was served.
    PrerequisiteFailed {
        /// Key of the prerequisite that failed.
        prerequisite: &'s str,
    },
    /// No target or rule matched; the default serve decided.
    Fallthrough {
        /// True if the default serve is a rollout.
        in_rollout: bool,
    },
    /// The caller's default was served.
    Error {
        /// What went wrong.
        error: ErrorKind,
    },
}

impl Reason<'_> {
    /// The reason's name as it appears on the wire (`RULE_MATCH`).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Off => "OFF",
            Reason::TargetMatch => "TARGET_MATCH",
            Reason::RuleMatch { .. } => "RULE_MATCH",
            Reason::PrerequisiteFailed { .. } => "PREREQUISITE_FAILED",
            Reason::Fallthrough { .. } => "FALLTHROUGH",
            Reason::Error { .. } => "ERROR",
        }
    }

    /// True if a percentage rollout picked the variant.
    pub fn in_rollout(&self) -> bool {
        matches!(
            self,
            Reason::RuleMatch {
                in_rollout: true,
                ..
            } | Reason::Fallthrough { in_rollout: true }
        )
    }
}

/// Why an evaluation fell back to the caller's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    /// No flag with that key in the environment.
    FlagNotFound,
    /// The caller asked for a type the flag does not serve.
    WrongType,
    /// A rollout buckets by an attribute the context lacks (or by the key, and it is empty).
    MissingBucketKey,
    /// The flag failed to compile (for example it uses an operator this SDK does not know).
    InvalidFlag,
    /// No snapshot has been received yet (SDKs before their first sync).
    NotReady,
}

impl ErrorKind {
    /// The wire name (`FLAG_NOT_FOUND`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorKind::WrongType => "WRONG_TYPE",
            ErrorKind::MissingBucketKey => "MISSING_BUCKET_KEY",
            ErrorKind::InvalidFlag => "INVALID_FLAG",
            ErrorKind::NotReady => "NOT_READY",
        }
    }
}

/// The result of evaluating a flag: the served value and variant (absent on error), and why.
/// Borrows from the snapshot, so producing one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evaluation<'s> {
    /// The served value; `None` when `reason` is an error.
    pub value: Option<&'s Value>,
    /// Key of the served variant; `None` when `reason` is an error.
    pub variant: Option<&'s str>,
    /// Why.
    pub reason: Reason<'s>,
}

impl Evaluation<'_> {
    /// An evaluation that failed with `error`.
    pub fn error(error: ErrorKind) -> Self {
        Evaluation {
            value: None,
            variant: None,
            reason: Reason::Error { error },
        }
    }
}

/// A typed evaluation result with the caller's default applied on error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detail<'s, T> {
    /// The served value, or the caller's default.
    pub value: T,
    /// Key of the served variant; `None` when the default was used.
    pub variant: Option<&'s str>,
    /// Why.
    pub reason: Reason<'s>,
}

/// Why a variant was chosen, compactly. [`Snapshot::decide`] returns this rather than a
/// [`Reason`] (whose borrowed ids make it several words) so that the value-only calls
/// (`bool_value`, ...) never build a reason; [`Snapshot::reason`] expands it on demand.
#[derive(Debug, Clone, Copy)]
enum Why {
    Off,
    Target,
    /// Index of the rule that matched.
    Rule(usize),
    /// Flag index of the prerequisite that failed.
    Prerequisite(usize),
    Fallthrough,
}

impl Why {
    /// The outcome's number in a flag's counting slots ([`crate::counting`]).
    #[inline(always)]
    fn outcome(self) -> usize {
        match self {
            Why::Off => counting::OFF,
            Why::Target => counting::TARGET,
            Why::Rule(i) => counting::RULES + i,
            Why::Prerequisite(_) => counting::PREREQUISITE,
            Why::Fallthrough => counting::FALLTHROUGH,
        }
    }
}

/// Variant index chosen and why, or the error.
type Decision = Result<(usize, Why), ErrorKind>;

/// The counting slot of a decision, relative to the flag's base.
#[inline(always)]
fn slot(body: &FlagBody, decision: &Decision) -> usize {
    match *decision {
        Ok((v, why)) => outcome_slot(body.variants.len(), why.outcome(), v),
        Err(error) => counting::error_slot(error),
    }
}

/// The variant the context's key is individually targeted with, if any.
#[inline(never)]
fn target(body: &FlagBody, ctx: &Context) -> Option<usize> {
    if ctx.key.is_empty() {
        return None;
    }
    body.targets.get(ctx.key.as_str()).copied()
}

impl Snapshot {
    /// Evaluates a flag for a context.
    #[inline]
    pub fn evaluate<'s>(&'s self, flag_key: &str, ctx: &Context) -> Evaluation<'s> {
        match self.find(flag_key) {
            Some((base, flag)) => self.evaluate_flag(flag, base, ctx),
            None => {
                self.count_unknown(flag_key);
                Evaluation::error(ErrorKind::FlagNotFound)
            }
        }
    }

    /// Evaluates and counts (`base` is the flag's first counting slot).
    #[inline]
    fn evaluate_flag<'s>(
        &'s self,
        flag: &'s CompiledFlag,
        base: usize,
        ctx: &Context,
    ) -> Evaluation<'s> {
        let Some(body) = &flag.body else {
            self.count(base + counting::error_slot(ErrorKind::InvalidFlag));
            return Evaluation::error(ErrorKind::InvalidFlag);
        };
        let decision = self.decide(body, ctx);
        self.count(base + slot(body, &decision));
        self.evaluation(body, decision)
    }

    /// Evaluates like [`Snapshot::evaluate`] without counting, for tools that inspect
    /// flags rather than use them (the server's evaluation debugger). A counting
    /// snapshot's figures then say what applications evaluated: a debugging session that
    /// evaluates every flag must not make unused flags look used.
    pub fn evaluate_uncounted<'s>(&'s self, flag_key: &str, ctx: &Context) -> Evaluation<'s> {
        let Some((_, flag)) = self.find(flag_key) else {
            return Evaluation::error(ErrorKind::FlagNotFound);
        };
        let Some(body) = &flag.body else {
            return Evaluation::error(ErrorKind::InvalidFlag);
        };
        self.evaluation(body, self.decide(body, ctx))
    }

    /// What a decision serves, as an [`Evaluation`].
    #[inline(always)]
    fn evaluation<'s>(&'s self, body: &'s FlagBody, decision: Decision) -> Evaluation<'s> {
        match decision {
            Ok((v, why)) => Evaluation {
                value: Some(body.store.value(body.variants, v)),
                variant: Some(body.store.variant_key(body.variants, v)),
                reason: self.reason(body, why),
            },
            Err(error) => Evaluation::error(error),
        }
    }

    fn reason<'s>(&'s self, body: &'s FlagBody, why: Why) -> Reason<'s> {
        match why {
            Why::Off => Reason::Off,
            Why::Target => Reason::TargetMatch,
            Why::Rule(rule_index) => {
                let rule = &body.store.rules(body.rules)[rule_index];
                Reason::RuleMatch {
                    rule_index,
                    rule_id: body.store.text(rule.id),
                    in_rollout: matches!(rule.serve, CompiledServe::Rollout { .. }),
                }
            }
            Why::Prerequisite(flag) => Reason::PrerequisiteFailed {
                prerequisite: self.index.key(flag),
            },
            Why::Fallthrough => Reason::Fallthrough {
                in_rollout: matches!(body.default, CompiledServe::Rollout { .. }),
            },
        }
    }

    /// The evaluation order itself. Inlined into every entry point, so a flag without
    /// prerequisites is evaluated without a call; recursion into prerequisites goes
    /// through the out-of-line [`Snapshot::prerequisite_holds`].
    #[inline(always)]
    fn decide(&self, body: &FlagBody, ctx: &Context) -> Decision {
        if !body.enabled {
            return Ok((body.off, Why::Off));
        }
        // Prerequisites and targets are checked out of line, keeping this code (inlined
        // into every entry point) small for the common flag that has neither.
        if !body.prerequisites.is_empty()
            && let Some(flag) = self.failed_prerequisite(body, ctx)
        {
            return Ok((body.off, Why::Prerequisite(flag)));
        }
        if !body.targets.is_empty()
            && let Some(v) = target(body, ctx)
        {
            return Ok((v, Why::Target));
        }
        // Plain loops rather than `all`, and one place that serves: the clause and
        // rollout code is inlined once.
        let (serve, why) = 'found: {
            if let Some((clause, serve)) = &body.lone_rule {
                break 'found if clause.matches(ctx, &self.segments) {
                    (serve, Why::Rule(0))
                } else {
                    (&body.default, Why::Fallthrough)
                };
            }
            'rules: for (rule_index, rule) in body.store.rules(body.rules).iter().enumerate() {
                for clause in body.store.clauses(rule.clauses) {
                    if !clause.matches(ctx, &self.segments) {
                        continue 'rules;
                    }
                }
                break 'found (&rule.serve, Why::Rule(rule_index));
            }
            (&body.default, Why::Fallthrough)
        };
        self.serve(body, serve, ctx).map(|v| (v, why))
    }

    /// The first prerequisite of `body` that does not hold.
    #[inline(never)]
    fn failed_prerequisite(&self, body: &FlagBody, ctx: &Context) -> Option<usize> {
        body.prerequisites
            .iter()
            .find(|(flag, accepted)| !self.prerequisite_holds(*flag, accepted, ctx))
            .map(|(flag, _)| *flag)
    }

    /// A prerequisite holds when that flag is on, evaluates without error and serves one
    /// of the accepted variants. Compilation guarantees the graph is acyclic.
    #[inline(never)]
    fn prerequisite_holds(&self, flag: usize, accepted: &[usize], ctx: &Context) -> bool {
        let Some(body) = &self.flags[flag].body else {
            return false;
        };
        match self.decide(body, ctx) {
            Ok((_, Why::Off)) | Err(_) => false,
            Ok((v, _)) => accepted.contains(&v),
        }
    }

    /// The flag and its counting base, unless it is missing or not of `kind` (JSON
    /// accepts any); those errors are counted here.
    #[inline(always)]
    fn typed_flag(
        &self,
        flag_key: &str,
        kind: FlagKind,
    ) -> Result<(usize, &CompiledFlag), ErrorKind> {
        match self.find(flag_key) {
            None => {
                self.count_unknown(flag_key);
                Err(ErrorKind::FlagNotFound)
            }
            Some((base, flag)) if kind != FlagKind::Json && flag.kind != kind => {
                self.count(base + counting::error_slot(ErrorKind::WrongType));
                Err(ErrorKind::WrongType)
            }
            Some(found) => Ok(found),
        }
    }

    /// Typed evaluation: `Err(WrongType)` unless the flag is of `kind` (JSON accepts any).
    fn typed<'s>(&'s self, flag_key: &str, ctx: &Context, kind: FlagKind) -> Evaluation<'s> {
        match self.typed_flag(flag_key, kind) {
            Ok((base, flag)) => self.evaluate_flag(flag, base, ctx),
            Err(error) => Evaluation::error(error),
        }
    }

    /// The served value of a flag of `kind`, or `None` on any error: what the `*_value`
    /// calls need, without building a reason.
    #[inline(always)]
    fn typed_value(&self, flag_key: &str, ctx: &Context, kind: FlagKind) -> Option<&Value> {
        let (base, flag) = self.typed_flag(flag_key, kind).ok()?;
        let Some(body) = &flag.body else {
            self.count(base + counting::error_slot(ErrorKind::InvalidFlag));
            return None;
        };
        match body.constant {
            Some(v) => {
                self.count(base + body.constant_slot);
                Some(body.store.value(body.variants, v))
            }
            None => self.decide_value(body, base, ctx),
        }
    }

    /// [`Snapshot::decide`] and count, returning the value (a pointer, in a register)
    /// rather than the variant index. Inlined into each typed entry point: out of line,
    /// its call and the registers it saved were 6-8% of a one-rule evaluation.
    #[inline]
    fn decide_value<'s>(
        &'s self,
        body: &'s FlagBody,
        base: usize,
        ctx: &Context,
    ) -> Option<&'s Value> {
        let decision = self.decide(body, ctx);
        self.count(base + slot(body, &decision));
        let (v, _) = decision.ok()?;
        Some(body.store.value(body.variants, v))
    }

    /// A boolean flag's value with details; `default` on any error.
    pub fn bool_detail<'s>(
        &'s self,
        flag_key: &str,
        ctx: &Context,
        default: bool,
    ) -> Detail<'s, bool> {
        let e = self.typed(flag_key, ctx, FlagKind::Boolean);
        detail(e, default, Value::as_bool)
    }

    /// A string flag's value with details; `default` on any error.
    pub fn string_detail<'s>(
        &'s self,
        flag_key: &str,
        ctx: &Context,
        default: &'s str,
    ) -> Detail<'s, &'s str> {
        let e = self.typed(flag_key, ctx, FlagKind::String);
        detail(e, default, Value::as_str)
    }

    /// A number flag's value with details; `default` on any error.
    pub fn number_detail<'s>(
        &'s self,
        flag_key: &str,
        ctx: &Context,
        default: f64,
    ) -> Detail<'s, f64> {
        let e = self.typed(flag_key, ctx, FlagKind::Number);
        detail(e, default, Value::as_f64)
    }

    /// Any flag's value as JSON with details; `default` on any error.
    pub fn json_detail<'s>(
        &'s self,
        flag_key: &str,
        ctx: &Context,
        default: &'s Value,
    ) -> Detail<'s, &'s Value> {
        let e = self.typed(flag_key, ctx, FlagKind::Json);
        detail(e, default, Some)
    }

    /// A boolean flag's value, or `default`.
    ///
    /// Inlined into the caller (as are the other `*_value` calls) down to the flag lookup
    /// and, for flags that serve everyone the same variant, the answer; evaluating rules
    /// is one call away.
    #[inline]
    pub fn bool_value(&self, flag_key: &str, ctx: &Context, default: bool) -> bool {
        // Compilation checks variant values against the kind, so only errors convert to
        // `None` here, exactly as in the `*_detail` calls.
        self.typed_value(flag_key, ctx, FlagKind::Boolean)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }

    /// A string flag's value, or `default`.
    #[inline]
    pub fn string_value<'s>(&'s self, flag_key: &str, ctx: &Context, default: &'s str) -> &'s str {
        self.typed_value(flag_key, ctx, FlagKind::String)
            .and_then(Value::as_str)
            .unwrap_or(default)
    }

    /// A number flag's value, or `default`.
    #[inline]
    pub fn number_value(&self, flag_key: &str, ctx: &Context, default: f64) -> f64 {
        self.typed_value(flag_key, ctx, FlagKind::Number)
            .and_then(Value::as_f64)
            .unwrap_or(default)
    }

    /// Any flag's value as JSON, or `default`.
    #[inline]
    pub fn json_value<'s>(
        &'s self,
        flag_key: &str,
        ctx: &Context,
        default: &'s Value,
    ) -> &'s Value {
        self.typed_value(flag_key, ctx, FlagKind::Json)
            .unwrap_or(default)
    }
}

fn detail<'s, T>(
    e: Evaluation<'s>,
    default: T,
    convert: impl FnOnce(&'s Value) -> Option<T>,
) -> Detail<'s, T> {
    match e.value.and_then(convert) {
        Some(value) => Detail {
            value,
            variant: e.variant,
            reason: e.reason,
        },
        // Compilation checks variant types against the kind, so a served value always
        // converts; only errors reach this arm.
        None => Detail {
            value: default,
            variant: None,
            reason: e.reason,
        },
    }
}

impl Snapshot {
    #[inline(always)]
    fn serve(
        &self,
        body: &FlagBody,
        serve: &CompiledServe,
        ctx: &Context,
    ) -> Result<usize, ErrorKind> {
        match serve {
            CompiledServe::Variant(v) => Ok(*v),
            CompiledServe::Rollout { bucket_by, slices } => {
                rollout(body, bucket_by, body.store.slices(*slices), ctx)
            }
        }
    }
}

#[inline(always)]
fn rollout(
    body: &FlagBody,
    bucket_by: &AttrRef,
    slices: &[(u32, usize)],
    ctx: &Context,
) -> Result<usize, ErrorKind> {
    if let [(_, only)] = *slices {
        return Ok(only); // 100% to one variant: no bucketing key needed
    }
    let bucket = bucket_for(&body.salt, bucket_by, ctx).ok_or(ErrorKind::MissingBucketKey)?;
    let (_, v) = slices
        .iter()
        .find(|(upper, _)| bucket < *upper)
        .unwrap_or(&slices[slices.len() - 1]);
    Ok(*v)
}

/// The bucket of the context's `bucket_by` value. Numbers and booleans bucket by their
/// canonical JSON text (`42`, `1.5`, `true`), formatted on the stack.
#[inline(always)]
fn bucket_for(salt: &SaltedPrefix, attr: &AttrRef, ctx: &Context) -> Option<u32> {
    let hash = match attr.lookup(ctx)? {
        AttrValue::Str(s) => salt.hash(s.as_bytes()),
        AttrValue::Json(value) => hash_json(salt, value)?,
    };
    Some(crate::bucket::bucket_of_hash(hash))
}

/// [`bucket_for`] a non-string value, out of line: strings are the usual bucketing key.
#[inline(never)]
fn hash_json(salt: &SaltedPrefix, value: &Value) -> Option<u32> {
    Some(match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                salt.hash(itoa::Buffer::new().format(i).as_bytes())
            } else if let Some(u) = n.as_u64() {
                salt.hash(itoa::Buffer::new().format(u).as_bytes())
            } else {
                salt.hash(ryu::Buffer::new().format(n.as_f64()?).as_bytes())
            }
        }
        Value::Bool(b) => salt.hash(if *b { b"true" } else { b"false" }),
        _ => return None,
    })
}
