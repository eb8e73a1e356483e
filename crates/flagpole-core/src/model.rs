//! Wire and storage types: what the server stores, the API accepts and the SDK receives.
//!
//! These types only describe; they are not trusted. Everything here goes through
//! [`crate::compile`] before it is evaluated, and compilation is where validation happens.
//! Field names are snake_case JSON and every optional field has a default, so documents
//! written by older servers keep deserialising.

mod rename;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Weights of a rollout are in units of 0.001%, so they sum to this.
pub const TOTAL_WEIGHT: u32 = 100_000;

/// The type every variant value of a flag must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// `true` / `false`.
    Boolean,
    /// Any JSON string.
    String,
    /// Any JSON number (evaluated as `f64`).
    Number,
    /// Any JSON value.
    Json,
}

impl FlagKind {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::Boolean => "boolean",
            FlagKind::String => "string",
            FlagKind::Number => "number",
            FlagKind::Json => "json",
        }
    }
}

/// One possible value of a flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Stable identifier, referenced by serves, targets and prerequisites.
    pub key: String,
    /// The value served; its JSON type must match the flag's kind.
    pub value: Value,
    /// Human-readable name for the dashboard.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Free text for the dashboard.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The project-level part of a flag: identity, kind and variants. Shared by all environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Unique within a project; used by SDKs to look the flag up.
    pub key: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Labels for search and filtering.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The type of every variant value.
    pub kind: FlagKind,
    /// The values this flag can serve, in display order.
    pub variants: Vec<Variant>,
    /// Bucketing salt. Empty means "use the flag key", which makes flags independent of
    /// each other; changing it re-randomises who falls into which bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub salt: String,
}

/// The per-environment part of a flag: whether it is on and whom it serves what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagConfig {
    /// The kill switch. When false every context gets `off_variant`.
    #[serde(default)]
    pub enabled: bool,
    /// Variant served when the flag is off or a prerequisite fails.
    pub off_variant: String,
    /// Individual context keys pinned to a variant. Checked before rules.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Other flags that must serve one of the given variants for this one to be evaluated.
    #[serde(default)]
    pub prerequisites: Vec<Prerequisite>,
    /// Ordered rules; the first that matches decides.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// What is served when the flag is on and nothing above matched.
    pub default_serve: Serve,
}

/// Context keys that always get one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The variant to serve.
    pub variant: String,
    /// Context keys (the targeting key) that get it.
    pub keys: Vec<String>,
}

/// "Flag `flag` must serve one of `variants`."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prerequisite {
    /// Key of the prerequisite flag, in the same environment.
    pub flag: String,
    /// Acceptable variants of that flag. The prerequisite also fails when it is off.
    pub variants: Vec<String>,
}

/// A targeting rule: when every clause matches, `serve` decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable identifier reported in the evaluation reason; survives reordering.
    #[serde(default)]
    pub id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// All must match (AND). An empty list matches everyone.
    pub clauses: Vec<Clause>,
    /// What a match serves.
    pub serve: Serve,
}

/// A fixed variant or a weighted split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Serve {
    /// `{"variant": "on"}`
    Variant(String),
    /// `{"rollout": {...}}`
    Rollout(Rollout),
}

/// A percentage split over variants, decided by the context's bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Attribute whose value is hashed; empty means the context key. Use e.g. `org_id`
    /// so that everyone in an organisation sees the same variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bucket_by: String,
    /// Weights in order. Their order matters: ramping the first variant from 10% to 20%
    /// keeps everyone who was in it, because buckets fill from the start of the list.
    pub weights: Vec<WeightedVariant>,
}

/// One slice of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedVariant {
    /// Variant served to this slice.
    pub variant: String,
    /// Size in 0.001% units (`50_000` = 50%). All weights sum to [`TOTAL_WEIGHT`].
    pub weight: u32,
}

/// One test against the context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clause {
    /// `key` for the targeting key, a plain name for a top-level attribute, or a JSON
    /// pointer starting with `/` (`/address/city`) for nested values. Ignored by `in_segment`.
    #[serde(default)]
    pub attribute: String,
    /// The comparison.
    pub op: Operator,
    /// Compared against; the clause matches if any value does (OR).
    #[serde(default)]
    pub values: Vec<Value>,
    /// Inverts the result. A clause whose attribute is missing or of the wrong type does
    /// not match whether or not it is negated (except `exists`, where negation means
    /// "does not exist").
    #[serde(default, skip_serializing_if = "is_false")]
    pub negate: bool,
    /// Compare strings ignoring (Unicode) case. Applies to string operators.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The comparisons a clause can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Equal to one of the values (strings, numbers or booleans).
    In,
    /// String contains one of the values.
    Contains,
    /// String starts with one of the values.
    StartsWith,
    /// String ends with one of the values.
    EndsWith,
    /// String matches one of the regular expressions (unanchored, `regex` crate syntax).
    Matches,
    /// Number equals.
    Eq,
    /// Number is less than.
    Lt,
    /// Number is less than or equal.
    Lte,
    /// Number is greater than.
    Gt,
    /// Number is greater than or equal.
    Gte,
    /// Semantic version equals.
    SemverEq,
    /// Semantic version is lower.
    SemverLt,
    /// Semantic version is lower or equal.
    SemverLte,
    /// Semantic version is higher.
    SemverGt,
    /// Semantic version is higher or equal.
    SemverGte,
    /// Date (RFC 3339 string or epoch milliseconds) is strictly before.
    Before,
    /// Date is strictly after.
    After,
    /// Attribute is present and not null.
    Exists,
    /// Context is a member of one of the segments named in `values`.
    InSegment,
    /// An operator this version does not know (a newer server). Compilation rejects it,
    /// so the flag evaluates to an error instead of the whole snapshot failing to load.
    #[serde(other)]
    Unknown,
}

/// A reusable audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Unique within a project.
    pub key: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Context keys that are always members.
    #[serde(default)]
    pub included: Vec<String>,
    /// Context keys that are never members; exclusion wins over inclusion and rules.
    #[serde(default)]
    pub excluded: Vec<String>,
    /// A context matching any rule (all of its clauses) is a member.
    #[serde(default)]
    pub rules: Vec<SegmentRule>,
}

/// A rule of a segment: all clauses must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRule {
    /// Stable identifier.
    #[serde(default)]
    pub id: String,
    /// All must match.
    pub clauses: Vec<Clause>,
}

/// One flag as it exists in one environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlagState {
    /// Identity, kind and variants.
    pub flag: Flag,
    /// This environment's configuration.
    pub config: FlagConfig,
    /// The flag's version (one across environments), which SDKs report evaluation counts
    /// and exposures against. 0 from servers that do not send it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u64,
    /// Set while an experiment or a guarded rollout needs to know who saw which variant:
    /// SDKs then send an exposure per (variant, context key), deduplicated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exposures: bool,
}

impl FlagState {
    /// A flag's state at version 0 and with no exposures asked for.
    pub fn new(flag: Flag, config: FlagConfig) -> Self {
        FlagState {
            flag,
            config,
            version: 0,
            exposures: false,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Config first: SDKs compare the states a patch brings with the ones they hold, and most
/// changes are to the config (a toggle, a rule, a rollout), so it usually decides sooner.
impl PartialEq for FlagState {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
            && self.flag == other.flag
            && self.version == other.version
            && self.exposures == other.exposures
    }
}

/// Everything an SDK needs to evaluate one environment, at one version.
///
/// Flags and segments are behind `Arc`, so the next version (the previous one with a patch
/// applied) shares every unchanged flag with it instead of copying it: applying a change
/// costs what the change touched, not what the environment holds. On the wire an `Arc<T>`
/// is just `T`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSnapshot {
    /// Monotonic version of the environment; bumped by every write.
    #[serde(default)]
    pub version: u64,
    /// Live (not archived) flags.
    #[serde(default)]
    pub flags: Vec<Arc<FlagState>>,
    /// Segments of the environment's project.
    #[serde(default)]
    pub segments: Vec<Arc<Segment>>,
}
