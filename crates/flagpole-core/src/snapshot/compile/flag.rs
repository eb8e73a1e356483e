//! Compiling one flag, step by step: its key and variants, the off variant, targets,
//! prerequisites, rules and the default serve, then the [`FlagBody`] that keeps all of its
//! lists in one [`Store`].
//!
//! Every step runs even when an earlier one failed, so that a write is told all of a
//! flag's problems at once; the body is built only when none was reported.

use std::collections::HashMap;

use serde_json::Value;

use super::{Compiler, LINEAR_MAX, compile_clauses, serve, span_from, validate_key};
use crate::attribute::Names;
use crate::bucket::SaltedPrefix;
use crate::clause::CompiledClause;
use crate::counting::{FALLTHROUGH, OFF, outcome_slot};
use crate::error::{Path, Sink};
use crate::index::KeyIndex;
use crate::model::{EnvironmentSnapshot, Flag, FlagKind, FlagState, Serve, Variant};
use crate::snapshot::{
    CompiledFlag, CompiledRule, CompiledServe, FastMap, FastSet, FlagBody, Span, Store,
};

impl Store {
    /// Empty lists with exactly the room `state` needs (rollout slices counted with their
    /// zero weights, which are dropped), except clauses: those are compiled into the
    /// compiler's scratch list and copied out (see [`Compiler::clauses`]). A flag costs one
    /// allocation per list it uses, and a list it does not use costs none.
    fn for_flag(state: &FlagState) -> Store {
        let (variants, rules) = (&state.flag.variants, &state.config.rules);
        let weights = |serve: &Serve| match serve {
            Serve::Rollout(r) => r.weights.len(),
            Serve::Variant(_) => 0,
        };
        let text = variants.iter().map(|v| v.key.len()).sum::<usize>()
            + rules.iter().map(|r| r.id.len()).sum::<usize>();
        let slices = rules.iter().map(|r| weights(&r.serve)).sum::<usize>()
            + weights(&state.config.default_serve);
        Store {
            text: String::with_capacity(text),
            variant_keys: Vec::with_capacity(variants.len()),
            values: Vec::with_capacity(variants.len()),
            rules: Vec::with_capacity(rules.len()),
            clauses: Vec::new(),
            slices: Vec::with_capacity(slices),
        }
    }

    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(s);
        Span {
            start,
            len: s.len(),
        }
    }
}

impl Compiler {
    /// Compiles one flag; `unique` is false when an earlier flag has the same key. A flag
    /// with errors is kept without a body, so that it evaluates to an error.
    pub(super) fn flag(
        &mut self,
        state: &FlagState,
        unique: bool,
        flag_index: &KeyIndex,
        env: &EnvironmentSnapshot,
        segment_index: &HashMap<&str, usize>,
    ) -> CompiledFlag {
        let config = &state.config;
        self.clauses.clear();
        let mut f = FlagCompiler {
            state,
            store: Store::for_flag(state),
            clauses: &mut self.clauses,
            names: &mut self.names,
            variants: VariantIndex::new(&state.flag.variants),
            sink: Sink::flag(&state.flag.key, &mut self.errors),
        };
        f.check_key(unique);
        f.check_variants();
        let off = f.variants.resolve(
            &mut f.sink,
            &Path::root("config.off_variant"),
            &config.off_variant,
        );
        let targets = f.targets();
        let prerequisites = f.prerequisites(flag_index, env);
        let rules = f.rules(segment_index);
        let default = f.serve(&config.default_serve, &Path::root("config.default_serve"));
        let lone_rule = f.lone_rule(rules);
        let body = match (f.sink.is_clean(), off, default) {
            (true, Some(off), Some(default)) => {
                let context_free = prerequisites.is_empty() && targets.is_empty() && rules.len == 0;
                let constant = f.constant(off, context_free, &default);
                // A constant flag is off, or has nothing but its default serve.
                let why = if config.enabled { FALLTHROUGH } else { OFF };
                let constant_slot =
                    outcome_slot(state.flag.variants.len(), why, constant.unwrap_or(0));
                let variants = f.push_variants();
                Some(FlagBody {
                    store: f.into_store(),
                    lone_rule,
                    constant,
                    constant_slot,
                    variants,
                    salt: salt(&state.flag),
                    enabled: config.enabled,
                    off,
                    targets,
                    prerequisites: prerequisites.into(),
                    rules,
                    default,
                })
            }
            _ => None,
        };
        CompiledFlag {
            kind: state.flag.kind,
            version: state.version,
            body,
        }
    }
}

/// One flag being compiled. The steps of [`Compiler::flag`] are its methods: each reports
/// what is wrong into `sink` and returns what it compiled, writing the body's lists into
/// `store` and the rules' clauses into `clauses`.
struct FlagCompiler<'c> {
    state: &'c FlagState,
    /// The lists of the flag's body, sized up front by [`Store::for_flag`].
    store: Store,
    /// The compiler's scratch list (see [`Compiler::clauses`]).
    clauses: &'c mut Vec<CompiledClause>,
    names: &'c mut Names,
    variants: VariantIndex<'c>,
    sink: Sink<'c>,
}

impl FlagCompiler<'_> {
    /// The key must be valid and not repeat an earlier flag's.
    fn check_key(&mut self, unique: bool) {
        let flag = &self.state.flag;
        if let Err(msg) = validate_key(&flag.key) {
            self.sink.push("flag.key", msg);
        } else if !unique {
            self.sink.push("flag.key", "duplicate flag key");
        }
    }

    /// Variants need distinct, non-empty keys and values of the flag's kind.
    fn check_variants(&mut self) {
        let flag = &self.state.flag;
        if flag.variants.is_empty() {
            self.sink
                .push("flag.variants", "a flag needs at least one variant");
        }
        for (i, v) in flag.variants.iter().enumerate() {
            if v.key.is_empty() {
                self.sink
                    .push(format!("flag.variants[{i}].key"), "must not be empty");
            } else if self.variants.get(&v.key) != Some(i) {
                self.sink.push(
                    format!("flag.variants[{i}].key"),
                    format!("duplicate variant `{}`", v.key),
                );
            }
            if let Some(expected) = kind_mismatch(flag.kind, &v.value) {
                self.sink.push(
                    format!("flag.variants[{i}].value"),
                    format!("expected {expected}"),
                );
            }
        }
    }

    /// Context key → variant, for the individually targeted keys. A key may be targeted
    /// only once.
    fn targets(&mut self) -> FastMap<Box<str>, usize> {
        let config = &self.state.config;
        let config_path = Path::root("config");
        let mut targets = FastMap::default();
        for (ti, t) in config.targets.iter().enumerate() {
            let Some(v) = self.variants.resolve(
                &mut self.sink,
                &config_path.at("targets", ti).field("variant"),
                &t.variant,
            ) else {
                continue;
            };
            for (ki, key) in t.keys.iter().enumerate() {
                if key.is_empty() {
                    self.sink.push(
                        format!("config.targets[{ti}].keys[{ki}]"),
                        "must not be empty",
                    );
                } else if targets.insert(Box::<str>::from(key.as_str()), v).is_some() {
                    self.sink.push(
                        format!("config.targets[{ti}].keys[{ki}]"),
                        format!("`{key}` is targeted more than once"),
                    );
                }
            }
        }
        targets
    }

    /// Each prerequisite as (flag index, accepted variant indices of that flag), resolved
    /// against the other flags' definitions in `env`. Cycles can only be seen once every
    /// flag is compiled: see [`Compiler::break_prerequisite_cycles`].
    fn prerequisites(
        &mut self,
        flag_index: &KeyIndex,
        env: &EnvironmentSnapshot,
    ) -> Vec<(usize, Box<[usize]>)> {
        let (flag, config) = (&self.state.flag, &self.state.config);
        let config_path = Path::root("config");
        let mut prerequisites = Vec::with_capacity(config.prerequisites.len());
        for (pi, p) in config.prerequisites.iter().enumerate() {
            let path = config_path.at("prerequisites", pi);
            if p.flag == flag.key {
                self.sink
                    .push(path.field("flag"), "a flag cannot be its own prerequisite");
                continue;
            }
            let Some(target) = flag_index.get(&p.flag) else {
                self.sink
                    .push(path.field("flag"), format!("unknown flag `{}`", p.flag));
                continue;
            };
            if p.variants.is_empty() {
                self.sink
                    .push(path.field("variants"), "at least one variant is required");
                continue;
            }
            let other = &env.flags[target].flag;
            let mut accepted = Vec::with_capacity(p.variants.len());
            for (vi, vk) in p.variants.iter().enumerate() {
                match other.variants.iter().position(|v| &v.key == vk) {
                    Some(idx) => accepted.push(idx),
                    None => self.sink.push(
                        path.at("variants", vi),
                        format!("flag `{}` has no variant `{vk}`", p.flag),
                    ),
                }
            }
            prerequisites.push((target, accepted.into_boxed_slice()));
        }
        prerequisites
    }

    /// The rules, in order, in [`Store::rules`], their clauses in the scratch list. A rule
    /// whose serve failed to compile is left out: the flag gets no body then anyway.
    fn rules(&mut self, segment_index: &HashMap<&str, usize>) -> Span {
        let config = &self.state.config;
        let config_path = Path::root("config");
        // Few rules per flag: duplicate ids are found by scanning, unless there are many.
        let mut rule_ids: Option<FastSet<&str>> =
            (config.rules.len() > LINEAR_MAX).then(FastSet::default);
        let rules_start = self.store.rules.len();
        for (ri, rule) in config.rules.iter().enumerate() {
            let path = config_path.at("rules", ri);
            let duplicate = !rule.id.is_empty()
                && match &mut rule_ids {
                    Some(ids) => !ids.insert(&rule.id),
                    None => config.rules[..ri].iter().any(|r| r.id == rule.id),
                };
            if duplicate {
                self.sink
                    .push(path.field("id"), format!("duplicate rule id `{}`", rule.id));
            }
            let clauses_start = self.clauses.len();
            compile_clauses(
                &rule.clauses,
                &path,
                segment_index,
                self.names,
                &mut self.sink,
                self.clauses,
            );
            let clauses = span_from(clauses_start, self.clauses.len());
            if let Some(serve) = self.serve(&rule.serve, &path.field("serve")) {
                let id = self.store.push_text(&rule.id);
                self.store.rules.push(CompiledRule { id, clauses, serve });
            }
        }
        span_from(rules_start, self.store.rules.len())
    }

    /// What a rule or the default serves; a rollout's slices go into [`Store::slices`].
    fn serve(&mut self, serve: &Serve, path: &Path<'_>) -> Option<CompiledServe> {
        serve::compile(
            serve,
            path,
            &self.variants,
            self.names,
            &mut self.sink,
            &mut self.store.slices,
        )
    }

    /// Takes a single rule of a single clause out of the store (see
    /// [`FlagBody::lone_rule`]). The rule's clause is the last one compiled.
    fn lone_rule(&mut self, rules: Span) -> Option<(CompiledClause, CompiledServe)> {
        match self.store.rules(rules) {
            [rule] if rule.clauses.len == 1 && self.sink.is_clean() => {
                let serve = rule.serve.clone();
                let clause = self.clauses.pop().expect("the rule's clause");
                self.store.rules[rules.start].clauses = Span::default();
                Some((clause, serve))
            }
            _ => None,
        }
    }

    /// [`FlagBody::constant`]; `context_free` when the flag has no prerequisites, targets
    /// or rules.
    fn constant(&self, off: usize, context_free: bool, default: &CompiledServe) -> Option<usize> {
        if !self.state.config.enabled {
            Some(off)
        } else if context_free {
            match default {
                CompiledServe::Variant(v) => Some(*v),
                CompiledServe::Rollout { slices, .. } => match *self.store.slices(*slices) {
                    [(_, only)] => Some(only),
                    _ => None,
                },
            }
        } else {
            None
        }
    }

    /// Copies the variants into the store. Done last, as only a flag that compiled needs
    /// them.
    fn push_variants(&mut self) -> Span {
        let start = self.store.values.len();
        for v in &self.state.flag.variants {
            let key = self.store.push_text(&v.key);
            self.store.variant_keys.push(key);
            self.store.values.push(v.value.clone());
        }
        span_from(start, self.store.values.len())
    }

    /// The finished store, with the clauses copied out of the scratch list.
    fn into_store(self) -> Store {
        Store {
            clauses: self.clauses.drain(..).collect(),
            ..self.store
        }
    }
}

/// The bucketing hash's prefix: the flag's salt, or its key when the salt is empty.
fn salt(flag: &Flag) -> SaltedPrefix {
    SaltedPrefix::new(if flag.salt.is_empty() {
        flag.key.as_bytes()
    } else {
        flag.salt.as_bytes()
    })
}

/// Returns `None` if `value` fits `kind`, else a description of what was expected.
fn kind_mismatch(kind: FlagKind, value: &Value) -> Option<&'static str> {
    let fits = match kind {
        FlagKind::Boolean => value.is_boolean(),
        FlagKind::String => value.is_string(),
        FlagKind::Number => value.is_number(),
        FlagKind::Json => true,
    };
    (!fits).then_some(match kind {
        FlagKind::Boolean => "a boolean",
        FlagKind::String => "a string",
        FlagKind::Number => "a number",
        FlagKind::Json => "JSON",
    })
}

/// Variant key → index within one flag. A scan of the flag's own list up to
/// [`LINEAR_MAX`] variants, a map beyond.
pub(super) struct VariantIndex<'a> {
    variants: &'a [Variant],
    map: Option<FastMap<&'a str, usize>>,
}

impl<'a> VariantIndex<'a> {
    fn new(variants: &'a [Variant]) -> Self {
        let map = (variants.len() > LINEAR_MAX).then(|| {
            let mut map = FastMap::with_capacity_and_hasher(variants.len(), Default::default());
            for (i, v) in variants.iter().enumerate() {
                map.entry(v.key.as_str()).or_insert(i);
            }
            map
        });
        VariantIndex { variants, map }
    }

    /// The first variant with this key; empty keys are invalid and never found.
    #[inline]
    fn get(&self, key: &str) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        match &self.map {
            Some(map) => map.get(key).copied(),
            None => self
                .variants
                .iter()
                .position(|v| crate::index::bytes_eq(v.key.as_bytes(), key.as_bytes())),
        }
    }

    /// [`VariantIndex::get`], reporting an unknown key at `path`.
    pub(super) fn resolve(&self, sink: &mut Sink<'_>, path: &Path<'_>, key: &str) -> Option<usize> {
        let found = self.get(key);
        if found.is_none() {
            sink.push(path, format!("unknown variant `{key}`"));
        }
        found
    }
}
