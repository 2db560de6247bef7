//! The ceremony workstation's files as `strongroom tke` reads them: Strongroom's protected
//! files (master key parts, signature keys) and HPCS TKE CLI files. Arbitrary bytes must be
//! refused with an error, never a panic. Opening runs the key derivation the file names, so
//! only files that name a small one are opened (a real file takes 256 MiB of Argon2id); HPCS
//! files always are (PBKDF2, 4,096 iterations).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::admin::files::{open, HpcsFile, ProtectedFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = ProtectedFile::parse(text) {
        let kdf = &f.header.kdf;
        if kdf.m_kib <= 64 && kdf.t <= 2 && kdf.p <= 2 {
            let _ = open(&AwsLcProvider, &f, b"password", "fuzz");
        }
    }
    if let Some(h) = HpcsFile::parse(text) {
        let _ = h.open(&AwsLcProvider, "fuzz", b"password");
    }
});
