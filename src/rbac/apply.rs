//! Applying and removing native RBAC (I/O).

use crate::wire::FIELD_MANAGER;
use k8s_openapi::api::rbac::v1::RoleBinding as NativeBinding;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Client, Resource};
use serde::Serialize;

/// Server-side applies an object (forced, field manager `foureyes`).
pub async fn apply<K>(client: &Client, obj: &K) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &ns);
    let mut body = serde_json::to_value(obj).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(body))
        .await
}

/// Deletes a native binding, only if it still has the given uid (so that a
/// binding re-created in between is not removed by mistake). Returns whether
/// something was deleted; a binding already gone is not an error.
pub async fn delete_native(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<bool, kube::Error> {
    delete_exactly::<NativeBinding>(client, namespace, name, uid).await
}

/// Deletes a namespaced object, only if it still has the given uid (an
/// object re-created in between under the same name is left alone).
/// Returns whether something was deleted; an object already gone is not an
/// error.
pub async fn delete_exactly<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let dp = DeleteParams {
        preconditions: uid.map(|u| Preconditions {
            uid: Some(u.to_owned()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
