//! The policy's verdicts on URLs and addresses, and the client refusing before it connects.

use super::*;

fn policy(allow: &[&str], loopback: Loopback, dev: bool) -> Policy {
    let allow = allow.iter().map(|a| Allowed::try_from((*a).to_owned()).unwrap()).collect();
    Policy::new(&OutboundConfig { allow, loopback, failure_cache_secs: 30 }, dev)
}

fn production() -> Policy {
    policy(&[], Loopback::Dev, false)
}

#[test]
fn odd_ipv4_spellings_are_normalised_by_the_url_parser() {
    // OWASP SSRF: decimal, hex, octal and short forms all name 127.0.0.1; the url crate (WHATWG
    // URL Standard host parser) turns each into an IPv4 host, so the policy sees the address.
    for u in [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://0177.0.0.1/",
        "http://017700000001/",
        "http://127.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
    ] {
        let host = url::Url::parse(u).unwrap().host().map(|h| h.to_owned());
        let ip: IpAddr = match host {
            Some(url::Host::Ipv4(ip)) => ip.into(),
            Some(url::Host::Ipv6(ip)) => ip.into(),
            other => panic!("{u} parsed as {other:?}"),
        };
        assert_eq!(addr::canonical(ip), IpAddr::from([127, 0, 0, 1]), "{u}");
        assert_eq!(production().check_url(u), Err(Refused::NotPublic), "{u}");
    }
    assert_eq!(production().check_url("http://0xa9.254.169.254/latest/meta-data/"), Err(Refused::NotPublic));
    assert_eq!(production().check_url("http://0/"), Err(Refused::NotPublic));
}

#[test]
fn production_refuses_what_is_not_public() {
    let p = production();
    for u in [
        "https://127.0.0.1/jwks",
        "https://169.254.169.254/",
        "https://10.1.2.3/",
        "https://[::1]/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "https://0.0.0.0/",
        "https://[::]/",
        "https://localhost/jwks",
        "https://LOCALHOST./jwks",
        "https://app.localhost/jwks",
    ] {
        assert_eq!(p.check_url(u), Err(Refused::NotPublic), "{u}");
    }
    // Names are judged when resolved; public addresses pass.
    for u in ["https://rp.example.gov.cn/jwks", "https://8.8.8.8/", "https://[2400:3200::1]/"] {
        assert_eq!(p.check_url(u), Ok(()), "{u}");
    }
    assert_eq!(p.check_url("not a url"), Err(Refused::NotUrl));
}

#[test]
fn loopback_follows_dev_mode_and_the_switch() {
    let u = "http://127.0.0.1:9000/jwks";
    assert_eq!(policy(&[], Loopback::Dev, true).check_url(u), Ok(()));
    assert_eq!(policy(&[], Loopback::Dev, false).check_url(u), Err(Refused::NotPublic));
    assert_eq!(policy(&[], Loopback::Allow, false).check_url(u), Ok(()));
    assert_eq!(policy(&[], Loopback::Refuse, true).check_url(u), Err(Refused::NotPublic));
    // Dev mode allows loopback only, not the private networks.
    assert_eq!(policy(&[], Loopback::Dev, true).check_url("http://10.0.0.1/"), Err(Refused::NotPublic));
    assert_eq!(policy(&[], Loopback::Dev, true).check_url("http://169.254.169.254/"), Err(Refused::NotPublic));
}

#[test]
fn the_allow_list_admits_internal_peers() {
    let p = policy(&["10.0.0.0/8", "fd00::/8", "peer.internal.gov.cn", "*.corp.gov.cn"], Loopback::Dev, false);
    assert!(p.allows_ip("10.9.8.7".parse().unwrap()));
    assert!(p.allows_ip("::ffff:10.9.8.7".parse().unwrap()));
    assert!(p.allows_ip("fd12::1".parse().unwrap()));
    assert!(!p.allows_ip("192.168.0.1".parse().unwrap()));
    assert!(!p.allows_ip("127.0.0.1".parse().unwrap()));
    assert!(p.allows_host("peer.internal.gov.cn") && p.allows_host("PEER.internal.gov.cn."));
    assert!(p.allows_host("a.corp.gov.cn") && p.allows_host("b.a.corp.gov.cn"));
    assert!(!p.allows_host("corp.gov.cn") && !p.allows_host("evilcorp.gov.cn") && !p.allows_host("other.gov.cn"));
    assert_eq!(p.check_url("https://10.0.0.5/jwks"), Ok(()));
    for bad in ["", "a b", "-/-", "10.0.0.0/99", "peer_internal", "*.", "a..b"] {
        assert!(Allowed::try_from(bad.to_owned()).is_err(), "{bad}");
    }
}

/// A listener that counts the connections it accepts and answers each with 204.
async fn counting_listener() -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = n.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = s.read(&mut [0u8; 4096]).await;
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
        }
    });
    (addr, n)
}

#[tokio::test]
async fn the_client_refuses_before_connecting() {
    // OWASP SSRF: literals are checked by the hook, names on their resolved addresses.
    let (addr, hits) = counting_listener().await;
    let port = addr.port();
    let http = client::build(production()).unwrap();
    for u in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let e = http.get(&u).send().await.unwrap_err();
        assert!(e.is_connect(), "{u}: {e:?}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Dev mode (and the allow list) let the same requests through to the listener.
    for p in [policy(&[], Loopback::Dev, true), policy(&["127.0.0.0/8", "localhost"], Loopback::Dev, false)] {
        let http = client::build(p).unwrap();
        let before = hits.load(std::sync::atomic::Ordering::SeqCst);
        for host in ["127.0.0.1", "localhost"] {
            let r = http.get(format!("http://{host}:{port}/")).send().await.unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
        }
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before + 2);
    }
}
