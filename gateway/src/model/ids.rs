//! Typed ids. [`OrgId`] carries the tenant: only authentication (an API key
//! checked against the database), the database itself (a row it returned)
//! or the creation of a new organization can produce one, so an
//! organization-owned read or write without a checked tenant does not
//! compile.

use std::fmt;

/// An organization's id, checked: it came from a verified API key, a row
/// of the database, or a new organization. There is no public way to make
/// one from a string a caller supplied.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(String);

impl OrgId {
    /// The id of a new organization (`org_…`, time-ordered).
    pub fn generate() -> Self {
        Self(super::new_id("org"))
    }

    /// An id the database or authentication vouches for. Crate-private on
    /// purpose: request paths and bodies never reach it.
    pub(crate) fn trusted(id: String) -> Self {
        Self(id)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgId({})", self.0)
    }
}

impl PartialEq<str> for OrgId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OrgId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
