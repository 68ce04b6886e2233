//! Where a session was created from.

use serde::{Deserialize, Serialize};

/// Longest recorded user agent, in bytes; longer ones are cut at a character boundary.
pub const MAX_USER_AGENT_LEN: usize = 512;
/// Longest recorded IP address text, in bytes.
pub const MAX_IP_ADDRESS_LEN: usize = 64;

/// Where a session was created from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAttributes {
    /// The client's IP address as seen at login (empty when unknown).
    #[serde(default)]
    pub ip_address: String,
    /// The client's `User-Agent` at login (empty when unknown).
    #[serde(default)]
    pub user_agent: String,
}

impl SessionAttributes {
    /// Attributes from an IP address and a user agent, bounded in length: an over-long user agent
    /// is cut at a character boundary, an over-long IP address is dropped.
    pub fn new(ip_address: impl Into<String>, user_agent: impl Into<String>) -> Self {
        let mut ip_address = ip_address.into();
        if ip_address.len() > MAX_IP_ADDRESS_LEN {
            ip_address.clear();
        }
        let mut user_agent = user_agent.into();
        if user_agent.len() > MAX_USER_AGENT_LEN {
            let mut cut = MAX_USER_AGENT_LEN;
            while !user_agent.is_char_boundary(cut) {
                cut -= 1;
            }
            user_agent.truncate(cut);
        }
        Self {
            ip_address,
            user_agent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_bounded() {
        let ua = "é".repeat(400); // 800 bytes
        let attrs = SessionAttributes::new("x".repeat(100), ua);
        assert!(attrs.ip_address.is_empty());
        assert!(attrs.user_agent.len() <= MAX_USER_AGENT_LEN);
        assert!(attrs.user_agent.chars().all(|c| c == 'é'));
    }
}
