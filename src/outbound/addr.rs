//! What kind of destination an IP address is (IANA special-purpose registries, OWASP SSRF
//! Prevention Cheat Sheet): IPv6 forms that embed an IPv4 address are judged by that address,
//! and IPv6 must be global unicast (2000::/3) outside the special-purpose blocks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The kinds of destination the policy tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Public unicast: reachable on the internet.
    Public,
    /// Loopback (127.0.0.0/8, ::1): this host.
    Loopback,
    /// Anything else: unspecified, private, CGNAT, link-local, multicast, broadcast, reserved,
    /// documentation, benchmarking, ULA, site-local, Teredo.
    NonPublic,
}

/// The address itself, or the IPv4 address an IPv6 form embeds (IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
    }
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [s0, s1, s2, s3, s4, s5, s6, s7] = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from_bits((u32::from(hi) << 16) | u32::from(lo));
    let low = v4(s6, s7);
    match (s0, s1, s2, s3, s4, s5) {
        // ::ffff:0:0/96 (RFC 4291 s2.5.5.2).
        (0, 0, 0, 0, 0, 0xffff) => Some(low),
        // ::/96 (RFC 4291 s2.5.5.1, deprecated), except :: and ::1 themselves.
        (0, 0, 0, 0, 0, 0) if s6 != 0 => Some(low),
        // 64:ff9b::/96 (RFC 6052 s2.1).
        (0x64, 0xff9b, 0, 0, 0, 0) => Some(low),
        // 2002::/16 (RFC 3056 s2).
        (0x2002, ..) => Some(v4(s1, s2)),
        _ => None,
    }
}

/// Classifies `ip`, judging embedded IPv4 addresses by themselves.
pub fn classify(ip: IpAddr) -> Class {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, _] = ip.octets();
    if a == 127 {
        return Class::Loopback;
    }
    let non_public = a == 0 // "this network", 0.0.0.0 (RFC 791)
        || a == 10 // private (RFC 1918)
        || (a == 100 && (64..128).contains(&b)) // CGNAT shared space (RFC 6598)
        || (a == 169 && b == 254) // link-local, cloud metadata (RFC 3927)
        || (a == 172 && (16..32).contains(&b)) // private (RFC 1918)
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF assignments, TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (RFC 7526)
        || (a == 192 && b == 168) // private (RFC 1918)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved 240/4, broadcast
    if non_public { Class::NonPublic } else { Class::Public }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    if ip.is_loopback() {
        return Class::Loopback;
    }
    let [s0, s1, ..] = ip.segments();
    let global_unicast = s0 & 0xe000 == 0x2000; // 2000::/3 (RFC 4291 s2.4)
    // 2001::/23: IETF protocol assignments (Teredo, ORCHID; RFC 2928); 2001:db8::/32 and
    // 3fff::/20: documentation (RFC 3849, RFC 9637).
    let special = (s0 == 0x2001 && (s1 < 0x0200 || s1 == 0x0db8)) || (s0 == 0x3fff && s1 < 0x1000);
    if global_unicast && !special { Class::Public } else { Class::NonPublic }
}

/// A block of addresses, `10.0.0.0/8` or `fd00::/8`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    /// Whether `ip` (or the IPv4 address it embeds) lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        [ip, canonical(ip)].into_iter().any(|ip| match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => masked(n.to_bits().into(), a.to_bits().into(), 32, self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => masked(n.to_bits(), a.to_bits(), 128, self.len),
            _ => false,
        })
    }
}

fn masked(net: u128, addr: u128, bits: u8, len: u8) -> bool {
    let shift = u32::from(bits.saturating_sub(len));
    net.checked_shr(shift).unwrap_or(0) == addr.checked_shr(shift).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| format!("'{s}' is not an address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("'{s}': bad prefix length"))?,
        };
        Ok(Self { net, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Class {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        // OWASP SSRF Prevention Cheat Sheet: refuse every non-public destination.
        for a in ["127.0.0.1", "127.255.255.254"] {
            assert_eq!(class(a), Class::Loopback, "{a}");
        }
        for a in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert_eq!(class(a), Class::NonPublic, "{a}");
        }
        for a in ["8.8.8.8", "100.63.255.255", "100.128.0.1", "172.15.0.1", "172.32.0.1", "223.5.5.5", "1.1.1.1"] {
            assert_eq!(class(a), Class::Public, "{a}");
        }
    }

    #[test]
    fn ipv6_ranges_and_embedded_ipv4() {
        assert_eq!(class("::1"), Class::Loopback);
        // Judged by the IPv4 address inside: mapped, compatible, NAT64, 6to4.
        assert_eq!(class("::ffff:127.0.0.1"), Class::Loopback);
        assert_eq!(class("::127.0.0.1"), Class::Loopback);
        assert_eq!(class("2002:7f00:1::"), Class::Loopback);
        for a in [
            "::",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:c0a8:0101::1",
            "fe80::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "::ffff:0:10.0.0.1",
        ] {
            assert_eq!(class(a), Class::NonPublic, "{a}");
        }
        for a in ["2400:3200::1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:0808:0808::1"] {
            assert_eq!(class(a), Class::Public, "{a}");
        }
    }

    #[test]
    fn cidr_blocks() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one: Cidr = "192.168.7.7".parse().unwrap();
        assert!(one.contains("192.168.7.7".parse().unwrap()) && !one.contains("192.168.7.8".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()) && !all.contains("::1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()) && !v6.contains("fe80::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "peer.internal", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
