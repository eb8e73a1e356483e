//! Critical environments: an explicit setting of an environment (not a guess from its
//! name), and the comment a project can require on every write that touches one.
//!
//! "Touches" means the write can change what the environment serves: its config of the
//! flag, the flag's variants or salt, whether the flag is archived, or a segment one of its
//! flags uses. Renaming a flag or editing its description touches nothing.

use crate::error::{ApiError, ApiResult};
use crate::store::environment::Environment;
use crate::store::project::Project;

/// 422 naming `comment` when `project` requires comments for critical environments, the
/// write touches one of them (`touched`, any environments; only the critical ones count)
/// and `comment` (already trimmed) is empty.
pub(crate) fn require_comment<'a>(
    project: &Project,
    touched: impl IntoIterator<Item = &'a Environment>,
    comment: &str,
) -> ApiResult<()> {
    if !project.require_critical_comment || !comment.is_empty() {
        return Ok(());
    }
    let critical: Vec<String> = touched
        .into_iter()
        .filter(|e| e.critical)
        .map(|e| format!("`{}`", e.key))
        .collect();
    if critical.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        "comment",
        format!(
            "required: this change touches the critical environment{} {}, and project `{}` \
             requires a comment for those",
            if critical.len() == 1 { "" } else { "s" },
            critical.join(", "),
            project.key
        ),
    ))
}
