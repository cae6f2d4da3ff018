//! The validator's name index, now in [`crate::resolved`]: this module only re-exports it until
//! the validator imports [`crate::resolved`] directly (crate-internal).

pub(crate) use crate::resolved::{NameMap, Slot, index_all, index_with_dups};
