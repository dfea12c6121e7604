//! The few X.509 fields the verifier reads itself, which webpki does not expose: the issuer and
//! subject (to tell a self-signed certificate) and the validity period. A strict DER walk of
//! `Certificate.tbsCertificate`; anything unexpected is `None`.

/// What [`fields`] reads of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The issuer `Name`, DER.
    pub issuer: &'a [u8],
    /// The subject `Name`, DER.
    pub subject: &'a [u8],
    /// `notBefore`, seconds since the Unix epoch (negative before 1970).
    pub not_before: i64,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
}

impl Fields<'_> {
    /// Issuer and subject are the same name (what `openssl req -x509` makes).
    pub fn self_issued(&self) -> bool {
        self.issuer == self.subject
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Issuer, subject and validity of a DER certificate.
pub fn fields(der: &[u8]) -> Option<Fields<'_>> {
    let mut input = der;
    let cert = expect(&mut input, SEQUENCE)?;
    let mut cert = cert;
    let mut tbs = expect(&mut cert, SEQUENCE)?;
    let (mut tag, mut body) = read(&mut tbs)?;
    if tag == VERSION {
        (tag, body) = read(&mut tbs)?;
    }
    let _serial = (tag == INTEGER).then_some(body)?;
    let _signature = expect(&mut tbs, SEQUENCE)?;
    let issuer = expect(&mut tbs, SEQUENCE)?;
    let mut validity = expect(&mut tbs, SEQUENCE)?;
    let subject = expect(&mut tbs, SEQUENCE)?;
    let not_before = time(read(&mut validity)?)?;
    let not_after = time(read(&mut validity)?)?;
    validity.is_empty().then_some(Fields {
        issuer,
        subject,
        not_before,
        not_after,
    })
}

/// One TLV: its tag and contents (definite lengths only, as DER requires).
fn read<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b))
    };
    let (body, rest) = rest.split_at_checked(len)?;
    *input = rest;
    Some((tag, body))
}

fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    match read(input)? {
        (t, body) if t == tag => Some(body),
        _ => None,
    }
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950-2049) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`), as
/// RFC 5280 requires them, to Unix seconds.
fn time((tag, body): (u8, &[u8])) -> Option<i64> {
    let text = std::str::from_utf8(body).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let yy = num(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (num(0..4)?, 4),
        _ => return None,
    };
    let field = |i: usize| num(rest + 2 * i..rest + 2 * i + 2);
    let (month, day, hour, minute, second) =
        (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds() {
        assert_eq!(time((UTC_TIME, b"700101000000Z")), Some(0));
        assert_eq!(time((UTC_TIME, b"000229120000Z")), Some(951_825_600));
        assert_eq!(time((UTC_TIME, b"491231235959Z")), Some(2_524_607_999));
        assert_eq!(time((UTC_TIME, b"500101000000Z")), Some(-631_152_000));
        assert_eq!(
            time((GENERALIZED_TIME, b"20380119031408Z")),
            Some(2_147_483_648)
        );
        assert_eq!(
            time((GENERALIZED_TIME, b"99991231235959Z")),
            Some(253_402_300_799)
        );
        for bad in [
            &b"700101000000"[..],
            b"7001010000Z",
            b"701301000000Z",
            b"70010100000aZ",
        ] {
            assert_eq!(time((UTC_TIME, bad)), None, "{bad:?}");
        }
        assert_eq!(time((0x04, b"700101000000Z")), None);
    }

    /// A minimal DER certificate around `validity`, with `issuer` and `subject` names.
    fn cert(version: bool, issuer: &[u8], subject: &[u8], validity: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if body.len() < 0x80 {
                out.push(body.len() as u8);
            } else {
                out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
            }
            out.extend_from_slice(body);
            out
        }
        let mut tbs = Vec::new();
        if version {
            tbs.extend(tlv(VERSION, &tlv(INTEGER, &[2])));
        }
        tbs.extend(tlv(INTEGER, &[1]));
        tbs.extend(tlv(SEQUENCE, &tlv(0x06, &[0x2a])));
        tbs.extend(tlv(SEQUENCE, issuer));
        tbs.extend(tlv(SEQUENCE, validity));
        tbs.extend(tlv(SEQUENCE, subject));
        tbs.extend(tlv(SEQUENCE, &[0u8; 200]));
        let mut body = tlv(SEQUENCE, &tbs);
        body.extend(tlv(SEQUENCE, &tlv(0x06, &[0x2a])));
        body.extend(tlv(0x03, &[0, 1, 2]));
        tlv(SEQUENCE, &body)
    }

    #[test]
    fn issuer_subject_and_validity_are_read() {
        let validity = [
            &[UTC_TIME, 13][..],
            b"700101000000Z",
            &[GENERALIZED_TIME, 15],
            b"20380119031408Z",
        ]
        .concat();
        for version in [true, false] {
            let der = cert(version, b"name-a", b"name-a", &validity);
            let f = fields(&der).unwrap();
            assert_eq!((f.not_before, f.not_after), (0, 2_147_483_648));
            assert!(f.self_issued());
        }
        let der = cert(true, b"ca", b"leaf", &validity);
        assert!(!fields(&der).unwrap().self_issued());
        // Truncated, or a third time in the validity: not a certificate we read.
        assert_eq!(fields(&der[..der.len() - 1]), None);
        let three = [&validity[..], &[UTC_TIME, 13], b"700101000000Z"].concat();
        assert_eq!(fields(&cert(true, b"a", b"a", &three)), None);
    }
}
