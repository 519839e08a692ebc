//! The history on a real API server (DESIGN §2 invariant 7, §4): appends
//! are conditional, idempotent and lose nothing under contention; chunks roll
//! over and stay linked; tampering is detected; only the operator can write
//! the history; and a binding's transitions are recorded with their actors.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foureyes::api::{BindingPhase, RoleBinding, Workspace};
use foureyes::audit::history::{
    self, Chain, Entry, EntryObject, History, NewEntry, action, read_chain, read_chunks, verify,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use support::world::{grant, setup, wait_event, wait_phase};
use support::{TestEnv, client, eventually, refusal};

fn entry(uid: &str, n: usize) -> NewEntry {
    NewEntry::new(
        EntryObject {
            kind: "RoleBinding".into(),
            name: format!("binding-{uid}"),
            uid: uid.into(),
        },
        action::GRANTED,
        "alice",
    )
    .transition(&format!("Granted/{n}"))
    .subject("user dave")
    .role("app/user")
    .details(format!("entry {n} of {uid}"))
}

async fn operator_history(rollover: usize) -> History {
    History::with_rollover(client("operator").await, rollover)
}

async fn verified(env: &TestEnv, chain: &Chain) -> Vec<Entry> {
    let chunks = read_chunks(&client("admin").await, &env.ns, chain).await.unwrap();
    match verify(chain, &chunks) {
        Ok(v) => v.entries,
        Err(b) => panic!("{b}"),
    }
}

#[tokio::test]
async fn concurrent_appenders_lose_nothing_and_duplicate_nothing() {
    let env = TestEnv::new("hist-conc").await;
    let chain = Chain::workspace();
    // Two appenders: two operator processes, as far as the API server can tell.
    // A small rollover makes them race over sealing and creating chunks too.
    let a = Arc::new(operator_history(8 * 1024).await);
    let b = Arc::new(operator_history(8 * 1024).await);
    let started = Instant::now();
    let mut tasks = vec![];
    for t in 0..8 {
        let appender = if t % 2 == 0 { a.clone() } else { b.clone() };
        let ns = env.ns.clone();
        let ws = env.name.clone();
        let chain = chain.clone();
        tasks.push(tokio::spawn(async move {
            let uid = format!("task-{t}");
            for n in 0..25 {
                let r = appender.append(&ns, &ws, &chain, entry(&uid, n)).await.unwrap();
                assert!(r.written, "{uid}/{n} written once");
            }
            // A retry of a transition already recorded writes nothing.
            let again = appender.append(&ns, &ws, &chain, entry(&uid, 24)).await.unwrap();
            assert!(!again.written);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("200 appends by 8 tasks through 2 appenders in {:?}", started.elapsed());
    let entries = verified(&env, &chain).await;
    assert_eq!(entries.len(), 200);
    assert!(
        entries.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1),
        "contiguous"
    );
    let keys: BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys.len(), 200, "no key twice");
    // Each task's entries are in the order it appended them.
    for t in 0..8 {
        let mine: Vec<&Entry> = entries.iter().filter(|e| e.object.uid == format!("task-{t}")).collect();
        assert!(mine.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(mine.len(), 25);
    }
    let chunks = read_chunks(&client("admin").await, &env.ns, &chain).await.unwrap();
    assert!(
        chunks.len() > 2,
        "rolled over under contention: {} chunks",
        chunks.len()
    );
}

#[tokio::test]
async fn rollover_keeps_order_and_the_chain() {
    let env = TestEnv::new("hist-roll").await;
    let chain = Chain::project("app");
    let rollover = 4 * 1024;
    let first = operator_history(rollover).await;
    for n in 0..60 {
        first
            .append(&env.ns, &env.name, &chain, entry("roll", n))
            .await
            .unwrap();
    }
    let chunks = read_chunks(&client("admin").await, &env.ns, &chain).await.unwrap();
    assert!(chunks.len() >= 4, "{} chunks", chunks.len());
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.name, chain.chunk_name(i as u32));
        assert!(
            history::data_size(&c.data) <= rollover + 512,
            "{}: {} bytes",
            c.name,
            history::data_size(&c.data)
        );
        if i + 1 < chunks.len() {
            assert_eq!(c.next(), Some(chain.chunk_name(i as u32 + 1).as_str()), "sealed");
        }
    }
    // Another process continues the same chain where it ended.
    let second = operator_history(rollover).await;
    for n in 60..70 {
        second
            .append(&env.ns, &env.name, &chain, entry("roll", n))
            .await
            .unwrap();
    }
    let entries = verified(&env, &chain).await;
    assert_eq!(entries.len(), 70);
    assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 + 1 && e.details == format!("entry {i} of roll")),
        "in order"
    );
    assert_eq!(
        read_chain(&client("admin").await, &env.ns, &chain).await.unwrap(),
        entries
    );
    // The labels and annotation that readers and the admission policy use.
    let cm = Api::<ConfigMap>::namespaced(client("admin").await, &env.ns)
        .get(&chain.chunk_name(0))
        .await
        .unwrap();
    let labels = cm.metadata.labels.unwrap();
    assert_eq!(labels[foureyes::wire::HISTORY_LABEL], "true");
    assert_eq!(labels["foureyes.dev/workspace"], env.name);
    assert_eq!(labels[foureyes::wire::CHAIN_LABEL], "project-app");
    assert_eq!(
        history::list_chains(&client("admin").await, &env.ns).await.unwrap(),
        vec![chain.clone()]
    );
}

#[tokio::test]
async fn a_crash_between_append_and_status_leaves_one_entry() {
    let env = TestEnv::new("hist-crash").await;
    let chain = Chain::workspace();
    let before = operator_history(2 * 1024).await;
    let first = before
        .append(&env.ns, &env.name, &chain, entry("crash", 0))
        .await
        .unwrap();
    assert!(first.written);
    // The process dies before writing the status; a fresh one retries the transition.
    let after = operator_history(2 * 1024).await;
    let retry = after
        .append(&env.ns, &env.name, &chain, entry("crash", 0))
        .await
        .unwrap();
    assert!(!retry.written);
    assert_eq!(retry.seq, first.seq);
    // Still found once the key is in the chunk before the head.
    for n in 1..30 {
        after
            .append(&env.ns, &env.name, &chain, entry("fill", n))
            .await
            .unwrap();
    }
    let chunks = read_chunks(&client("admin").await, &env.ns, &chain).await.unwrap();
    let last = chunks.last().unwrap().entries().pop().unwrap().1.unwrap();
    let in_previous = chunks[chunks.len() - 2].entries().pop().unwrap().1.unwrap();
    let third = operator_history(2 * 1024).await;
    let key_of = |e: &Entry| -> NewEntry {
        let n: usize = e.details.split_whitespace().nth(1).unwrap().parse().unwrap();
        entry(&e.object.uid, n)
    };
    assert!(
        !third
            .append(&env.ns, &env.name, &chain, key_of(&last))
            .await
            .unwrap()
            .written
    );
    assert!(
        !third
            .append(&env.ns, &env.name, &chain, key_of(&in_previous))
            .await
            .unwrap()
            .written
    );
    let entries = verified(&env, &chain).await;
    assert_eq!(entries.iter().filter(|e| e.key == "crash/Granted/0").count(), 1);
    assert_eq!(entries.len(), 30);
}

#[tokio::test]
async fn a_tampered_entry_is_detected() {
    let env = TestEnv::new("hist-tamper").await;
    let chain = Chain::workspace();
    let h = operator_history(history::DEFAULT_ROLLOVER_BYTES).await;
    for n in 0..5 {
        h.append(&env.ns, &env.name, &chain, entry("t", n)).await.unwrap();
    }
    assert_eq!(verified(&env, &chain).await.len(), 5);
    // The operator's identity may write the history: edit an entry with it.
    let api = Api::<ConfigMap>::namespaced(client("operator").await, &env.ns);
    let mut cm = api.get(&chain.chunk_name(0)).await.unwrap();
    let data = cm.data.as_mut().unwrap();
    let key = history::entry_key(3);
    let mut e: Entry = serde_json::from_str(&data[&key]).unwrap();
    e.actor = "mallory".into();
    data.insert(key, history::entry_value(&e));
    cm.metadata.managed_fields = None;
    api.replace(&chain.chunk_name(0), &PostParams::default(), &cm)
        .await
        .unwrap();
    let chunks = read_chunks(&client("admin").await, &env.ns, &chain).await.unwrap();
    let broken = verify(&chain, &chunks).unwrap_err();
    assert_eq!(broken.seq, Some(3));
    assert!(broken.to_string().contains("the entry was edited"), "{broken}");
}

/// Retries `attempt` until it is refused with a message containing `needle`
/// (a new admission policy takes a moment to take effect).
async fn refused<F, Fut>(what: &str, needle: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Err(msg) if msg.contains(needle) => return,
            other => assert!(Instant::now() < deadline, "{what} was not refused: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn only_the_operator_writes_the_history() {
    let env = TestEnv::new("hist-guard").await;
    setup(&env, 1, 1).await;
    let chain = Chain::workspace();
    let name = chain.chunk_name(0);
    let admin = Api::<ConfigMap>::namespaced(client("admin").await, &env.ns);
    let original = eventually("the workspace chain", Duration::from_secs(30), || async {
        admin.get_opt(&name).await.ok().flatten()
    })
    .await;
    let mut edited = original.clone();
    edited.metadata.managed_fields = None;
    edited.data.as_mut().unwrap().insert("000000000999".into(), "{}".into());
    const OPERATOR_ONLY: &str = "written only by the foureyes operator";

    // A workspace manager: RBAC already lets alice only read ConfigMaps here.
    let alice = Api::<ConfigMap>::namespaced(client("alice").await, &env.ns);
    assert!(alice.get(&name).await.is_ok(), "managers read the history");
    let err = alice.replace(&name, &PostParams::default(), &edited).await.unwrap_err();
    assert!(refusal(err).contains("forbidden"));
    let err = alice.delete(&name, &DeleteParams::default()).await.unwrap_err();
    assert!(refusal(err).contains("forbidden"));

    // A cluster administrator (system:masters) is refused by the admission policy.
    refused("an admin's edit", OPERATOR_ONLY, || async {
        admin
            .replace(&name, &PostParams::default(), &edited)
            .await
            .map(|_| ())
            .map_err(refusal)
    })
    .await;
    refused("an admin's deletion", OPERATOR_ONLY, || async {
        admin
            .delete(&name, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(refusal)
    })
    .await;
    let mut unlabelled = original.clone();
    unlabelled.metadata.managed_fields = None;
    unlabelled.metadata.labels = None;
    refused("removing the label", OPERATOR_ONLY, || async {
        admin
            .replace(&name, &PostParams::default(), &unlabelled)
            .await
            .map(|_| ())
            .map_err(refusal)
    })
    .await;
    // A forged chunk: with the label, or without it under the history prefix.
    let forged: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "foureyes-history-forged-000000", "namespace": env.ns },
        "data": { "000000000001": "{}" },
    }))
    .unwrap();
    refused("an unlabelled chunk", "are foureyes history chunks", || async {
        admin
            .create(&PostParams::default(), &forged)
            .await
            .map(|_| ())
            .map_err(refusal)
    })
    .await;
    let mut labelled = forged.clone();
    labelled.metadata.name = Some("innocent".into());
    labelled.metadata.labels = Some([(foureyes::wire::HISTORY_LABEL.to_owned(), "true".to_owned())].into());
    refused("a labelled look-alike", OPERATOR_ONLY, || async {
        admin
            .create(&PostParams::default(), &labelled)
            .await
            .map(|_| ())
            .map_err(refusal)
    })
    .await;
    // Other ConfigMaps are not concerned.
    let mut other = forged.clone();
    other.metadata.name = Some("app-settings".into());
    admin.create(&PostParams::default(), &other).await.unwrap();
    admin.delete("app-settings", &DeleteParams::default()).await.unwrap();
    // Nothing changed.
    let now = admin.get(&name).await.unwrap();
    assert!(!now.data.unwrap().contains_key("000000000999"));
    verified(&env, &chain).await;
}

#[tokio::test]
async fn a_bindings_transitions_are_recorded_with_their_actors() {
    let env = TestEnv::new("hist-life").await;
    setup(&env, 1, 1).await;
    let dave = json!({"kind": "User", "name": "dave"});
    grant(
        &env,
        "alice",
        "short",
        dave.clone(),
        json!({"project": "app", "projectRole": "user"}),
        "5s",
    )
    .await;
    grant(
        &env,
        "alice",
        "revoked",
        dave.clone(),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    grant(
        &env,
        "alice",
        "root",
        dave.clone(),
        json!({"project": "app", "projectRole": "root"}),
        "1h",
    )
    .await;
    wait_phase(&env, "revoked", BindingPhase::Active).await;
    let api = env.api::<RoleBinding>("alice").await;
    let mut b = api.get("revoked").await.unwrap();
    b.spec.revocation = Some(foureyes::api::Revocation {
        by: "alice".into(),
        reason: "laptop stolen".into(),
    });
    b.metadata.managed_fields = None;
    api.replace("revoked", &PostParams::default(), &b).await.unwrap();
    wait_phase(&env, "revoked", BindingPhase::Revoked).await;
    let short = wait_phase(&env, "short", BindingPhase::Expired).await;
    // Events keep their reasons.
    for (name, reason) in [
        ("short", "Granted"),
        ("short", "Expired"),
        ("revoked", "Revoked"),
        ("root", "RoleNotAllowed"),
    ] {
        wait_event(&env.ns, name, reason).await;
    }

    let project = Chain::project("app");
    let entries = verified(&env, &project).await;
    let find = |name: &str, action: &str| -> Entry {
        entries
            .iter()
            .find(|e| e.object.name == name && e.action == action)
            .unwrap_or_else(|| panic!("no {action} entry for {name}: {entries:#?}"))
            .clone()
    };
    let granted = find("short", action::GRANTED);
    assert_eq!(granted.actor, "alice");
    assert_eq!(granted.subject.as_deref(), Some("user dave"));
    assert_eq!(granted.role.as_deref(), Some("app/user"));
    assert_eq!(granted.object.uid, short.metadata.uid.clone().unwrap());
    assert_eq!(find("short", action::EXPIRED).actor, "foureyes");
    let revoked = find("revoked", action::REVOKED);
    assert_eq!(revoked.actor, "alice");
    assert!(revoked.details.contains("laptop stolen"));
    assert!(find("revoked", action::GRANTED).seq < revoked.seq);
    let refused = find("root", action::REFUSED);
    assert!(refused.details.starts_with("RoleNotAllowed"), "{}", refused.details);
    assert_eq!(find("app", action::PROJECT_CREATED).actor, "partner");
    assert_eq!(entries.len(), 6, "one entry per transition: {entries:#?}");

    // Workspace roles go to the workspace chain, after its first entry.
    let ws_entries = verified(&env, &Chain::workspace()).await;
    assert_eq!(ws_entries[0].action, action::WORKSPACE_CREATED);
    let manager = ws_entries
        .iter()
        .find(|e| e.object.name == "manager-alice" && e.action == action::GRANTED)
        .expect("the manager's grant");
    assert_eq!(manager.actor, "partner");
    assert_eq!(manager.role.as_deref(), Some("manager"));

    // The workspace status mirrors both heads.
    let workspaces = Api::<Workspace>::all(client("admin").await);
    let last = entries.last().unwrap().clone();
    eventually("the heads in the workspace status", Duration::from_secs(20), || async {
        let ws = workspaces.get(&env.name).await.ok()?;
        let heads = ws.status?.history;
        let head = heads.iter().find(|h| h.chain == "project-app")?;
        (head.sequence == last.seq as i64 && head.hash == last.hash && heads.iter().any(|h| h.chain == "workspace"))
            .then_some(())
    })
    .await;

    // A deletion is recorded, with an unknown actor.
    api.delete("short", &DeleteParams::default()).await.unwrap();
    let removed = eventually("the removal entry", Duration::from_secs(20), || async {
        let entries = read_chain(&client("admin").await, &env.ns, &project).await.ok()?;
        entries
            .into_iter()
            .find(|e| e.object.name == "short" && e.action == action::REMOVED)
    })
    .await;
    assert_eq!(removed.actor, "unknown");

    // Deleting the workspace writes the chain's final entry and keeps the history.
    workspaces.delete(&env.name, &DeleteParams::default()).await.unwrap();
    let last = eventually("the final entry", Duration::from_secs(30), || async {
        let entries = read_chain(&client("admin").await, &env.ns, &Chain::workspace())
            .await
            .ok()?;
        entries
            .last()
            .filter(|e| e.action == action::WORKSPACE_DELETED)
            .cloned()
    })
    .await;
    assert!(last.details.contains("history kept"), "{}", last.details);
    eventually("the workspace gone", Duration::from_secs(30), || async {
        workspaces.get_opt(&env.name).await.ok()?.is_none().then_some(())
    })
    .await;
    verified(&env, &Chain::workspace()).await;
    verified(&env, &project).await;
}

/// Events (the live view beside the history): a warning repeated on the same
/// object becomes one event with a series, while each Normal transition is
/// an event of its own, published without being kept in memory.
#[tokio::test]
async fn repeated_warnings_form_a_series_and_transitions_are_events_of_their_own() {
    use foureyes::audit::events::Events;
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::Resource;
    use kube::runtime::events::Reporter;

    let env = TestEnv::new("events").await;
    let admin = client("admin").await;
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), &env.ns);
    let map: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "subject" } })).unwrap();
    let map = maps.create(&PostParams::default(), &map).await.unwrap();
    let reference = map.object_ref(&());
    let events = Events::new(
        admin.clone(),
        Reporter {
            controller: "foureyes-test".into(),
            instance: None,
        },
    );
    for _ in 0..3 {
        events
            .publish(&reference, true, "DriftCorrected", "Restore", "put back".into())
            .await;
    }
    for _ in 0..2 {
        events
            .publish(&reference, false, "Granted", "Grant", "granted".into())
            .await;
    }
    let listed = Api::<K8sEvent>::namespaced(admin, &env.ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    let of = |reason: &str| -> Vec<K8sEvent> {
        listed
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("subject"))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .cloned()
            .collect()
    };
    let warnings = of("DriftCorrected");
    assert_eq!(warnings.len(), 1, "one event for the repeated warning: {warnings:?}");
    assert_eq!(warnings[0].series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    let normal = of("Granted");
    assert_eq!(normal.len(), 2, "each transition is its own event: {normal:?}");
    assert!(
        normal
            .iter()
            .all(|e| e.series.is_none() && e.type_.as_deref() == Some("Normal"))
    );
}
