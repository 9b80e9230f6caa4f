//! Compact JWS (RFC 7515) signing and verification over ring, for the algorithms we use:
//! ES256, RS256 and EdDSA (Ed25519). Also parses public JWKs (RFC 7517) into verification keys.

use ring::signature::{self, UnparsedPublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::{b64, b64_decode};

/// A JWS algorithm we sign or verify with (RFC 7518 s3.1, RFC 8037 s3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Parses an `alg` value; `none` and HMAC algorithms are never accepted.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }
}

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or a part does not decode.
    #[error("malformed JWT")]
    Malformed,
    /// Header or claims are not the expected JSON.
    #[error("malformed JWT JSON: {0}")]
    Json(String),
    /// The `alg` is not one we accept.
    #[error("unsupported alg")]
    UnsupportedAlg,
    /// No key with that `kid`, or key type does not match `alg`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

/// The JOSE header fields we read.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// Signing algorithm (as sent; checked by [`Alg::parse`]).
    pub alg: String,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Media type, e.g. `at+jwt` (RFC 9068 s2.1).
    #[serde(default)]
    pub typ: Option<String>,
}

/// A JWT split into its parts, not yet verified.
#[derive(Debug)]
pub struct Unverified<'a> {
    /// Decoded header.
    pub header: Header,
    /// The algorithm named by the header, if acceptable.
    pub alg: Option<Alg>,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Largest JWT we look at; anything bigger is refused before decoding.
pub const MAX_JWT_LEN: usize = 16 * 1024;

impl<'a> Unverified<'a> {
    /// Splits and decodes a compact JWS without checking the signature.
    pub fn parse(token: &'a str) -> Result<Self, JwtError> {
        if token.len() > MAX_JWT_LEN {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwtError::Malformed);
        };
        let header_bytes = b64_decode(h).ok_or(JwtError::Malformed)?;
        let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| JwtError::Json(e.to_string()))?;
        let payload = b64_decode(p).ok_or(JwtError::Malformed)?;
        let signature = b64_decode(s).ok_or(JwtError::Malformed)?;
        let signing_input = token.get(..h.len() + 1 + p.len()).ok_or(JwtError::Malformed)?;
        let alg = Alg::parse(&header.alg);
        Ok(Self { header, alg, signing_input, payload, signature })
    }

    /// Verifies the signature with `key` and decodes the claims.
    pub fn verify<T: DeserializeOwned>(&self, key: &VerifyKey) -> Result<T, JwtError> {
        let alg = self.alg.ok_or(JwtError::UnsupportedAlg)?;
        key.verify(alg, self.signing_input.as_bytes(), &self.signature)?;
        self.claims()
    }

    /// Length of the decoded payload (the claims' JSON), bytes.
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }

    /// Decodes the claims without verifying (only for routing decisions, e.g. reading `iss`).
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, JwtError> {
        serde_json::from_slice(&self.payload).map_err(|e| JwtError::Json(e.to_string()))
    }
}

/// A public key able to verify one algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// P-256 public point, uncompressed SEC1 (0x04 || x || y).
    P256(Vec<u8>),
    /// RSA modulus and exponent, big-endian.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// Ed25519 public key.
    Ed25519(Vec<u8>),
}

impl VerifyKey {
    /// Checks `sig` over `msg` for `alg`; the key type must match the algorithm.
    pub fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        let ok = match (self, alg) {
            (Self::P256(pk), Alg::ES256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pk).verify(msg, sig).is_ok()
            }
            (Self::Rsa { n, e }, Alg::RS256) => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                .is_ok(),
            (Self::Ed25519(pk), Alg::EdDSA) => UnparsedPublicKey::new(&signature::ED25519, pk).verify(msg, sig).is_ok(),
            _ => return Err(JwtError::UnknownKey),
        };
        if ok { Ok(()) } else { Err(JwtError::BadSignature) }
    }

    /// Parses a public JWK (RFC 7517 s4, RFC 7518 s6, RFC 8037 s2). Private members are ignored.
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let x = b64_decode(jwk.x.as_deref()?)?;
                let y = b64_decode(jwk.y.as_deref()?)?;
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Some(Self::P256(point))
            }
            ("RSA", _) => {
                let n = b64_decode(jwk.n.as_deref()?)?;
                let e = b64_decode(jwk.e.as_deref()?)?;
                (n.len() >= 256).then_some(Self::Rsa { n, e })
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64_decode(jwk.x.as_deref()?)?;
                (x.len() == 32).then_some(Self::Ed25519(x))
            }
            _ => None,
        }
    }
}

/// A JSON Web Key's public members (RFC 7517 s4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: EC, RSA or OKP.
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use ("sig").
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Curve (EC, OKP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// x coordinate / public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// `aud` as a string or a list (RFC 7519 s4.1.3); one value serializes as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `who` is among them.
    pub fn contains(&self, who: &str) -> bool {
        match self {
            Self::One(a) => a == who,
            Self::Many(list) => list.iter().any(|a| a == who),
        }
    }
    /// The audiences as a slice.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(a) => std::slice::from_ref(a),
            Self::Many(list) => list,
        }
    }
    /// One value as a string, several as a list (duplicates dropped, order kept).
    pub fn of(values: Vec<String>) -> Self {
        let mut out: Vec<String> = Vec::with_capacity(values.len());
        for v in values {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        match <[String; 1]>::try_from(out) {
            Ok([one]) => Self::One(one),
            Err(many) => Self::Many(many),
        }
    }
}

impl From<&str> for Audience {
    fn from(one: &str) -> Self {
        Self::One(one.to_owned())
    }
}

/// A JWK Set (RFC 7517 s5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwk {
    /// RFC 7638 thumbprint (SHA-256, base64url) over the required public members.
    pub fn thumbprint(&self) -> String {
        let canonical = match self.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                self.crv.as_deref().unwrap_or_default(),
                self.x.as_deref().unwrap_or_default(),
                self.y.as_deref().unwrap_or_default()
            ),
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                self.e.as_deref().unwrap_or_default(),
                self.n.as_deref().unwrap_or_default()
            ),
            _ => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                self.crv.as_deref().unwrap_or_default(),
                self.x.as_deref().unwrap_or_default()
            ),
        };
        b64(&crate::crypto::sha256(canonical.as_bytes()))
    }
}

/// Builds the signing input `b64(header).b64(claims)` for a header with `alg`, `typ`, `kid`.
pub fn signing_input(alg: Alg, typ: &str, kid: &str, claims: &impl Serialize) -> String {
    signing_input_json(alg, typ, kid, &serde_json::to_vec(claims).unwrap_or_default())
}

/// [`signing_input`] of claims already serialized (`claims_json`).
pub fn signing_input_json(alg: Alg, typ: &str, kid: &str, claims_json: &[u8]) -> String {
    // The header's bytes as serde_json writes `{alg, typ, kid}`, without its serializer
    // (issue 13: about 1,200 instructions per token; `kid` and `typ` are escaped all the same).
    let mut header = Vec::with_capacity(32 + typ.len() + kid.len());
    header.extend_from_slice(b"{\"alg\":");
    crate::json::push_str(&mut header, alg.as_str());
    crate::json::push_member(&mut header, "typ", typ);
    crate::json::push_member(&mut header, "kid", kid);
    header.push(b'}');
    // One string, sized for both parts and the signature that follows (issue 13).
    let mut out = String::with_capacity((header.len() + claims_json.len()) * 4 / 3 + 100);
    URL_SAFE_NO_PAD.encode_string(&header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims_json, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 s5.1: the protected header is the base64url of its JSON; ours is written by
    // hand and must be the bytes serde_json writes for `{alg, typ, kid}`, escapes included.
    #[test]
    fn the_header_is_what_serde_json_writes() {
        #[derive(Serialize)]
        struct H<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        for (alg, typ, kid) in
            [(Alg::ES256, "at+jwt", "k-2026"), (Alg::RS256, "JWT", "a\"b\\c\u{1}名"), (Alg::ES256, "", "")]
        {
            let input = signing_input_json(alg, typ, kid, b"{}");
            let (header, claims) = input.split_once('.').unwrap();
            let want = serde_json::to_vec(&H { alg: alg.as_str(), typ, kid }).unwrap();
            assert_eq!(URL_SAFE_NO_PAD.decode(header).unwrap(), want);
            assert_eq!(claims, "e30");
        }
    }
}
