//! The software bill of materials of a shipped binary.
