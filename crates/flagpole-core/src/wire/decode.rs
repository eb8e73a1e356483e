//! Decoding [`ServerMessage`] in one pass.
//!
//! serde's derived decoder for an internally tagged enum cannot know the variant until it
//! has seen `type`, so it first buffers the whole message into an intermediate tree and
//! then decodes that a second time. For a snapshot or patch that was about 85% of an SDK's
//! work per message (measured with callgrind in `cargo xtask load-push --callgrind-fleet`),
//! multiplied by every connected SDK on every change. Flagpole servers always write `type`
//! first (serde's tagged serialisation does), so the decoder reads it and decodes the rest
//! of the object straight into the variant. A message from elsewhere with `type` later
//! still decodes, through a `serde_json::Value`.

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{Patch, ServerMessage};
use crate::model::EnvironmentSnapshot;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tag {
    Snapshot,
    Patch,
    Ping,
    Pong,
    Goodbye,
    TelemetryAck,
    TelemetryNack,
    Error,
}

#[derive(Deserialize)]
struct SnapshotBody {
    environment: EnvironmentSnapshot,
}

#[derive(Deserialize)]
struct GoodbyeBody {
    reason: String,
    reconnect_after_ms: u64,
}

#[derive(Deserialize)]
struct AckBody {
    id: String,
}

#[derive(Deserialize)]
struct NackBody {
    id: String,
    code: String,
    message: String,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// Decodes the fields after `type` (from `body`) as variant `tag`.
fn variant<'de, D: Deserializer<'de>>(tag: Tag, body: D) -> Result<ServerMessage, D::Error> {
    Ok(match tag {
        Tag::Snapshot => ServerMessage::Snapshot {
            environment: SnapshotBody::deserialize(body)?.environment,
        },
        Tag::Patch => ServerMessage::Patch(Patch::deserialize(body)?),
        Tag::Ping => {
            IgnoredAny::deserialize(body)?;
            ServerMessage::Ping
        }
        Tag::Pong => {
            IgnoredAny::deserialize(body)?;
            ServerMessage::Pong
        }
        Tag::Goodbye => {
            let b = GoodbyeBody::deserialize(body)?;
            ServerMessage::Goodbye {
                reason: b.reason,
                reconnect_after_ms: b.reconnect_after_ms,
            }
        }
        Tag::TelemetryAck => ServerMessage::TelemetryAck {
            id: AckBody::deserialize(body)?.id,
        },
        Tag::TelemetryNack => {
            let b = NackBody::deserialize(body)?;
            ServerMessage::TelemetryNack {
                id: b.id,
                code: b.code,
                message: b.message,
                retry_after_ms: b.retry_after_ms,
            }
        }
        Tag::Error => {
            let b = ErrorBody::deserialize(body)?;
            ServerMessage::Error {
                code: b.code,
                message: b.message,
            }
        }
    })
}

impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = ServerMessage;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a server message: an object with a `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServerMessage, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(de::Error::missing_field("type"));
        };
        if first == "type" {
            let tag: Tag = map.next_value()?;
            return variant(tag, MapAccessDeserializer::new(map));
        }
        // `type` is not first: gather the object, then decode it by its tag.
        let mut object = serde_json::Map::new();
        object.insert(first, map.next_value()?);
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            object.insert(key, value);
        }
        let tag = object
            .remove("type")
            .ok_or_else(|| de::Error::missing_field("type"))?;
        let tag: Tag = serde_json::from_value(tag).map_err(de::Error::custom)?;
        variant(tag, serde_json::Value::Object(object)).map_err(de::Error::custom)
    }
}
