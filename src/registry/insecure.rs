//! Which registries the engine reaches without verified TLS, as the engine decides it: its
//! `insecure-registries` (CIDRs and host names from `/info`) plus loopback. For those the client
//! tries HTTPS without certificate verification first and plain HTTP after it, as the engine does.

use std::net::IpAddr;

/// The registries the engine reaches without verified TLS: `insecure-registries` CIDRs and
/// hosts from the engine's `/info`, plus loopback (`127.0.0.0/8`, `::1`, `localhost`).
///
/// A host name is matched by name only, never resolved: a name that merely resolves to a
/// loopback address still gets verified HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsecureRegistries {
    cidrs: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
}

impl InsecureRegistries {
    /// From the engine's `RegistryConfig`: `InsecureRegistryCIDRs` and the `IndexConfigs` whose
    /// `Secure` is false (unparsable CIDRs are ignored).
    pub fn new(cidrs: &[String], hosts: &[String]) -> Self {
        InsecureRegistries {
            cidrs: cidrs.iter().filter_map(|c| parse_cidr(c)).collect(),
            hosts: hosts.to_vec(),
        }
    }

    /// Whether `host` (`name[:port]`, as in an image name) is insecure.
    pub fn contains(&self, host: &str) -> bool {
        if self.hosts.iter().any(|h| h == host) {
            return true;
        }
        let name = host_name(host);
        if name == "localhost" || self.hosts.iter().any(|h| h == name) {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || self.cidrs.iter().any(|c| in_cidr(ip, *c)),
            Err(_) => false,
        }
    }
}

/// `name` of `name:port`, `[::1]:5000` -> `::1`.
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match host.rsplit_once(':') {
            Some((n, p)) if p.parse::<u16>().is_ok() && !n.contains(':') => n,
            _ => host,
        },
    }
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = text.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    let (a, b, len) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = len - u32::from(bits);
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_the_engines_insecure_registries_are_insecure() {
        let none = InsecureRegistries::default();
        for host in [
            "127.0.0.1:5000",
            "127.1.2.3:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
        ] {
            assert!(none.contains(host), "{host}");
        }
        for host in ["ghcr.io", "10.0.0.1:5000", "registry.test:5000"] {
            assert!(!none.contains(host), "{host}");
        }
        let engine = InsecureRegistries::new(
            &["127.0.0.0/8".into(), "10.1.0.0/16".into(), "bad".into()],
            &["registry.test:5000".into(), "plain.test".into()],
        );
        assert!(engine.contains("10.1.200.3:5000"));
        assert!(!engine.contains("10.2.0.1:5000"));
        assert!(engine.contains("registry.test:5000"));
        assert!(!engine.contains("registry.test:6000"));
        assert!(engine.contains("plain.test:443"));
        assert!(!engine.contains("ghcr.io"));
    }
}
