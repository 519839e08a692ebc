//! Who someone is, from what the API server verified at admission.

use std::collections::BTreeMap;

use crate::api::manifests::{CREATED_BY_ANNOTATION, CREATED_BY_GROUPS_ANNOTATION, VOTES_ANNOTATION};
use crate::config::Principals;

/// Whether `user` is a partner: named as a user in the configuration, or the
/// creator stamped by the admission policy is that very user and belongs to
/// a partner group. (A trusted asserter that writes a partner's name into an
/// identity field does not carry the partner's groups.)
pub fn is_partner(partners: &Principals, user: &str, annotations: Option<&BTreeMap<String, String>>) -> bool {
    let groups: Vec<String> = match annotations.and_then(|a| a.get(CREATED_BY_ANNOTATION)) {
        Some(creator) if creator == user => annotations
            .and_then(|a| a.get(CREATED_BY_GROUPS_ANNOTATION))
            .map(|g| g.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        _ => vec![],
    };
    partners.contains(user, &groups)
}

/// The groups the API server authenticated the voter of `spec.approvals[index]`
/// with, read from the admission stamp `foureyes.dev/votes` (one line per
/// write that appended votes: `<from>\t<to>\t<groups>\t<user>`). Empty when
/// the vote was written by someone else in `user`'s name (a trusted
/// asserter), or when no stamp covers it.
pub fn vote_groups(annotations: Option<&BTreeMap<String, String>>, index: usize, user: &str) -> Vec<String> {
    let Some(stamp) = annotations.and_then(|a| a.get(VOTES_ANNOTATION)) else {
        return vec![];
    };
    for line in stamp.lines() {
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
            if writer != user {
                return vec![];
            }
            return groups.split(',').filter(|g| !g.is_empty()).map(str::to_owned).collect();
        }
    }
    vec![]
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
