//! The fuzz targets on every test run, on the stable toolchain: each
//! target replays its committed corpus (`fuzz/corpus/<target>/`, seeds and
//! what libFuzzer found worth keeping) and then a bounded number of seeded
//! mutations of it (byte flips, inserts, deletes, splices, tokens the
//! parsers care about), within a time budget. A panic names the target and
//! the input; the input is also written to `target/fuzz-replay-failures/`
//! so that it can be run under libFuzzer or turned into a unit test.
//!
//! `CASHDESK_FUZZ_MUTATIONS` (default 300 per target) and
//! `CASHDESK_FUZZ_SEED` (default: fixed, so a failure reproduces) change
//! the random part; the corpus part is always replayed whole. Each target
//! must also have a seed that is accepted: a harness whose keys or shapes
//! drifted would otherwise fuzz nothing behind the signature checks.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cashdesk_fuzz::{Outcome, TARGETS, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The random part stops after this long even if mutations are left.
const BUDGET: Duration = Duration::from_secs(4);

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name)
}

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(name);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file());
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let bytes = std::fs::read(e.path())
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Strings the parsers branch on: structure, escapes, numbers at the edges.
const TOKENS: &[&[u8]] = &[
    b"\n\n",
    b"\n",
    b"<",
    b">",
    b"</",
    b"/>",
    b"<![CDATA[",
    b"]]>",
    b"&",
    b"&#x",
    b";",
    b"<!DOCTYPE",
    b"<?",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"=",
    b"%",
    b"%ZZ",
    b"%00",
    b"+",
    b"\\u0000",
    b"\\ud800",
    b"0",
    b"-1",
    b"1.5",
    b"1e999",
    b"9223372036854775808",
    b"99999999999999999999",
    b"\xff",
    b"\xe4\xb8\xad",
    b"\r",
    b"\t",
    b" ",
    b"null",
    b"true",
    b"\"\"",
];

/// One random edit of `data` (`other` is another corpus entry for splices).
/// The first byte (the mode) is left alone most of the time, so signed
/// inputs stay signed.
fn mutate(rng: &mut StdRng, data: &mut Vec<u8>, other: &[u8]) {
    let lo = usize::from(!data.is_empty() && rng.gen_bool(0.9));
    let len = data.len();
    let at = |rng: &mut StdRng| {
        if len > lo {
            rng.gen_range(lo..=len)
        } else {
            len
        }
    };
    match rng.gen_range(0..6) {
        0 if len > lo => {
            let i = rng.gen_range(lo..len);
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => {
            let i = at(rng);
            data.insert(i, rng.r#gen());
        }
        2 if len > lo => {
            let i = rng.gen_range(lo..len);
            let n = rng.gen_range(1..=(len - i).min(16));
            data.drain(i..i + n);
        }
        3 if len > lo => {
            // Repeat a slice (lengthens fields, duplicates elements).
            let i = rng.gen_range(lo..len);
            let n = rng.gen_range(1..=(len - i).min(64));
            let chunk = data[i..i + n].to_vec();
            let j = at(rng);
            data.splice(j..j, chunk);
        }
        4 if !other.is_empty() => {
            let i = at(rng);
            let from = rng.gen_range(0..other.len());
            let n = rng.gen_range(1..=(other.len() - from).min(64));
            data.splice(i..i, other[from..from + n].iter().copied());
        }
        _ => {
            let token = TOKENS[rng.gen_range(0..TOKENS.len())];
            let i = at(rng);
            data.splice(i..i, token.iter().copied());
        }
    }
}

fn run_one(target: &Target, label: &str, data: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| (target.run)(data))) {
        Ok(outcome) => outcome,
        Err(_) => {
            let dir =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-replay-failures");
            let file = dir.join(format!("{}-{label}", target.name));
            let saved = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&file, data))
                .map(|()| file.display().to_string())
                .unwrap_or_else(|e| format!("(not saved: {e})"));
            panic!(
                "fuzz target {} panicked on {label} ({saved}): {:?}",
                target.name,
                String::from_utf8_lossy(data)
            )
        }
    }
}

fn replay(name: &str) {
    let target = cashdesk_fuzz::target(name).unwrap_or_else(|| panic!("no target {name}"));
    let seeds = corpus(name);
    assert!(!seeds.is_empty(), "the corpus of {name} is empty");
    let accepted = seeds
        .iter()
        .filter(|(file, data)| run_one(target, file, data) == Outcome::Accepted)
        .count();
    assert!(
        accepted > 0,
        "no seed of {name} is accepted: the harness no longer reaches behind the checks"
    );

    let mutations = env_number("CASHDESK_FUZZ_MUTATIONS", 300);
    let seed = env_number("CASHDESK_FUZZ_SEED", 13) ^ name.bytes().map(u64::from).sum::<u64>();
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let mut done = 0;
    while done < mutations && start.elapsed() < BUDGET {
        let (file, base) = &seeds[rng.gen_range(0..seeds.len())];
        let (_, other) = &seeds[rng.gen_range(0..seeds.len())];
        let mut data = base.clone();
        for _ in 0..rng.gen_range(1..=4) {
            mutate(&mut rng, &mut data, other);
        }
        run_one(target, &format!("mutation-{seed}-{done}-of-{file}"), &data);
        done += 1;
    }
    eprintln!(
        "{name}: {} corpus inputs ({accepted} accepted), {done} mutations in {:.1?}",
        seeds.len(),
        start.elapsed()
    );
}

macro_rules! replay_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )+

        /// A target added to `TARGETS` without a test here or a libFuzzer
        /// binary in `fuzz/fuzz_targets/`, or a corpus folder for a target
        /// that is gone, is a mistake.
        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),+];
            let listed: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
            assert_eq!(listed, tested);
            let on_disk = std::fs::read_dir(corpus_dir(""))
                .map(|d| d.filter_map(Result::ok).count())
                .unwrap_or(0);
            assert_eq!(on_disk, tested.len(), "fuzz/corpus/ has other folders");
            for name in tested {
                let bin = corpus_dir("").join(format!("../fuzz_targets/{name}.rs"));
                assert!(bin.is_file(), "no libFuzzer binary {}", bin.display());
            }
        }
    };
}

replay_tests!(
    wechat_v2_xml,
    wechat_v2_notify,
    wechat_v3_notify,
    alipay_notify,
    lakala_notify,
    apisig,
    server_input,
    server_api,
    sandbox_wechat_v2,
    sandbox_wechat_v3,
    sandbox_alipay,
    sandbox_lakala,
);
