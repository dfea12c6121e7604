//! Numeric users (`uid[:gid]`), read the way Docker and runc read them, shared by the
//! configuration (`user`, test users, file owners) and the lint's `root-user` rule.
//!
//! runc parses the parts of `USER` with Go's `strconv.Atoi`, which takes a sign and leading
//! zeros: `00`, `+0`, `-0` and `0000:1` are all uid 0, root. [`NumericUser::parse`] reads the same
//! spellings, so no spelling of root passes, and [`NumericUser`]'s `Display` writes the canonical
//! form (`7`, never `007`) into the Dockerfile.

use std::fmt;

/// A numeric `uid[:gid]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericUser {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: Option<u32>,
}

/// Go's `strconv.Atoi` on one part: an optional sign, then ASCII digits (`None` otherwise).
pub fn go_atoi(part: &str) -> Option<i64> {
    let digits = part.strip_prefix(['+', '-']).unwrap_or(part);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros never change the value; more than 19 significant digits overflow like Go.
    let significant = digits.trim_start_matches('0');
    let value: i64 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    Some(if part.starts_with('-') { -value } else { value })
}

impl NumericUser {
    /// Parses `uid` or `uid:gid` as Docker reads numbers; ids are 0 to 4294967294
    /// (`4294967295` is `(uid_t)-1`, "no user").
    pub fn parse(text: &str) -> std::result::Result<NumericUser, String> {
        let id = |part: &str, what: &str| -> std::result::Result<u32, String> {
            let n = go_atoi(part).ok_or_else(|| {
                format!(
                    "the {what} `{}` is not a number",
                    crate::error::printable(part, 30)
                )
            })?;
            u32::try_from(n)
                .ok()
                .filter(|n| *n < u32::MAX)
                .ok_or_else(|| format!("the {what} {n} is outside 0 to 4294967294"))
        };
        let (uid, gid) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text, None),
        };
        Ok(NumericUser {
            uid: id(uid, "uid")?,
            gid: gid.map(|g| id(g, "gid")).transpose()?,
        })
    }

    /// Whether this is root (uid 0), whatever the spelling.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

impl fmt::Display for NumericUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.gid {
            Some(g) => write!(f, "{}:{g}", self.uid),
            None => write!(f, "{}", self.uid),
        }
    }
}

/// Whether a `USER` argument selects root: the name `root`, or any numeric spelling of uid 0.
/// Variables (`$UID`) are unknown and not root.
pub fn user_is_root(spec: &str) -> bool {
    let user = spec.split(':').next().unwrap_or("");
    user == "root" || go_atoi(user) == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_uid_zero_is_root() {
        for root in [
            "0",
            "00",
            "+0",
            "-0",
            "0000:1",
            "0:0",
            "000000000000000000000000",
        ] {
            assert!(NumericUser::parse(root).unwrap().is_root(), "{root}");
            assert!(user_is_root(root), "{root}");
        }
        assert!(user_is_root("root") && user_is_root("root:root"));
        for user in ["1", "65532:65532", "app", "$UID", "", "1000:0"] {
            assert!(!user_is_root(user), "{user}");
        }
    }

    #[test]
    fn canonical_form_and_limits() {
        assert_eq!(NumericUser::parse("007:+08").unwrap().to_string(), "7:8");
        for bad in [
            "",
            "a",
            "1:",
            ":1",
            "1:2:3",
            "-1",
            "4294967295",
            "1 ",
            " 1",
            "0x10",
            "1e3",
        ] {
            assert!(NumericUser::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(NumericUser::parse("4294967294").unwrap().uid, u32::MAX - 1);
    }
}
