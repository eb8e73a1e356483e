//! Compiling one flag: its key and variants, then the targeting its config describes,
//! into a [`FlagBody`] that keeps all its lists in one [`Store`].

use std::collections::HashMap;

use serde_json::Value;

use super::{Compiler, LINEAR_MAX, compile_clauses, serve, span_from, validate_key};
use crate::bucket::SaltedPrefix;
use crate::error::{Path, Sink};
use crate::index::KeyIndex;
use crate::model::{EnvironmentSnapshot, FlagKind, FlagState, Serve, Variant};
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
    pub(super) fn flag(
        &mut self,
        state: &FlagState,
        unique: bool,
        flag_index: &KeyIndex,
        env: &EnvironmentSnapshot,
        segment_index: &HashMap<&str, usize>,
    ) -> CompiledFlag {
        let (flag, config) = (&state.flag, &state.config);
        self.store = Store::for_flag(state);
        self.clauses.clear();
        let mut sink = Sink::flag(&flag.key, &mut self.errors);

        if let Err(msg) = validate_key(&flag.key) {
            sink.push("flag.key", msg);
        } else if !unique {
            sink.push("flag.key", "duplicate flag key");
        }
        if flag.variants.is_empty() {
            sink.push("flag.variants", "a flag needs at least one variant");
        }
        let variant_index = VariantIndex::new(&flag.variants);
        for (i, v) in flag.variants.iter().enumerate() {
            if v.key.is_empty() {
                sink.push(format!("flag.variants[{i}].key"), "must not be empty");
            } else if variant_index.get(&v.key) != Some(i) {
                sink.push(
                    format!("flag.variants[{i}].key"),
                    format!("duplicate variant `{}`", v.key),
                );
            }
            if let Some(expected) = kind_mismatch(flag.kind, &v.value) {
                sink.push(
                    format!("flag.variants[{i}].value"),
                    format!("expected {expected}"),
                );
            }
        }
        let lookup = |sink: &mut Sink<'_>, path: &Path<'_>, key: &str| -> Option<usize> {
            let found = variant_index.get(key);
            if found.is_none() {
                sink.push(path, format!("unknown variant `{key}`"));
            }
            found
        };

        let off = lookup(
            &mut sink,
            &Path::root("config.off_variant"),
            &config.off_variant,
        );

        let config_path = Path::root("config");
        let mut targets = FastMap::default();
        for (ti, t) in config.targets.iter().enumerate() {
            let Some(v) = lookup(
                &mut sink,
                &config_path.at("targets", ti).field("variant"),
                &t.variant,
            ) else {
                continue;
            };
            for (ki, key) in t.keys.iter().enumerate() {
                if key.is_empty() {
                    sink.push(
                        format!("config.targets[{ti}].keys[{ki}]"),
                        "must not be empty",
                    );
                } else if targets.insert(Box::<str>::from(key.as_str()), v).is_some() {
                    sink.push(
                        format!("config.targets[{ti}].keys[{ki}]"),
                        format!("`{key}` is targeted more than once"),
                    );
                }
            }
        }

        let mut prerequisites = Vec::with_capacity(config.prerequisites.len());
        for (pi, p) in config.prerequisites.iter().enumerate() {
            let path = config_path.at("prerequisites", pi);
            if p.flag == flag.key {
                sink.push(path.field("flag"), "a flag cannot be its own prerequisite");
                continue;
            }
            let Some(target) = flag_index.get(&p.flag) else {
                sink.push(path.field("flag"), format!("unknown flag `{}`", p.flag));
                continue;
            };
            if p.variants.is_empty() {
                sink.push(path.field("variants"), "at least one variant is required");
                continue;
            }
            let other = &env.flags[target].flag;
            let mut accepted = Vec::with_capacity(p.variants.len());
            for (vi, vk) in p.variants.iter().enumerate() {
                match other.variants.iter().position(|v| &v.key == vk) {
                    Some(idx) => accepted.push(idx),
                    None => sink.push(
                        path.at("variants", vi),
                        format!("flag `{}` has no variant `{vk}`", p.flag),
                    ),
                }
            }
            prerequisites.push((target, accepted.into_boxed_slice()));
        }

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
                sink.push(path.field("id"), format!("duplicate rule id `{}`", rule.id));
            }
            let clauses_start = self.clauses.len();
            compile_clauses(
                &rule.clauses,
                &path,
                segment_index,
                &mut self.names,
                &mut sink,
                &mut self.clauses,
            );
            let clauses = span_from(clauses_start, self.clauses.len());
            let serve = serve::compile(
                &rule.serve,
                &path.field("serve"),
                &lookup,
                &mut self.names,
                &mut sink,
                &mut self.store.slices,
            );
            if let Some(serve) = serve {
                let id = self.store.push_text(&rule.id);
                self.store.rules.push(CompiledRule { id, clauses, serve });
            }
        }
        let rules = span_from(rules_start, self.store.rules.len());
        let default = serve::compile(
            &config.default_serve,
            &Path::root("config.default_serve"),
            &lookup,
            &mut self.names,
            &mut sink,
            &mut self.store.slices,
        );

        // See `FlagBody::lone_rule`. The rule's clause is the last one compiled.
        let lone_rule = match self.store.rules(rules) {
            [rule] if rule.clauses.len == 1 && sink.is_clean() => {
                let serve = rule.serve.clone();
                let clause = self.clauses.pop().expect("the rule's clause");
                self.store.rules[rules.start].clauses = Span::default();
                Some((clause, serve))
            }
            _ => None,
        };
        let body = match (sink.is_clean(), off, default) {
            (true, Some(off), Some(default)) => {
                let constant = if !config.enabled {
                    Some(off)
                } else if prerequisites.is_empty() && targets.is_empty() && rules.len == 0 {
                    match &default {
                        CompiledServe::Variant(v) => Some(*v),
                        CompiledServe::Rollout { slices, .. } => {
                            match *self.store.slices(*slices) {
                                [(_, only)] => Some(only),
                                _ => None,
                            }
                        }
                    }
                } else {
                    None
                };
                let variants = {
                    let start = self.store.values.len();
                    for v in &flag.variants {
                        let key = self.store.push_text(&v.key);
                        self.store.variant_keys.push(key);
                        self.store.values.push(v.value.clone());
                    }
                    span_from(start, self.store.values.len())
                };
                Some(FlagBody {
                    store: Store {
                        clauses: self.clauses.drain(..).collect(),
                        ..std::mem::take(&mut self.store)
                    },
                    lone_rule,
                    constant,
                    variants,
                    salt: SaltedPrefix::new(if flag.salt.is_empty() {
                        flag.key.as_bytes()
                    } else {
                        flag.salt.as_bytes()
                    }),
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
            kind: flag.kind,
            body,
        }
    }
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
struct VariantIndex<'a> {
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
}
