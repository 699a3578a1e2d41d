//! Random and mutated scripts never panic the engine: every outcome is a
//! Plan or diagnostics, within the limits.

use std::path::Path;
use std::time::Duration;

use ktstr_engine::{catalog, check_source, CheckOptions};

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: [&str; 24] = [
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    ".",
    "\"",
    "0",
    "-1",
    "9999999999",
    "1.5",
    "let x = ",
    "cgroup(",
    "step([",
    "claim(",
    "llc(",
    "fn f() { f() }",
    "loop {}",
    "results().",
    "// ",
    "`${",
];

fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut s: Vec<char> = src.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if !s.is_empty() => {
                let end = (at + rng.below(12)).min(s.len());
                s.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                s.splice(at..at, t.chars());
            }
            2 => {
                let c = char::from_u32(rng.below(0x7f) as u32).unwrap_or('?');
                s.insert(at, c);
            }
            _ => s.truncate(at),
        }
    }
    s.into_iter().collect()
}

#[test]
fn mutated_catalog_scripts_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let sources: Vec<String> = catalog::list(&root)
        .unwrap()
        .iter()
        .map(|e| std::fs::read_to_string(&e.path).unwrap())
        .collect();
    let opts = CheckOptions {
        max_wall: Duration::from_millis(300),
        ..CheckOptions::default()
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut rejected = 0;
    for i in 0..1500 {
        let src = mutate(&sources[i % sources.len()], &mut rng);
        let c = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_source("fuzz.rhai", &src, None, &opts)
        }))
        .unwrap_or_else(|_| panic!("engine panicked on:\n{src}"));
        if !c.is_clean() {
            rejected += 1;
            assert!(
                !c.diagnostics.is_empty(),
                "unclean without a diagnostic:\n{src}"
            );
            let _ = c.render();
        }
    }
    assert!(
        rejected > 500,
        "mutations should mostly break scripts ({rejected})"
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let src = String::from_utf8_lossy(&bytes).into_owned();
        let c = std::panic::catch_unwind(|| {
            check_source("r.rhai", &src, None, &CheckOptions::default())
        })
        .unwrap_or_else(|_| panic!("engine panicked on {bytes:?}"));
        assert!(!c.is_clean());
    }
}
