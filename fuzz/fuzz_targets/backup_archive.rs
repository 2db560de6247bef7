//! Backup archives as `backup verify` and `backup restore` read them (trailer, checksum,
//! format version, record count, and every key, KMIP object and token object record): a
//! damaged or hostile archive gets an error, never a panic, a hang or an unbounded
//! allocation. Each input is read twice: as it is, and as the body of an archive whose
//! trailer matches it, so that the fuzzer reaches the records behind the checksum; and each
//! of those without a backup key and with one (its authentication code path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::CryptoProvider;
use strongroom_service::backup::{verify_archive, ArchiveKey};

fn read(archive: &[u8]) {
    let _ = verify_archive(archive, &AwsLcProvider, None);
    if let Ok(key) = ArchiveKey::derive(&AwsLcProvider, &[0x42; 32]) {
        let _ = verify_archive(archive, &AwsLcProvider, Some(&key));
    }
}

fuzz_target!(|data: &[u8]| {
    read(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut body = text.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let records = body.lines().count().saturating_sub(1);
    let digest = AwsLcProvider.sha256(&[body.as_bytes()]);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let archive = format!("{body}{{\"type\":\"end\",\"records\":{records},\"sha256\":\"{hex}\"}}\n");
    read(archive.as_bytes());
});
