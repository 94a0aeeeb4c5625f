//! Figure 1: envelope seal + open of one token through the vault, against one raw AES-256-GCM
//! seal + open of the same token with ring (cached key, fresh random nonce, same-size AAD).
//!
//! criterion measures both; its per-sample times (`<out>/criterion/<id>/new/sample.json`) give
//! the median and the p5–p95 spread reported here.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use criterion::Criterion;
use finchgate::vault::{Purpose, RowContext, Vault};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use uuid::Uuid;

use crate::report::Row;
use crate::stats::Samples;

/// The size of a Finch access token (a UUID-shaped string).
const TOKEN: &[u8] = b"f3c1a9e2-4b7d-4e21-9a0c-5d8e7f6b1a23";
/// The vault's value-layer AAD is 68 bytes for an access token; the baseline binds as many.
const AAD_LEN: usize = 68;

const VAULT_ID: &str = "vault_seal_open";
const RING_ID: &str = "ring_aes256gcm_seal_open";
/// What limits the figure, measured beside it: one ring key set-up (AES key expansion and the
/// GHASH table), which the vault does four times per seal + open (SECURITY.md EN-7: ring keys
/// are built just in time, never cached) ...
const SCHEDULE_ID: &str = "ring_aes256gcm_key_setup";
/// ... and the same two layers with the master key's ring key cached, which EN-7 forbids: the
/// price of that rule.
const CACHED_KEK_ID: &str = "two_layers_cached_kek_seal_open";

pub fn run(out_dir: &Path) -> anyhow::Result<Vec<Row>> {
    let keyring =
        finchgate::config::parse_keyring(Some(&crate::stack::random_master_key("b1")), None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let vault = Vault::new(keyring);
    let ctx = RowContext::new(Purpose::AccessToken, Uuid::new_v4(), Uuid::new_v4());
    // The loop below ignores errors (it must not branch on them); check once that it works.
    let sealed = vault.seal(&ctx, TOKEN)?;
    anyhow::ensure!(vault.open(&ctx, &sealed.envelope)?.as_slice() == TOKEN);

    let rng = SystemRandom::new();
    let mut key_bytes = [0u8; 32];
    rng.fill(&mut key_bytes)
        .map_err(|_| anyhow::anyhow!("rng"))?;
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key_bytes).map_err(|_| anyhow::anyhow!("ring key"))?,
    );
    let aad = [0x5au8; AAD_LEN];
    anyhow::ensure!(ring_seal_open(&key, &rng, &aad) == Some(TOKEN.len()));

    let criterion_dir = out_dir.join("criterion");
    let mut c = Criterion::default()
        .output_directory(&criterion_dir)
        .sample_size(60)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .without_plots();
    c.bench_function(VAULT_ID, |b| {
        b.iter(|| {
            let opened = vault
                .seal(&ctx, black_box(TOKEN))
                .and_then(|s| vault.open(&ctx, &s.envelope));
            black_box(opened.map(|p| p.len()).ok())
        });
    });
    c.bench_function(RING_ID, |b| {
        b.iter(|| black_box(ring_seal_open(&key, &rng, &aad)));
    });
    c.bench_function(SCHEDULE_ID, |b| {
        b.iter(|| {
            black_box(
                UnboundKey::new(&AES_256_GCM, black_box(&key_bytes))
                    .map(LessSafeKey::new)
                    .is_ok(),
            )
        });
    });
    anyhow::ensure!(two_layers_cached_kek(&key, &rng, &aad) == Some(TOKEN.len()));
    c.bench_function(CACHED_KEK_ID, |b| {
        b.iter(|| black_box(two_layers_cached_kek(&key, &rng, &aad)));
    });
    c.final_summary();

    let vault_ns = per_iteration_ns(&criterion_dir, VAULT_ID)?;
    let ring_ns = per_iteration_ns(&criterion_dir, RING_ID)?;
    let schedule_ns = per_iteration_ns(&criterion_dir, SCHEDULE_ID)?;
    let cached_ns = per_iteration_ns(&criterion_dir, CACHED_KEK_ID)?;
    eprintln!(
        "  one ring key set-up p50 {:.2} µs; both layers with the master key's set-up cached (not allowed, EN-7) p50 {:.2} µs, ratio {:.2}",
        schedule_ns.median() / 1e3,
        cached_ns.median() / 1e3,
        ring_ns.median() / cached_ns.median(),
    );
    let ops = |ns: f64| 1e9 / ns;
    let value = ops(vault_ns.median());
    let baseline = ops(ring_ns.median());
    let ratio = value / baseline;
    Ok(vec![Row {
        figure: "envelope seal + open of one token".to_owned(),
        value: Some(value),
        unit: "ops/s".to_owned(),
        baseline: Some(baseline),
        baseline_is: "ring AES-256-GCM seal + open, cached key".to_owned(),
        ratio: Some(ratio),
        target: "ratio ≥ 0.45".to_owned(),
        meets: Some(ratio >= 0.45),
        spread: format!(
            "per op: vault p50 {:.2} µs (p5 {:.2}, p95 {:.2}), ring p50 {:.2} µs (p5 {:.2}, p95 {:.2}); {} samples each; one ring key set-up {:.2} µs (the vault makes 4); the two layers with the master key's set-up cached (forbidden by EN-7) {:.2} µs, ratio {:.2}",
            vault_ns.median() / 1e3,
            vault_ns.pct(5.0) / 1e3,
            vault_ns.pct(95.0) / 1e3,
            ring_ns.median() / 1e3,
            ring_ns.pct(5.0) / 1e3,
            ring_ns.pct(95.0) / 1e3,
            vault_ns.len(),
            schedule_ns.median() / 1e3,
            cached_ns.median() / 1e3,
            ring_ns.median() / cached_ns.median(),
        ),
    }])
}

/// One seal and one open, as a caller holding the key would do them.
fn ring_seal_open(key: &LessSafeKey, rng: &SystemRandom, aad: &[u8]) -> Option<usize> {
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce).ok()?;
    let mut buf = Vec::with_capacity(TOKEN.len() + 16);
    buf.extend_from_slice(black_box(TOKEN));
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .ok()?;
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .ok()?;
    Some(plain.len())
}

/// The vault's two layers done with ring directly, the master key's ring key (`kek`) held across
/// calls: one draw for the data key and both nonces, the value sealed under a fresh data key, the
/// data key sealed under `kek`; then the reverse. Same sizes as the vault; no envelope framing.
fn two_layers_cached_kek(kek: &LessSafeKey, rng: &SystemRandom, aad: &[u8]) -> Option<usize> {
    let mut fresh = [0u8; 32 + 12 + 12];
    rng.fill(&mut fresh).ok()?;
    let (dek, nonces) = fresh.split_at(32);
    let (value_nonce, dek_nonce) = nonces.split_at(12);
    let nonce = |n: &[u8]| Nonce::try_assume_unique_for_key(n).ok();
    let mut value = Vec::with_capacity(TOKEN.len() + 16);
    value.extend_from_slice(black_box(TOKEN));
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek).ok()?)
        .seal_in_place_append_tag(nonce(value_nonce)?, Aad::from(aad), &mut value)
        .ok()?;
    let mut wrapped = Vec::with_capacity(32 + 16);
    wrapped.extend_from_slice(dek);
    kek.seal_in_place_append_tag(nonce(dek_nonce)?, Aad::from(aad), &mut wrapped)
        .ok()?;
    let dek = kek
        .open_in_place(nonce(dek_nonce)?, Aad::from(aad), &mut wrapped)
        .ok()?;
    let plain = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek).ok()?)
        .open_in_place(nonce(value_nonce)?, Aad::from(aad), &mut value)
        .ok()?;
    Some(plain.len())
}

#[derive(serde::Deserialize)]
struct SampleFile {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// Nanoseconds per iteration of each criterion sample.
fn per_iteration_ns(dir: &Path, id: &str) -> anyhow::Result<Samples> {
    let path = dir.join(id).join("new").join("sample.json");
    let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let file: SampleFile = serde_json::from_slice(&raw)?;
    Ok(Samples::new(
        file.iters
            .iter()
            .zip(&file.times)
            .map(|(iters, time)| time / iters)
            .collect(),
    ))
}
