//! Who holds a role now, and who counts as a workspace manager: one
//! derivation for the operator and the plugin.

use chrono::{DateTime, Utc};

use crate::api::{BindingPhase, RoleBinding, SubjectKind, WorkspaceRole};
use crate::policy::identity::is_service_account;

/// Whether a binding is in effect now (per its last status): a revocation
/// or deletion counts at once, before the status reports it.
pub fn is_active(b: &RoleBinding, now: DateTime<Utc>) -> bool {
    b.status
        .as_ref()
        .is_some_and(|s| s.phase == Some(BindingPhase::Active) && s.expires_at.is_some_and(|e| e > now))
        && b.metadata.deletion_timestamp.is_none()
        && b.spec.revocation.is_none()
}

/// Whether a binding makes its subject a workspace manager now. Managers are
/// users: a group's members are not known, so a group's manager binding
/// grants the Role but never a vote. A ServiceAccount is never a manager
/// either: everyone who can mint its tokens or impersonate it acts as it, so
/// it is not one person (DESIGN §2, invariant 4).
pub fn is_active_manager(b: &RoleBinding, now: DateTime<Utc>) -> bool {
    b.spec.workspace_role == Some(WorkspaceRole::Manager)
        && b.spec.subject.kind == SubjectKind::User
        && !is_service_account(&b.spec.subject.name)
        && is_active(b, now)
}

/// The users who are managers now, each with the start of their oldest
/// active manager binding (for the cooling-off of new managers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Managers(std::collections::BTreeMap<String, DateTime<Utc>>);

impl Managers {
    /// Whether `user` is a manager now.
    pub fn contains(&self, user: &str) -> bool {
        self.0.contains_key(user)
    }

    /// Since when `user` has been a manager.
    pub fn since(&self, user: &str) -> Option<DateTime<Utc>> {
        self.0.get(user).copied()
    }

    /// The managers' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// Each manager with since when.
    pub fn iter(&self) -> impl Iterator<Item = (&String, DateTime<Utc>)> {
        self.0.iter().map(|(m, since)| (m, *since))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The users who are managers now, by the bindings of one workspace. A
/// binding active from before its status recorded the activation counts as
/// long-standing.
pub fn managers<'a>(bindings: impl IntoIterator<Item = &'a RoleBinding>, now: DateTime<Utc>) -> Managers {
    let mut out = std::collections::BTreeMap::new();
    for b in bindings.into_iter().filter(|b| is_active_manager(b, now)) {
        let since = b
            .status
            .as_ref()
            .and_then(|s| s.activated_at)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        out.entry(b.spec.subject.name.clone())
            .and_modify(|s: &mut DateTime<Utc>| *s = (*s).min(since))
            .or_insert(since);
    }
    Managers(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RoleBindingSpec, RoleBindingStatus, Subject};

    fn binding(subject: Subject, role: WorkspaceRole, phase: BindingPhase) -> RoleBinding {
        let mut b = RoleBinding::new(
            "b",
            RoleBindingSpec {
                subject,
                workspace_role: Some(role),
                project: None,
                project_role: None,
                expires_at: None,
                duration: Some("1h".parse().unwrap()),
                justification: "x".into(),
                granted_by: "pat".into(),
                origin_request: None,
                revocation: None,
                ratifications: vec![],
            },
        );
        b.status = Some(RoleBindingStatus {
            phase: Some(phase),
            expires_at: Some(DateTime::<Utc>::MAX_UTC),
            ..Default::default()
        });
        b
    }

    #[test]
    fn only_active_user_managers_that_are_not_service_accounts() {
        let now = Utc::now();
        let alice = binding(Subject::user("alice"), WorkspaceRole::Manager, BindingPhase::Active);
        let sa = binding(
            Subject::user("system:serviceaccount:team:bot"),
            WorkspaceRole::Manager,
            BindingPhase::Active,
        );
        let mut group = binding(Subject::user("oncall"), WorkspaceRole::Manager, BindingPhase::Active);
        group.spec.subject.kind = SubjectKind::Group;
        let member = binding(Subject::user("bob"), WorkspaceRole::Member, BindingPhase::Active);
        let pending = binding(Subject::user("carol"), WorkspaceRole::Manager, BindingPhase::Pending);
        let all = [alice, sa, group, member, pending];
        assert_eq!(managers(&all, now).names().collect::<Vec<_>>(), vec!["alice"]);
    }
}
