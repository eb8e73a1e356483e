//! The SDK stream protocol's messages (docs/protocol.md), shared by server and SDKs.
//!
//! Pure data plus [`EnvironmentSnapshot::apply`], so the rules for moving from one version
//! to the next live in one place and are tested without a socket.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Snapshot;
use crate::model::{EnvironmentSnapshot, FlagState, Segment};

mod decode;
pub mod latency;
mod telemetry;

pub use telemetry::{
    BatchError, EvalCount, Exposure, MAX_AGE_MS, MAX_BATCH_BYTES, MAX_BATCH_ITEMS,
    MAX_EVENT_PROPERTIES, MAX_NAME_LEN, MAX_SKEW_MS, OutcomeCount, OutcomeKind, TelemetryBatch,
    TrackedEvent,
};

/// Response header on the stream's upgrade (value `v1`) from a server that accepts
/// [`ClientMessage::Telemetry`] frames. An SDK that does not see it sends its batches to
/// `POST /sdk/v1/events` instead: an older server closes the stream on a message type it
/// does not know.
pub const TELEMETRY_HEADER: &str = "flagpole-telemetry";

/// Largest frame a client may send, in bytes: a telemetry batch of [`MAX_BATCH_BYTES`]
/// plus its envelope (`{"type":"telemetry","batch":...}`). Other client messages are tiny;
/// anything larger is an attack or a bug and closes the connection with code 1009.
pub const MAX_CLIENT_FRAME: usize = MAX_BATCH_BYTES + TELEMETRY_ENVELOPE;

/// Room for a telemetry frame's envelope around its batch.
const TELEMETRY_ENVELOPE: usize = 1024;

/// WebSocket close codes used by the protocol.
pub mod close_code {
    /// Server shutting down or restarting: reconnect (after the goodbye's hint).
    pub const GOING_AWAY: u16 = 1001;
    /// A frame that is not a valid protocol message.
    pub const UNSUPPORTED: u16 = 1003;
    /// Authentication failed or the key was revoked.
    pub const POLICY: u16 = 1008;
    /// A frame over [`super::MAX_CLIENT_FRAME`].
    pub const TOO_BIG: u16 = 1009;
    /// The peer stopped answering heartbeats.
    pub const TIMEOUT: u16 = 4000;
    /// The client fell too far behind to be caught up by patches; reconnect.
    pub const TOO_SLOW: u16 = 4001;
}

/// Messages from the SDK to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message after connecting.
    Hello {
        /// SDK name and version, for logs and metrics (`flagpole-rust/0.1.0`).
        #[serde(default)]
        sdk: String,
        /// Environment version the client already holds (from memory or its disk cache).
        #[serde(default)]
        version: Option<u64>,
    },
    /// The client saw a gap (a patch whose `from` is not its version): send a snapshot or
    /// the patches since `version`.
    Resync {
        /// The version the client holds.
        #[serde(default)]
        version: Option<u64>,
    },
    /// Heartbeat; the server answers with [`ServerMessage::Pong`].
    Ping,
    /// Answer to a server [`ServerMessage::Ping`].
    Pong,
    /// Evaluation counts, exposures and tracked events, sent only to a server that
    /// announced [`TELEMETRY_HEADER`]. Answered by [`ServerMessage::TelemetryAck`] or
    /// [`ServerMessage::TelemetryNack`] with the batch's id.
    Telemetry {
        /// The batch.
        batch: TelemetryBatch,
    },
}

/// Messages from the server to the SDK. Encoded with `type` first; decoded in one pass
/// (`wire/decode.rs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The whole environment at `environment.version`. Replaces what the client holds.
    Snapshot {
        /// Flags and segments.
        environment: EnvironmentSnapshot,
    },
    /// The changes from version `from` to `to`. Apply only if holding exactly `from`;
    /// otherwise send [`ClientMessage::Resync`].
    Patch(Patch),
    /// Heartbeat; answer with [`ClientMessage::Pong`].
    Ping,
    /// Answer to a client ping.
    Pong,
    /// The server is going away (graceful shutdown); reconnect after the hint, through the
    /// load balancer, to any replica.
    Goodbye {
        /// Why (`shutdown`).
        reason: String,
        /// Suggested delay before reconnecting; add jitter.
        reconnect_after_ms: u64,
    },
    /// A telemetry batch is stored (committed, or a redelivery of one that was).
    TelemetryAck {
        /// The batch's id.
        id: String,
    },
    /// A telemetry batch was not stored. With `retry_after_ms` the server is busy (keep
    /// the batch, merge into it and retry after the hint); without, the batch is invalid
    /// (`message` names the field) and retrying it cannot help.
    TelemetryNack {
        /// The batch's id.
        id: String,
        /// `busy`, `too_large` or `invalid_batch`.
        code: String,
        /// For people.
        message: String,
        /// When to retry, for `busy`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// A protocol error, sent just before the server closes the connection.
    Error {
        /// Machine-readable (`unauthorized`, `malformed_message`, `frame_too_large`).
        code: String,
        /// For people.
        message: String,
    },
}

/// Changes between two versions of one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// Version the patch applies to.
    pub from: u64,
    /// Version after applying.
    pub to: u64,
    /// Flags added or changed (whole flag state).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<FlagState>,
    /// Keys of flags removed (archived).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_flags: Vec<String>,
    /// Segments added or changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    /// Keys of segments removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_segments: Vec<String>,
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch starts at another version than the one held: resync.
    #[error("patch from version {from} does not apply to version {held}")]
    Gap {
        /// The version held.
        held: u64,
        /// The patch's starting version.
        from: u64,
    },
    /// The patch would move backwards or stand still.
    #[error("patch to version {to} is not after {from}")]
    NotForward {
        /// Start.
        from: u64,
        /// End.
        to: u64,
    },
}

impl EnvironmentSnapshot {
    /// Applies a patch in place. Fails, changing nothing, unless the snapshot is exactly at
    /// `patch.from` and the patch moves forward: versions never go backwards and never skip.
    pub fn apply(&mut self, patch: &Patch) -> Result<(), PatchError> {
        *self = self.applied(patch.clone())?;
        Ok(())
    }

    /// The environment after `patch`, under the same rules as [`EnvironmentSnapshot::apply`].
    /// Takes the patch by value: changed flags and segments move in, and the unchanged ones
    /// are shared with `self` (an SDK holds its environment behind an `Arc` and builds the
    /// next one beside it).
    pub fn applied(&self, patch: Patch) -> Result<EnvironmentSnapshot, PatchError> {
        self.applied_with(patch, None)
    }

    /// [`EnvironmentSnapshot::applied`], finding the flags the patch replaces or removes
    /// through `compiled`'s key index instead of comparing the patch's keys with every
    /// flag's, when `compiled` was compiled from this environment without errors (so its
    /// keys are unique); otherwise exactly `applied`. What an SDK does: reading the key of
    /// each of 100 flags to replace one was the largest cost of applying a patch in a
    /// process holding many environments, where every flag is a cache miss.
    pub fn applied_indexed(
        &self,
        patch: Patch,
        compiled: &Snapshot,
    ) -> Result<EnvironmentSnapshot, PatchError> {
        let usable = compiled.version == self.version
            && compiled.flags.len() == self.flags.len()
            && compiled.errors.is_empty();
        self.applied_with(patch, usable.then_some(compiled))
    }

    fn applied_with(
        &self,
        patch: Patch,
        compiled: Option<&Snapshot>,
    ) -> Result<EnvironmentSnapshot, PatchError> {
        if patch.to <= patch.from {
            return Err(PatchError::NotForward {
                from: patch.from,
                to: patch.to,
            });
        }
        if self.version != patch.from {
            return Err(PatchError::Gap {
                held: self.version,
                from: patch.from,
            });
        }
        let changed_flags = patch.flags.into_iter().map(Arc::new).collect();
        let flags = match compiled {
            Some(compiled) => merged_at(
                &self.flags,
                changed_flags,
                &patch.removed_flags,
                |f| &f.flag.key,
                |key| compiled.index.get(key),
            ),
            None => merged(&self.flags, changed_flags, &patch.removed_flags, |f| {
                &f.flag.key
            }),
        };
        Ok(EnvironmentSnapshot {
            version: patch.to,
            flags,
            segments: merged(
                &self.segments,
                patch.segments.into_iter().map(Arc::new).collect(),
                &patch.removed_segments,
                |s| &s.key,
            ),
        })
    }
}

/// `items` with changed ones replaced in place, new ones appended (in patch order) and
/// removed ones dropped.
fn merged<T: Clone>(
    items: &[T],
    changed: Vec<T>,
    removed: &[String],
    key: impl Fn(&T) -> &String,
) -> Vec<T> {
    let mut changed: Vec<Option<T>> = changed.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(items.len() + changed.len());
    for item in items {
        let k = key(item);
        if removed.iter().any(|r| r == k) {
            continue;
        }
        let replacement = changed
            .iter_mut()
            .find(|c| c.as_ref().is_some_and(|c| key(c) == k))
            .and_then(Option::take);
        out.push(replacement.unwrap_or_else(|| item.clone()));
    }
    out.extend(changed.into_iter().flatten());
    out
}

/// [`merged`] for items with unique keys, found by `position` (in `items`) rather than by
/// reading every item's key; the result is the same.
fn merged_at<T: Clone>(
    items: &[T],
    changed: Vec<T>,
    removed: &[String],
    key: impl Fn(&T) -> &String,
    position: impl Fn(&str) -> Option<usize>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len() + changed.len());
    out.extend_from_slice(items);
    let gone: Vec<usize> = removed.iter().filter_map(|r| position(r)).collect();
    let mut replaced = Vec::new();
    for c in changed {
        // As in `merged`: a removed item is not replaced (its new version is appended),
        // and an item is replaced once (a second version of it is appended).
        match position(key(&c)) {
            Some(p) if !gone.contains(&p) && !replaced.contains(&p) => {
                out[p] = c;
                replaced.push(p);
            }
            _ => out.push(c),
        }
    }
    if !gone.is_empty() {
        let mut p = 0;
        out.retain(|_| {
            p += 1;
            !gone.contains(&(p - 1))
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(key: &str, enabled: bool) -> FlagState {
        serde_json::from_value(json!({
            "flag": {"key": key, "kind": "boolean", "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}]},
            "config": {"enabled": enabled, "off_variant": "off", "default_serve": {"variant": "on"}}
        }))
        .unwrap()
    }

    /// `applied_indexed` finds flags through the compiled snapshot's index: every mix of
    /// replaced, added, removed, removed-and-re-added and repeated flags must come out as
    /// `applied`'s key comparisons do.
    #[test]
    fn applying_through_the_index_equals_comparing_keys() {
        let env = EnvironmentSnapshot {
            version: 1,
            flags: ["a", "b", "c", "d"]
                .iter()
                .map(|k| flag(k, true).into())
                .collect(),
            segments: Vec::new(),
        };
        let compiled = crate::Snapshot::compile(&env);
        let changes: &[&[&str]] = &[
            &[],
            &["b"],
            &["e"],
            &["b", "e", "a"],
            &["c", "c"],
            &["x", "b"],
        ];
        let removals: &[&[&str]] = &[&[], &["a"], &["c", "x"], &["b", "d"]];
        let mut checked = 0;
        for changed in changes {
            for removed in removals {
                let patch = Patch {
                    from: 1,
                    to: 2,
                    flags: changed.iter().map(|k| flag(k, false)).collect(),
                    removed_flags: removed.iter().map(|k| (*k).to_owned()).collect(),
                    ..Patch::default()
                };
                let by_keys = env.applied(patch.clone()).unwrap();
                let by_index = env.applied_indexed(patch, &compiled).unwrap();
                assert_eq!(
                    by_index, by_keys,
                    "changed {changed:?}, removed {removed:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, changes.len() * removals.len());
        // A snapshot of another version is not used (and the result is still right).
        let stale = crate::Snapshot::empty();
        let patch = Patch {
            from: 1,
            to: 2,
            flags: vec![flag("b", false)],
            ..Patch::default()
        };
        assert_eq!(
            env.applied_indexed(patch.clone(), &stale).unwrap(),
            env.applied(patch).unwrap()
        );
    }

    #[test]
    fn applies_forward_patches_and_refuses_gaps() {
        let mut env = EnvironmentSnapshot {
            version: 3,
            flags: vec![flag("a", true).into(), flag("b", true).into()],
            segments: vec![],
        };
        let patch = Patch {
            from: 3,
            to: 5,
            flags: vec![flag("a", false), flag("c", true)],
            removed_flags: vec!["b".into()],
            ..Patch::default()
        };
        env.apply(&patch).unwrap();
        assert_eq!(env.version, 5);
        let keys: Vec<_> = env
            .flags
            .iter()
            .map(|f| (f.flag.key.as_str(), f.config.enabled))
            .collect();
        assert_eq!(keys, [("a", false), ("c", true)]);

        let before = env.clone();
        assert_eq!(env.apply(&patch), Err(PatchError::Gap { held: 5, from: 3 }));
        let backwards = Patch {
            from: 5,
            to: 5,
            ..Patch::default()
        };
        assert_eq!(
            env.apply(&backwards),
            Err(PatchError::NotForward { from: 5, to: 5 })
        );
        assert_eq!(env, before, "failed patches change nothing");
    }

    #[test]
    fn messages_round_trip_with_type_tags() {
        let hello: ClientMessage = serde_json::from_str(r#"{"type":"hello","version":7}"#).unwrap();
        assert_eq!(
            hello,
            ClientMessage::Hello {
                sdk: String::new(),
                version: Some(7)
            }
        );
        let patch = ServerMessage::Patch(Patch {
            from: 1,
            to: 2,
            ..Patch::default()
        });
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({"type": "patch", "from": 1, "to": 2})
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"launch_missiles"}"#).is_err());
    }

    #[test]
    fn server_messages_round_trip_whatever_the_member_order() {
        let messages = [
            ServerMessage::Snapshot {
                environment: EnvironmentSnapshot {
                    version: 7,
                    flags: vec![flag("a", true).into()],
                    segments: vec![],
                },
            },
            ServerMessage::Patch(Patch {
                from: 7,
                to: 9,
                flags: vec![flag("b", false)],
                removed_flags: vec!["a".into()],
                ..Patch::default()
            }),
            ServerMessage::Ping,
            ServerMessage::Pong,
            ServerMessage::Goodbye {
                reason: "shutdown".into(),
                reconnect_after_ms: 1000,
            },
            ServerMessage::Error {
                code: "malformed_message".into(),
                message: "no".into(),
            },
        ];
        for message in messages {
            let text = serde_json::to_string(&message).unwrap();
            assert!(text.starts_with(r#"{"type":"#), "{text}");
            assert_eq!(
                serde_json::from_str::<ServerMessage>(&text).unwrap(),
                message
            );
            // The same object with `type` last (another encoder) decodes the same.
            let serde_json::Value::Object(mut object) = serde_json::to_value(&message).unwrap()
            else {
                panic!("an object")
            };
            let tag = object.remove("type").unwrap();
            object.insert("type".into(), tag);
            let text = serde_json::to_string(&object).unwrap();
            assert_eq!(
                serde_json::from_str::<ServerMessage>(&text).unwrap(),
                message
            );
        }
    }

    #[test]
    fn server_messages_without_a_known_type_are_errors() {
        for text in [
            r#"{}"#,
            r#"{"type":"launch"}"#,
            r#"{"from":1,"to":2}"#,
            r#"{"type":"patch","from":"x","to":2}"#,
            r#"{"type":"goodbye"}"#,
            r#"[1,2]"#,
        ] {
            assert!(
                serde_json::from_str::<ServerMessage>(text).is_err(),
                "{text} decoded"
            );
        }
        // Unknown members are ignored, as before.
        assert_eq!(
            serde_json::from_str::<ServerMessage>(r#"{"type":"ping","extra":1}"#).unwrap(),
            ServerMessage::Ping
        );
    }
}
