//! Attachments in the registry.
