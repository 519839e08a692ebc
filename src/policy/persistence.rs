//! DESIGN §2, invariant 10: what a grantee made for themselves during a
//! project-role grant. At the grant's end the operator lists the objects that
//! carry access in the tenant namespaces (RoleBindings, ServiceAccount token
//! Secrets); this decides which of them the holder created while the grant
//! was active, from the creator stamp that the admission policy
//! `foureyes-tenant-stamp` writes on them.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{Subject, SubjectKind};
use crate::policy::identity::creator_groups;
use crate::wire::CREATED_BY_ANNOTATION;

/// Whether the object with `meta` was created by `subject` (the holder of a
/// grant active since `since`) during the grant: created no earlier than a
/// second before `since` (creation times have a second's precision), and
/// stamped at admission with the subject user as its creator, or, for a
/// group subject, with a creator in that group. An unstamped object (made
/// before the stamp policy was installed, or outside a tenant namespace) is
/// nobody's.
pub fn made_by_holder(meta: &ObjectMeta, subject: &Subject, since: DateTime<Utc>) -> bool {
    let created = meta.creation_timestamp.as_ref().map(crate::api::time::from_k8s);
    let from = since.checked_sub_signed(chrono::Duration::seconds(1)).unwrap_or(since);
    if created.is_none_or(|c| c < from) {
        return false;
    }
    let annotations = meta.annotations.as_ref();
    let Some(creator) = annotations.and_then(|a| a.get(CREATED_BY_ANNOTATION)) else {
        return false;
    };
    match subject.kind {
        SubjectKind::User => *creator == subject.name,
        SubjectKind::Group => creator_groups(annotations, creator).is_some_and(|groups| groups.contains(&subject.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CREATED_BY_GROUPS_ANNOTATION;

    fn meta(created: &str, creator: Option<(&str, &str)>) -> ObjectMeta {
        let at: DateTime<Utc> = created.parse().unwrap();
        ObjectMeta {
            creation_timestamp: Some(crate::api::time::to_k8s(at)),
            annotations: creator.map(|(user, groups)| {
                [
                    (CREATED_BY_ANNOTATION.to_owned(), user.to_owned()),
                    (CREATED_BY_GROUPS_ANNOTATION.to_owned(), groups.to_owned()),
                ]
                .into()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_what_the_holder_created_during_the_grant() {
        let since: DateTime<Utc> = "2030-01-01T12:00:00.400Z".parse().unwrap();
        let dave = Subject::user("dave");
        let during = meta("2030-01-01T12:05:00Z", Some(("dave", "system:authenticated")));
        assert!(made_by_holder(&during, &dave, since));
        // The second the grant began in (creation times are truncated).
        assert!(made_by_holder(
            &meta("2030-01-01T12:00:00Z", Some(("dave", ""))),
            &dave,
            since
        ));
        assert!(
            !made_by_holder(&meta("2030-01-01T11:59:58Z", Some(("dave", ""))), &dave, since),
            "made before the grant"
        );
        assert!(
            !made_by_holder(&meta("2030-01-01T12:05:00Z", Some(("carol", ""))), &dave, since),
            "someone else's"
        );
        assert!(
            !made_by_holder(&meta("2030-01-01T12:05:00Z", None), &dave, since),
            "unstamped"
        );
        let oncall = Subject::group("oncall");
        assert!(made_by_holder(
            &meta("2030-01-01T12:05:00Z", Some(("erin", "oncall,system:authenticated"))),
            &oncall,
            since
        ));
        assert!(!made_by_holder(
            &meta("2030-01-01T12:05:00Z", Some(("erin", "system:authenticated"))),
            &oncall,
            since
        ));
    }
}
