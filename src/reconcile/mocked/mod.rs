//! Reconciler tests without a cluster: the reconcilers run against a mocked
//! API server (`tower_test::mock::pair` under a real kube `Client`, as in
//! kube-rs's controller example) and caches filled by hand; the tests assert
//! the exact sequence of requests they send, which is where the ordering
//! rules live (revoke before record, record before create, deny wins).

mod ordering;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::{Backoff, Context, Triggers, World};
use crate::api::{RoleBinding, RoleRequest, Workspace};
use crate::config::Config;
use crate::telemetry::Metrics;

/// The control namespace of the workspace every test uses.
pub const NS: &str = "ws-team";

/// One request the reconciler sent: method, path without the query, body.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
}

impl Call {
    /// `METHOD path`, for comparing sequences.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The mocked API server: records every request and answers it from the
/// objects it was given (a status patch returns the object with that
/// status; a creation echoes what was sent; a list of history chunks is
/// empty; a deletion succeeds).
pub struct MockApi {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl MockApi {
    /// The requests sent so far, as `METHOD path`.
    pub fn lines(&self) -> Vec<String> {
        self.calls().iter().map(Call::line).collect()
    }

    /// The requests sent so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Forgets the requests sent so far.
    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }
}

/// The API path of an object (no subresource).
pub fn path_of<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    let ns = obj.namespace().unwrap_or_default();
    let url = K::url_path(&(), Some(&ns));
    format!("{url}/{}", obj.name_any())
}

fn answer(call: &Call, objects: &BTreeMap<String, Value>) -> (u16, Value) {
    let status_of = call.path.strip_suffix("/status");
    match call.method.as_str() {
        "PATCH" if status_of.is_some() => match objects.get(status_of.unwrap_or_default()) {
            Some(obj) => {
                let mut obj = obj.clone();
                obj["status"] = call.body["status"].clone();
                obj["metadata"]["resourceVersion"] = json!("2");
                (200, obj)
            }
            None => (404, not_found()),
        },
        // A server-side apply makes what it names.
        "PATCH" if call.body["apiVersion"].is_string() && !objects.contains_key(&call.path) => {
            let mut obj = call.body.clone();
            obj["metadata"]["resourceVersion"] = json!("1");
            obj["metadata"]["uid"] = json!(format!("uid-{}", obj["metadata"]["name"].as_str().unwrap_or("x")));
            (200, obj)
        }
        "POST" => {
            let mut obj = call.body.clone();
            obj["metadata"]["resourceVersion"] = json!("1");
            obj["metadata"]["uid"] = json!(format!("uid-{}", obj["metadata"]["name"].as_str().unwrap_or("x")));
            (201, obj)
        }
        "DELETE" => (
            200,
            json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}}),
        ),
        "GET" if call.path.ends_with("/configmaps") => (
            200,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": []}),
        ),
        _ => match objects.get(&call.path) {
            Some(obj) => (200, obj.clone()),
            None => (404, not_found()),
        },
    }
}

fn not_found() -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "metadata": {}})
}

/// A client whose requests go to a [`MockApi`] that knows `objects` (by path).
pub fn mock_client(objects: BTreeMap<String, Value>) -> (Client, MockApi) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = calls.clone();
    tokio::spawn(async move {
        // What a test creates can be read and written after (the binding an
        // approval creates is activated at once).
        let mut objects = objects;
        while let Some((request, reply)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let call = Call {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (code, answer) = answer(&call, &objects);
            if code == 201
                && let Some(name) = answer["metadata"]["name"].as_str()
            {
                objects.insert(format!("{}/{name}", call.path), answer.clone());
            }
            log.lock().unwrap().push(call);
            reply.send_response(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, "default"), MockApi { calls })
}

/// The caches, filled by hand.
pub struct Caches {
    workspaces: Writer<Workspace>,
    bindings: Writer<RoleBinding>,
    requests: Writer<RoleRequest>,
    natives: Writer<crate::rbac::NativeGrant>,
    world: World,
}

impl Caches {
    pub fn new() -> Self {
        let (workspaces_r, workspaces) = reflector::store();
        let (projects_r, _) = reflector::store();
        let (bindings_r, bindings) = reflector::store();
        let (requests_r, requests) = reflector::store();
        let (natives_r, natives) = reflector::store();
        let (lockouts_r, _) = reflector::store();
        let world = World {
            config: Arc::new(Config::default()),
            workspaces: workspaces_r,
            projects: projects_r,
            bindings: bindings_r,
            requests: requests_r,
            natives: natives_r,
            lockouts: lockouts_r,
            outside: Default::default(),
            index: Default::default(),
            own: Default::default(),
            synced: tokio::sync::watch::channel(true).1,
            anchors: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            workspaces_verified: Default::default(),
            workspace_counts_written: Default::default(),
            grants: Default::default(),
        };
        Self {
            workspaces,
            bindings,
            requests,
            natives,
            world,
        }
    }

    pub fn workspace(mut self, ws: Workspace) -> Self {
        fill(
            &mut self.workspaces,
            &self.world.index.workspaces_by_namespace,
            ws,
            |w| Some((w.control_namespace(), w.name_any())),
        );
        self
    }

    pub fn binding(mut self, b: RoleBinding) -> Self {
        fill(&mut self.bindings, &self.world.index.bindings_by_namespace, b, |b| {
            Some((b.namespace()?, b.name_any()))
        });
        self
    }

    pub fn request(mut self, r: RoleRequest) -> Self {
        fill(&mut self.requests, &self.world.index.requests_by_namespace, r, |r| {
            Some((r.namespace()?, r.name_any()))
        });
        self
    }

    pub fn native(mut self, n: &k8s_openapi::api::rbac::v1::RoleBinding) -> Self {
        let grant = crate::rbac::NativeGrant::from(n);
        fill(&mut self.natives, &self.world.index.natives_by_owner, grant, |n| {
            Some((n.owner_uid.clone()?, format!("{}/{}", n.namespace, n.name)))
        });
        self
    }

    /// The context the reconcilers run with, over `client`.
    pub fn context(self, client: Client) -> Arc<Context> {
        let (bindings, _) = tokio::sync::mpsc::unbounded_channel();
        let (workspaces, _) = tokio::sync::mpsc::unbounded_channel();
        Arc::new(Context {
            world: self.world,
            events: crate::audit::events::Events::new(
                client.clone(),
                Reporter {
                    controller: "foureyes".into(),
                    instance: None,
                },
            ),
            history: Arc::new(crate::audit::history::History::new(client.clone())),
            client,
            metrics: Arc::new(Metrics::new()),
            backoff: Backoff::default(),
            triggers: Triggers { bindings, workspaces },
            notifier: crate::notify::Notifier::disabled(),
            acting_since: chrono::Utc::now(),
        })
    }
}

/// Puts `obj` into a cache and its index, as its watch would.
fn fill<K>(cache: &mut Writer<K>, index: &super::index::Index, obj: K, key: fn(&K) -> Option<(String, String)>)
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    let event = watcher::Event::Apply(obj);
    index.observe(&event, key);
    cache.apply_watcher_event(&event);
}

/// Deserialises an object from JSON.
pub fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

/// A ready workspace `team` that holds [`NS`], with `quorum` approvals.
pub fn workspace(quorum: i32) -> Workspace {
    object(json!({
        "apiVersion": "foureyes.dev/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "team", "uid": "ws-uid", "resourceVersion": "1", "generation": 1},
        "spec": {"approvalPolicy": {"workspaceRoleApprovals": quorum}},
        "status": {
            "namespace": NS,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"}],
        },
    }))
}

/// An active manager binding of `user`.
pub fn manager(user: &str) -> RoleBinding {
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    object(json!({
        "apiVersion": "foureyes.dev/v1alpha1",
        "kind": "RoleBinding",
        "metadata": {"name": format!("manager-{user}"), "namespace": NS, "uid": format!("uid-manager-{user}"), "resourceVersion": "1", "finalizers": [crate::wire::FINALIZER]},
        "spec": {"subject": {"kind": "User", "name": user}, "workspaceRole": "manager", "expiresAt": expires, "justification": "on call", "grantedBy": "root"},
        "status": {"phase": "Active", "expiresAt": expires, "workspaceUid": "ws-uid"},
    }))
}
