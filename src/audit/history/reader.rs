//! Reading chains (for the kubectl plugin and auditors).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::{Chain, Chunk, Entry, Error};
use crate::wire::{CHAIN_LABEL, HISTORY_LABEL, WORKSPACE_CHAIN};

/// Every chunk of a chain, in order (by label, then by the index in the name).
pub async fn read_chunks(client: &Client, ns: &str, chain: &Chain) -> Result<Vec<Chunk>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut chunks = vec![];
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default()
            .labels(&format!("{CHAIN_LABEL}={}", chain.label()))
            .limit(16);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.map_err(Error::api("list history chunks"))?;
        for cm in page.items {
            let name = cm.name_any();
            if let Some((c, i)) = Chain::parse_chunk_name(&name)
                && &c == chain
            {
                chunks.push((
                    i,
                    Chunk {
                        name,
                        data: cm.data.unwrap_or_default(),
                    },
                ));
            }
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    chunks.sort_by_key(|(i, _)| *i);
    Ok(chunks.into_iter().map(|(_, c)| c).collect())
}

/// Every readable entry of a chain, in order (entries that do not parse are
/// skipped: [`verify`](super::verify) reports them).
pub async fn read_chain(client: &Client, ns: &str, chain: &Chain) -> Result<Vec<Entry>, Error> {
    let chunks = read_chunks(client, ns, chain).await?;
    Ok(chunks
        .iter()
        .flat_map(|c| c.entries())
        .filter_map(|(_, e)| e.ok())
        .collect())
}

/// The chains that have chunks in a namespace, sorted (`workspace` first).
pub async fn list_chains(client: &Client, ns: &str) -> Result<Vec<Chain>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let list = api
        .list_metadata(&ListParams::default().labels(&format!("{HISTORY_LABEL}=true")))
        .await
        .map_err(Error::api("list history chunks"))?;
    let mut chains: Vec<Chain> = list
        .items
        .iter()
        .filter_map(|m| Chain::parse_chunk_name(&m.name_any()))
        .map(|(c, _)| c)
        .collect();
    chains.sort_by_key(|c| (c.as_str() != WORKSPACE_CHAIN, c.clone()));
    chains.dedup();
    Ok(chains)
}
