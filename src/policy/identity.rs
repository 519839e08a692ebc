//! Who someone is, from what the API server verified at admission.

use crate::wire::{CREATED_BY_ANNOTATION, CREATED_BY_GROUPS_ANNOTATION, VOTES_ANNOTATION};
use std::collections::BTreeMap;

use crate::config::Principals;

/// The groups the API server authenticated `user` with when they created
/// the object, from the creator stamp; `None` when the object was created by
/// someone else in `user`'s name (a trusted asserter) or carries no stamp.
pub fn creator_groups(annotations: Option<&BTreeMap<String, String>>, user: &str) -> Option<Vec<String>> {
    match annotations.and_then(|a| a.get(CREATED_BY_ANNOTATION)) {
        Some(creator) if creator == user => Some(
            annotations
                .and_then(|a| a.get(CREATED_BY_GROUPS_ANNOTATION))
                .map(|g| split_groups(g))
                .unwrap_or_default(),
        ),
        _ => None,
    }
}

/// Whether the object was written by `user` themselves, or by a trusted
/// asserter in their name, per the creator stamp. Admission refuses anything
/// else; this check keeps an object admitted while the policies were missing
/// or weakened from ever acting in someone else's name.
pub fn written_by_self_or_asserter(
    annotations: Option<&BTreeMap<String, String>>,
    user: &str,
    asserters: &Principals,
) -> bool {
    let Some(creator) = annotations.and_then(|a| a.get(CREATED_BY_ANNOTATION)) else {
        return false;
    };
    if creator == user {
        return true;
    }
    let groups = annotations
        .and_then(|a| a.get(CREATED_BY_GROUPS_ANNOTATION))
        .map(|g| split_groups(g))
        .unwrap_or_default();
    asserters.contains(creator, &groups)
}

fn split_groups(list: &str) -> Vec<String> {
    list.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Whether `user` is a partner: named as a user in the configuration, or the
/// creator stamped by the admission policy is that very user and belongs to
/// a partner group. (A trusted asserter that writes a partner's name into an
/// identity field does not carry the partner's groups.)
pub fn is_partner(partners: &Principals, user: &str, annotations: Option<&BTreeMap<String, String>>) -> bool {
    partners.contains(user, &creator_groups(annotations, user).unwrap_or_default())
}

/// Who appended a vote, per the admission stamp `foureyes.dev/votes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteStamp {
    /// The voter appended it themselves, authenticated with these groups.
    Own(Vec<String>),
    /// A trusted asserter appended it in the voter's name: the voter's
    /// groups are unknown.
    Asserted,
    /// No stamp covers it, or someone who is not a trusted asserter wrote
    /// it in another's name: nothing about it is verified.
    Unverified,
}

/// The stamp of `spec.approvals[index]`, cast in `user`'s name, from the
/// annotation `foureyes.dev/votes` (one line per write that appended votes:
/// `<from>\t<to>\t<groups>\t<writer>`). A line written by someone other
/// than `user` counts as [`VoteStamp::Asserted`] only when its writer's
/// stamped groups (or name) make them a trusted asserter.
pub fn vote_stamp(
    annotations: Option<&BTreeMap<String, String>>,
    index: usize,
    user: &str,
    asserters: &Principals,
) -> VoteStamp {
    let Some(stamp) = annotations.and_then(|a| a.get(VOTES_ANNOTATION)) else {
        return VoteStamp::Unverified;
    };
    for line in stamp.split('\n') {
        let mut parts = line.splitn(4, '\t');
        let (Some(from), Some(to), Some(groups), Some(writer)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (Ok(from), Ok(to)) = (from.parse::<usize>(), to.parse::<usize>()) else {
            continue;
        };
        if (from..to).contains(&index) {
            let groups = split_groups(groups);
            return if writer == user {
                VoteStamp::Own(groups)
            } else if asserters.contains(writer, &groups) {
                VoteStamp::Asserted
            } else {
                VoteStamp::Unverified
            };
        }
    }
    VoteStamp::Unverified
}

/// Who appended `spec.approvals[index]`, per the votes stamp (the writer of
/// the line that covers it), if a line does.
pub fn vote_writer(annotations: Option<&BTreeMap<String, String>>, index: usize) -> Option<String> {
    let stamp = annotations?.get(VOTES_ANNOTATION)?;
    stamp.split('\n').find_map(|line| {
        let mut parts = line.splitn(4, '\t');
        let from = parts.next()?.parse::<usize>().ok()?;
        let to = parts.next()?.parse::<usize>().ok()?;
        let _groups = parts.next()?;
        let writer = parts.next()?;
        (from..to).contains(&index).then(|| writer.to_owned())
    })
}

/// The groups the API server authenticated the voter of `spec.approvals[index]`
/// with, when the voter appended it themselves; empty otherwise.
pub fn vote_groups(annotations: Option<&BTreeMap<String, String>>, index: usize, user: &str) -> Vec<String> {
    match vote_stamp(annotations, index, user, &Principals::default()) {
        VoteStamp::Own(groups) => groups,
        _ => vec![],
    }
}

/// Whether a user name is a Kubernetes ServiceAccount's: anyone who can mint
/// its tokens (or impersonate it) can act as it, so it is never one person.
pub fn is_service_account(user: &str) -> bool {
    user.starts_with("system:serviceaccount:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_groups_come_from_the_line_that_appended_the_vote() {
        let a = BTreeMap::from([(
            VOTES_ANNOTATION.to_owned(),
            "0\t1\tsystem:authenticated\talice\n1\t3\tplatform,system:authenticated\tpat\n3\t4\tplatform\tgitops\n"
                .to_owned(),
        )]);
        assert_eq!(vote_groups(Some(&a), 0, "alice"), vec!["system:authenticated"]);
        assert_eq!(
            vote_groups(Some(&a), 1, "pat"),
            vec!["platform", "system:authenticated"]
        );
        assert_eq!(
            vote_groups(Some(&a), 2, "pat"),
            vec!["platform", "system:authenticated"]
        );
        assert!(
            vote_groups(Some(&a), 3, "pat").is_empty(),
            "written by another user (an asserter) in pat's name: no groups"
        );
        assert!(vote_groups(Some(&a), 4, "pat").is_empty(), "no line covers it");
        assert!(vote_groups(None, 0, "alice").is_empty());
        let garbled = BTreeMap::from([(VOTES_ANNOTATION.to_owned(), "x\ty\tplatform\tpat\n0\t1".to_owned())]);
        assert!(vote_groups(Some(&garbled), 0, "pat").is_empty());
    }

    #[test]
    fn a_vote_written_in_another_name_is_verified_only_for_trusted_asserters() {
        let asserters: Principals = serde_yaml::from_str("{groups: [gitops-controllers]}").unwrap();
        let a = BTreeMap::from([(
            VOTES_ANNOTATION.to_owned(),
            "0\t1\tteam\talice\n1\t2\tgitops-controllers\targo\n2\t3\tteam\tmallory\n".to_owned(),
        )]);
        assert_eq!(
            vote_stamp(Some(&a), 0, "alice", &asserters),
            VoteStamp::Own(vec!["team".into()])
        );
        assert_eq!(vote_stamp(Some(&a), 1, "pat", &asserters), VoteStamp::Asserted);
        assert_eq!(
            vote_stamp(Some(&a), 2, "bob", &asserters),
            VoteStamp::Unverified,
            "mallory is no asserter: a copy of bob's vote is not bob's"
        );
        assert_eq!(
            vote_stamp(Some(&a), 3, "bob", &asserters),
            VoteStamp::Unverified,
            "no line"
        );
        assert_eq!(vote_stamp(None, 0, "alice", &asserters), VoteStamp::Unverified);
    }

    #[test]
    fn the_writer_of_a_vote_is_read_from_its_line() {
        let a = BTreeMap::from([(
            VOTES_ANNOTATION.to_owned(),
            "0\t1\tteam\talice\n1\t3\tci\targo\n".to_owned(),
        )]);
        assert_eq!(vote_writer(Some(&a), 0).as_deref(), Some("alice"));
        assert_eq!(vote_writer(Some(&a), 2).as_deref(), Some("argo"));
        assert_eq!(vote_writer(Some(&a), 3), None);
    }

    #[test]
    fn only_the_user_or_an_asserter_writes_in_a_name() {
        let asserters: Principals = serde_yaml::from_str("{groups: [gitops]}").unwrap();
        assert!(written_by_self_or_asserter(
            Some(&stamped("pat", "")),
            "pat",
            &asserters
        ));
        assert!(written_by_self_or_asserter(
            Some(&stamped("argo", "gitops")),
            "pat",
            &asserters
        ));
        assert!(
            !written_by_self_or_asserter(Some(&stamped("erin", "team")), "pat", &asserters),
            "erin wrote pat's name (admitted while the identity policy only warned)"
        );
        assert!(!written_by_self_or_asserter(None, "pat", &asserters), "no stamp");
    }

    #[test]
    fn creator_groups_only_for_the_creator() {
        let s = stamped("alice", "team,system:authenticated");
        assert_eq!(
            creator_groups(Some(&s), "alice"),
            Some(vec!["team".to_owned(), "system:authenticated".to_owned()])
        );
        assert_eq!(creator_groups(Some(&s), "bob"), None);
        assert_eq!(creator_groups(None, "alice"), None);
    }

    fn stamped(user: &str, groups: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (CREATED_BY_ANNOTATION.to_owned(), user.to_owned()),
            (CREATED_BY_GROUPS_ANNOTATION.to_owned(), groups.to_owned()),
        ])
    }

    #[test]
    fn partners_by_user_name_or_by_stamped_group() {
        let p: Principals = serde_yaml::from_str("{users: [pat], groups: [platform]}").unwrap();
        assert!(is_partner(&p, "pat", None), "named user");
        assert!(
            is_partner(&p, "sam", Some(&stamped("sam", "system:authenticated,platform"))),
            "stamped group"
        );
        assert!(!is_partner(&p, "sam", Some(&stamped("sam", "system:authenticated"))));
        assert!(!is_partner(&p, "sam", None), "no stamp, no group");
        assert!(
            !is_partner(&p, "sam", Some(&stamped("gitops", "platform"))),
            "the creator's groups count only for the creator"
        );
        assert!(!is_partner(&p, "sam", Some(&stamped("sam", ""))));
    }
}
