//! A small structural JSON diff for flag history: the list of leaf changes between two
//! documents, each with the path a person would use to find it (`flag.variants[1].value`,
//! `environments.production.rules[0].serve`).

use serde::Serialize;
use serde_json::Value;

/// One difference between two documents.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct Change {
    /// Where: object members joined with `.`, array elements as `[i]`; empty for the root.
    pub path: String,
    /// The value before; `null` when the member or element was added.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The value after; `null` when the member or element was removed.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// Differences from `before` to `after`, in document order (object members sorted by name).
///
/// Objects are compared member by member and arrays element by element (by index: rules
/// and variants are ordered, so a move is reported as the changes it makes). Anything else
/// that differs, including a change of type, is one change at that path.
pub(crate) fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(String::new(), before, after, &mut changes);
    changes
}

fn member(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(path: String, before: &Value, after: &Value, out: &mut Vec<Change>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                let p = member(&path, name);
                match (a.get(name), b.get(name)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (x, y) => out.push(Change {
                        path: p,
                        before: x.cloned(),
                        after: y.cloned(),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (x, y) => out.push(Change {
                        path: p,
                        before: x.cloned(),
                        after: y.cloned(),
                    }),
                }
            }
        }
        _ => out.push(Change {
            path,
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_leaf_changes_additions_and_removals() {
        let a = json!({"flag": {"variants": [{"key": "on", "value": true}]}, "archived": false,
                       "environments": {"dev": {"enabled": false}}});
        let b = json!({"flag": {"variants": [{"key": "on", "value": false}, {"key": "x", "value": 1}]},
                       "archived": false, "environments": {"prod": {"enabled": true}}});
        let changes = diff(&a, &b);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "environments.dev",
                "environments.prod",
                "flag.variants[0].value",
                "flag.variants[1]"
            ]
        );
        assert_eq!(changes[2].before, Some(json!(true)));
        assert_eq!(changes[2].after, Some(json!(false)));
        assert_eq!(changes[3].before, None);
        assert_eq!(changes[0].after, None);
    }

    #[test]
    fn equal_documents_have_no_changes_and_type_changes_are_one_change() {
        assert!(diff(&json!({"a": [1, 2]}), &json!({"a": [1, 2]})).is_empty());
        let changes = diff(&json!({"a": [1]}), &json!({"a": "x"}));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "a");
    }
}
