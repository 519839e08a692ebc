//! The names other programs see: labels, annotations, the field manager,
//! finalizer, ConfigMap, Lease, admission policy and role names. A leaf:
//! it imports nothing of ours, and everything may import it.

/// The namespace holding the admission policies' parameters.
pub const PARAMS_NAMESPACE: &str = "foureyes-system";
/// The ConfigMap holding the admission policies' parameters.
pub const PARAMS_NAME: &str = "foureyes-admission";
/// The policy that ties identity fields to the authenticated caller.
pub const IDENTITY_POLICY: &str = "foureyes-identity";
/// The policy that records who created a binding, with their groups.
pub const CREATOR_POLICY: &str = "foureyes-creator";
/// Annotation: the user who created the object, stamped at admission.
pub const CREATED_BY_ANNOTATION: &str = "foureyes.dev/created-by";
/// Annotation: that user's groups (comma-separated), stamped at admission.
pub const CREATED_BY_GROUPS_ANNOTATION: &str = "foureyes.dev/created-by-groups";
/// The label on the ConfigMaps the admission policies and the operator trust
/// (the parameters, the operator's configuration): `foureyes-params` guards
/// every ConfigMap that carries it, before or after a change.
pub const TRUST_ANCHOR_LABEL: &str = "foureyes.dev/trust-anchor";
/// The policy that lets only the operator write its leader Lease.
pub const LEASE_POLICY: &str = "foureyes-lease";
/// The default leader Lease, `<namespace>/<name>`.
pub const DEFAULT_LEADER_LEASE: &str = "foureyes-system/foureyes";
/// The policy that records who created each RoleBinding and ServiceAccount
/// token Secret in a tenant namespace.
pub const TENANT_STAMP_POLICY: &str = "foureyes-tenant-stamp";
/// The policy that bounds the lifetime of tokens minted through the
/// TokenRequest API in a tenant namespace.
pub const TOKEN_LIFETIME_POLICY: &str = "foureyes-token-lifetime";
/// The type of a Secret that holds a ServiceAccount token for as long as it exists.
pub const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// The field selector of those Secrets.
pub const TOKEN_SECRET_SELECTOR: &str = "type=kubernetes.io/service-account-token";
/// The policy that records who last changed a workspace's or project's spec.
pub const CHANGES_POLICY: &str = "foureyes-changes";
/// Annotation on a workspace or project: the user who last changed its spec,
/// stamped at admission (the history names them).
pub const CHANGED_BY_ANNOTATION: &str = "foureyes.dev/changed-by";
/// The policy that records, for every vote appended to a request, who
/// appended it and with which groups.
pub const VOTES_POLICY: &str = "foureyes-votes";
/// Annotation on a request: one line per write that appended votes,
/// `<from>\t<to>\t<groups, comma-separated>\t<user>`, stamped at admission.
pub const VOTES_ANNOTATION: &str = "foureyes.dev/votes";
/// The policy that lets only the operator write the status of foureyes objects.
pub const STATUS_POLICY: &str = "foureyes-status";
/// The policy that lets only those who could rewrite the admission policies
/// change their parameters.
pub const PARAMS_POLICY: &str = "foureyes-params";
/// The policy that refuses new bindings, requests and votes for or by a
/// locked-out subject; its parameters are the Lockouts in force.
pub const LOCKOUT_POLICY: &str = "foureyes-lockouts";
/// The policy that lets only partners and cluster administrators (and the
/// operator, for its marks) write Lockouts.
pub const LOCKOUT_WRITERS_POLICY: &str = "foureyes-lockout-writers";
/// The RBAC verb on `lockouts` that the writers' policy asks the authorizer
/// for: partners hold it through [`LOCKOUT_WRITER_ROLE`], cluster
/// administrators through their wildcard.
pub const LOCKOUT_VERB: &str = "lock";
/// The ClusterRole (and ClusterRoleBinding, to the configured partners) that
/// lets partners write Lockouts.
pub const LOCKOUT_WRITER_ROLE: &str = "foureyes-lockout-writer";
/// Label the operator puts on a Lockout at its expiry instant (value
/// `true`): the admission policy's parameter selector leaves such lockouts
/// out. Admission has no clock, so until the mark a lockout past its expiry
/// still refuses (the safe direction).
pub const LOCKOUT_EXPIRED_LABEL: &str = "foureyes.dev/lockout-expired";
/// Annotation on a Lockout: the user who lifts it, set (and verified at
/// admission) right before the deletion, so that the history names them.
pub const LIFTED_BY_ANNOTATION: &str = "foureyes.dev/lifted-by";
/// Annotation on a Lockout: why it is lifted, set with [`LIFTED_BY_ANNOTATION`].
pub const LIFTED_REASON_ANNOTATION: &str = "foureyes.dev/lifted-reason";
/// The policy that lets only the operator write history ConfigMaps.
pub const HISTORY_POLICY: &str = "foureyes-history";
/// The policy that keeps the history chunks' name prefix for labelled chunks.
pub const HISTORY_NAMES_POLICY: &str = "foureyes-history-names";
/// The default group whose members may assert another user's name (a GitOps
/// controller applying manifests reviewed in Git).
pub const DEFAULT_TRUSTED_ASSERTER_GROUP: &str = "foureyes:trusted-asserters";
/// The default user name of the operator (its service account).
pub const DEFAULT_OPERATOR_USER: &str = "system:serviceaccount:foureyes-system:foureyes";
/// The label naming the workspace that owns a namespace.
pub const WORKSPACE_LABEL: &str = "foureyes.dev/workspace";
/// The label naming the project that owns a tenant namespace.
pub const PROJECT_LABEL: &str = "foureyes.dev/project";
/// The label marking a workspace's control namespace.
pub const CONTROL_NAMESPACE_LABEL: &str = "foureyes.dev/control-namespace";
/// The label saying the operator created a namespace (rather than adopting
/// it): the uid of the project that created it.
pub const CREATED_BY_LABEL: &str = "foureyes.dev/created-by";
/// The uid of the workspace whose control namespace this is.
pub const WORKSPACE_UID_LABEL: &str = "foureyes.dev/workspace-uid";
/// The uid of the project that claimed a tenant namespace.
pub const PROJECT_UID_LABEL: &str = "foureyes.dev/project-uid";
/// Label on every history chunk (value `true`).
pub const HISTORY_LABEL: &str = "foureyes.dev/history";
/// Label naming the chunk's chain (as a label value; the full name is in the
/// annotation of the same name).
pub const CHAIN_LABEL: &str = "foureyes.dev/history-chain";
/// Annotation holding the chunk's full chain name.
pub const CHAIN_ANNOTATION: &str = "foureyes.dev/history-chain";
/// The name prefix of every history chunk.
pub const CHUNK_PREFIX: &str = "foureyes-history-";
/// The data key of a sealed chunk: the name of the chunk that follows.
pub const SEAL_KEY: &str = "next";
/// The name of the workspace chain.
pub const WORKSPACE_CHAIN: &str = "workspace";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "foureyes";
/// The standard label marking what foureyes manages.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "foureyes";
/// The label selector of every native binding foureyes made for a grant.
pub const GRANT_SELECTOR: &str = "app.kubernetes.io/managed-by=foureyes,foureyes.dev/binding-uid";
/// The owning binding's name (shortened to a label value).
pub const BINDING_LABEL: &str = "foureyes.dev/binding";
/// The owning binding's uid.
pub const BINDING_UID_LABEL: &str = "foureyes.dev/binding-uid";
/// The owning binding as `<namespace>/<name>`.
pub const BINDING_REF_ANNOTATION: &str = "foureyes.dev/binding-ref";
/// The expiry (RFC 3339), so that the sweep and a restart can revoke without the owner.
pub const EXPIRES_ANNOTATION: &str = "foureyes.dev/expires-at";
/// The subject, for people reading the native object.
pub const SUBJECT_ANNOTATION: &str = "foureyes.dev/subject";
/// The Role in each workspace namespace that auditors are bound to, and the
/// auditors' ClusterRole and ClusterRoleBinding.
pub const AUDITOR_ROLE: &str = "foureyes-auditor";
/// The Role in the workspace namespace that managers are bound to.
pub const MANAGER_ROLE: &str = "foureyes-manager";
/// The Role in the workspace namespace that members are bound to.
pub const MEMBER_ROLE: &str = "foureyes-member";
/// The name of the operator's ClusterRole and ClusterRoleBinding.
pub const OPERATOR_ROLE: &str = "foureyes-operator";
/// The name of the sweep's ServiceAccount (in the operator's namespace), of
/// its ClusterRole and ClusterRoleBinding, and of the admission policy that
/// lets it delete only native bindings foureyes made for a grant.
pub const SWEEP: &str = "foureyes-sweep";
/// The ClusterRole that lets the operator list and delete Secrets, bound
/// (by a RoleBinding of the same name) only in the tenant namespaces its
/// projects hold, and the name of that RoleBinding.
pub const TOKEN_FINDER_ROLE: &str = "foureyes-token-finder";
/// The name of the operator's Role and RoleBinding for its leader Lease.
pub const LEASE_ROLE: &str = "foureyes-leader-election";
/// The operator's Role (and its binding) in its own namespace that reads
/// the notification sinks' Secrets, by name.
pub const NOTIFICATION_SECRETS_ROLE: &str = "foureyes-notification-secrets";
/// The default ClusterRole of the project role `reader`.
pub const VIEW: &str = "foureyes-view";
/// The default ClusterRole of the project role `user`.
pub const EDIT: &str = "foureyes-edit";
/// The default ClusterRole of the project role `admin`.
pub const ADMIN: &str = "foureyes-admin";
/// Annotation: which built-in role a ClusterRole was derived from, and how.
pub const DERIVED_FROM_ANNOTATION: &str = "foureyes.dev/derived-from";
/// The namespace of the Lease when neither `--lease-namespace` nor
/// `POD_NAMESPACE` says otherwise.
pub const DEFAULT_LEASE_NAMESPACE: &str = "foureyes-system";
/// The default name of the Lease.
pub const DEFAULT_LEASE_NAME: &str = "foureyes";
/// The finalizer on every foureyes object whose deletion must remove native RBAC.
pub const FINALIZER: &str = "foureyes.dev/cleanup";
/// Annotation on a binding made from a request: the managers whose approvals
/// counted (comma-separated), or the partner who broke the glass.
pub const APPROVED_BY_ANNOTATION: &str = "foureyes.dev/approved-by";

/// Whether a name contains a character that separates values in the
/// admission stamps (a comma, or any control character such as a tab or a
/// line break): such a name could forge a line or a list element, so the
/// stamps leave such groups out and the identity policy refuses such user
/// names (DESIGN §2, invariant 3).
pub fn breaks_stamps(name: &str) -> bool {
    name.chars().any(|c| c == ',' || c.is_control())
}
