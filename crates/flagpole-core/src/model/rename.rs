//! Renaming a variant key: every place a flag's configs, and other flags' prerequisites,
//! name the variant. A rename changes no bucket (rollouts are positional) and no value, so
//! it is a pure rewrite of references; the server applies it to a whole project scope in
//! one transaction rather than letting a client send one write per reference.

use super::{Flag, FlagConfig, Serve};

impl Flag {
    /// Renames variant `from` to `to` in the definition. False if there is no `from`; the
    /// caller checks that `to` is free (an existing `to` would make two variants share a
    /// key, which compilation rejects anyway).
    pub fn rename_variant(&mut self, from: &str, to: &str) -> bool {
        match self.variants.iter_mut().find(|v| v.key == from) {
            Some(variant) => {
                variant.key = to.to_owned();
                true
            }
            None => false,
        }
    }
}

impl FlagConfig {
    /// Renames this flag's own variant `from` to `to` wherever the config names it: the
    /// off variant, targets, rule serves, rollout weights and the default serve. Returns
    /// how many references changed.
    pub fn rename_variant(&mut self, from: &str, to: &str) -> usize {
        let mut changed = rename(&mut self.off_variant, from, to);
        for target in &mut self.targets {
            changed += rename(&mut target.variant, from, to);
        }
        for rule in &mut self.rules {
            changed += rename_serve(&mut rule.serve, from, to);
        }
        changed + rename_serve(&mut self.default_serve, from, to)
    }

    /// Renames variant `from` of the OTHER flag `flag` to `to` in this config's
    /// prerequisites on it. Returns how many references changed.
    pub fn rename_prerequisite_variant(&mut self, flag: &str, from: &str, to: &str) -> usize {
        self.prerequisites
            .iter_mut()
            .filter(|p| p.flag == flag)
            .flat_map(|p| p.variants.iter_mut())
            .map(|v| rename(v, from, to))
            .sum()
    }
}

fn rename_serve(serve: &mut Serve, from: &str, to: &str) -> usize {
    match serve {
        Serve::Variant(v) => rename(v, from, to),
        Serve::Rollout(r) => r
            .weights
            .iter_mut()
            .map(|w| rename(&mut w.variant, from, to))
            .sum(),
    }
}

fn rename(slot: &mut String, from: &str, to: &str) -> usize {
    if slot == from {
        to.clone_into(slot);
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(value: serde_json::Value) -> FlagConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn renames_every_reference_of_the_flags_own_variant() {
        let mut c = config(json!({
            "enabled": true, "off_variant": "a",
            "targets": [{"variant": "a", "keys": ["u1"]}, {"variant": "b", "keys": ["u2"]}],
            "prerequisites": [{"flag": "other", "variants": ["a"]}],
            "rules": [
                {"id": "r1", "clauses": [], "serve": {"variant": "a"}},
                {"id": "r2", "clauses": [], "serve": {"rollout": {"weights": [
                    {"variant": "a", "weight": 40000}, {"variant": "b", "weight": 60000}]}}}
            ],
            "default_serve": {"rollout": {"weights": [
                {"variant": "b", "weight": 1}, {"variant": "a", "weight": 99999}]}}
        }));
        assert_eq!(c.rename_variant("a", "control"), 5);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({
                "enabled": true, "off_variant": "control",
                "targets": [{"variant": "control", "keys": ["u1"]}, {"variant": "b", "keys": ["u2"]}],
                // Another flag's variant `a` is not this flag's: untouched.
                "prerequisites": [{"flag": "other", "variants": ["a"]}],
                "rules": [
                    {"id": "r1", "clauses": [], "serve": {"variant": "control"}},
                    {"id": "r2", "clauses": [], "serve": {"rollout": {"weights": [
                        {"variant": "control", "weight": 40000}, {"variant": "b", "weight": 60000}]}}}
                ],
                "default_serve": {"rollout": {"weights": [
                    {"variant": "b", "weight": 1}, {"variant": "control", "weight": 99999}]}}
            })
        );
    }

    #[test]
    fn renames_prerequisites_on_the_named_flag_only() {
        let mut c = config(json!({
            "off_variant": "x",
            "prerequisites": [
                {"flag": "checkout", "variants": ["a", "b"]},
                {"flag": "other", "variants": ["a"]}
            ],
            "default_serve": {"variant": "a"}
        }));
        assert_eq!(c.rename_prerequisite_variant("checkout", "a", "new"), 1);
        assert_eq!(c.prerequisites[0].variants, ["new", "b"]);
        assert_eq!(c.prerequisites[1].variants, ["a"]);
        // The config's own serve names its own flag's `a`.
        assert_eq!(c.default_serve, Serve::Variant("a".into()));
    }

    #[test]
    fn renames_the_definition_and_reports_a_missing_variant() {
        let mut f: Flag = serde_json::from_value(json!({
            "key": "f", "kind": "string",
            "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}]
        }))
        .unwrap();
        assert!(f.rename_variant("a", "c"));
        assert!(!f.rename_variant("zzz", "d"));
        let keys: Vec<&str> = f.variants.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["c", "b"]);
    }
}
