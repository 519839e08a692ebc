//! Reading what a ClusterRole grants (see [`crate::policy::grants`]), for
//! the requests that ask for it: one read per ClusterRole a minute at most,
//! so that a thousand requests for the same role cost one read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Client;
use kube::api::{Api, ListParams};

use crate::api::Permissions;
use crate::policy::grants::{effective_rules, permissions};

/// How long a ClusterRole's reading is reused.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// What ClusterRoles grant, as last read.
#[derive(Default)]
pub struct Grants {
    read: Mutex<HashMap<String, (Instant, Permissions)>>,
}

impl Grants {
    /// What `cluster_role` grants in a namespace it is bound in; `Ok(None)`
    /// when it does not exist.
    pub async fn of(&self, client: &Client, cluster_role: &str) -> Result<Option<Permissions>, kube::Error> {
        if let Some((at, p)) = self.lock().get(cluster_role)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(Some(p.clone()));
        }
        let api: Api<ClusterRole> = Api::all(client.clone());
        let Some(role) = api.get_opt(cluster_role).await? else {
            return Ok(None);
        };
        // Aggregated: the roles it selects too, in case the aggregation
        // controller has not caught up with them yet.
        let all = match &role.aggregation_rule {
            Some(_) => api.list(&ListParams::default()).await?.items,
            None => vec![],
        };
        let p = permissions(cluster_role, &effective_rules(&role, &all));
        self.lock().insert(cluster_role.to_owned(), (Instant::now(), p.clone()));
        Ok(Some(p))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Permissions)>> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}
