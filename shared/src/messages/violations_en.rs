//! English templates of every (rule, case); rendering one equals the validator's message.

use crate::rules::RuleId;
use RuleId::*;

/// `visible_to`'s answer when only another tenant's resources break `rule`.
pub(super) const OTHER_TENANT_TEMPLATE: &str = "the change breaks rule {rule} at a resource of another tenant that one of your connections reaches; undo the part of the change that reaches the other tenant (an address space, a site or a connection to it), or agree on it with that tenant's owner";

/// (rule, case, template).
pub(super) const TEMPLATES: &[(RuleId, &str, &str)] = &[(
    Gw5,
    "empty",
    "the shared key is empty; use 1 to 128 ASCII letters and digits",
)];
