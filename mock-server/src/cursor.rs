//! Opaque, tamper-evident cursors: the position in ingestion order plus the reset parameters,
//! bound to account, event type, API version and server run, MACed with the server key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAC_LEN: usize = 16;
const FORMAT: u8 = 2;

/// What a cursor carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The server run that made it: a position means nothing to another run, whose events
    /// (appended, generated with other flags) may differ.
    pub run: u64,
    pub api_version: u8,
    pub kind: u8,
    pub account_uuid: String,
    pub limit: u16,
    /// Index of the next event to consider, in ingestion order.
    pub position: u64,
    /// Window start (inclusive), nanoseconds since the epoch.
    pub start_ns: i64,
    /// Window end (exclusive), if the reset named one.
    pub end_ns: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("malformed cursor")]
    Malformed,
    #[error("cursor signature mismatch")]
    BadMac,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"op-events-mock cursor v1\0");
    m
}

impl Cursor {
    pub fn encode(&self, key: &[u8]) -> String {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[FORMAT, self.api_version, self.kind]);
        buf.extend_from_slice(&self.run.to_le_bytes());
        buf.extend_from_slice(&self.limit.to_le_bytes());
        buf.extend_from_slice(&self.position.to_le_bytes());
        buf.extend_from_slice(&self.start_ns.to_le_bytes());
        buf.push(u8::from(self.end_ns.is_some()));
        buf.extend_from_slice(&self.end_ns.unwrap_or(0).to_le_bytes());
        buf.extend_from_slice(self.account_uuid.as_bytes());
        let mut m = mac(key);
        m.update(&buf);
        buf.extend_from_slice(&m.finalize().into_bytes()[..MAC_LEN]);
        B64.encode(buf)
    }

    pub fn decode(key: &[u8], text: &str) -> Result<Cursor, CursorError> {
        let buf = B64.decode(text).map_err(|_| CursorError::Malformed)?;
        if buf.len() < 39 + MAC_LEN {
            return Err(CursorError::Malformed);
        }
        let (body, tag) = buf.split_at(buf.len() - MAC_LEN);
        let mut m = mac(key);
        m.update(body);
        m.verify_truncated_left(tag)
            .map_err(|_| CursorError::BadMac)?;
        if body[0] != FORMAT {
            return Err(CursorError::Malformed);
        }
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        Ok(Cursor {
            api_version: body[1],
            kind: body[2],
            run: u64_at(3),
            limit: u16::from_le_bytes([body[11], body[12]]),
            position: u64_at(13),
            start_ns: u64_at(21) as i64,
            end_ns: (body[29] == 1).then(|| u64_at(30) as i64),
            account_uuid: String::from_utf8(body[38..].to_vec())
                .map_err(|_| CursorError::Malformed)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Cursor {
        Cursor {
            run: 0x0123_4567_89ab_cdef,
            api_version: 2,
            kind: 1,
            account_uuid: "ABCDEFGHIJKLMNOPQRSTUVWXYZ".into(),
            limit: 1000,
            position: 12345,
            start_ns: -5,
            end_ns: Some(99),
        }
    }

    #[test]
    fn round_trips_and_rejects_other_keys() {
        let c = sample();
        assert_eq!(Cursor::decode(b"k", &c.encode(b"k")).unwrap(), c);
        assert_eq!(
            Cursor::decode(b"j", &c.encode(b"k")).unwrap_err(),
            CursorError::BadMac
        );
        assert_eq!(
            Cursor::decode(b"k", "!!").unwrap_err(),
            CursorError::Malformed
        );
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_rejected(byte in 0usize..71, bit in 0u8..8) {
            let mut raw = B64.decode(sample().encode(b"k")).unwrap();
            let i = byte % raw.len();
            raw[i] ^= 1 << bit;
            prop_assert!(Cursor::decode(b"k", &B64.encode(raw)).is_err());
        }
    }
}
