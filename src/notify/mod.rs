//! Notifications: the operator tells webhooks of what needs someone's
//! attention (a request waiting for approval, one only a partner can
//! approve, break-glass, a grant about to expire, a lockout), in one of two
//! formats: a CloudEvents 1.0 event ([`cloudevents`]) or a Slack-compatible
//! incoming-webhook message ([`slack`]). `docs/notifications.md` documents
//! the configuration, the types and the signature.
//!
//! What is sent comes from the one list of transitions that events and the
//! history come from: [`crate::audit::transitions::notices`] decides which
//! transitions notify and what they say (their event's reason and note);
//! this module only shapes and delivers them.
//!
//! Delivery never slows a reconcile: [`Notifier::notify`] puts each message
//! on a bounded queue per sink without waiting ([`sender`]), and a task per
//! sink drains it, with a timeout per attempt, bounded attempts and
//! exponential backoff. A message that finds its sink's queue full is
//! dropped, counted (`foureyes_notifications_dropped_total`) and logged.
//! Only the leader sends: the notifier is started with the controllers.
//!
//! Delivery is at least once: a message retried after a lost answer, or
//! announced again after a failover, carries the same CloudEvents `id`
//! (`<object uid>/<reason>`), for receivers to drop repeats.

pub mod cloudevents;
pub mod sender;
pub mod slack;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::{Value, json};

use crate::audit::transitions::{NoticeSpec, notices};
use crate::config::Notifications;
use crate::policy::transition::Transition;
use crate::telemetry::Metrics;

/// The prefix of every CloudEvents `type`.
pub const TYPE_PREFIX: &str = "dev.foureyes.";

/// One notification, whatever the format: what one transition of one object
/// tells.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// `<object uid>/<reason>`: the same for every delivery of it.
    pub id: String,
    /// When it was announced.
    pub time: DateTime<Utc>,
    /// The object the transition happened to.
    pub object: Object,
    /// The workspace it belongs to (none for a lockout).
    pub workspace: Option<String>,
    /// What happened.
    pub notice: NoticeSpec,
    /// For a request: the managers whose approval would count and has not
    /// yet (who the request waits for).
    pub approvers: Vec<String>,
}

/// An object as a message names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its API version (`foureyes.dev/v1alpha1`).
    pub api_version: String,
    /// Its kind (`RoleRequest`).
    pub kind: String,
    /// Its namespace, if namespaced.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

impl Object {
    /// From an event's object reference.
    pub fn of(reference: &ObjectReference) -> Self {
        Self {
            api_version: reference.api_version.clone().unwrap_or_default(),
            kind: reference.kind.clone().unwrap_or_default(),
            namespace: reference.namespace.clone(),
            name: reference.name.clone().unwrap_or_default(),
            uid: reference.uid.clone().unwrap_or_default(),
        }
    }

    /// Its path under the API group, the CloudEvents `subject`:
    /// `namespaces/ws-a/rolerequests/dave-admin`, `lockouts/dave`.
    pub fn path(&self) -> String {
        let plural = format!("{}s", self.kind.to_lowercase());
        match &self.namespace {
            Some(ns) => format!("namespaces/{ns}/{plural}/{}", self.name),
            None => format!("{plural}/{}", self.name),
        }
    }
}

impl Message {
    /// The message of a notice about `object`.
    pub fn new(
        notice: NoticeSpec,
        object: Object,
        workspace: Option<String>,
        approvers: &[String],
        time: DateTime<Utc>,
    ) -> Self {
        Self {
            id: format!("{}/{}", object.uid, notice.event.reason),
            time,
            object,
            workspace,
            approvers: if waits_for_approvers(notice.kind) {
                approvers.to_vec()
            } else {
                vec![]
            },
            notice,
        }
    }

    /// The type after [`TYPE_PREFIX`] (`request.pending`).
    pub fn kind(&self) -> &'static str {
        self.notice.kind
    }

    /// The payload both formats carry: what happened, to what, by whom, and
    /// who is asked to act.
    pub fn data(&self) -> Value {
        let n = &self.notice;
        let mut data = json!({
            "reason": n.event.reason,
            "warning": n.event.warning,
            "summary": n.event.note,
            "actor": n.actor,
            "object": {
                "apiVersion": self.object.api_version,
                "kind": self.object.kind,
                "namespace": self.object.namespace,
                "name": self.object.name,
                "uid": self.object.uid,
            },
        });
        let map = data.as_object_mut().expect("an object");
        if let Some(ws) = &self.workspace {
            map.insert("workspace".into(), ws.clone().into());
        }
        if !n.subject.is_empty() {
            map.insert("subject".into(), n.subject.clone().into());
        }
        if !n.role.is_empty() {
            map.insert("role".into(), n.role.clone().into());
        }
        if waits_for_approvers(n.kind) {
            map.insert("approvers".into(), self.approvers.clone().into());
        }
        for (k, v) in &n.details {
            map.insert(k.clone(), v.clone());
        }
        data
    }
}

/// Whether messages of this type name who can approve (`data.approvers`).
pub fn waits_for_approvers(kind: &str) -> bool {
    matches!(kind, "request.pending" | "request.quorumunreachable")
}

/// Queues notifications for every configured sink; cheap to clone. Without
/// sinks it does nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    queues: Arc<Vec<sender::Queue>>,
    metrics: Option<Arc<Metrics>>,
}

impl Notifier {
    /// A notifier without sinks.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Starts a delivery task per configured sink, reading the sinks'
    /// Secrets in `namespace` (the operator's own).
    pub fn start(
        config: &Notifications,
        client: kube::Client,
        namespace: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, sender::SetupError> {
        let secrets = sender::Secrets::kube(client, namespace);
        let mut queues = vec![];
        for sink in &config.sinks {
            let (queue, rx) = sender::Queue::new(sink, config.queue_capacity);
            let worker = sender::Sink::new(sink, &config.source, secrets.clone())?;
            tokio::spawn(worker.drain(rx, metrics.clone()));
            tracing::info!(
                sink = sink.name,
                format = sink.format.as_str(),
                "notification sink ready"
            );
            queues.push(queue);
        }
        Ok(Self {
            queues: Arc::new(queues),
            metrics: Some(metrics),
        })
    }

    /// A notifier over queues made by the caller (tests).
    pub fn with_queues(queues: Vec<sender::Queue>, metrics: Arc<Metrics>) -> Self {
        Self {
            queues: Arc::new(queues),
            metrics: Some(metrics),
        }
    }

    /// Whether any sink is configured.
    pub fn is_enabled(&self) -> bool {
        !self.queues.is_empty()
    }

    /// Queues the notifications of `transitions` of the object `reference`
    /// (of `workspace`) for every sink that takes their type; `approvers`:
    /// for a request, who it waits for. Never waits.
    pub fn notify(
        &self,
        reference: &ObjectReference,
        workspace: Option<&str>,
        transitions: &[Transition],
        approvers: &[String],
    ) {
        if !self.is_enabled() {
            return;
        }
        for notice in notices(transitions) {
            let msg = Message::new(
                notice,
                Object::of(reference),
                workspace.map(str::to_owned),
                approvers,
                Utc::now(),
            );
            self.send(msg);
        }
    }

    /// Queues one message for every sink that takes its type.
    pub fn send(&self, msg: Message) {
        let msg = Arc::new(msg);
        for q in self.queues.iter() {
            if let Some(metrics) = &self.metrics {
                q.offer(&msg, metrics);
            }
        }
    }
}

#[cfg(test)]
mod tests;
