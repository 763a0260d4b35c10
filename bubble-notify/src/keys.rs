//! Private keys from PEM text (Google's service-account key, Apple's .p8)
//! and the JWTs they sign.
//!
//! PEM is decoded here (leniently about whitespace and line length, as
//! keys pasted into files come), the PKCS#8 wrapper is read with the
//! `pkcs8` crate so a wrong kind of key is named at start-up, and signing
//! is AWS-LC's, as everywhere else in bubble. A compact JWS is three
//! base64url parts; that much is written here rather than pulling in a JWT
//! library (the one with an AWS-LC backend turns on AWS-LC's `ring`
//! compatibility features, which the workspace keeps off).

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use pkcs8::der::Decode as _;
use pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
use serde::Serialize;
use zeroize::Zeroizing;

/// `rsaEncryption` (RFC 8017): the algorithm of an RSA PKCS#8 key.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480): the algorithm of an elliptic-curve key.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `prime256v1` / `secp256r1`: the curve of ES256.
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// One PEM block: its label (`PRIVATE KEY`) and its DER bytes.
struct Pem {
    label: String,
    der: Zeroizing<Vec<u8>>,
}

/// Decodes the first PEM block of `text`.
fn decode_pem(text: &str) -> Result<Pem, String> {
    let start = text
        .find("-----BEGIN ")
        .ok_or("holds no PEM block (no \"-----BEGIN ...-----\" line)")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or("has a BEGIN line that does not end with \"-----\"")?;
    let label = rest[..label_end].trim().to_owned();
    let rest = &rest[label_end + "-----".len()..];
    let end_line = format!("-----END {label}-----");
    let body_end = rest
        .find(&end_line)
        .ok_or_else(|| format!("has no \"{end_line}\" line"))?;
    let body = &rest[..body_end];
    if body.contains("Proc-Type:") || label == "ENCRYPTED PRIVATE KEY" {
        return Err("holds an encrypted key; export it without a passphrase".to_owned());
    }
    let base64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = STANDARD
        .decode(base64.as_bytes())
        .map_err(|e| format!("has a {label} block that is not valid base64 ({e})"))?;
    Ok(Pem {
        label,
        der: Zeroizing::new(der),
    })
}

/// A private key that signs JWTs. `Debug` shows only its algorithm.
pub(crate) enum JwtKey {
    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256(RsaKeyPair),
    /// ES256: ECDSA on P-256 with SHA-256, the signature as `r || s`.
    Es256(EcdsaKeyPair),
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtKey::Rs256(_) => "JwtKey(RS256, <hidden>)",
            JwtKey::Es256(_) => "JwtKey(ES256, <hidden>)",
        })
    }
}

impl JwtKey {
    /// The RSA key (RS256) in `pem`: PKCS#8 (`BEGIN PRIVATE KEY`, what
    /// Google's service-account files hold) or PKCS#1 (`BEGIN RSA PRIVATE
    /// KEY`); the problem, for a config error, otherwise.
    pub(crate) fn rsa_from_pem(pem: &str) -> Result<JwtKey, String> {
        let block = decode_pem(pem)?;
        let pair = match block.label.as_str() {
            "PRIVATE KEY" => {
                let info = PrivateKeyInfoRef::from_der(&block.der)
                    .map_err(|e| format!("has a PRIVATE KEY block that is not PKCS#8 ({e})"))?;
                if info.algorithm.oid != RSA_ENCRYPTION {
                    return Err(format!(
                        "holds a key of algorithm {}, not an RSA key",
                        info.algorithm.oid
                    ));
                }
                RsaKeyPair::from_pkcs8(&block.der)
            }
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&block.der),
            other => {
                return Err(format!(
                    "holds a {other:?} block; expected \"PRIVATE KEY\" (an RSA key in PKCS#8)"
                ));
            }
        };
        let pair = pair.map_err(|e| format!("holds an RSA key AWS-LC refuses ({e})"))?;
        Ok(JwtKey::Rs256(pair))
    }

    /// The P-256 key (ES256) in `pem`: PKCS#8 (`BEGIN PRIVATE KEY`), the
    /// form of Apple's .p8 files; the problem, for a config error, otherwise.
    pub(crate) fn p256_from_pem(pem: &str) -> Result<JwtKey, String> {
        let block = decode_pem(pem)?;
        match block.label.as_str() {
            "PRIVATE KEY" => {}
            "EC PRIVATE KEY" => {
                return Err(
                    "holds a SEC1 \"EC PRIVATE KEY\"; Apple's .p8 key is PKCS#8 \
                     (\"BEGIN PRIVATE KEY\"): convert it with \
                     `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8`"
                        .to_owned(),
                );
            }
            other => {
                return Err(format!(
                    "holds a {other:?} block; expected \"PRIVATE KEY\" (Apple's .p8 key)"
                ));
            }
        }
        let info = PrivateKeyInfoRef::from_der(&block.der)
            .map_err(|e| format!("has a PRIVATE KEY block that is not PKCS#8 ({e})"))?;
        let curve = info.algorithm.parameters_oid().ok();
        if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(PRIME256V1) {
            return Err(format!(
                "holds a key of algorithm {} (curve {}), not a P-256 key; \
                 download the APNs auth key (.p8) from Apple's developer account",
                info.algorithm.oid,
                curve.map_or_else(|| "none".to_owned(), |c| c.to_string())
            ));
        }
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &block.der)
            .map_err(|e| format!("holds a P-256 key AWS-LC refuses ({e})"))?;
        Ok(JwtKey::Es256(pair))
    }

    /// The JWS `alg` of the key.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            JwtKey::Rs256(_) => "RS256",
            JwtKey::Es256(_) => "ES256",
        }
    }

    /// A compact JWT: `base64url(header).base64url(claims).base64url(signature)`.
    /// `header` must name [`JwtKey::alg`].
    pub(crate) fn sign<H: Serialize, C: Serialize>(
        &self,
        header: &H,
        claims: &C,
    ) -> Result<String, String> {
        let signed = format!("{}.{}", encode_part(header)?, encode_part(claims)?);
        let rng = SystemRandom::new();
        let signature = match self {
            JwtKey::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature)
                    .map_err(|e| format!("RS256 signing failed ({e})"))?;
                signature
            }
            JwtKey::Es256(pair) => pair
                .sign(&rng, signed.as_bytes())
                .map_err(|e| format!("ES256 signing failed ({e})"))?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// One JWT part: the JSON of `value`, base64url without padding.
fn encode_part<T: Serialize>(value: &T) -> Result<String, String> {
    let json = serde_json::to_vec(value).map_err(|e| format!("cannot encode a JWT part ({e})"))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_a_block_is_refused() {
        let e = decode_pem("{\"not\": \"pem\"}").err().unwrap();
        assert!(e.contains("no PEM block"), "{e}");
    }

    #[test]
    fn an_encrypted_key_is_refused_with_what_to_do() {
        let pem =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = decode_pem(pem).err().unwrap();
        assert!(e.contains("without a passphrase"), "{e}");
    }

    #[test]
    fn a_sec1_ec_key_is_refused_with_the_conversion_command() {
        let pem = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let e = JwtKey::p256_from_pem(pem).err().unwrap();
        assert!(e.contains("openssl pkcs8 -topk8"), "{e}");
    }

    #[test]
    fn a_certificate_is_not_a_key() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            JwtKey::rsa_from_pem(pem)
                .err()
                .unwrap()
                .contains("\"CERTIFICATE\"")
        );
        assert!(
            JwtKey::p256_from_pem(pem)
                .err()
                .unwrap()
                .contains("\"CERTIFICATE\"")
        );
    }

    #[test]
    fn garbage_inside_a_private_key_block_is_not_pkcs8() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(
            JwtKey::rsa_from_pem(pem)
                .err()
                .unwrap()
                .contains("not PKCS#8")
        );
        assert!(
            JwtKey::p256_from_pem(pem)
                .err()
                .unwrap()
                .contains("not PKCS#8")
        );
    }
}
