//! Readable, unique object names for what the plugin creates:
//! `<subject>-<role>-<suffix>`, a DNS-1123 label of at most 63 characters,
//! so that it is a valid name for our objects and for the native RBAC
//! objects named after them.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Longest name generated (a DNS-1123 label).
pub const MAX_NAME: usize = 63;
/// Length of the random suffix.
pub const SUFFIX_LEN: usize = 5;
const ROLE_MAX: usize = 24;

/// Lower-case letters and digits, every other run of characters one `-`,
/// without leading or trailing `-`: `Jane.Doe@Example.com` → `jane-doe-example-com`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn cut(s: &str, max: usize) -> &str {
    s.get(..max.min(s.len())).unwrap_or(s).trim_end_matches('-')
}

/// `<subject>-<role>-<suffix>`: the subject's and the role's slugs, the role
/// cut to 24 characters and the subject to what is left of 63. `suffix`
/// should be [`random_suffix`]; it is a parameter so that tests are exact.
pub fn generate(subject: &str, role: &str, suffix: &str) -> String {
    let suffix = cut(&slug(suffix), SUFFIX_LEN * 2).to_owned();
    let suffix = if suffix.is_empty() { "x".to_owned() } else { suffix };
    let role = {
        let r = slug(role);
        let r = cut(&r, ROLE_MAX).to_owned();
        if r.is_empty() { "role".to_owned() } else { r }
    };
    let room = MAX_NAME - role.len() - suffix.len() - 2;
    let subject = {
        let s = slug(subject);
        let s = cut(&s, room).to_owned();
        if s.is_empty() { "subject".to_owned() } else { s }
    };
    format!("{subject}-{role}-{suffix}")
}

/// Five characters of `[a-z0-9]`, different on every call: a hash of the
/// current time, the process and a counter (no randomness source needed;
/// a clash makes the create fail with AlreadyExists, never overwrite).
pub fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    h.finalize()
        .iter()
        .take(SUFFIX_LEN)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Whether `name` is a DNS-1123 label.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_letters_and_digits() {
        assert_eq!(slug("Jane.Doe@Example.com"), "jane-doe-example-com");
        assert_eq!(
            slug("system:serviceaccount:ci:deployer"),
            "system-serviceaccount-ci-deployer"
        );
        assert_eq!(slug("--a__b--"), "a-b");
        assert_eq!(slug("äöü"), "");
        assert_eq!(slug("checkout/admin"), "checkout-admin");
    }

    #[test]
    fn names_are_readable_labels() {
        assert_eq!(generate("dave", "checkout/admin", "k3x9q"), "dave-checkout-admin-k3x9q");
        assert_eq!(
            generate("jane@example.com", "manager", "ab12c"),
            "jane-example-com-manager-ab12c"
        );
        assert_eq!(generate("äöü", "", ""), "subject-role-x");
    }

    #[test]
    fn long_subjects_are_cut_to_63_characters() {
        let long = "a".repeat(200);
        let role = format!("{}/{}", "p".repeat(40), "r".repeat(40));
        for (s, r) in [
            (long.as_str(), "admin"),
            ("x", role.as_str()),
            (long.as_str(), role.as_str()),
        ] {
            let name = generate(s, r, &random_suffix());
            assert!(is_dns_label(&name), "{name}");
            assert!(name.len() <= MAX_NAME, "{name}");
        }
        // A cut that lands on a separator does not leave a double dash.
        let name = generate(&format!("{}-b", "a".repeat(50)), "manager", "abcde");
        assert!(is_dns_label(&name) && !name.contains("--"), "{name}");
    }

    #[test]
    fn suffixes_differ() {
        let a = random_suffix();
        let b = random_suffix();
        assert_eq!(a.len(), SUFFIX_LEN);
        assert_ne!(a, b);
        assert!(is_dns_label(&a));
    }
}
