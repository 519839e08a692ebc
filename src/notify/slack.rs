//! The Slack-compatible incoming-webhook format: `text` (the fallback that
//! every compatible receiver shows, Mattermost and Rocket.Chat included)
//! and `blocks` (what Slack shows): the summary, who is asked to act, and a
//! context line with the workspace, the object and the type.

use serde_json::json;

use super::{Message, TYPE_PREFIX};

/// The media type of the body.
pub const CONTENT_TYPE: &str = "application/json";

/// Escapes the three characters Slack's markup reserves.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The message as JSON.
pub fn message(msg: &Message) -> serde_json::Value {
    let n = &msg.notice;
    let icon = if n.event.warning { ":warning: " } else { "" };
    let mut text = format!("{icon}*{}*: {}", n.event.reason, escape(&n.event.note));
    if super::waits_for_approvers(msg.kind()) {
        text.push_str(&match msg.approvers.as_slice() {
            [] => "\nNo manager can approve it: only a partner can.".to_owned(),
            names => format!("\nCan approve: {}", escape(&names.join(", "))),
        });
    }
    let context = format!(
        "{}{} `{}` · {TYPE_PREFIX}{}",
        msg.workspace
            .as_ref()
            .map(|w| format!("workspace {} · ", escape(w)))
            .unwrap_or_default(),
        escape(&msg.object.kind),
        escape(&msg.object.path()),
        msg.kind(),
    );
    json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] },
        ],
    })
}

/// The body: the message, serialised.
pub fn body(msg: &Message) -> Vec<u8> {
    serde_json::to_vec(&message(msg)).expect("JSON values serialise")
}
