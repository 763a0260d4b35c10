//! Default `Authenticator`: HMAC-SHA256 signed tokens with a per-app secret.
//! (Being written by the secure-channel work; see issue 3.)
