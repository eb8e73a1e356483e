//! Which alerts a mapping acts on: the alert's name and label matchers with Alertmanager's
//! four operators (`=`, `!=`, `=~`, `!~`) and its semantics: a regex must match the whole
//! value, and a label the alert does not have counts as the empty string (so
//! `env!="staging"` holds for an alert without `env`). Written as structured objects
//! rather than Alertmanager's `label="value"` strings so that a mistake is reported
//! against one field; shown in that familiar form.
//!
//! A mapping is checked and compiled into a [`Rule`] once per write and once per
//! notification: regexes are built then, never per alert.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::Invalid;
use super::payload::FiringAlert;

/// Most matchers on one mapping.
pub(crate) const MAX_MATCHERS: usize = 20;
/// Longest alert name or matcher value.
const MAX_VALUE_LEN: usize = 1000;
/// Bound on a compiled regex, so a mapping cannot make matching expensive.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One label matcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = LabelMatcher)]
#[serde(deny_unknown_fields)]
pub(crate) struct Matcher {
    /// A label name (`[a-zA-Z_][a-zA-Z0-9_]*`, as Prometheus allows).
    pub(crate) label: String,
    /// How the value is compared.
    pub(crate) op: MatchOp,
    /// The value, or for `=~` and `!~` a regular expression that must match the whole
    /// label value.
    pub(crate) value: String,
}

/// Alertmanager's matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = LabelMatchOp)]
pub(crate) enum MatchOp {
    /// Equal.
    #[serde(rename = "=")]
    Equal,
    /// Not equal.
    #[serde(rename = "!=")]
    NotEqual,
    /// The regex matches the whole value.
    #[serde(rename = "=~")]
    Regex,
    /// The regex does not match the whole value.
    #[serde(rename = "!~")]
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// `service="checkout"`, as Alertmanager writes matchers.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.label, self.op.as_str(), self.value)
    }
}

/// A mapping's selection, checked and compiled.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    alert: String,
    tests: Vec<(String, Test)>,
}

#[derive(Debug, Clone)]
enum Test {
    Equal(String),
    NotEqual(String),
    Regex(Regex),
    NotRegex(Regex),
}

impl Rule {
    /// Checks an alert name and its matchers, reporting every problem with its field
    /// (`alert`, `matchers[1].value`).
    pub(crate) fn compile(alert: &str, matchers: &[Matcher]) -> Result<Rule, Vec<Invalid>> {
        let mut problems = Vec::new();
        if alert.trim().is_empty() || alert.chars().count() > MAX_VALUE_LEN {
            problems.push(Invalid::new(
                "alert",
                format!(
                    "the alert's name (its `alertname` label), 1 to {MAX_VALUE_LEN} characters"
                ),
            ));
        }
        if matchers.len() > MAX_MATCHERS {
            problems.push(Invalid::new(
                "matchers",
                format!("at most {MAX_MATCHERS} matchers"),
            ));
        }
        let mut tests = Vec::with_capacity(matchers.len());
        for (i, m) in matchers.iter().enumerate() {
            if !is_label_name(&m.label) {
                problems.push(Invalid::new(
                    format!("matchers[{i}].label"),
                    "a label name: letters, digits and `_`, not starting with a digit",
                ));
            }
            if m.value.chars().count() > MAX_VALUE_LEN {
                problems.push(Invalid::new(
                    format!("matchers[{i}].value"),
                    format!("must be at most {MAX_VALUE_LEN} characters"),
                ));
                continue;
            }
            let test = match m.op {
                MatchOp::Equal => Test::Equal(m.value.clone()),
                MatchOp::NotEqual => Test::NotEqual(m.value.clone()),
                MatchOp::Regex | MatchOp::NotRegex => match anchored(&m.value) {
                    Ok(re) if m.op == MatchOp::Regex => Test::Regex(re),
                    Ok(re) => Test::NotRegex(re),
                    Err(err) => {
                        problems.push(Invalid::new(
                            format!("matchers[{i}].value"),
                            format!("not a valid regular expression: {err}"),
                        ));
                        continue;
                    }
                },
            };
            tests.push((m.label.clone(), test));
        }
        if problems.is_empty() {
            Ok(Rule {
                alert: alert.to_owned(),
                tests,
            })
        } else {
            Err(problems)
        }
    }

    /// True if the alert has this rule's name and every matcher holds for its labels.
    pub(crate) fn matches(&self, alert: &FiringAlert) -> bool {
        alert.name == self.alert && self.labels_match(&alert.labels)
    }

    fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.tests.iter().all(|(label, test)| {
            let value = labels.get(label).map_or("", String::as_str);
            match test {
                Test::Equal(v) => value == v,
                Test::NotEqual(v) => value != v,
                Test::Regex(re) => re.is_match(value),
                Test::NotRegex(re) => !re.is_match(value),
            }
        })
    }
}

/// The regex anchored at both ends, as Alertmanager (and Prometheus) anchor matchers.
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(label: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher {
            label: label.into(),
            op,
            value: value.into(),
        }
    }

    fn alert(name: &str, labels: &[(&str, &str)]) -> FiringAlert {
        let mut labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.insert("alertname".into(), name.into());
        FiringAlert {
            name: name.into(),
            labels,
            fingerprint: "f".into(),
            starts_at: 0,
            starts_at_text: String::new(),
        }
    }

    #[test]
    fn operators_follow_alertmanager() {
        use MatchOp::*;
        let a = alert("Errors", &[("service", "checkout"), ("severity", "page")]);
        let cases = [
            (vec![], true),
            (vec![m("service", Equal, "checkout")], true),
            (vec![m("service", Equal, "check")], false),
            (vec![m("service", NotEqual, "cart")], true),
            (vec![m("service", Regex, "check.*")], true),
            // Anchored: a regex must match the whole value.
            (vec![m("service", Regex, "check")], false),
            (vec![m("service", NotRegex, "cart|search")], true),
            (
                vec![
                    m("severity", Regex, "page|critical"),
                    m("service", Equal, "checkout"),
                ],
                true,
            ),
            (
                vec![
                    m("severity", Regex, "page|critical"),
                    m("service", Equal, "cart"),
                ],
                false,
            ),
            // A missing label is the empty string.
            (vec![m("env", NotEqual, "staging")], true),
            (vec![m("env", Equal, "")], true),
            (vec![m("env", Regex, ".+")], false),
        ];
        for (matchers, expected) in cases {
            let rule = Rule::compile("Errors", &matchers).unwrap();
            assert_eq!(rule.matches(&a), expected, "{matchers:?}");
        }
        let rule = Rule::compile("Latency", &[]).unwrap();
        assert!(!rule.matches(&a), "another alert name");
    }

    #[test]
    fn problems_name_their_field() {
        let matchers = [
            m("9lives", MatchOp::Equal, "x"),
            m("ok", MatchOp::Regex, "(unclosed"),
            m("ok", MatchOp::Equal, &"x".repeat(MAX_VALUE_LEN + 1)),
        ];
        let problems = Rule::compile(" ", &matchers).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "alert",
                "matchers[0].label",
                "matchers[1].value",
                "matchers[2].value"
            ]
        );
        let many = vec![m("a", MatchOp::Equal, "b"); MAX_MATCHERS + 1];
        let problems = Rule::compile("A", &many).unwrap_err();
        assert_eq!(problems[0].field, "matchers");
    }

    #[test]
    fn shown_as_alertmanager_writes_them() {
        assert_eq!(
            m("service", MatchOp::NotRegex, "a|b").to_string(),
            r#"service!~"a|b""#
        );
    }
}
