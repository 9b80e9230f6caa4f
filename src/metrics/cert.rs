//! The expiry (`notAfter`) of a PEM certificate, for the TLS certificate gauge: a minimal DER
//! walk of RFC 5280 s4.1 (Certificate -> tbsCertificate -> validity), no X.509 crate needed.

/// The `notAfter` of the first certificate in `pem`, unix seconds.
pub fn not_after(pem: &[u8]) -> Option<i64> {
    let der = rustls_pemfile::certs(&mut &pem[..]).next()?.ok()?;
    not_after_der(der.as_ref())
}

/// One DER element: (tag, contents, rest).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
        (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

fn not_after_der(der: &[u8]) -> Option<i64> {
    let (_, cert, _) = element(der)?; // Certificate SEQUENCE
    let (_, tbs, _) = element(cert)?; // tbsCertificate SEQUENCE
    let (tag, _, mut rest) = element(tbs)?;
    if tag == 0xa0 {
        // [0] version: the serial number follows.
        rest = element(rest)?.2;
    }
    let rest = element(rest)?.2; // signature AlgorithmIdentifier
    let rest = element(rest)?.2; // issuer
    let (_, validity, _) = element(rest)?;
    let (_, _, after) = element(validity)?; // notBefore
    let (tag, time, _) = element(after)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049) or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = s.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| rest.get(r).and_then(|v| v.parse::<u8>().ok());
    let month = time::Month::try_from(n(0..2)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, n(2..4)?).ok()?;
    let t = time::Time::from_hms(n(4..6)?, n(6..8)?, n(8..10)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["id.example.test".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 7, 9);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        // 2031-07-09T00:00:00Z
        assert_eq!(not_after(cert.pem().as_bytes()), Some(1_941_321_600));
        params.not_after = rcgen::date_time_ymd(2060, 1, 1); // GeneralizedTime from 2050 on
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.pem().as_bytes()), Some(2_840_140_800));
        assert_eq!(not_after(b"not a certificate"), None);
    }
}
