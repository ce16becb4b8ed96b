//! SSRF guard: which addresses a check may connect to.
//!
//! Watches are user-supplied URLs fetched from the server's network position, so a watch must not
//! be a way to read the cloud metadata service, the admin panel on the LAN or the server's own
//! loopback ports. The guard is applied to the *resolved* address of every connection (see
//! [`crate::fetch`]): the same addresses that are checked are the ones connected to, so a DNS
//! answer that changes between check and connect (rebinding) cannot slip through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which destinations are allowed. Built from `ALLOW_PRIVATE_ADDRESSES` (alias
/// `ALLOW_IANA_RESTRICTED_ADDRESSES`) and `ALLOW_PRIVATE_HOSTS` by [`crate::config`].
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    /// Everything allowed: self-hosters watching their own LAN, and the test suites.
    pub allow_private: bool,
    /// Host names (exact, any case) and IP literals (`10.0.0.5`, `[fd00::5]` or `fd00::5`)
    /// exempt from the address check, for the one internal service a user wants to watch without
    /// opening the whole private range. A listed IP is allowed however it is reached (as a
    /// literal, or as the answer for a name): the entry names a destination the user vouched for.
    pub allowed_hosts: Vec<String>,
}

/// Why a destination was refused; shown to the user in `last_error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is {why}")]
pub struct Refusal {
    pub ip: IpAddr,
    pub why: &'static str,
}

impl AddressPolicy {
    pub fn allow_all() -> Self {
        AddressPolicy {
            allow_private: true,
            allowed_hosts: Vec::new(),
        }
    }

    /// Whether `host` (a URL's host: a name, an IPv4 literal or a bracketed IPv6 literal) is on
    /// the allow-list. IP literals compare as addresses, so `[::1]`, `::1` and `0:0::1` agree.
    pub fn host_exempt(&self, host: &str) -> bool {
        if self.allow_private {
            return true;
        }
        let host = host.trim_end_matches('.');
        match parse_ip_literal(host) {
            Some(ip) => self.ip_listed(ip),
            None => self
                .allowed_hosts
                .iter()
                .any(|h| h.trim().trim_end_matches('.').eq_ignore_ascii_case(host)),
        }
    }

    /// Checks one address: a literal host, or what a name resolved to.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private {
            return Ok(());
        }
        match restricted_reason(ip) {
            Some(_) if self.ip_listed(ip) => Ok(()),
            Some(why) => Err(Refusal { ip, why }),
            None => Ok(()),
        }
    }

    fn ip_listed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed_hosts
            .iter()
            .filter_map(|h| parse_ip_literal(h.trim()))
            .any(|listed| listed.to_canonical() == ip)
    }
}

/// An IP literal as written in a URL host or an allow-list entry (IPv6 with or without
/// brackets); `None` for a host name.
fn parse_ip_literal(s: &str) -> Option<IpAddr> {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse().ok()
}

/// (network, prefix length, reason) for IPv4 blocks that are not globally reachable.
const V4_BLOCKS: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
    ([10, 0, 0, 0], 8, "a private address"),
    ([100, 64, 0, 0], 10, "a carrier-grade NAT (shared) address"),
    ([127, 0, 0, 0], 8, "a loopback address"),
    (
        [169, 254, 0, 0],
        16,
        "a link-local address (includes cloud metadata services)",
    ),
    ([172, 16, 0, 0], 12, "a private address"),
    ([192, 0, 0, 0], 24, "an IETF protocol assignment address"),
    ([192, 0, 2, 0], 24, "a documentation address"),
    ([192, 88, 99, 0], 24, "a 6to4 relay anycast address"),
    ([192, 168, 0, 0], 16, "a private address"),
    ([198, 18, 0, 0], 15, "a benchmarking address"),
    ([198, 51, 100, 0], 24, "a documentation address"),
    ([203, 0, 113, 0], 24, "a documentation address"),
    ([224, 0, 0, 0], 4, "a multicast address"),
    ([240, 0, 0, 0], 4, "a reserved address"),
];

/// (network, prefix length, reason) for IPv6 blocks that are not globally reachable. Blocks that
/// embed an IPv4 address are handled before this table is consulted.
const V6_BLOCKS: &[([u16; 8], u8, &str)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, "an unspecified address"),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, "a loopback address"),
    // RFC 8215's local-use NAT64 prefix. Refused outright rather than unwrapped like the
    // well-known 64:ff9b::/96: where the IPv4 address sits depends on the prefix length the
    // operator chose inside the /48 (RFC 6052 allows /48 to /96), so there is no one place to
    // read it from, and a translator for this prefix is by definition the operator's own
    // network (IANA: not globally reachable).
    (
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "a local-use NAT64 address",
    ),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "a discard-only address"),
    (
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "a documentation address",
    ),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "an IETF protocol assignment address",
    ),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "a documentation address"),
    (
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "a unique-local (private) address",
    ),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "a link-local address"),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "a site-local address"),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "a multicast address"),
];

/// Why `ip` is off-limits, or `None` for a globally reachable address.
pub fn restricted_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            // An IPv6 form that carries an IPv4 address is judged by that address, so that
            // ::ffff:127.0.0.1 or a 6to4 wrapper cannot smuggle a blocked IPv4 destination.
            if let Some(inner) = embedded_v4(v6) {
                return v4_reason(inner);
            }
            let bits = u128::from(v6);
            V6_BLOCKS.iter().find_map(|(net, len, why)| {
                let net = u128::from(Ipv6Addr::from(*net));
                prefix_match128(bits, net, *len).then_some(*why)
            })
        }
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_broadcast() {
        return Some("the broadcast address");
    }
    let bits = u32::from(ip);
    V4_BLOCKS.iter().find_map(|(net, len, why)| {
        let net = u32::from(Ipv4Addr::from(*net));
        let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
        (bits & mask == net & mask).then_some(*why)
    })
}

fn prefix_match128(bits: u128, net: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    bits & mask == net & mask
}

/// IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96),
/// 6to4 (2002::/16) and Teredo (2001::/32, client address inverted) forms.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let bits = u128::from(ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if s[..6] == [0, 0, 0, 0, 0, 0] && bits > 1 {
        return Some(low32);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low32);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(Ipv4Addr::from(!((bits & 0xffff_ffff) as u32)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<&'static str> {
        restricted_reason(s.parse().unwrap())
    }

    #[test]
    fn refuses_every_restricted_family() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            // Local-use NAT64 (RFC 8215), whatever IPv4 address it seems to carry.
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1::",
            "64:ff9b:1:7f00:1::",
            "64:ff9b:1:ffff:ffff:ffff:808:808",
            "2002:7f00:0001::",
            "2001:db8::1",
        ] {
            assert!(reason(ip).is_some(), "{ip} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            // The well-known NAT64 prefix stays judged by the embedded address.
            "64:ff9b::808:808",
            // Just outside the local-use /48.
            "64:ff9b:2::808:808",
        ] {
            assert_eq!(reason(ip), None, "{ip} should be allowed");
        }
    }

    #[test]
    fn teredo_client_address_is_unwrapped() {
        // Teredo stores the client IPv4 inverted in the low 32 bits: !127.0.0.1 = 0x80fffffe.
        assert!(reason("2001:0:4136:e378:8000:63bf:80ff:fffe").is_some());
    }

    #[test]
    fn policy_exemptions() {
        let strict = AddressPolicy::default();
        assert!(strict.check("127.0.0.1".parse().unwrap()).is_err());
        assert!(!strict.host_exempt("localhost"));
        let open = AddressPolicy::allow_all();
        assert!(open.check("127.0.0.1".parse().unwrap()).is_ok());
        let hosts = AddressPolicy {
            allow_private: false,
            allowed_hosts: vec!["router.lan".into()],
        };
        assert!(hosts.host_exempt("Router.LAN."));
        assert!(!hosts.host_exempt("other.lan"));
        assert!(hosts.check("192.168.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn allow_list_matches_ip_literals() {
        let policy = AddressPolicy {
            allow_private: false,
            allowed_hosts: vec!["192.168.1.5".into(), "[FD00::5]".into(), "::1".into()],
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(policy.check(ip("192.168.1.5")).is_ok());
        assert!(
            policy.check(ip("::ffff:192.168.1.5")).is_ok(),
            "mapped form"
        );
        assert!(policy.check(ip("fd00::5")).is_ok());
        assert!(policy.check(ip("::1")).is_ok());
        assert!(policy.host_exempt("192.168.1.5"));
        assert!(policy.host_exempt("[fd00:0::5]"));
        assert!(policy.host_exempt("[::1]"));
        // Only the listed addresses: neighbours and other families stay refused.
        assert!(policy.check(ip("192.168.1.6")).is_err());
        assert!(policy.check(ip("fd00::6")).is_err());
        assert!(policy.check(ip("127.0.0.1")).is_err());
        assert!(!policy.host_exempt("192.168.1.6"));
        // A name that merely looks like a listed address is not one.
        assert!(!policy.host_exempt("192.168.1.5.example.com"));
    }
}
