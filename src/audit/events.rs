//! Publishing events. Their reasons are defined once, with the transitions
//! they report, in [`crate::policy::transition::reason`].

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

/// The operator's event publisher, one per process and shared by every
/// reconciler.
///
/// Warning events go through one shared kube [`Recorder`], so that a warning
/// repeated on the same object becomes one event with a growing series
/// instead of a new event each time. That recorder keeps every event it
/// published for six minutes to count such repeats. Normal events mark
/// transitions: each is published once, and its reference carries the
/// object's `resourceVersion`, which differs at every transition, so a
/// repeat could never be counted. Keeping them would cost a few kilobytes per
/// grant (37 MB while 10,000 grants start), so each Normal event is
/// published by a recorder that lives only for that call.
#[derive(Clone)]
pub struct Events {
    warnings: Recorder,
    client: Client,
    reporter: Reporter,
}

impl Events {
    /// A publisher writing as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            warnings: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
        }
    }

    /// Publishes an event; a failure is logged and otherwise ignored (events
    /// are the live view, not the record).
    pub async fn publish(&self, reference: &ObjectReference, warning: bool, reason: &str, action: &str, note: String) {
        self.publish_related(reference, None, warning, reason, action, note)
            .await;
    }

    /// Publishes an event about `reference` that names a second object
    /// (the event's `related`): the binding an approval created.
    pub async fn publish_related(
        &self,
        reference: &ObjectReference,
        related: Option<ObjectReference>,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_owned(),
            note: Some(note.chars().take(1024).collect()),
            action: action.to_owned(),
            secondary: related,
        };
        let published = if warning {
            self.warnings.publish(&event, reference).await
        } else {
            Recorder::new(self.client.clone(), self.reporter.clone())
                .publish(&event, reference)
                .await
        };
        if let Err(err) = published {
            warn!(%err, reason, "could not publish event");
        }
    }
}
