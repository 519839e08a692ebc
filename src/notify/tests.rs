use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::sender::{Queue, Secrets, Sink, backoff, sign, verify};
use super::*;
use crate::config::{SecretKeyRef, Sink as SinkConfig};
use crate::policy::transition::{Actor, Kind, Transition};

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn requested() -> Transition {
    Transition {
        kind: Kind::Requested {
            duration: "2h".into(),
            required: 2,
            justification: "INC-7 <db> & co".into(),
            filed_by: None,
        },
        actor: Actor::User("alice".into()),
        subject: "User dave".into(),
        role: "app/admin".into(),
    }
}

fn reference() -> ObjectReference {
    ObjectReference {
        api_version: Some("foureyes.dev/v1alpha1".into()),
        kind: Some("RoleRequest".into()),
        namespace: Some("ws-a".into()),
        name: Some("dave-admin".into()),
        uid: Some("r-1".into()),
        ..Default::default()
    }
}

fn pending() -> Message {
    let notice = notices(&[requested()]).pop().expect("a notice");
    Message::new(
        notice,
        Object::of(&reference()),
        Some("a".into()),
        &["bob".into(), "carol".into()],
        at(),
    )
}

fn sink(yaml: &str) -> SinkConfig {
    serde_yaml::from_str(yaml).unwrap()
}

fn key_ref() -> SecretKeyRef {
    SecretKeyRef {
        name: "hooks".into(),
        key: "hmac".into(),
    }
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
    // RFC 4231, test case 2.
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let sig = sign(b"k", b"{}");
    assert!(verify(b"k", b"{}", &sig));
    assert!(!verify(b"other", b"{}", &sig));
    assert!(!verify(b"k", b"{ }", &sig));
    assert!(!verify(b"k", b"{}", sig.trim_start_matches("sha256=")));
    assert!(!verify(b"k", b"{}", "sha256=zz"));
}

/// The attributes CloudEvents 1.0 requires (specversion, id, source, type)
/// and the optional ones it defines (subject, time, datacontenttype), with
/// the data a receiver acts on.
#[test]
fn a_new_request_is_a_cloudevent_naming_who_can_approve() {
    let msg = pending();
    let event: serde_json::Value = serde_json::from_slice(&cloudevents::body(&msg, "/foureyes")).unwrap();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], "r-1/Requested");
    assert_eq!(event["source"], "/foureyes");
    assert_eq!(event["type"], "dev.foureyes.request.pending");
    assert_eq!(event["subject"], "namespaces/ws-a/rolerequests/dave-admin");
    assert_eq!(event["time"], "2026-03-01T10:00:00.000Z");
    assert_eq!(event["datacontenttype"], "application/json");
    let data = &event["data"];
    assert_eq!(data["reason"], "Requested");
    assert_eq!(data["approvers"], json!(["bob", "carol"]));
    assert_eq!(data["workspace"], "a");
    assert_eq!(data["subject"], "User dave");
    assert_eq!(data["role"], "app/admin");
    assert_eq!(data["actor"], "alice");
    assert_eq!(data["requiredApprovals"], 2);
    assert_eq!(data["justification"], "INC-7 <db> & co");
    assert_eq!(
        data["object"],
        json!({"apiVersion": "foureyes.dev/v1alpha1", "kind": "RoleRequest", "namespace": "ws-a", "name": "dave-admin", "uid": "r-1"})
    );
    // The summary is the event's note, word for word.
    let note = crate::audit::transitions::event(&requested()).unwrap().note;
    assert_eq!(data["summary"], note.as_str());
    // Only the attributes of the spec, lower-case, as CloudEvents requires.
    for (name, _) in event.as_object().unwrap() {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{name}"
        );
    }
}

#[test]
fn the_slack_body_has_text_and_blocks_with_markup_escaped() {
    let mut msg = pending();
    msg.notice.event.note = "a <b> & c".into();
    let body: serde_json::Value = serde_json::from_slice(&slack::body(&msg)).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("*Requested*: a &lt;b&gt; &amp; c"), "{text}");
    assert!(text.contains("Can approve: bob, carol"), "{text}");
    assert_eq!(body["blocks"][0]["text"]["text"], text);
    let context = body["blocks"][1]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.contains("workspace a") && context.contains("dev.foureyes.request.pending"),
        "{context}"
    );
    msg.approvers.clear();
    let body: serde_json::Value = serde_json::from_slice(&slack::body(&msg)).unwrap();
    assert!(body["text"].as_str().unwrap().contains("only a partner can"));
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    let metrics = Arc::new(Metrics::new());
    let (queue, mut rx) = Queue::new(
        &sink("{name: hooks, url: 'https://x', secretRef: {name: a, key: b}}"),
        2,
    );
    let (only_expiring, mut rx2) = Queue::new(
        &sink("{name: chat, format: slack, url: 'https://x', types: [binding.expiring]}"),
        2,
    );
    let notifier = Notifier::with_queues(vec![queue, only_expiring], metrics.clone());
    let started = std::time::Instant::now();
    for _ in 0..5 {
        notifier.notify(&reference(), Some("a"), &[requested()], &[]);
    }
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
    assert_eq!(rx.try_recv().unwrap().id, "r-1/Requested");
    assert!(rx.try_recv().is_ok() && rx.try_recv().is_err(), "two queued");
    assert!(rx2.try_recv().is_err(), "a sink gets only its types");
    let text = metrics.encode();
    assert!(
        text.contains(r#"foureyes_notifications_dropped_total{sink="hooks",reason="queue_full"} 3"#),
        "{text}"
    );
    assert!(!text.contains(r#"sink="chat""#), "{text}");
}

#[test]
fn backoff_doubles_from_a_second_up_to_thirty() {
    let secs: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
}

/// A plain HTTP receiver on localhost answering each request with the next
/// status of `statuses`; returns its URL and what it received.
async fn receiver(statuses: Vec<u16>) -> (String, Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(std::sync::Mutex::new(vec![]));
    let seen = got.clone();
    tokio::spawn(async move {
        for status in statuses {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![];
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = conn.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buf.len() < i + 4 + len {
                        let n = conn.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[i + 4..i + 4 + len].to_vec());
                }
            };
            seen.lock().unwrap().push((head, body));
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            conn.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    (url, got)
}

#[tokio::test]
async fn delivery_signs_retries_server_errors_and_gives_up_on_refusals() {
    let (url, got) = receiver(vec![503, 200, 400]).await;
    let cfg = sink(&format!(
        "{{name: hooks, url: '{url}', secretRef: {{name: hooks, key: hmac}}, maxAttempts: 3, timeout: 2s}}"
    ));
    let sink = Sink::new(&cfg, "/foureyes", Secrets::fixed([(key_ref(), b"s3cret".to_vec())])).unwrap();
    let msg = pending();
    sink.deliver(&msg).await.expect("delivered on the second attempt");
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 2);
        let (head, body) = &got[1];
        assert!(head.starts_with("post /hook http/1.1"), "{head}");
        assert!(head.contains("content-type: application/cloudevents+json"), "{head}");
        let sig = head
            .lines()
            .find_map(|l| l.strip_prefix("x-foureyes-signature: "))
            .expect("signed");
        assert!(verify(b"s3cret", body, sig));
        assert_eq!(body, &sink.body(&msg));
    }
    let refused = sink.deliver(&msg).await.expect_err("400 is not retried");
    assert_eq!((refused.reason, refused.retry), ("status", false));
    assert_eq!(got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    // Accepts and holds the connections, never answering.
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((c, _)) = listener.accept().await {
            held.push(c);
        }
    });
    let cfg = sink(&format!(
        "{{name: hole, format: slack, url: '{url}', maxAttempts: 1, timeout: 200ms}}"
    ));
    let sink = Sink::new(&cfg, "/foureyes", Secrets::fixed([])).unwrap();
    let started = std::time::Instant::now();
    let f = sink.deliver(&pending()).await.expect_err("no answer");
    assert_eq!(f.reason, "timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn a_bad_ca_bundle_is_refused_at_start() {
    let cfg = sink(
        "{name: x, format: slack, url: 'https://x', caBundle: \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}",
    );
    assert!(Sink::new(&cfg, "/foureyes", Secrets::fixed([])).is_err());
}
