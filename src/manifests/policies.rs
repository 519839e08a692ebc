//! The admission policies that ship with the CRDs, their bindings and
//! parameters: one function renders them for the raw manifests and the chart.

use crate::wire::{
    BINDING_UID_LABEL, CHANGES_POLICY, CREATED_BY_ANNOTATION, CREATED_BY_GROUPS_ANNOTATION, CREATOR_POLICY, FINALIZER,
    HISTORY_NAMES_POLICY, HISTORY_POLICY, IDENTITY_POLICY, LEASE_POLICY, LIFTED_BY_ANNOTATION, LOCKOUT_EXPIRED_LABEL,
    LOCKOUT_POLICY, LOCKOUT_VERB, LOCKOUT_WRITERS_POLICY, MANAGED_BY, MANAGED_BY_LABEL, PARAMS_NAME, PARAMS_NAMESPACE,
    PARAMS_POLICY, PROJECT_UID_LABEL, STATUS_POLICY, SWEEP, TENANT_STAMP_POLICY, TOKEN_LIFETIME_POLICY,
    TOKEN_SECRET_TYPE, TRUST_ANCHOR_LABEL, VOTES_POLICY,
};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use serde_json::json;

/// The namespace controller, which must be able to delete the trust anchors
/// with their namespace.
const NAMESPACE_CONTROLLER: &str = "system:serviceaccount:kube-system:namespace-controller";

/// The caller's groups as the stamps record them: comma-separated, without
/// the groups whose names contain a separator of the stamps (`,`, or any
/// control character such as a tab or a line break), which could otherwise
/// forge a list element or a line. Such a
/// group can be no subject (a CRD rule) and no partner group (the
/// configuration's check), so leaving it out hides nothing.
const STAMP_GROUPS: &str =
    "(has(request.userInfo.groups) ? request.userInfo.groups : []).filter(g, !g.matches('[,[:cntrl:]]')).join(',')";

/// The stored votes stamp, before this write.
const VOTES_BEFORE: &str = "request.operation == 'UPDATE' && has(oldObject.metadata.annotations) && 'foureyes.dev/votes' in oldObject.metadata.annotations ? oldObject.metadata.annotations['foureyes.dev/votes'] : ''";
/// How many votes the object had before this write: a request's approvals,
/// or a binding's verdicts on its break-glass (an object has one list or
/// the other).
const VOTES_FROM: &str = "request.operation == 'UPDATE' ? (has(oldObject.spec.approvals) ? size(oldObject.spec.approvals) : 0) + (has(oldObject.spec.ratifications) ? size(oldObject.spec.ratifications) : 0) : 0";
/// How many votes it has after.
const VOTES_TO: &str = "(has(object.spec.approvals) ? size(object.spec.approvals) : 0) + (has(object.spec.ratifications) ? size(object.spec.ratifications) : 0)";

/// The line this write adds to the votes stamp (empty when it adds no vote),
/// as CEL over the variables `from` and `to`.
fn votes_line() -> String {
    format!(
        "variables.to > variables.from ? string(variables.from) + '\\t' + string(variables.to) + '\\t' + {STAMP_GROUPS} + '\\t' + request.userInfo.username + '\\n' : ''"
    )
}

/// Every admission policy and its binding, in the order they are applied,
/// with the parameters read from `params_namespace`: the raw manifests and
/// the Helm chart (its release namespace) are made by this one function.
pub fn admission_policies(params_namespace: &str) -> Vec<serde_json::Value> {
    let (policy, binding) = identity_policy_in(params_namespace);
    let (creator, creator_binding) = creator_policy();
    let (keep, keep_binding) = creator_keep_policy();
    let (votes, votes_binding) = votes_policy();
    let (changes, changes_binding) = changes_policy();
    let (tenant, tenant_binding) = tenant_stamp_policy();
    let (tokens, tokens_binding) = token_lifetime_policy_in(params_namespace);
    let (history, history_binding) = history_policy_in(params_namespace);
    let (names, names_binding) = history_names_policy();
    let (status, status_binding) = status_policy_in(params_namespace);
    let (params, params_binding) = params_policy();
    let (lease, lease_binding) = lease_policy_in(params_namespace);
    let (writers, writers_binding) = lockout_writers_policy_in(params_namespace);
    let (lockouts, lockouts_binding) = lockout_policy();
    let (sweep, sweep_binding) = sweep_policy_in(params_namespace);
    vec![
        json!(policy),
        json!(binding),
        json!(creator),
        json!(creator_binding),
        json!(keep),
        json!(keep_binding),
        json!(votes),
        json!(votes_binding),
        json!(changes),
        json!(changes_binding),
        json!(tenant),
        json!(tenant_binding),
        json!(tokens),
        json!(tokens_binding),
        json!(history),
        json!(history_binding),
        json!(names),
        json!(names_binding),
        json!(status),
        json!(status_binding),
        json!(params),
        json!(params_binding),
        json!(lease),
        json!(lease_binding),
        json!(writers),
        json!(writers_binding),
        json!(lockouts),
        json!(lockouts_binding),
        json!(sweep),
        json!(sweep_binding),
    ]
}

/// DESIGN §2, invariant 11, and §7 procedure 6: while a Lockout lasts, no
/// new binding or request for its subject, no vote in the name of a locked
/// user, and no foureyes write by a locked caller (a locked user, or a
/// caller in a locked group) is admitted, with a message naming the lockout.
///
/// Its parameters are the Lockouts themselves: the binding selects every
/// Lockout without the label `foureyes.dev/lockout-expired`, the policy is
/// evaluated against each of them, and any one that fails denies; with no
/// Lockout at all it allows (`parameterNotFoundAction: Allow`). Admission
/// has no clock: the operator sets the label at the expiry instant, and
/// until then an expired lockout still refuses (the safe direction).
///
/// Requests and bindings of other subjects pass; what the operator does is
/// refused too when it would create a binding for a locked subject (an
/// approval that raced the lockout).
pub fn lockout_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let named = "'Lockout ' + params.metadata.name + ' (' + params.spec.reason + ')'";
    let policy = validating_policy(
        LOCKOUT_POLICY,
        json!({
        "failurePolicy": "Fail",
        "paramKind": { "apiVersion": "foureyes.dev/v1alpha1", "kind": "Lockout" },
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": ["foureyes.dev"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["rolebindings", "rolerequests", "lockouts"],
            }],
        },
        "variables": [
            { "name": "lockedUser", "expression": "params.spec.subject.kind == 'User' ? params.spec.subject.name : ''" },
            { "name": "lockedGroup", "expression": "params.spec.subject.kind == 'Group' ? params.spec.subject.name : ''" },
            { "name": "callerLocked", "expression":
                "request.userInfo.username == variables.lockedUser || (variables.lockedGroup != '' && has(request.userInfo.groups) && variables.lockedGroup in request.userInfo.groups)" },
            { "name": "from", "expression": VOTES_FROM },
        ],
        "validations": [
            {
                "expression": "!variables.callerLocked",
                "messageExpression": format!("'you (' + request.userInfo.username + ') are locked out by ' + {named} + ': foureyes refuses your writes'"),
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation != 'CREATE' || request.resource.resource == 'lockouts' || !(object.spec.subject.kind == params.spec.subject.kind && object.spec.subject.name == params.spec.subject.name)",
                "messageExpression": format!("params.spec.subject.kind + ' ' + params.spec.subject.name + ' is locked out by ' + {named} + ': no new ' + (request.resource.resource == 'rolebindings' ? 'binding' : 'request') + ' for them is admitted'"),
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation == 'DELETE' || request.resource.resource != 'rolerequests' || variables.lockedUser == '' || !has(object.spec.approvals) || object.spec.approvals.all(a, object.spec.approvals.lastIndexOf(a) < variables.from || a.user != variables.lockedUser)",
                "messageExpression": format!("'user ' + variables.lockedUser + ' is locked out by ' + {named} + ': a vote in their name is refused'"),
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation == 'DELETE' || request.resource.resource != 'rolebindings' || variables.lockedUser == '' || !has(object.spec.ratifications) || object.spec.ratifications.all(r, object.spec.ratifications.lastIndexOf(r) < variables.from || r.user != variables.lockedUser)",
                "messageExpression": format!("'user ' + variables.lockedUser + ' is locked out by ' + {named} + ': a ratification in their name is refused'"),
                "reason": "Forbidden",
            },
        ],
        }),
    );
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": { "name": LOCKOUT_POLICY, "labels": { "app.kubernetes.io/part-of": "foureyes" } },
        "spec": {
            "policyName": LOCKOUT_POLICY,
            "validationActions": ["Deny"],
            "paramRef": {
                "selector": { "matchExpressions": [{ "key": LOCKOUT_EXPIRED_LABEL, "operator": "DoesNotExist" }] },
                "parameterNotFoundAction": "Allow",
            },
        },
    }))
    .expect("valid ValidatingAdmissionPolicyBinding");
    (policy, binding)
}

/// Who may write Lockouts (DESIGN §7, procedure 6): partners and cluster
/// administrators, as the authorizer says (the RBAC verb `lock` on
/// `lockouts`, which `foureyes rbac` and the chart give the configured
/// partners in the ClusterRole `foureyes-lockout-writer`, and which cluster
/// administrators hold through their wildcard), and the operator for its
/// marks (the expired label, its finalizer). `spec.createdBy` must name the
/// caller (unless a trusted asserter or the operator writes it); the
/// operator cannot be locked out; only the operator sets the expired label;
/// the annotation `foureyes.dev/lifted-by` names the caller who sets it.
/// Fails closed without its parameters, like the identity policy.
pub fn lockout_writers_policy_in(
    params_namespace: &str,
) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let label = LOCKOUT_EXPIRED_LABEL;
    let lifted = LIFTED_BY_ANNOTATION;
    let policy = validating_policy(
        LOCKOUT_WRITERS_POLICY,
        json!({
        "failurePolicy": "Fail",
        "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": ["foureyes.dev"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["lockouts"],
            }],
        },
        "variables": [
            { "name": "trustedGroups", "expression": list_param_expression("trustedAsserterGroups") },
            list_param("operatorUsers"),
            { "name": "caller", "expression": "request.userInfo.username" },
            { "name": "isOperator", "expression": "variables.caller in variables.operatorUsers" },
            { "name": "mayAssert", "expression":
                "variables.isOperator || (has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in variables.trustedGroups))" },
            { "name": "mayLock", "expression": format!("authorizer.group('foureyes.dev').resource('lockouts').check('{LOCKOUT_VERB}').allowed()") },
            { "name": "labelled", "expression": format!("request.operation != 'DELETE' && has(object.metadata.labels) && '{label}' in object.metadata.labels") },
            { "name": "wasLabelled", "expression": format!("request.operation != 'CREATE' && has(oldObject.metadata.labels) && '{label}' in oldObject.metadata.labels") },
            { "name": "liftedBy", "expression": format!("request.operation != 'DELETE' && has(object.metadata.annotations) && '{lifted}' in object.metadata.annotations ? object.metadata.annotations['{lifted}'] : ''") },
            { "name": "wasLiftedBy", "expression": format!("request.operation != 'CREATE' && has(oldObject.metadata.annotations) && '{lifted}' in oldObject.metadata.annotations ? oldObject.metadata.annotations['{lifted}'] : ''") },
        ],
        "validations": [
            {
                "expression": "variables.isOperator || variables.mayLock",
                "messageExpression": "'only partners and cluster administrators may ' + request.operation.lowerAscii() + ' a Lockout; ' + variables.caller + ' may not'",
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation != 'CREATE' || variables.mayAssert || object.spec.createdBy == variables.caller",
                "messageExpression": "'spec.createdBy must be your own user name (' + variables.caller + ')'",
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation == 'DELETE' || object.spec.subject.kind != 'User' || !(object.spec.subject.name in variables.operatorUsers)",
                "message": "the foureyes operator cannot be locked out: it is what enforces lockouts",
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation == 'DELETE' || variables.isOperator || variables.labelled == variables.wasLabelled",
                "message": format!("the label {label} is set only by the foureyes operator, at the lockout's expiry"),
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation == 'DELETE' || variables.liftedBy == variables.wasLiftedBy || variables.liftedBy == variables.caller || (variables.mayAssert && request.operation == 'UPDATE')",
                "messageExpression": format!("'the annotation {lifted} must be your own user name (' + variables.caller + ')'"),
                "reason": "Forbidden",
            },
        ],
        }),
    );
    let binding = deny_binding(LOCKOUT_WRITERS_POLICY, Some(params_namespace));
    (policy, binding)
}

/// The namespace and ConfigMap that parameterise the admission policies.
/// Every key holds a comma-separated list. When the ConfigMap is missing,
/// every foureyes write that the policies cover is denied (fail closed); the
/// leader Lease alone is then unguarded, so that a missing ConfigMap never
/// stops the cluster's other Leases.
pub fn admission_params(
    trusted_asserter_groups: &str,
    operator_users: &str,
    leader_leases: &str,
) -> (Namespace, ConfigMap) {
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": PARAMS_NAMESPACE, "labels": { "app.kubernetes.io/part-of": "foureyes" } },
    }))
    .expect("valid Namespace");
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": PARAMS_NAME, "namespace": PARAMS_NAMESPACE, "labels": { "app.kubernetes.io/part-of": "foureyes", TRUST_ANCHOR_LABEL: "true" } },
        "data": {
            "trustedAsserterGroups": trusted_asserter_groups,
            "operatorUsers": operator_users,
            "leaderLeases": leader_leases,
        },
    }))
    .expect("valid ConfigMap");
    (ns, cm)
}

/// DESIGN §2, invariant 3: identity is verified by the API server, never
/// self-declared. A request's `requester`, a directly created binding's
/// `grantedBy`, a revocation's `by` and each newly appended approval's `user`
/// must equal the caller's user name, unless the caller is the operator or in
/// a trusted-asserter group. Only the operator may create a binding that
/// claims to come from a request.
pub fn identity_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    identity_policy_in(PARAMS_NAMESPACE)
}

/// [`identity_policy`] with its parameters in another namespace (the Helm
/// chart's release namespace).
pub fn identity_policy_in(params_namespace: &str) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = validating_policy(
        IDENTITY_POLICY,
        json!({
        "failurePolicy": "Fail",
        "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": ["foureyes.dev"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["rolerequests", "rolebindings", "workspaces", "projects"],
            }],
        },
        "variables": [
            { "name": "trustedGroups", "expression":
                "has(params.data) && 'trustedAsserterGroups' in params.data ? params.data.trustedAsserterGroups.split(',').map(g, g.trim()).filter(g, g != '') : []" },
            list_param("operatorUsers"),
            { "name": "isOperator", "expression": "request.userInfo.username in variables.operatorUsers" },
            { "name": "mayAssert", "expression":
                "variables.isOperator || (has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in variables.trustedGroups))" },
            { "name": "caller", "expression": "request.userInfo.username" },
            { "name": "annotations", "expression": "has(object.metadata.annotations) ? object.metadata.annotations : {}" },
            { "name": "from", "expression": VOTES_FROM },
            { "name": "to", "expression": VOTES_TO },
        ],
        "validations": [
            {
                "expression": "!variables.caller.matches('[[:cntrl:]]')",
                "message": "user names with control characters (tabs, line breaks) cannot act on foureyes objects (they could forge the admission stamps)",
                "reason": "Forbidden",
            },
            {
                "expression": format!("request.operation != 'CREATE' || (('foureyes.dev/created-by' in variables.annotations ? variables.annotations['foureyes.dev/created-by'] : '') == variables.caller && ('foureyes.dev/created-by-groups' in variables.annotations ? variables.annotations['foureyes.dev/created-by-groups'] : '') == {STAMP_GROUPS})"),
                "message": "the annotations foureyes.dev/created-by and foureyes.dev/created-by-groups must name the caller as the API server authenticated them (the foureyes-creator policy stamps them; is it installed?)",
                "reason": "Forbidden",
            },
            {
                "expression": "!(request.resource.resource in ['workspaces', 'projects']) || request.operation != 'CREATE' || !('foureyes.dev/changed-by' in variables.annotations)",
                "message": "the annotation foureyes.dev/changed-by is set by admission when the spec changes; leave it out of the manifest",
                "reason": "Forbidden",
            },
            {
                "expression": "!(request.resource.resource in ['workspaces', 'projects']) || request.operation != 'UPDATE' || ('foureyes.dev/changed-by' in variables.annotations ? variables.annotations['foureyes.dev/changed-by'] : '') == (object.spec == oldObject.spec ? (has(oldObject.metadata.annotations) && 'foureyes.dev/changed-by' in oldObject.metadata.annotations ? oldObject.metadata.annotations['foureyes.dev/changed-by'] : '') : variables.caller)",
                "message": "the annotation foureyes.dev/changed-by names who last changed the spec, as the API server authenticated them (the foureyes-changes policy stamps it; is it installed?)",
                "reason": "Forbidden",
            },
            {
                "expression": format!("!(request.resource.resource in ['rolerequests', 'rolebindings']) || ('foureyes.dev/votes' in variables.annotations ? variables.annotations['foureyes.dev/votes'] : '') == ({VOTES_BEFORE}) + ({})", votes_line()),
                "message": "the annotation foureyes.dev/votes must record who appended each vote or ratification as the API server authenticated them (the foureyes-votes policy stamps it; is it installed?)",
                "reason": "Forbidden",
            },
            {
                "expression": "request.resource.resource != 'rolerequests' || request.operation != 'CREATE' || variables.mayAssert || object.spec.requester == variables.caller",
                "messageExpression": "'spec.requester must be your own user name (' + variables.caller + ')'",
                "reason": "Forbidden",
            },
            {
                "expression": "request.resource.resource != 'rolerequests' || variables.mayAssert || !has(object.spec.approvals) || object.spec.approvals.all(a, object.spec.approvals.lastIndexOf(a) < variables.from || a.user == variables.caller)",
                "messageExpression": "'spec.approvals: a vote you add must name you (' + variables.caller + ') as its user'",
                "reason": "Forbidden",
            },
            {
                "expression": "request.resource.resource != 'rolebindings' || variables.mayAssert || !has(object.spec.ratifications) || object.spec.ratifications.all(r, object.spec.ratifications.lastIndexOf(r) < variables.from || r.user == variables.caller)",
                "messageExpression": "'spec.ratifications: a ratification you add must name you (' + variables.caller + ') as its user'",
                "reason": "Forbidden",
            },
            {
                "expression": "request.resource.resource != 'rolebindings' || request.operation != 'CREATE' || variables.mayAssert || object.spec.grantedBy == variables.caller",
                "messageExpression": "'spec.grantedBy must be your own user name (' + variables.caller + ')'",
                "reason": "Forbidden",
            },
            {
                "expression": "request.resource.resource != 'rolebindings' || request.operation != 'CREATE' || variables.isOperator || !has(object.spec.originRequest)",
                "message": "spec.originRequest can only be set by the foureyes operator",
                "reason": "Forbidden",
            },
            {
                "expression": "request.operation != 'UPDATE' || variables.isOperator || ['foureyes.dev/created-by', 'foureyes.dev/created-by-groups'].all(k, (has(object.metadata.annotations) && k in object.metadata.annotations ? object.metadata.annotations[k] : '') == (has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations ? oldObject.metadata.annotations[k] : ''))",
                "message": "the annotations foureyes.dev/created-by and foureyes.dev/created-by-groups are set at creation and cannot be changed",
                "reason": "Forbidden",
            },
            {
                "expression": "request.resource.resource != 'rolebindings' || !has(object.spec.revocation) || (request.operation == 'UPDATE' && has(oldObject.spec.revocation)) || variables.mayAssert || object.spec.revocation.by == variables.caller",
                "messageExpression": "'spec.revocation.by must be your own user name (' + variables.caller + ')'",
                "reason": "Forbidden",
            },
        ],
        }),
    );
    let binding = deny_binding(IDENTITY_POLICY, Some(params_namespace));
    (policy, binding)
}

/// DESIGN §2, invariant 7: the history can be written only by the operator.
/// Creating, updating or deleting a ConfigMap that carries the history label
/// (`foureyes.dev/history`) before or after the change is refused unless the
/// caller is one of the `operatorUsers`; this applies to cluster
/// administrators (`system:masters`) too. Like the identity policy it fails
/// closed: without the parameters ConfigMap, no history ConfigMap can be
/// written by anyone.
///
/// The policy selects ConfigMaps by label (`objectSelector`, which looks at
/// the old and the new object) rather than by a match condition, so that a
/// missing parameters ConfigMap denies history writes only, never other
/// ConfigMaps (the API server resolves parameters before it evaluates match
/// conditions). [`history_names_policy`] covers the name prefix.
pub fn history_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    history_policy_in(PARAMS_NAMESPACE)
}

/// [`history_policy`] with its parameters in another namespace.
pub fn history_policy_in(params_namespace: &str) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = validating_policy(
        HISTORY_POLICY,
        json!({
        "failurePolicy": "Fail",
        "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["configmaps"],
            }],
            "objectSelector": {
                "matchExpressions": [{ "key": crate::wire::HISTORY_LABEL, "operator": "Exists" }],
            },
        },
        "variables": [
            list_param("operatorUsers"),
        ],
        "validations": [{
            "expression": "request.userInfo.username in variables.operatorUsers",
            "messageExpression": "'the foureyes history is append-only and written only by the foureyes operator; ' + request.userInfo.username + ' may not ' + request.operation.lowerAscii() + ' ' + request.name",
            "reason": "Forbidden",
        }],
        }),
    );
    let binding = deny_binding(HISTORY_POLICY, Some(params_namespace));
    (policy, binding)
}

/// The other half of invariant 7: a ConfigMap named like a history chunk
/// (`foureyes-history-...`) must carry the history label, so that nobody
/// creates an unlabelled look-alike or strips the label to escape
/// [`history_policy`] (the operator always labels its chunks). No parameters,
/// so nothing else depends on the parameters ConfigMap.
pub fn history_names_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let prefix = crate::wire::CHUNK_PREFIX;
    let label = crate::wire::HISTORY_LABEL;
    let policy = validating_policy(
        HISTORY_NAMES_POLICY,
        json!({
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["configmaps"],
            }],
        },
        "matchConditions": [{
            "name": "named-like-history",
            "expression": format!(
                "request.name.startsWith('{prefix}') || (has(object.metadata.generateName) && object.metadata.generateName.startsWith('{prefix}'))"
            ),
        }],
        "validations": [{
            "expression": format!(
                "has(object.metadata.labels) && '{label}' in object.metadata.labels && object.metadata.labels['{label}'] == 'true'"
            ),
            "message": format!("ConfigMaps named {prefix}... are foureyes history chunks: they carry the label {label}=true and are written only by the foureyes operator"),
            "reason": "Forbidden",
        }],
        }),
    );
    let binding = deny_binding(HISTORY_NAMES_POLICY, None);
    (policy, binding)
}

/// Records who created a binding, request, workspace or project, with their
/// groups, as the API server authenticated them: the operator recognises
/// partners named by group from these annotations, and the history names the
/// creator of a workspace (any value a client sends is overwritten, and the
/// identity policy forbids changing them later).
///
/// It also gives a new binding the operator's finalizer, which the operator
/// would otherwise add with a write of its own (and a watch round trip)
/// before it may grant anything: a grant then costs one API write less
/// (DESIGN §5). Without this policy the operator adds the finalizer itself.
pub fn creator_policy() -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
    let (mut policy, binding) = stamp_policy(
        CREATOR_POLICY,
        &["CREATE"],
        &["rolerequests", "rolebindings", "workspaces", "projects"],
        None,
        None,
        &format!(
            "Object{{metadata: Object.metadata{{annotations: {{'foureyes.dev/created-by': request.userInfo.username, 'foureyes.dev/created-by-groups': {STAMP_GROUPS}}}}}}}"
        ),
    );
    let finalizer = serde_json::from_value(json!({
        "patchType": "JSONPatch",
        "jsonPatch": { "expression": format!(
            "request.resource.resource != 'rolebindings' ? [] : !has(object.metadata.finalizers) ? [JSONPatch{{op: 'add', path: '/metadata/finalizers', value: ['{FINALIZER}']}}] : '{FINALIZER}' in object.metadata.finalizers ? [] : [JSONPatch{{op: 'add', path: '/metadata/finalizers/-', value: '{FINALIZER}'}}]"
        ) },
    }))
    .expect("valid mutation");
    if let Some(mutations) = policy.spec.as_mut().and_then(|s| s.mutations.as_mut()) {
        mutations.push(finalizer);
    }
    (policy, binding)
}

/// Keeps the creator stamps on update: a client that re-applies its manifest
/// (which never carried them) does not remove them, and cannot change them.
pub fn creator_keep_policy() -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
    stamp_policy(
        &format!("{CREATOR_POLICY}-keep"),
        &["UPDATE"],
        &["rolerequests", "rolebindings", "workspaces", "projects"],
        None,
        Some(json!([{
            "name": "stamped",
            "expression": "has(oldObject.metadata.annotations) && 'foureyes.dev/created-by' in oldObject.metadata.annotations",
        }])),
        "Object{metadata: Object.metadata{annotations: {'foureyes.dev/created-by': oldObject.metadata.annotations['foureyes.dev/created-by'], 'foureyes.dev/created-by-groups': 'foureyes.dev/created-by-groups' in oldObject.metadata.annotations ? oldObject.metadata.annotations['foureyes.dev/created-by-groups'] : ''}}}",
    )
}

/// Records who appended each vote of a request, and each verdict on a
/// binding's break-glass (`spec.ratifications`), with the groups the API
/// server authenticated them with, in the annotation `foureyes.dev/votes`:
/// the operator recognises partners named by group from it. The value is
/// rebuilt from the stored one on every write (what a client sends is
/// discarded), so it only ever grows by the line of the caller's own write.
pub fn votes_policy() -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
    stamp_policy(
        VOTES_POLICY,
        &["CREATE", "UPDATE"],
        &["rolerequests", "rolebindings"],
        Some(json!([
            { "name": "before", "expression": VOTES_BEFORE },
            { "name": "from", "expression": VOTES_FROM },
            { "name": "to", "expression": VOTES_TO },
            { "name": "line", "expression": votes_line() },
        ])),
        None,
        "Object{metadata: Object.metadata{annotations: {'foureyes.dev/votes': variables.before + variables.line}}}",
    )
}

/// DESIGN §2, invariants 3 and 6: the operator trusts the status of its
/// objects (a binding's sticky `Authorized` condition, a request's phase, the
/// bindings' phases that make managers), so only the operator may write the
/// status subresource of foureyes objects. Cluster administrators included:
/// a status is the operator's record, never an input.
pub fn status_policy_in(params_namespace: &str) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = validating_policy(
        STATUS_POLICY,
        json!({
        "failurePolicy": "Fail",
        "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": ["foureyes.dev"],
                "apiVersions": ["*"],
                "operations": ["UPDATE"],
                "resources": ["workspaces/status", "projects/status", "rolebindings/status", "rolerequests/status", "lockouts/status"],
            }],
        },
        "variables": [
            list_param("operatorUsers"),
        ],
        "validations": [{
            "expression": "request.userInfo.username in variables.operatorUsers",
            "messageExpression": "'the status of foureyes objects is written only by the foureyes operator; ' + request.userInfo.username + ' may not change it'",
            "reason": "Forbidden",
        }],
        }),
    );
    let binding = deny_binding(STATUS_POLICY, Some(params_namespace));
    (policy, binding)
}

/// The trust anchors: the parameters ConfigMap `foureyes-admission` (who
/// the operator and the trusted asserters are) and every ConfigMap labelled
/// `foureyes.dev/trust-anchor` (the operator's configuration: who the
/// partners are). Only a caller who may also rewrite the admission policies
/// (asked of the authorizer) may create, change or delete them, so that write
/// access to ConfigMaps in the operator's namespace is not enough to become
/// a trusted asserter or a partner; the namespace controller may delete them
/// with their namespace. No parameters: it must not depend on what it
/// protects.
pub fn params_policy() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = validating_policy(
        PARAMS_POLICY,
        json!({
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["configmaps"],
            }],
        },
        "matchConditions": [{
            "name": "a-trust-anchor",
            "expression": format!(
                "request.name == '{PARAMS_NAME}' || [object, oldObject].exists(o, o != null && has(o.metadata.labels) && '{TRUST_ANCHOR_LABEL}' in o.metadata.labels)"
            ),
        }],
        "validations": [{
            "expression": format!("(request.operation == 'DELETE' && request.userInfo.username == '{NAMESPACE_CONTROLLER}') || authorizer.group('admissionregistration.k8s.io').resource('validatingadmissionpolicies').check('update').allowed()"),
            "messageExpression": "request.name + ' is a trust anchor of foureyes (its admission parameters or the operator configuration): only those who may change the admission policies themselves may ' + request.operation.lowerAscii() + ' it'",
            "reason": "Forbidden",
        }],
        }),
    );
    let binding = deny_binding(PARAMS_POLICY, None);
    (policy, binding)
}

/// How a live admission policy or binding differs from the generated one:
/// every field the generated object sets must be there with the same value
/// (the API server adds defaults, which are ignored), but for the
/// parameters' namespace, which the Helm chart sets to its release
/// namespace. Empty when intact.
pub fn policy_drift(expected: &serde_json::Value, live: &serde_json::Value) -> Vec<String> {
    fn walk(path: &str, want: &serde_json::Value, have: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value;
        if path == "spec.paramRef.namespace" {
            return;
        }
        match (want, have) {
            (Value::Object(w), Value::Object(h)) => {
                for (k, v) in w {
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match h.get(k) {
                        Some(hv) => walk(&sub, v, hv, out),
                        None => out.push(format!("{sub} is missing")),
                    }
                }
            }
            (Value::Array(w), Value::Array(h)) if w.len() == h.len() => {
                for (i, (wv, hv)) in w.iter().zip(h).enumerate() {
                    walk(&format!("{path}[{i}]"), wv, hv, out);
                }
            }
            (w, h) if w == h => {}
            _ => out.push(format!("{path} differs")),
        }
    }
    let mut out = vec![];
    walk("spec", &expected["spec"], &live["spec"], &mut out);
    out
}

/// DESIGN §2, invariant 1: whoever holds the leader Lease decides when the
/// bookkeeping of expiries runs; only the operator may create, update or
/// delete it (the namespace controller may delete it with its namespace)
/// (the Leases named in the parameters' `leaderLeases`, `<namespace>/<name>`).
/// Every other Lease of the cluster passes untouched; without the parameters
/// this policy allows (it must never stop the cluster's own Leases).
pub fn lease_policy_in(params_namespace: &str) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = validating_policy(
        LEASE_POLICY,
        json!({
        "failurePolicy": "Fail",
        "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": ["coordination.k8s.io"],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["leases"],
            }],
        },
        "variables": [
            list_param("operatorUsers"),
            { "name": "leases", "expression": list_param_expression("leaderLeases") },
        ],
        "validations": [{
            "expression": format!("!((request.namespace + '/' + request.name) in variables.leases) || request.userInfo.username in variables.operatorUsers || (request.operation == 'DELETE' && request.userInfo.username == '{NAMESPACE_CONTROLLER}')"),
            "messageExpression": "'the foureyes leader Lease is written only by the foureyes operator; ' + request.userInfo.username + ' may not ' + request.operation.lowerAscii() + ' it'",
            "reason": "Forbidden",
        }],
        }),
    );
    let mut binding = deny_binding(LEASE_POLICY, Some(params_namespace));
    if let Some(p) = binding.spec.param_ref.as_mut() {
        p.parameter_not_found_action = Some("Allow".into());
    }
    (policy, binding)
}

/// DESIGN §5: `foureyes sweep --once` bounds overdue access while the
/// operator is down, as the ServiceAccount `foureyes-sweep` in `namespace`
/// (the operator's), with `list` and `delete` on every RoleBinding: RBAC
/// cannot limit a verb by label. This policy does: that identity may delete
/// only RoleBindings that carry the labels foureyes puts on the native
/// bindings of a grant (`app.kubernetes.io/managed-by: foureyes` and
/// `foureyes.dev/binding-uid`). It reads no parameters, so that it never
/// depends on a ConfigMap that could be missing; every other caller passes
/// untouched (a match condition).
pub fn sweep_policy_in(namespace: &str) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = validating_policy(
        SWEEP,
        json!({
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": ["rbac.authorization.k8s.io"],
                "apiVersions": ["*"],
                "operations": ["DELETE"],
                "resources": ["rolebindings"],
            }],
        },
        "matchConditions": [{
            "name": "the-sweep",
            "expression": format!("request.userInfo.username == 'system:serviceaccount:{namespace}:{SWEEP}'"),
        }],
        "validations": [{
            "expression": format!("has(oldObject.metadata.labels) && '{MANAGED_BY_LABEL}' in oldObject.metadata.labels && oldObject.metadata.labels['{MANAGED_BY_LABEL}'] == '{MANAGED_BY}' && '{BINDING_UID_LABEL}' in oldObject.metadata.labels"),
            "message": "foureyes sweep may delete only the native RoleBindings foureyes made for a grant",
            "reason": "Forbidden",
        }],
        }),
    );
    (policy, deny_binding(SWEEP, None))
}

/// The CEL for a comma-separated list in the parameters ConfigMap (empty
/// when the key is missing).
fn list_param_expression(key: &str) -> String {
    format!(
        "has(params.data) && '{key}' in params.data ? params.data.{key}.split(',').map(v, v.trim()).filter(v, v != '') : []"
    )
}

/// A policy variable named `key` holding the list [`list_param_expression`] reads.
fn list_param(key: &str) -> serde_json::Value {
    json!({ "name": key, "expression": list_param_expression(key) })
}

/// A ValidatingAdmissionPolicy of foureyes with `spec`.
fn validating_policy(name: &str, spec: serde_json::Value) -> ValidatingAdmissionPolicy {
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": { "name": name, "labels": { "app.kubernetes.io/part-of": "foureyes" } },
        "spec": spec,
    }))
    .expect("valid ValidatingAdmissionPolicy")
}

/// The binding that makes a validating policy deny, reading its parameters
/// (when it has any) from `foureyes-admission` in `params_namespace`, and
/// denying everything it covers when they are missing (fail closed).
fn deny_binding(policy: &str, params_namespace: Option<&str>) -> ValidatingAdmissionPolicyBinding {
    let mut spec = json!({ "policyName": policy, "validationActions": ["Deny"] });
    if let Some(namespace) = params_namespace {
        spec["paramRef"] = json!({
            "name": PARAMS_NAME,
            "namespace": namespace,
            "parameterNotFoundAction": "Deny",
        });
    }
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": { "name": policy, "labels": { "app.kubernetes.io/part-of": "foureyes" } },
        "spec": spec,
    }))
    .expect("valid ValidatingAdmissionPolicyBinding")
}

/// DESIGN §4: the history names who changed a workspace's approval policy or
/// a project's namespaces and role map. Stamps the caller on every update
/// that changes the spec, and keeps the stamp on any other update (the
/// identity policy refuses any other value, and any value on creation).
pub fn changes_policy() -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
    stamp_policy(
        CHANGES_POLICY,
        &["UPDATE"],
        &["workspaces", "projects"],
        None,
        None,
        // Kept as it was on an update that leaves the spec alone (a
        // `kubectl replace` of the same manifest, a finalizer).
        "Object{metadata: Object.metadata{annotations: {'foureyes.dev/changed-by': object.spec != oldObject.spec ? request.userInfo.username : (has(oldObject.metadata.annotations) && 'foureyes.dev/changed-by' in oldObject.metadata.annotations ? oldObject.metadata.annotations['foureyes.dev/changed-by'] : '')}}}",
    )
}

/// DESIGN §2, invariant 10: who created each RoleBinding and each
/// ServiceAccount token Secret (type `kubernetes.io/service-account-token`)
/// in a project's tenant namespace (a namespace carrying
/// `foureyes.dev/project-uid`), with their groups, so that at the end of a
/// grant the operator can tell what its holder made for themselves. The
/// same annotations as the creator stamp; any value a client sends is
/// overwritten, on creation and on every update. Other Secrets are not
/// touched (a match condition).
pub fn tenant_stamp_policy() -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
    // On creation the caller; on an update the stamp as it was (a client
    // cannot rewrite it), or the caller where there was none.
    let keep = |key: &str, fresh: &str| {
        format!(
            "request.operation == 'UPDATE' && has(oldObject.metadata.annotations) && '{key}' in oldObject.metadata.annotations ? oldObject.metadata.annotations['{key}'] : {fresh}"
        )
    };
    let (mut policy, binding) = stamp_policy(
        TENANT_STAMP_POLICY,
        &["CREATE", "UPDATE"],
        &["rolebindings"],
        None,
        Some(json!([{
            "name": "rolebindings-and-token-secrets",
            "expression": format!("request.resource.resource != 'secrets' || (has(object.type) && object.type == '{TOKEN_SECRET_TYPE}')"),
        }])),
        &format!(
            "Object{{metadata: Object.metadata{{annotations: {{'foureyes.dev/created-by': {}, 'foureyes.dev/created-by-groups': {}}}}}}}",
            keep(CREATED_BY_ANNOTATION, "request.userInfo.username"),
            keep(CREATED_BY_GROUPS_ANNOTATION, STAMP_GROUPS),
        ),
    );
    let mut spec = serde_json::to_value(&policy.spec).expect("policy spec");
    spec["matchConstraints"]["resourceRules"] = json!([
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["rolebindings"],
        },
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["secrets"],
        },
    ]);
    spec["matchConstraints"]["namespaceSelector"] = json!({
        "matchExpressions": [{ "key": PROJECT_UID_LABEL, "operator": "Exists" }],
    });
    policy.spec = serde_json::from_value(spec).expect("policy spec");
    (policy, binding)
}

/// The longest token the TokenRequest API mints in a tenant namespace for
/// anyone but the cluster's own components, partners and trusted asserters:
/// ten minutes, the shortest the API server allows.
pub const MAX_TOKEN_SECONDS: i64 = 600;

/// DESIGN §2, invariant 10: a token minted through the TokenRequest API
/// (`serviceaccounts/token`) is stored nowhere, so the operator cannot find
/// it at a grant's end; it is bounded when it is minted instead. In a
/// project's tenant namespace (one carrying `foureyes.dev/project-uid`), a
/// TokenRequest whose `spec.expirationSeconds` is absent or above
/// [`MAX_TOKEN_SECONDS`] is refused, unless the caller is a node (a kubelet
/// minting its pods' tokens, `system:node:...`), a ServiceAccount of
/// `kube-system` (the cluster's controllers), a partner (who holds the verb
/// `lock` on `lockouts`, as for `foureyes-lockout-writers`), or in a
/// trusted-asserter group. A grantee's token thus outlives the grant by ten
/// minutes at most.
///
/// Without its parameters it allows, like `foureyes-lease`: it sees the
/// kubelets' requests for every pod of the tenant namespaces, which a
/// missing ConfigMap must never stop (the other policies then refuse every
/// foureyes write, which shows).
pub fn token_lifetime_policy_in(
    params_namespace: &str,
) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = validating_policy(
        TOKEN_LIFETIME_POLICY,
        json!({
        "failurePolicy": "Fail",
        "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" },
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["serviceaccounts/token"],
            }],
            "namespaceSelector": {
                "matchExpressions": [{ "key": PROJECT_UID_LABEL, "operator": "Exists" }],
            },
        },
        "variables": [
            { "name": "trustedGroups", "expression": list_param_expression("trustedAsserterGroups") },
            { "name": "caller", "expression": "request.userInfo.username" },
            { "name": "groups", "expression": "has(request.userInfo.groups) ? request.userInfo.groups : []" },
            { "name": "exempt", "expression": format!(
                "variables.caller.startsWith('system:node:') || 'system:serviceaccounts:kube-system' in variables.groups || variables.groups.exists(g, g in variables.trustedGroups) || authorizer.group('foureyes.dev').resource('lockouts').check('{LOCKOUT_VERB}').allowed()"
            ) },
            { "name": "seconds", "expression": "has(object.spec.expirationSeconds) ? object.spec.expirationSeconds : 0" },
        ],
        "validations": [{
            "expression": format!("variables.exempt || (variables.seconds > 0 && variables.seconds <= {MAX_TOKEN_SECONDS})"),
            "messageExpression": format!(
                "'tokens for ServiceAccounts in the tenant namespaces of a foureyes project last at most {MAX_TOKEN_SECONDS} seconds (spec.expirationSeconds; kubectl create token --duration=10m), so that none outlives the grant that minted it; ' + variables.caller + ' asked for ' + (variables.seconds > 0 ? string(variables.seconds) + ' seconds' : 'no expiry') + '. Give workloads their tokens through projected volumes (the kubelet mints them), or ask a partner'"
            ),
            "reason": "Forbidden",
        }],
        }),
    );
    let mut binding = deny_binding(TOKEN_LIFETIME_POLICY, Some(params_namespace));
    if let Some(p) = binding.spec.param_ref.as_mut() {
        p.parameter_not_found_action = Some("Allow".into());
    }
    (policy, binding)
}

/// A MutatingAdmissionPolicy (and its binding) that applies `expression` to
/// `resources` on `operations`, where `match_conditions` hold.
fn stamp_policy(
    name: &str,
    operations: &[&str],
    resources: &[&str],
    variables: Option<serde_json::Value>,
    match_conditions: Option<serde_json::Value>,
    expression: &str,
) -> (MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding) {
    let mut spec = json!({
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "matchConstraints": {
            "resourceRules": [{
                "apiGroups": ["foureyes.dev"],
                "apiVersions": ["*"],
                "operations": operations,
                "resources": resources,
            }],
        },
        "mutations": [{ "patchType": "ApplyConfiguration", "applyConfiguration": { "expression": expression } }],
    });
    if let Some(conditions) = match_conditions {
        spec["matchConditions"] = conditions;
    }
    if let Some(variables) = variables {
        spec["variables"] = variables;
    }
    let metadata = json!({ "name": name, "labels": { "app.kubernetes.io/part-of": "foureyes" } });
    let policy: MutatingAdmissionPolicy = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": metadata,
        "spec": spec,
    }))
    .expect("valid MutatingAdmissionPolicy");
    let binding: MutatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": metadata,
        "spec": { "policyName": name },
    }))
    .expect("valid MutatingAdmissionPolicyBinding");
    (policy, binding)
}
