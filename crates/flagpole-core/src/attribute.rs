//! Attribute references in clauses and rollouts, resolved against a [`Context`].

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::context::Context;
use crate::index::bytes_eq;

/// Where a clause or rollout reads its value from. Parsed once at compile time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrRef {
    /// `key`: the context's targeting key.
    Key,
    /// A top-level attribute by name (shared: see [`Names`]).
    Top(Arc<str>),
    /// A JSON pointer (`/address/city`): the first token names a top-level attribute,
    /// the rest walk objects (and arrays by index).
    Pointer(Arc<str>, Box<[Box<str>]>),
}

/// The attribute names met while compiling one snapshot. Contexts have a handful of
/// attributes used by thousands of clauses, so each name is allocated once and shared;
/// an allocation per clause was a tenth of the time of compiling a snapshot.
#[derive(Debug, Default)]
pub(crate) struct Names(HashSet<Arc<str>, foldhash::fast::RandomState>);

impl Names {
    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = name.into();
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

/// A value read from a context, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttrValue<'c> {
    Str(&'c str),
    Json(&'c Value),
}

impl AttrRef {
    /// Parses an attribute reference; `Err` carries the reason it is invalid. Names are
    /// shared through `names`.
    pub(crate) fn parse(attribute: &str, names: &mut Names) -> Result<AttrRef, String> {
        if attribute.is_empty() {
            return Err("attribute is required".into());
        }
        if attribute == "key" {
            return Ok(AttrRef::Key);
        }
        let Some(pointer) = attribute.strip_prefix('/') else {
            return Ok(AttrRef::Top(names.intern(attribute)));
        };
        let mut tokens = pointer.split('/').map(unescape_token);
        let first = tokens.next().filter(|t| !t.is_empty());
        let Some(first) = first else {
            return Err("JSON pointer must name an attribute after `/`".into());
        };
        let first = names.intern(&first);
        let rest: Vec<Box<str>> = tokens.collect();
        if rest.is_empty() {
            Ok(AttrRef::Top(first))
        } else {
            Ok(AttrRef::Pointer(first, rest.into_boxed_slice()))
        }
    }

    /// Reads the value; `None` if absent or null. Inlined into the clause and rollout
    /// code, with JSON pointers (rare) out of line.
    #[inline(always)]
    pub(crate) fn lookup<'c>(&self, ctx: &'c Context) -> Option<AttrValue<'c>> {
        let value = match self {
            AttrRef::Key => {
                return (!ctx.key.is_empty()).then_some(AttrValue::Str(&ctx.key));
            }
            AttrRef::Top(name) => top_level(ctx, name)?,
            AttrRef::Pointer(first, rest) => walk(ctx, first, rest)?,
        };
        match value {
            Value::Null => None,
            Value::String(s) => Some(AttrValue::Str(s)),
            other => Some(AttrValue::Json(other)),
        }
    }
}

#[inline(never)]
fn walk<'c>(ctx: &'c Context, first: &str, rest: &[Box<str>]) -> Option<&'c Value> {
    let mut current = top_level(ctx, first)?;
    for token in rest.iter() {
        current = match current {
            Value::Object(map) => map.get(&**token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Contexts with at most this many attributes are scanned instead of hashed.
const SCAN_MAX: usize = 4;

/// A top-level attribute. A small map (the usual server-side context: a key and a few
/// attributes) is scanned, comparing lengths before bytes, which is cheaper than hashing
/// the name with the map's seeded hasher and probing; larger maps use the hash.
#[inline(always)]
fn top_level<'c>(ctx: &'c Context, name: &str) -> Option<&'c Value> {
    if ctx.attributes.len() <= SCAN_MAX {
        for (k, v) in &ctx.attributes {
            if bytes_eq(k.as_bytes(), name.as_bytes()) {
                return Some(v);
            }
        }
        None
    } else {
        hashed(ctx, name)
    }
}

#[inline(never)]
fn hashed<'c>(ctx: &'c Context, name: &str) -> Option<&'c Value> {
    ctx.attributes.get(name)
}

/// RFC 6901: `~1` is `/`, `~0` is `~`.
fn unescape_token(token: &str) -> Box<str> {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_reads_pointers() {
        let ctx = Context::new("u1")
            .with(
                "address",
                json!({"city": "Oslo", "a/b": 1, "tags": ["x", "y"]}),
            )
            .with("plan", "pro");
        let read = |a: &str| match AttrRef::parse(a, &mut Names::default())
            .unwrap()
            .lookup(&ctx)
        {
            Some(AttrValue::Str(s)) => Some(json!(s)),
            Some(AttrValue::Json(v)) => Some(v.clone()),
            None => None,
        };
        assert_eq!(read("key"), Some(json!("u1")));
        assert_eq!(read("plan"), Some(json!("pro")));
        assert_eq!(read("/plan"), Some(json!("pro")));
        assert_eq!(read("/address/city"), Some(json!("Oslo")));
        assert_eq!(read("/address/a~1b"), Some(json!(1)));
        assert_eq!(read("/address/tags/1"), Some(json!("y")));
        assert_eq!(read("/address/zip"), None);
        assert_eq!(read("/plan/x"), None);
        let mut names = Names::default();
        assert!(AttrRef::parse("", &mut names).is_err());
        assert!(AttrRef::parse("/", &mut names).is_err());
        // Names are shared, not copied per reference.
        let (Ok(AttrRef::Top(a)), Ok(AttrRef::Top(b))) = (
            AttrRef::parse("plan", &mut names),
            AttrRef::parse("/plan", &mut names),
        ) else {
            panic!("top-level references expected");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }
}
