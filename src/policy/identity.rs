//! Who someone is, from what the API server verified at admission.

use std::collections::BTreeMap;

use crate::api::manifests::{CREATED_BY_ANNOTATION, CREATED_BY_GROUPS_ANNOTATION};
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

#[cfg(test)]
mod tests {
    use super::*;

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
