//! Evaluation: which variant a context gets, and why.
//!
//! Order: off → prerequisites → individual targets → rules (first match) → default serve.
//! Nothing here allocates or fails; errors are values ([`Reason::Error`]) and the caller's
//! default is served.

use serde::Serialize;
use serde_json::Value;

use crate::attribute::{AttrRef, AttrValue};
use crate::bucket::hash_salted;
use crate::context::Context;
use crate::model::FlagKind;
use crate::snapshot::{CompiledServe, FlagBody, Snapshot};

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

/// Variant index chosen, or the error.
type Outcome<'s> = (Result<usize, ErrorKind>, Reason<'s>);

impl Snapshot {
    /// Evaluates a flag for a context.
    #[inline]
    pub fn evaluate<'s>(&'s self, flag_key: &str, ctx: &Context) -> Evaluation<'s> {
        match self.index.get(flag_key) {
            Some(&i) => self.evaluate_index(i, ctx),
            None => Evaluation::error(ErrorKind::FlagNotFound),
        }
    }

    fn evaluate_index<'s>(&'s self, i: usize, ctx: &Context) -> Evaluation<'s> {
        let Some(body) = &self.flags[i].body else {
            return Evaluation::error(ErrorKind::InvalidFlag);
        };
        match self.decide(body, ctx) {
            (Ok(v), reason) => Evaluation {
                value: Some(&body.values[v]),
                variant: Some(&body.variant_keys[v]),
                reason,
            },
            (Err(error), _) => Evaluation::error(error),
        }
    }

    fn decide<'s>(&'s self, body: &'s FlagBody, ctx: &Context) -> Outcome<'s> {
        if !body.enabled {
            return (Ok(body.off), Reason::Off);
        }
        for (flag, accepted) in body.prerequisites.iter() {
            if !self.prerequisite_holds(*flag, accepted, ctx) {
                let prerequisite = &*self.flags[*flag].key;
                return (Ok(body.off), Reason::PrerequisiteFailed { prerequisite });
            }
        }
        if !body.targets.is_empty()
            && !ctx.key.is_empty()
            && let Some(&v) = body.targets.get(ctx.key.as_str())
        {
            return (Ok(v), Reason::TargetMatch);
        }
        for (rule_index, rule) in body.rules.iter().enumerate() {
            if rule.clauses.iter().all(|c| c.matches(ctx, &self.segments)) {
                let served = serve(body, &rule.serve, ctx);
                let in_rollout = matches!(rule.serve, CompiledServe::Rollout { .. });
                return (
                    served,
                    Reason::RuleMatch {
                        rule_index,
                        rule_id: &rule.id,
                        in_rollout,
                    },
                );
            }
        }
        let in_rollout = matches!(body.default, CompiledServe::Rollout { .. });
        (
            serve(body, &body.default, ctx),
            Reason::Fallthrough { in_rollout },
        )
    }

    /// A prerequisite holds when that flag is on, evaluates without error and serves one
    /// of the accepted variants. Compilation guarantees the graph is acyclic.
    fn prerequisite_holds(&self, flag: usize, accepted: &[usize], ctx: &Context) -> bool {
        let Some(body) = &self.flags[flag].body else {
            return false;
        };
        match self.decide(body, ctx) {
            (_, Reason::Off) | (Err(_), _) => false,
            (Ok(v), _) => accepted.contains(&v),
        }
    }

    /// Typed evaluation: `Err(WrongType)` unless the flag is of `kind` (JSON accepts any).
    fn typed<'s>(&'s self, flag_key: &str, ctx: &Context, kind: FlagKind) -> Evaluation<'s> {
        match self.index.get(flag_key) {
            None => Evaluation::error(ErrorKind::FlagNotFound),
            Some(&i) if kind != FlagKind::Json && self.flags[i].kind != kind => {
                Evaluation::error(ErrorKind::WrongType)
            }
            Some(&i) => self.evaluate_index(i, ctx),
        }
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
    pub fn bool_value(&self, flag_key: &str, ctx: &Context, default: bool) -> bool {
        self.bool_detail(flag_key, ctx, default).value
    }

    /// A string flag's value, or `default`.
    pub fn string_value<'s>(&'s self, flag_key: &str, ctx: &Context, default: &'s str) -> &'s str {
        self.string_detail(flag_key, ctx, default).value
    }

    /// A number flag's value, or `default`.
    pub fn number_value(&self, flag_key: &str, ctx: &Context, default: f64) -> f64 {
        self.number_detail(flag_key, ctx, default).value
    }

    /// Any flag's value as JSON, or `default`.
    pub fn json_value<'s>(
        &'s self,
        flag_key: &str,
        ctx: &Context,
        default: &'s Value,
    ) -> &'s Value {
        self.json_detail(flag_key, ctx, default).value
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

#[inline]
fn serve(body: &FlagBody, serve: &CompiledServe, ctx: &Context) -> Result<usize, ErrorKind> {
    match serve {
        CompiledServe::Variant(v) => Ok(*v),
        CompiledServe::Rollout { bucket_by, slices } => {
            if let [(_, only)] = **slices {
                return Ok(only); // 100% to one variant: no bucketing key needed
            }
            let bucket =
                bucket_for(&body.salt, bucket_by, ctx).ok_or(ErrorKind::MissingBucketKey)?;
            let (_, v) = slices
                .iter()
                .find(|(upper, _)| bucket < *upper)
                .unwrap_or(&slices[slices.len() - 1]);
            Ok(*v)
        }
    }
}

/// The bucket of the context's `bucket_by` value. Numbers and booleans bucket by their
/// canonical JSON text (`42`, `1.5`, `true`), formatted on the stack.
#[inline]
fn bucket_for(salt: &[u8], attr: &AttrRef, ctx: &Context) -> Option<u32> {
    let hash = match attr.lookup(ctx)? {
        AttrValue::Str(s) => hash_salted(salt, s.as_bytes()),
        AttrValue::Json(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                hash_salted(salt, itoa::Buffer::new().format(i).as_bytes())
            } else if let Some(u) = n.as_u64() {
                hash_salted(salt, itoa::Buffer::new().format(u).as_bytes())
            } else {
                hash_salted(salt, ryu::Buffer::new().format(n.as_f64()?).as_bytes())
            }
        }
        AttrValue::Json(Value::Bool(b)) => hash_salted(salt, if *b { b"true" } else { b"false" }),
        AttrValue::Json(_) => return None,
    };
    Some(crate::bucket::bucket_of_hash(hash))
}
