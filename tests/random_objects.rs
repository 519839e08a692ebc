//! Bad input at scale (DESIGN §2, invariant 8): 1,000 random objects
//! (workspaces, projects, bindings and requests, most of them with one to
//! three fields made wrong: names, subjects, roles, durations, expiries,
//! justifications, forged identities, votes) written through the API server
//! as random people of the test control plane, plus random votes appended
//! to the requests that were admitted. Whatever the API server admits, the
//! operator must take in its stride: it stays ready, never panics, reports
//! on every admitted object (a status at its generation, with a `Ready`
//! condition that says why), gives the untouched objects the phase they
//! should have, and still grants a plain request promptly afterwards.
//!
//! Seeded and reproducible: `FOUREYES_SEED=<n>` replays a run (the seed is
//! printed). The objects are written 16 at a time.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use foureyes::api::{BindingPhase, Project, RoleBinding, RoleRequest, Workspace};
use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use serde_json::{Value, json};
use support::world::{grant, more_managers, setup_without_operator, wait_phase};
use support::{Operator, TestEnv, client, create_json, eventually, replace_json};

/// A small, seeded generator (xorshift64*): the same seed, the same objects.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Lowercase letters and digits, `len` of them.
    fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| *self.pick(b"abcdefghijklmnopqrstuvwxyz0123456789") as char)
            .collect()
    }

    /// Text a person would never choose: control characters, commas,
    /// quotes, non-ASCII, blanks.
    fn junk(&mut self) -> String {
        let parts = [
            "", " ", "\t", "\n", ",", "\"", "'", "{", "}", "é", "∅", "\u{0}", "\u{7f}", "system:", "../", "%", "$(x)",
            "🙂",
        ];
        (0..1 + self.below(6)).map(|_| *self.pick(&parts)).collect()
    }
}

/// The people of the test control plane (their own tokens), with the
/// weights they write with.
const WRITERS: &[&str] = &[
    "partner", "partner", "alice", "alice", "bob", "carol", "dave", "erin", "gitops",
];

/// One object to write: as whom, of which kind, and what the operator
/// should make of it if the API server admits it untouched (`None`: it was
/// made wrong somewhere, and only a reason is expected).
struct Planned {
    writer: String,
    kind: Kind,
    body: Value,
    expect: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Workspace,
    Project,
    RoleBinding,
    RoleRequest,
}

/// The world the objects are written into: two workspaces set up properly
/// (a project `app` and alice as manager), one needing two approvals (with
/// bob as a second manager).
struct World {
    /// (workspace name, control namespace, tenant namespace).
    good: Vec<(String, String, String)>,
    /// Other people's namespaces, to claim: system ones, control and tenant.
    foreign: Vec<String>,
}

fn duration(rng: &mut Rng) -> Value {
    json!(rng.pick(&[
        "1d",
        "-1h",
        "0s",
        "2161h",
        "721h",
        "abc",
        "",
        "1h30",
        "h",
        "1.5h",
        "10ms",
        "3s",
        "99999999999h",
        "1e3s",
        "30m ",
        " 1h",
    ]))
}

fn bad_time(rng: &mut Rng) -> Value {
    json!(rng.pick(&[
        "tomorrow",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2020-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2030-01-01T25:00:00Z",
        "2030-01-01T00:00:00",
        "2030-01-01 00:00:00Z",
        "",
    ]))
}

fn bad_subject(rng: &mut Rng) -> Value {
    let long = "x".repeat(300);
    match rng.below(8) {
        0 => json!({ "kind": "Robot", "name": "r2" }),
        1 => json!({ "kind": "User", "name": "" }),
        2 => json!({ "kind": "Group", "name": "system:masters" }),
        3 => json!({ "kind": "User", "name": "system:admin" }),
        4 => json!({ "kind": "User", "name": long }),
        5 => json!({ "kind": "User", "name": format!("a,{}", rng.word(3)) }),
        6 => json!({ "kind": "Group", "name": rng.junk() }),
        _ => json!({ "name": "nokind" }),
    }
}

fn bad_name(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => "UPPER".into(),
        1 => "x".repeat(300),
        2 => "under_score".into(),
        3 => String::new(),
        4 => format!("-{}", rng.word(4)),
        _ => rng.junk(),
    }
}

/// A name that is new and valid, so that its object is admitted when the
/// rest of it is right.
fn fresh(rng: &mut Rng, prefix: &str, i: usize) -> String {
    format!("{prefix}-{i}-{}", rng.word(4))
}

fn role_mutation(rng: &mut Rng, spec: &mut Value) {
    let m = spec.as_object_mut().unwrap();
    match rng.below(7) {
        0 => {
            m.insert("workspaceRole".into(), json!("owner"));
        }
        1 => {
            m.insert("project".into(), json!("app"));
            m.insert("projectRole".into(), json!("reader"));
        }
        2 => {
            m.remove("workspaceRole");
        }
        3 => {
            m.remove("workspaceRole");
            m.insert("project".into(), json!(rng.pick(&["nope", "app", ""])));
            m.insert(
                "projectRole".into(),
                json!(rng.pick(&["oncall", "root", "manager", "Admin", "reader"])),
            );
        }
        4 => {
            m.remove("workspaceRole");
            m.insert("projectRole".into(), json!("reader"));
        }
        5 => {
            m.insert("workspaceRole".into(), json!(5));
        }
        _ => {
            m.remove("workspaceRole");
            m.insert("project".into(), json!("app"));
            m.insert("projectRole".into(), json!("root"));
        }
    }
}

fn plan_binding(rng: &mut Rng, world: &World, i: usize) -> Planned {
    let (_, ns, _) = rng.pick(&world.good).clone();
    let mut writer = "partner".to_owned();
    let name = fresh(rng, "b", i);
    let mut spec = json!({
        "subject": { "kind": "User", "name": format!("oncall-{}@example.com", rng.word(3)) },
        "workspaceRole": "member",
        "duration": "1h",
        "justification": format!("INC-{}", rng.below(10_000)),
        "grantedBy": "partner",
    });
    let mut meta = json!({ "name": name, "namespace": ns });
    let mutate = rng.chance(70);
    if mutate {
        for _ in 0..1 + rng.below(3) {
            match rng.below(11) {
                0 => spec["subject"] = bad_subject(rng),
                1 | 2 => role_mutation(rng, &mut spec),
                3 => spec["duration"] = duration(rng),
                4 => {
                    spec.as_object_mut().unwrap().remove("duration");
                    spec["expiresAt"] = bad_time(rng);
                }
                5 => spec["expiresAt"] = json!("2030-01-01T00:00:00Z"),
                6 => {
                    spec["justification"] =
                        json!(rng.pick(&["", "   ", "\n"]).to_string() + &"j".repeat(rng.below(2) * 2000))
                }
                7 => {
                    // Someone else writes it: in their own name, or forging one.
                    writer = rng.pick(WRITERS).to_string();
                    spec["grantedBy"] = json!(if rng.chance(70) {
                        writer.clone()
                    } else {
                        rng.pick(WRITERS).to_string()
                    });
                }
                8 => spec["originRequest"] = json!({ "name": rng.word(5), "uid": rng.word(8) }),
                9 => spec["revocation"] = json!({ "by": writer.clone(), "reason": rng.junk() }),
                _ => meta["name"] = json!(bad_name(rng)),
            }
        }
    }
    Planned {
        writer,
        kind: Kind::RoleBinding,
        body: json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleBinding", "metadata": meta, "spec": spec }),
        expect: (!mutate).then_some("Active"),
    }
}

fn vote(rng: &mut Rng) -> Value {
    json!({
        "user": rng.pick(&["alice", "bob", "carol", "dave", "partner", "", "system:admin"]),
        "decision": rng.pick(&["Approve", "Approve", "Deny", "Maybe"]),
    })
}

fn plan_request(rng: &mut Rng, world: &World, i: usize) -> Planned {
    // The workspace needing two approvals: alice's request is 1/2.
    let (_, ns, _) = world.good[0].clone();
    let mut writer = "alice".to_owned();
    let mut spec = json!({
        "subject": { "kind": "User", "name": format!("dev-{}@example.com", rng.word(3)) },
        "workspaceRole": "member",
        "duration": "2h",
        "justification": format!("INC-{}", rng.below(10_000)),
        "requester": "alice",
    });
    let mut meta = json!({ "name": fresh(rng, "r", i), "namespace": ns });
    let mutate = rng.chance(70);
    if mutate {
        for _ in 0..1 + rng.below(3) {
            match rng.below(10) {
                0 => spec["subject"] = bad_subject(rng),
                1 | 2 => role_mutation(rng, &mut spec),
                3 => spec["duration"] = duration(rng),
                4 => {
                    spec.as_object_mut().unwrap().remove("duration");
                }
                5 => spec["justification"] = json!(rng.pick(&["", " ", "\t"])),
                6 => {
                    writer = rng.pick(WRITERS).to_string();
                    spec["requester"] = json!(if rng.chance(70) {
                        writer.clone()
                    } else {
                        rng.pick(WRITERS).to_string()
                    });
                }
                7 => {
                    let n = rng.pick(&[1usize, 2, 3, 40]);
                    spec["approvals"] = Value::Array((0..*n).map(|_| vote(rng)).collect());
                }
                8 => meta["namespace"] = json!(world.good[1].1.clone()),
                _ => meta["name"] = json!(bad_name(rng)),
            }
        }
    }
    Planned {
        writer,
        kind: Kind::RoleRequest,
        body: json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest", "metadata": meta, "spec": spec }),
        expect: (!mutate).then_some("Pending"),
    }
}

fn plan_workspace(rng: &mut Rng, world: &World, i: usize) -> Planned {
    let mut writer = "partner".to_owned();
    let name = fresh(rng, "rw", i);
    let mut spec = json!({
        "approvalPolicy": { "workspaceRoleApprovals": 1 + rng.below(3), "projectRoleApprovals": 1 + rng.below(3) },
        "maxDuration": "8h",
    });
    let mut meta = json!({ "name": name });
    let mutate = rng.chance(60);
    if mutate {
        for _ in 0..1 + rng.below(3) {
            match rng.below(9) {
                0 => spec["approvalPolicy"]["workspaceRoleApprovals"] = json!(rng.pick(&[-1, 0, 11, 1000])),
                1 => {
                    spec["approvalPolicy"]["projectRoleApprovals"] =
                        json!(rng.pick(&[json!("two"), json!(0), json!(null)]))
                }
                2 => spec["approvalPolicy"]["pendingTimeout"] = duration(rng),
                3 => spec["maxDuration"] = duration(rng),
                4 => {
                    let ns = rng.pick(&world.foreign).clone();
                    spec["namespace"] = json!(ns)
                }
                5 => spec["namespace"] = json!(bad_name(rng)),
                6 => spec["persistence"] = json!(rng.pick(&["Delete", "Revoke", "", "report"])),
                7 => writer = rng.pick(WRITERS).to_string(),
                _ => {
                    meta["name"] = json!(if rng.chance(50) {
                        bad_name(rng)
                    } else {
                        format!("{}.{}", rng.word(3), rng.word(3))
                    })
                }
            }
        }
    }
    Planned {
        writer,
        kind: Kind::Workspace,
        body: json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "Workspace", "metadata": meta, "spec": spec }),
        expect: (!mutate).then_some("Ready"),
    }
}

fn plan_project(rng: &mut Rng, world: &World, i: usize) -> Planned {
    let (_, ns, _) = rng.pick(&world.good).clone();
    let mut writer = "partner".to_owned();
    let name = fresh(rng, "p", i);
    let mut spec = json!({ "namespaces": [format!("{name}-t")] });
    let mut meta = json!({ "name": name, "namespace": ns });
    let mutate = rng.chance(70);
    if mutate {
        for _ in 0..1 + rng.below(3) {
            match rng.below(8) {
                0 | 1 => {
                    let ns = rng.pick(&world.foreign).clone();
                    spec["namespaces"].as_array_mut().unwrap().push(json!(ns));
                }
                2 => spec["namespaces"] = json!([bad_name(rng)]),
                3 => spec["namespaces"] = Value::Array((0..40).map(|k| json!(format!("{name}-{k}"))).collect()),
                4 => {
                    spec["roleMap"] = json!({ rng.pick(&["root", "", "Reader", "x"]).to_string(): rng.pick(&["cluster-admin", "", "view", "foureyes-view"]) })
                }
                5 => writer = rng.pick(WRITERS).to_string(),
                6 => meta["namespace"] = json!(rng.pick(&world.foreign)),
                _ => meta["name"] = json!(bad_name(rng)),
            }
        }
    }
    Planned {
        writer,
        kind: Kind::Project,
        body: json!({ "apiVersion": "foureyes.dev/v1alpha1", "kind": "Project", "metadata": meta, "spec": spec }),
        expect: (!mutate).then_some("NamespacesClaimed"),
    }
}

fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Workspace => ApiResource::erase::<Workspace>(&()),
        Kind::Project => ApiResource::erase::<Project>(&()),
        Kind::RoleBinding => ApiResource::erase::<RoleBinding>(&()),
        Kind::RoleRequest => ApiResource::erase::<RoleRequest>(&()),
    }
}

/// An admitted object, as read back.
struct Admitted {
    kind: Kind,
    namespace: Option<String>,
    name: String,
    expect: Option<&'static str>,
}

/// The status of an object: (observedGeneration matches, phase, Ready's
/// status and reason).
fn reported(obj: &DynamicObject) -> Option<(Option<String>, String, String)> {
    let status = obj.data.get("status")?;
    let generation = obj.metadata.generation?;
    if status.get("observedGeneration")?.as_i64()? != generation {
        return None;
    }
    let ready = status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    let reason = ready["reason"].as_str()?.to_owned();
    let message = ready["message"].as_str().unwrap_or_default();
    if reason.is_empty() || (ready["status"] != "True" && message.trim().is_empty()) {
        return None;
    }
    Some((
        status.get("phase").and_then(|p| p.as_str()).map(str::to_owned),
        ready["status"].as_str().unwrap_or_default().to_owned(),
        reason,
    ))
}

/// GET `path` from the operator's metrics address (from its log).
async fn http_get(op: &Operator, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let log = op.log_text();
    let addr = log
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .and_then(|l| l.split("address=").nth(1))
        .map(|a| a.trim().to_owned())?;
    let mut stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_thousand_random_objects_leave_the_operator_ready_and_reporting() {
    let started = Instant::now();
    let seed: u64 = std::env::var("FOUREYES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d);
    eprintln!("random objects: seed {seed} (FOUREYES_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);

    let op = Operator::start("random");
    let quorum2 = TestEnv::new("rnd-two").await;
    let quorum1 = TestEnv::new("rnd-one").await;
    let tenant2 = setup_without_operator(&quorum2, 2, 2).await;
    let tenant1 = setup_without_operator(&quorum1, 1, 1).await;
    // Two managers where two approvals are needed: alice's requests wait at 1/2.
    more_managers(&quorum2, &["bob"]).await;
    let world = World {
        good: vec![
            (quorum2.name.clone(), quorum2.ns.clone(), tenant2.clone()),
            (quorum1.name.clone(), quorum1.ns.clone(), tenant1.clone()),
        ],
        foreign: vec![
            "default".into(),
            "kube-system".into(),
            "kube-public".into(),
            quorum2.ns.clone(),
            quorum1.ns.clone(),
            tenant2.clone(),
            tenant1.clone(),
            "foureyes-system".into(),
        ],
    };
    eprintln!("set up in {:.1} s", started.elapsed().as_secs_f64());

    // 1,000 objects: 100 workspaces, 150 projects, 400 bindings, 350 requests, shuffled.
    let mut plans: Vec<Planned> = (0..1000)
        .map(|i| match i % 20 {
            0 | 1 => plan_workspace(&mut rng, &world, i),
            2..=4 => plan_project(&mut rng, &world, i),
            5..=12 => plan_binding(&mut rng, &world, i),
            _ => plan_request(&mut rng, &world, i),
        })
        .collect();
    for i in (1..plans.len()).rev() {
        plans.swap(i, rng.below(i + 1));
    }
    let mut clients = BTreeMap::new();
    for w in WRITERS {
        clients.insert(w.to_string(), client(w).await);
    }
    let t0 = Instant::now();
    let results: Vec<(Kind, Option<&'static str>, Result<DynamicObject, String>)> = futures::stream::iter(plans)
        .map(|p| {
            let client = clients[&p.writer].clone();
            async move {
                let ar = resource(p.kind);
                let api: Api<DynamicObject> = match p.body["metadata"]["namespace"].as_str() {
                    Some(ns) => Api::namespaced_with(client, ns, &ar),
                    None => Api::all_with(client, &ar),
                };
                (p.kind, p.expect, create_json(&api, p.body).await)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut admitted = vec![];
    let mut tally: BTreeMap<(Kind, bool), usize> = BTreeMap::new();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, expect, result) in results {
        *tally.entry((kind, result.is_ok())).or_default() += 1;
        match result {
            Ok(obj) => admitted.push(Admitted {
                kind,
                namespace: obj.metadata.namespace.clone(),
                name: obj.metadata.name.clone().unwrap(),
                expect,
            }),
            Err(why) => {
                assert!(expect.is_none(), "a plain {kind:?} was refused: {why}");
                let short: String = why.chars().take(90).collect();
                *refusals.entry(format!("{kind:?}: {short}")).or_default() += 1;
            }
        }
    }
    eprintln!("wrote 1,000 objects in {:.1} s", t0.elapsed().as_secs_f64());
    for ((kind, ok), n) in &tally {
        eprintln!("  {kind:?} {}: {n}", if *ok { "admitted" } else { "refused" });
    }
    let mut common: Vec<_> = refusals.into_iter().collect();
    common.sort_by_key(|c| std::cmp::Reverse(c.1));
    for (why, n) in common.iter().take(12) {
        eprintln!("  {n:>4} × {why}");
    }

    // Votes appended to the admitted requests by random people (a quarter
    // of them forged, in someone else's name: refused by admission).
    let requests: Vec<&Admitted> = admitted.iter().filter(|a| a.kind == Kind::RoleRequest).collect();
    let mut votes = 0;
    let mut voted = std::collections::BTreeSet::new();
    let mut votes_refused = 0;
    for _ in 0..100.min(requests.len() * 2) {
        let r = requests[rng.below(requests.len())];
        let writer = rng.pick(&["alice", "bob", "carol", "dave", "partner"]).to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(
            clients[&writer].clone(),
            r.namespace.as_deref().unwrap(),
            &resource(Kind::RoleRequest),
        );
        let Ok(mut current) = api.get(&r.name).await else {
            continue;
        };
        voted.insert(r.name.clone());
        let voter = if rng.chance(75) {
            writer.clone()
        } else {
            rng.pick(&["alice", "bob", "x"]).to_string()
        };
        let decision = *rng.pick(&["Approve", "Approve", "Deny", "Abstain"]);
        let spec = current.data["spec"].as_object_mut().unwrap();
        let list = spec.entry("approvals").or_insert(json!([]));
        list.as_array_mut()
            .unwrap()
            .push(json!({ "user": voter, "decision": decision }));
        votes += 1;
        if replace_json(&api, serde_json::to_value(&current).unwrap())
            .await
            .is_err()
        {
            votes_refused += 1;
        }
    }
    eprintln!("appended {votes} votes ({votes_refused} refused)");

    // Every admitted object is reported on: a status at its generation with
    // a Ready condition that says why; the untouched ones as they should be.
    let t1 = Instant::now();
    let admin = client("admin").await;
    let mut wrong = vec![];
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    for a in &admitted {
        let ar = resource(a.kind);
        let api: Api<DynamicObject> = match &a.namespace {
            Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
            None => Api::all_with(admin.clone(), &ar),
        };
        let seen = eventually(
            &format!("{:?} {} reported", a.kind, a.name),
            Duration::from_secs(60),
            || async {
                let obj = api.get(&a.name).await.ok()?;
                reported(&obj)
            },
        )
        .await;
        let (phase, ready, reason) = seen;
        *phases
            .entry(format!(
                "{:?} {} {ready} {reason}",
                a.kind,
                phase.as_deref().unwrap_or("-")
            ))
            .or_default() += 1;
        // A vote may have decided an untouched request: only a reason is expected then.
        let expect = a
            .expect
            .filter(|_| !(a.kind == Kind::RoleRequest && voted.contains(&a.name)));
        if let Some(expected) = expect {
            let ok = match a.kind {
                Kind::RoleBinding => phase.as_deref() == Some(expected),
                Kind::RoleRequest => phase.as_deref() == Some(expected),
                Kind::Workspace | Kind::Project => ready == "True" && reason == expected,
            };
            if !ok {
                wrong.push(format!(
                    "{:?} {}: {phase:?} {ready} {reason}, expected {expected}",
                    a.kind, a.name
                ));
            }
        }
    }
    eprintln!(
        "all {} admitted objects reported on within {:.1} s",
        admitted.len(),
        t1.elapsed().as_secs_f64()
    );
    for (what, n) in &phases {
        eprintln!("  {n:>4} × {what}");
    }
    assert!(
        wrong.is_empty(),
        "untouched objects not as expected:\n{}",
        wrong.join("\n")
    );

    // The operator is ready, and said nothing of a panic.
    assert!(op.running(), "the operator exited");
    let readyz = http_get(&op, "/readyz").await.unwrap_or_default();
    assert!(readyz.contains(" 200 "), "/readyz: {readyz}");
    let log = op.log_text();
    assert!(!log.contains("panicked"), "the operator panicked:\n{log}");

    // A plain grant afterwards is in place promptly.
    let t2 = Instant::now();
    grant(
        &quorum1,
        "alice",
        "after-the-storm",
        json!({"kind": "User", "name": "erin"}),
        json!({"project": "app", "projectRole": "reader"}),
        "1h",
    )
    .await;
    let b = wait_phase(&quorum1, "after-the-storm", BindingPhase::Active).await;
    let took = t2.elapsed();
    eprintln!("a grant afterwards was active in {} ms", took.as_millis());
    assert!(took < Duration::from_secs(5), "a grant took {took:?} after the storm");
    assert!(b.status.unwrap().namespaces.contains(&tenant1));
    eprintln!("took {:.1} s in all", started.elapsed().as_secs_f64());
    drop(op);
}
