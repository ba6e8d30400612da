//! Placeholder: the target aggregate is being written.

use crate::schema::SchemaEntry;

/// The schemas of this aggregate's commands and events.
pub const SCHEMAS: &[SchemaEntry] = &[];
