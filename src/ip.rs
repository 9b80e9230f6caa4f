//! An IP address as text. `Ipv4Addr`'s `Display` goes through the formatting machinery (it
//! supports width and padding): about 1,300 instructions, and every client-authenticated
//! request wrote its peer's address twice (the request's metadata, the guessing guard's key),
//! which was 2.6 % of an introspection's own instructions (issue 13).

use std::net::IpAddr;

/// `ip.to_string()`, with IPv4 written digit by digit.
pub fn text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push(char::from(b'0' + o / 100));
                }
                if o >= 10 {
                    s.push(char::from(b'0' + o / 10 % 10));
                }
                s.push(char::from(b'0' + o % 10));
            }
            s
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn writes_what_display_writes() {
        for o in 0..=255u8 {
            for ip in [[o, 0, 0, 0], [1, o, 2, 3], [10, 0, o, 255], [255, 9, 99, o], [o, o, o, o]] {
                let ip = IpAddr::V4(Ipv4Addr::from(ip));
                assert_eq!(text(ip), ip.to_string());
            }
        }
        for v6 in [Ipv6Addr::LOCALHOST, "2001:db8::1".parse().expect("v6"), "::ffff:1.2.3.4".parse().expect("v6")] {
            assert_eq!(text(IpAddr::V6(v6)), v6.to_string());
        }
    }
}
