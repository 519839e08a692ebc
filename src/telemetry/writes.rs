//! Counting the operator's API writes on the client itself: a `tower` layer
//! under the kube [`Client`](kube::Client) that counts every request other
//! than a read (`GET`, `HEAD`, `OPTIONS`; lists and watches are `GET`s) in
//! `foureyes_api_writes_total{kind,verb}`, when it is sent, whatever its
//! answer.
//!
//! The labels come from the request alone:
//!
//! - `kind`: the resource in the path. The foureyes kinds keep their names
//!   (`RoleBinding`, `RoleRequest`, `Workspace`, `Project`); the native
//!   `rbac.authorization.k8s.io` RoleBindings are `NativeRoleBinding` (the
//!   workspace auditors' binding among them), their Roles `Role`; then
//!   `Namespace`, `ConfigMap` (the history chunks), `Event` (core or
//!   `events.k8s.io`), `Lockout`, and `Other` for anything else. Writes to `Lease`s are
//!   not counted: they are the leader election's heartbeat, not work on
//!   objects, and counting them would hide the "zero writes in steady state"
//!   figure under renewals.
//! - `verb`: `status` for any write to the `status` subresource; `apply` for
//!   a server-side apply; `finalizer` for a JSON patch, which is how the
//!   finalizer helper adds and removes finalizers (the operator makes no
//!   other JSON patch); `create` (`POST`), `replace` (`PUT`, as a history
//!   append to the current chunk), `delete` (`DELETE`), and `patch` for any
//!   other patch (a repeated warning Event's series).

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, header};
use tower::{Layer, Service};

use super::Metrics;

/// A `tower` layer counting the API writes that pass through it.
#[derive(Clone)]
pub struct CountWritesLayer {
    metrics: Arc<Metrics>,
}

impl CountWritesLayer {
    /// A layer counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for CountWritesLayer {
    type Service = CountWrites<S>;

    fn layer(&self, inner: S) -> CountWrites<S> {
        CountWrites {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`CountWritesLayer`].
#[derive(Clone)]
pub struct CountWrites<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<Request<B>> for CountWrites<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if let Some((kind, verb)) = labels(&request) {
            self.metrics.api_write(kind, verb);
        }
        self.inner.call(request)
    }
}

/// The `kind` and `verb` labels of a write; `None` for a read or a Lease.
fn labels<B>(request: &Request<B>) -> Option<(&'static str, &'static str)> {
    let method = request.method();
    if [Method::GET, Method::HEAD, Method::OPTIONS].contains(method) {
        return None;
    }
    let (group, resource, subresource) = resource_of(request.uri().path());
    let kind = match (group, resource) {
        ("coordination.k8s.io", "leases") => return None,
        ("foureyes.dev", "rolebindings") => "RoleBinding",
        ("foureyes.dev", "rolerequests") => "RoleRequest",
        ("foureyes.dev", "workspaces") => "Workspace",
        ("foureyes.dev", "projects") => "Project",
        ("foureyes.dev", "lockouts") => "Lockout",
        ("rbac.authorization.k8s.io", "rolebindings") => "NativeRoleBinding",
        ("rbac.authorization.k8s.io", "roles") => "Role",
        ("", "namespaces") => "Namespace",
        ("", "configmaps") => "ConfigMap",
        ("" | "events.k8s.io", "events") => "Event",
        _ => "Other",
    };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let verb = match *method {
        _ if subresource == Some("status") => "status",
        Method::POST => "create",
        Method::PUT => "replace",
        Method::DELETE => "delete",
        Method::PATCH if content_type.starts_with("application/apply-patch") => "apply",
        Method::PATCH if content_type.starts_with("application/json-patch") => "finalizer",
        _ => "patch",
    };
    Some((kind, verb))
}

/// The API group, resource and subresource a path names: `/api/v1/...` is
/// the core group (`""`), `/apis/{group}/{version}/...` another;
/// `namespaces/{ns}/` before the resource is skipped.
fn resource_of(path: &str) -> (&str, &str, Option<&str>) {
    let mut parts = path.trim_matches('/').split('/');
    let group = match parts.next() {
        Some("api") => "",
        Some("apis") => parts.next().unwrap_or_default(),
        _ => return ("", "", None),
    };
    let rest: Vec<&str> = parts.skip(1).collect();
    let rest = match rest.as_slice() {
        // A namespaced resource, not a namespace's own subresource.
        ["namespaces", _, resource, ..] if !["status", "finalize"].contains(resource) => &rest[2..],
        _ => &rest[..],
    };
    (group, rest.first().copied().unwrap_or_default(), rest.get(2).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, content_type: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(()).unwrap()
    }

    const APPLY: Option<&str> = Some("application/apply-patch+yaml");
    const JSON: Option<&str> = Some("application/json-patch+json");
    const MERGE: Option<&str> = Some("application/merge-patch+json");

    #[test]
    fn labels_come_from_the_path_the_method_and_the_patch_type() {
        let cases = [
            (
                Method::PATCH,
                "/apis/foureyes.dev/v1alpha1/namespaces/x/rolebindings/y/status?fieldManager=foureyes&force=true",
                APPLY,
                Some(("RoleBinding", "status")),
            ),
            (
                Method::PATCH,
                "/apis/foureyes.dev/v1alpha1/namespaces/x/rolebindings/y",
                JSON,
                Some(("RoleBinding", "finalizer")),
            ),
            (
                Method::DELETE,
                "/apis/foureyes.dev/v1alpha1/namespaces/x/rolebindings/y",
                None,
                Some(("RoleBinding", "delete")),
            ),
            (
                Method::POST,
                "/apis/foureyes.dev/v1alpha1/namespaces/x/rolebindings?",
                None,
                Some(("RoleBinding", "create")),
            ),
            (
                Method::PATCH,
                "/apis/foureyes.dev/v1alpha1/namespaces/x/rolerequests/y/status",
                APPLY,
                Some(("RoleRequest", "status")),
            ),
            (
                Method::PATCH,
                "/apis/foureyes.dev/v1alpha1/workspaces/w/status",
                APPLY,
                Some(("Workspace", "status")),
            ),
            (
                Method::PATCH,
                "/apis/foureyes.dev/v1alpha1/workspaces/w",
                JSON,
                Some(("Workspace", "finalizer")),
            ),
            (
                Method::PATCH,
                "/apis/foureyes.dev/v1alpha1/namespaces/x/projects/p/status",
                APPLY,
                Some(("Project", "status")),
            ),
            (
                Method::PATCH,
                "/apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings/y",
                APPLY,
                Some(("NativeRoleBinding", "apply")),
            ),
            (
                Method::DELETE,
                "/apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings/y",
                None,
                Some(("NativeRoleBinding", "delete")),
            ),
            (
                Method::PATCH,
                "/apis/rbac.authorization.k8s.io/v1/namespaces/x/roles/y",
                APPLY,
                Some(("Role", "apply")),
            ),
            (Method::POST, "/api/v1/namespaces", None, Some(("Namespace", "create"))),
            (
                Method::PATCH,
                "/api/v1/namespaces/x",
                APPLY,
                Some(("Namespace", "apply")),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/x",
                None,
                Some(("Namespace", "delete")),
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/x/status",
                None,
                Some(("Namespace", "status")),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/x/configmaps",
                None,
                Some(("ConfigMap", "create")),
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/x/configmaps/c",
                None,
                Some(("ConfigMap", "replace")),
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/x/events",
                None,
                Some(("Event", "create")),
            ),
            (
                Method::PATCH,
                "/apis/events.k8s.io/v1/namespaces/x/events/e",
                MERGE,
                Some(("Event", "patch")),
            ),
            (
                Method::POST,
                "/apis/apps/v1/namespaces/x/deployments",
                None,
                Some(("Other", "create")),
            ),
            (
                Method::PATCH,
                "/apis/coordination.k8s.io/v1/namespaces/x/leases/foureyes",
                APPLY,
                None,
            ),
            (
                Method::GET,
                "/apis/foureyes.dev/v1alpha1/rolebindings?watch=true",
                None,
                None,
            ),
            (Method::GET, "/api/v1/namespaces/x/configmaps/c", None, None),
        ];
        for (method, path, content_type, want) in cases {
            let got = labels(&request(method.clone(), path, content_type));
            assert_eq!(got, want, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn the_layer_counts_writes_and_passes_every_request_on() {
        let metrics = Arc::new(Metrics::new());
        let inner =
            tower::service_fn(|r: Request<()>| async move { Ok::<_, std::convert::Infallible>(r.method().clone()) });
        let mut svc = CountWritesLayer::new(metrics.clone()).layer(inner);
        let get = request(Method::GET, "/api/v1/namespaces/x/configmaps/c", None);
        assert_eq!(svc.call(get).await.unwrap(), Method::GET);
        let delete = request(
            Method::DELETE,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings/y",
            None,
        );
        assert_eq!(svc.call(delete).await.unwrap(), Method::DELETE);
        assert_eq!(metrics.api_writes_total(), 1);
        assert!(
            metrics
                .encode()
                .contains("foureyes_api_writes_total{kind=\"NativeRoleBinding\",verb=\"delete\"} 1\n")
        );
    }
}
