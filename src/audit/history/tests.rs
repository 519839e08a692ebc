use super::appender::{Head, Step, finish, plan};
use super::chain::is_dns_subdomain;
use super::entry::{MAX_DETAILS, MAX_FIELD, canonical, entry_hash, entry_size};
use super::*;
use crate::api::workspace::ChainHead;
use crate::wire::SEAL_KEY;
use chrono::{DateTime, Utc};

fn new(uid: &str, action: &str) -> NewEntry {
    NewEntry::new(
        EntryObject {
            kind: "RoleBinding".into(),
            name: format!("b-{uid}"),
            uid: uid.into(),
        },
        action,
        "alice",
    )
    .subject("user dave")
    .role("app/admin")
    .details("until 2026-01-01T00:00:00Z")
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678901Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Appends `n` entries with the pure planner, the way the appender does,
/// rolling over at `rollover` bytes; returns the chunks.
fn build(chain: &Chain, n: usize, rollover: usize) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = vec![];
    let mut head = Head::default();
    let news: Vec<NewEntry> = (0..n).map(|i| new(&format!("uid-{i}"), action::GRANTED)).collect();
    let mut next = 0;
    while next < n {
        if head.sealed() {
            head = head.rolled_over();
        }
        let pending: Vec<(usize, &NewEntry)> = news[next..]
            .iter()
            .enumerate()
            .map(|(i, e)| (next + i, e))
            .take(1)
            .collect();
        match plan(chain, &head, &pending, rollover, t0()) {
            Step::Seal(data) => head.data = data,
            Step::Write { data, entries } => {
                head.data = data;
                for (_, e) in entries {
                    head.keys.insert(e.key.clone(), e.seq);
                    head.last = Some((e.seq, e.hash.clone(), e.time));
                    next += 1;
                }
            }
        }
        let chunk = Chunk {
            name: chain.chunk_name(head.index),
            data: head.data.clone(),
        };
        match chunks.iter_mut().find(|c| c.name == chunk.name) {
            Some(c) => *c = chunk,
            None => chunks.push(chunk),
        }
    }
    chunks
}

#[test]
fn hashes_are_stable_and_cover_every_field() {
    let chain = Chain::workspace();
    let e = next_entry(&chain, None, &new("u1", action::GRANTED), t0());
    assert_eq!(e.seq, 1);
    assert_eq!(e.prev, GENESIS);
    assert_eq!(e.time.timestamp_subsec_millis(), 678);
    assert_eq!(e.time.timestamp_subsec_nanos(), 678_000_000, "milliseconds only");
    assert_eq!(e.hash, entry_hash(&chain, &e));
    assert_eq!(e.hash.len(), 64);
    // The canonical form is documented: check it literally.
    let text = String::from_utf8(canonical(&chain, &e)).unwrap();
    assert_eq!(
        text,
        r#"{"v":1,"chain":"workspace","seq":1,"time":"2026-01-02T03:04:05.678Z","actor":"alice","action":"Granted","object":{"kind":"RoleBinding","name":"b-u1","uid":"u1"},"subject":"user dave","role":"app/admin","details":"until 2026-01-01T00:00:00Z","key":"u1/Granted","prev":"0000000000000000000000000000000000000000000000000000000000000000"}"#
    );
    // Each field changes the hash.
    type Edit = Box<dyn Fn(&mut Entry)>;
    let variants: Vec<Edit> = vec![
        Box::new(|e| e.seq += 1),
        Box::new(|e| e.time += chrono::Duration::milliseconds(1)),
        Box::new(|e| e.actor.push('x')),
        Box::new(|e| e.action.push('x')),
        Box::new(|e| e.object.kind.push('x')),
        Box::new(|e| e.object.name.push('x')),
        Box::new(|e| e.object.uid.push('x')),
        Box::new(|e| e.subject = None),
        Box::new(|e| e.role = Some("app/user".into())),
        Box::new(|e| e.details.push('x')),
        Box::new(|e| e.key.push('x')),
        Box::new(|e| e.prev = "1".repeat(64)),
    ];
    for change in variants {
        let mut edited = e.clone();
        change(&mut edited);
        assert_ne!(entry_hash(&chain, &edited), e.hash, "{edited:?}");
    }
    // The chain is part of the hash: an entry cannot move to another chain.
    assert_ne!(entry_hash(&Chain::project("app"), &e), e.hash);
    // Stored and read back, an entry hashes the same.
    let back: Entry = serde_json::from_str(&entry_value(&e)).unwrap();
    assert_eq!(entry_hash(&chain, &back), e.hash);
}

#[test]
fn chain_and_chunk_names_are_valid_and_unambiguous() {
    assert_eq!(Chain::workspace().chunk_name(0), "foureyes-history-workspace-000000");
    assert_eq!(
        Chain::project("checkout").chunk_name(12),
        "foureyes-history-project-checkout-000012"
    );
    assert_eq!(
        Chain::parse_chunk_name("foureyes-history-project-a-000001-000003"),
        Some((Chain::project("a-000001"), 3))
    );
    assert_eq!(Chain::parse_chunk_name("foureyes-history-workspace"), None);
    assert_eq!(Chain::parse_chunk_name("other-workspace-000001"), None);
    assert_eq!(Chain::parse_chunk_name("foureyes-history-workspace-00001"), None);
    // Long project names are hashed, and fit with the prefix and the index.
    for len in [200, 221, 222, 253] {
        let name = "p".repeat(len);
        let chunk = Chain::project(&name).chunk_name(999_999);
        assert!(chunk.len() <= 253, "{len}: {}", chunk.len());
        assert!(is_dns_subdomain(&chunk), "{chunk}");
        assert_eq!(Chain::parse_chunk_name(&chunk), Some((Chain::project(&name), 999_999)));
    }
    assert_eq!(
        Chain::project(&"p".repeat(221)).as_str(),
        format!("project-{}", "p".repeat(221))
    );
    let hashed = Chain::project(&"p".repeat(222));
    assert!(hashed.as_str().starts_with("projecthash-"), "{hashed}");
    assert_ne!(hashed, Chain::project(&"p".repeat(223)));
    // A project literally named like a hashed chain does not collide with it.
    assert_ne!(Chain::project(hashed.as_str()), hashed);
    assert!(Chain::project("a.b").as_str() == "project-a.b");
    assert!(Chain::named("workspace").is_ok());
    assert!(Chain::named("Bad_Name").is_err());
    assert!(Chain::named(&"x".repeat(230)).is_err());
    assert!(Chain::workspace().label().len() <= 63);
    assert!(Chain::project(&"p".repeat(200)).label().len() <= 63);
}

#[test]
fn a_well_formed_chain_verifies() {
    let chain = Chain::project("app");
    let chunks = build(&chain, 30, 2_000);
    assert!(chunks.len() > 3, "rolled over: {}", chunks.len());
    let v = verify(&chain, &chunks).unwrap();
    assert_eq!(v.entries.len(), 30);
    assert!(v.entries.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    assert_eq!(v.head_chunk.as_deref(), Some(chunks.last().unwrap().name.as_str()));
    // Chunks are checked in index order whatever order they are read in.
    let mut shuffled = chunks.clone();
    shuffled.reverse();
    assert_eq!(verify(&chain, &shuffled).unwrap(), v);
    // The empty chain verifies.
    assert!(verify(&chain, &[]).unwrap().entries.is_empty());
}

#[test]
fn rollover_stays_under_the_threshold_and_links_the_chunks() {
    let chain = Chain::workspace();
    let one = entry_size(&next_entry(&chain, None, &new("uid-0", action::GRANTED), t0()));
    // Exactly three entries fit (entries have nearly the same size).
    let rollover = one * 3 + one / 2;
    let chunks = build(&chain, 10, rollover);
    for c in &chunks {
        assert!(
            data_size(&c.data) <= rollover + 64,
            "{}: {}",
            c.name,
            data_size(&c.data)
        );
    }
    let counts: Vec<usize> = chunks.iter().map(|c| c.entries().len()).collect();
    assert_eq!(counts, vec![3, 3, 3, 1]);
    for pair in chunks.windows(2) {
        assert_eq!(
            pair[0].next(),
            Some(pair[1].name.as_str()),
            "sealed towards the next chunk"
        );
        let last = pair[0].entries().pop().unwrap().1.unwrap();
        let first = pair[1].entries().remove(0).1.unwrap();
        assert_eq!(first.prev, last.hash);
        assert_eq!(first.seq, last.seq + 1);
    }
    assert_eq!(chunks.last().unwrap().next(), None);
    verify(&chain, &chunks).unwrap();
    // A single entry larger than the threshold still goes in (alone).
    let chunks = build(&chain, 3, 10);
    assert_eq!(
        chunks.iter().map(|c| c.entries().len()).collect::<Vec<_>>(),
        vec![1, 1, 1]
    );
    verify(&chain, &chunks).unwrap();
}

fn edit_entry(chunks: &mut [Chunk], seq: u64, f: impl FnOnce(&mut Entry)) {
    for c in chunks.iter_mut() {
        if let Some(v) = c.data.get_mut(&entry_key(seq)) {
            let mut e: Entry = serde_json::from_str(v).unwrap();
            f(&mut e);
            *v = entry_value(&e);
            return;
        }
    }
    panic!("no entry {seq}");
}

#[test]
fn verify_detects_a_tampered_entry() {
    let chain = Chain::workspace();
    let mut chunks = build(&chain, 12, 1_500);
    edit_entry(&mut chunks, 5, |e| e.actor = "mallory".into());
    let b = verify(&chain, &chunks).unwrap_err();
    assert_eq!(b.seq, Some(5));
    assert!(b.problem.contains("the entry was edited"), "{b}");
    assert!(b.to_string().contains("entry 5"), "{b}");
    // Rehashing the edited entry breaks the next link instead.
    let mut chunks = build(&chain, 12, 1_500);
    edit_entry(&mut chunks, 5, |e| {
        e.actor = "mallory".into();
        e.hash = entry_hash(&Chain::workspace(), e);
    });
    let b = verify(&chain, &chunks).unwrap_err();
    assert_eq!(b.seq, Some(6));
    assert!(b.problem.contains("link to the previous entry is broken"), "{b}");
    // An entry that does not parse.
    let mut chunks = build(&chain, 4, 100_000);
    chunks[0].data.insert(entry_key(2), "{not json".into());
    let b = verify(&chain, &chunks).unwrap_err();
    assert!(b.problem.contains("does not parse"), "{b}");
}

#[test]
fn verify_detects_a_removed_entry() {
    let chain = Chain::workspace();
    let mut chunks = build(&chain, 8, 100_000);
    chunks[0].data.remove(&entry_key(4));
    let b = verify(&chain, &chunks).unwrap_err();
    assert_eq!(b.seq, Some(5));
    assert!(b.problem.contains("entries were removed"), "{b}");
    // Removing the last entries cannot be seen in the chain alone: the mirrored head tells.
    let full = verify(&chain, &build(&chain, 8, 100_000)).unwrap();
    let last = full.last().unwrap();
    let head = ChainHead {
        chain: chain.to_string(),
        chunk: chain.chunk_name(0),
        sequence: last.seq as i64,
        hash: last.hash.clone(),
        time: last.time,
    };
    check_head(&chain, &full, &head).unwrap();
    let mut chunks = build(&chain, 8, 100_000);
    chunks[0].data.remove(&entry_key(8));
    let truncated = verify(&chain, &chunks).unwrap();
    let b = check_head(&chain, &truncated, &head).unwrap_err();
    assert!(b.problem.contains("the chain ends at entry 7"), "{b}");
    let other = ChainHead {
        hash: "f".repeat(64),
        ..head
    };
    assert!(check_head(&chain, &full, &other).is_err());
}

#[test]
fn verify_detects_reordered_entries() {
    let chain = Chain::workspace();
    // Swapping two values: each now sits under the other's key.
    let mut chunks = build(&chain, 6, 100_000);
    let a = chunks[0].data[&entry_key(2)].clone();
    let b = chunks[0].data[&entry_key(3)].clone();
    chunks[0].data.insert(entry_key(2), b);
    chunks[0].data.insert(entry_key(3), a);
    let broken = verify(&chain, &chunks).unwrap_err();
    assert!(broken.problem.contains("moved or reordered"), "{broken}");
    // Swapping and renumbering them: the links break.
    let mut chunks = build(&chain, 6, 100_000);
    let a = chunks[0].data[&entry_key(2)].clone();
    let b = chunks[0].data[&entry_key(3)].clone();
    chunks[0].data.insert(entry_key(2), b);
    chunks[0].data.insert(entry_key(3), a);
    edit_entry(&mut chunks, 2, |e| e.seq = 2);
    edit_entry(&mut chunks, 3, |e| e.seq = 3);
    let broken = verify(&chain, &chunks).unwrap_err();
    assert_eq!(broken.seq, Some(2));
    assert!(broken.problem.contains("link"), "{broken}");
}

#[test]
fn verify_detects_a_broken_rollover_link() {
    let chain = Chain::workspace();
    let fresh = || build(&chain, 12, 1_500);
    assert!(fresh().len() >= 3);
    // A missing chunk in the middle.
    let mut chunks = fresh();
    let gone = chunks.remove(1);
    let b = verify(&chain, &chunks).unwrap_err();
    assert_eq!(b.chunk, gone.name);
    assert!(b.problem.contains("the chunk is missing"), "{b}");
    // A chunk that was never sealed but is followed by another.
    let mut chunks = fresh();
    chunks[0].data.remove(SEAL_KEY);
    let b = verify(&chain, &chunks).unwrap_err();
    assert!(b.problem.contains("never sealed"), "{b}");
    // A seal pointing elsewhere.
    let mut chunks = fresh();
    chunks[0].data.insert(SEAL_KEY.into(), chain.chunk_name(7));
    assert!(verify(&chain, &chunks).unwrap_err().problem.contains("sealed towards"));
    // The first entry of a chunk not linking to the previous chunk's last.
    let mut chunks = fresh();
    let first_of_second: u64 = chunks[1].entries()[0].1.as_ref().unwrap().seq;
    edit_entry(&mut chunks, first_of_second, |e| {
        e.prev = "a".repeat(64);
        e.hash = entry_hash(&Chain::workspace(), e);
    });
    let b = verify(&chain, &chunks).unwrap_err();
    assert_eq!(b.seq, Some(first_of_second));
    assert!(b.problem.contains("link"), "{b}");
    // A chunk of another chain mixed in.
    let mut chunks = fresh();
    chunks.push(Chunk {
        name: Chain::project("x").chunk_name(9),
        data: Default::default(),
    });
    assert!(verify(&chain, &chunks).is_err());
    // An empty chunk after the first.
    let mut chunks = fresh();
    let last = chunks.len() - 1;
    let name = chain.chunk_name(last as u32 + 1);
    chunks[last].data.insert(SEAL_KEY.into(), name.clone());
    chunks.push(Chunk {
        name,
        data: Default::default(),
    });
    assert!(verify(&chain, &chunks).unwrap_err().problem.contains("no entry"));
}

#[test]
fn known_keys_are_found_in_the_head_and_the_chunk_before() {
    let chain = Chain::workspace();
    let chunks = build(&chain, 12, 1_500);
    let n = chunks.len();
    let head = Head::from_chunk(
        (n - 1) as u32,
        Some("1".into()),
        &chunks[n - 1],
        Some(&chunks[n - 2]),
        None,
    )
    .unwrap();
    let in_head = chunks[n - 1].entries()[0].1.clone().unwrap();
    let in_previous = chunks[n - 2].entries()[0].1.clone().unwrap();
    let older = chunks[0].entries()[0].1.clone().unwrap();
    assert_eq!(head.find(&in_head.key), Some((in_head.seq, (n - 1) as u32)));
    assert_eq!(head.find(&in_previous.key), Some((in_previous.seq, (n - 2) as u32)));
    assert_eq!(head.find(&older.key), None, "only two chunks are looked at");
    assert_eq!(head.last.as_ref().map(|l| l.0), Some(12));
    // After a rollover the old head's keys are the previous ones.
    let rolled = head.rolled_over();
    assert_eq!(rolled.find(&in_head.key), Some((in_head.seq, (n - 1) as u32)));
    assert_eq!(rolled.find(&in_previous.key), None);
}

#[test]
fn the_planner_seals_a_full_chunk_before_writing_the_next() {
    let chain = Chain::workspace();
    let one = entry_size(&next_entry(&chain, None, &new("uid-0", action::GRANTED), t0()));
    let mut head = Head::default();
    let a = new("a", action::GRANTED);
    let b = new("b", action::GRANTED);
    let c = new("c", action::GRANTED);
    let pending = vec![(0, &a), (1, &b), (2, &c)];
    // A batch fills the chunk with what fits.
    let Step::Write { data, entries } = plan(&chain, &head, &pending, one * 2 + 10, t0()) else {
        panic!("expected a write")
    };
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].1.prev, entries[0].1.hash);
    head.data = data;
    head.last = entries.last().map(|(_, e)| (e.seq, e.hash.clone(), e.time));
    // The next one does not fit: seal first.
    let Step::Seal(sealed) = plan(&chain, &head, &pending[2..], one * 2 + 10, t0()) else {
        panic!("expected a seal")
    };
    assert_eq!(
        sealed.get(SEAL_KEY).map(String::as_str),
        Some("foureyes-history-workspace-000001")
    );
    head.data = sealed;
    let rolled = head.rolled_over();
    let Step::Write { entries, .. } = plan(&chain, &rolled, &pending[2..], one * 2 + 10, t0()) else {
        panic!("expected a write")
    };
    assert_eq!(entries[0].1.seq, 3);
    assert_eq!(rolled.index, 1);
}

#[test]
fn repeated_keys_in_a_batch_take_the_first_result() {
    let results = vec![
        Some(Ok(Appended {
            seq: 4,
            chunk: "c".into(),
            written: true,
        })),
        None,
        None,
    ];
    let out = finish(results, &[0, 0, 2], Some(Error::Interrupted));
    assert_eq!(
        out[1].as_ref().unwrap(),
        &Appended {
            seq: 4,
            chunk: "c".into(),
            written: false
        }
    );
    assert!(matches!(out[2], Err(Error::Interrupted)));
}

#[test]
fn fields_are_bounded() {
    let chain = Chain::workspace();
    let big = new("u", action::REFUSED)
        .details("é".repeat(5_000))
        .subject("x".repeat(1_000));
    let e = next_entry(&chain, None, &big, t0());
    assert!(e.details.len() <= MAX_DETAILS);
    assert!(e.subject.as_ref().unwrap().len() <= MAX_FIELD + 16);
    assert!(entry_size(&e) < 4 * 1024);
    assert_eq!(
        new("u", action::REFUSED).transition("Refused/NotAuthorized").key,
        "u/Refused/NotAuthorized"
    );
}

#[test]
fn api_errors_are_classified() {
    let conflict = Error::Api {
        step: "x",
        code: Some(409),
        message: "conflict".into(),
    };
    assert!(conflict.is_conflict() && !conflict.is_namespace_gone());
    let terminating = Error::Api {
        step: "x",
        code: Some(403),
        message: "configmaps \"x\" is forbidden: unable to create new content in namespace ws-a because it is being terminated".into(),
    };
    assert!(terminating.is_namespace_gone());
    let denied = Error::Api {
        step: "x",
        code: Some(403),
        message: "denied by policy".into(),
    };
    assert!(!denied.is_namespace_gone());
}
