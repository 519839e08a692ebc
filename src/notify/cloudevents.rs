//! The CloudEvents 1.0 format, in structured JSON mode (the whole event is
//! the body, `Content-Type: application/cloudevents+json`):
//!
//! | attribute | value |
//! |---|---|
//! | `specversion` | `1.0` |
//! | `id` | `<object uid>/<reason>`, the same for every delivery of one notification |
//! | `source` | `notifications.source` of the configuration (default `/foureyes`) |
//! | `type` | `dev.foureyes.` and the message type (`dev.foureyes.request.pending`) |
//! | `subject` | the object's path: `namespaces/<ns>/rolerequests/<name>` |
//! | `time` | when the operator announced it (RFC 3339) |
//! | `datacontenttype` | `application/json` |
//! | `data` | [`super::Message::data`] |

use serde_json::json;

use super::{Message, TYPE_PREFIX};

/// The media type of a structured-mode CloudEvent in JSON.
pub const CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// The event as JSON.
pub fn event(msg: &Message, source: &str) -> serde_json::Value {
    json!({
        "specversion": "1.0",
        "id": msg.id,
        "source": source,
        "type": format!("{TYPE_PREFIX}{}", msg.kind()),
        "subject": msg.object.path(),
        "time": msg.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "datacontenttype": "application/json",
        "data": msg.data(),
    })
}

/// The body: the event, serialised.
pub fn body(msg: &Message, source: &str) -> Vec<u8> {
    serde_json::to_vec(&event(msg, source)).expect("JSON values serialise")
}
