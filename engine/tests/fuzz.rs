//! Random and mutated scripts never panic or abort the engine, and none
//! takes longer than 3 s to check: every outcome is a Plan or diagnostics,
//! within the limits. 10,000 mutations of the catalog and examples run
//! with the default limits, spread over the machine's cores.

use std::path::Path;
use std::time::{Duration, Instant};

use ktstr_engine::{catalog, check_source, CheckOptions};

/// Mutated scripts checked per run.
const MUTATIONS: usize = 10_000;
/// The longest one check may take.
const SLOWEST: Duration = Duration::from_secs(3);

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

const TOKENS: [&str; 44] = [
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
    "import \"ktstr\" as k;",
    "import \"fuzz\" as me;",
    "k::steady(\"a\", 2);",
    "k::cpuset_split(\"p\", \"q\", 1);",
    "for i in 0..3 { cgroup(\"dup\", 1, spin_wait()); }",
    "threshold(\"max_gap_msx\", 1);",
    "threshold(\"max_gap_ms\", 0.0 / 0.0);",
    "at_most(0.0 / 0.0)",
    "between(1e308, -1e308)",
    "spawn_workers(\"a\", 4294967295)",
    "cgroup(\"a\\nb\", 1, spin_wait());",
    "print(\"x\");",
    "debug(42);",
    "eval(\"1\")",
    "requires_smt();",
    "min_llcs(99);",
    "let m = results().all().iterations; for i in 0..40 { m = m * 2; }",
    "step([add_cgroup(cgroup_def(\"z\", 1, spin_wait()))], fixed(0.1));",
    "\u{feff}",
    "4294967296",
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

/// Checks one script, failing on a panic or a check slower than
/// [`SLOWEST`]; returns whether it was rejected.
fn check_one(src: &str) -> bool {
    let start = Instant::now();
    let c = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_source("fuzz.rhai", src, None, &CheckOptions::default())
    }))
    .unwrap_or_else(|_| panic!("engine panicked on:\n{src}"));
    let took = start.elapsed();
    assert!(took < SLOWEST, "checking took {took:?}:\n{src}");
    if c.is_clean() {
        return false;
    }
    assert!(
        !c.diagnostics.is_empty(),
        "unclean without a diagnostic:\n{src}"
    );
    let _ = c.render();
    true
}

#[test]
fn mutated_catalog_scripts_never_panic_abort_or_stall() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources: Vec<String> = ["scenarios", "examples"]
        .iter()
        .flat_map(|d| catalog::list(&root.join(d)).unwrap())
        .map(|e| std::fs::read_to_string(&e.path).unwrap())
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rejected: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let sources = &sources;
                scope.spawn(move || {
                    let mut rng =
                        Rng(0x2545_f491_4f6c_dd1d ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9));
                    (t..MUTATIONS)
                        .step_by(threads)
                        .filter(|i| check_one(&mutate(&sources[i % sources.len()], &mut rng)))
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert!(
        rejected > MUTATIONS / 3,
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
