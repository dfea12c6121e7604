//! Release steps driven by the plan: build, test, tag, push.

pub mod test;
