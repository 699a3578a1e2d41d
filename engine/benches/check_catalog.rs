//! Prints how long checking each catalog script takes (compile, static
//! checks, evaluation, validation) and the whole catalog.
//! Run with `cargo bench -p ktstr-engine --bench check_catalog`.

use std::path::Path;
use std::time::{Duration, Instant};

use ktstr_engine::{catalog, check_file, CheckOptions};

const ROUNDS: usize = 20;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let entries = catalog::list(&root).expect("catalog");
    let opts = CheckOptions::default();
    // Warm up (stdlib compilation, signature table).
    let _ = check_file(&entries[0].path, &opts);
    let mut totals = Vec::new();
    let mut per_script: Vec<(String, Duration)> = Vec::new();
    for round in 0..ROUNDS {
        let start = Instant::now();
        for e in &entries {
            let t = Instant::now();
            let c = check_file(&e.path, &opts);
            assert!(c.is_clean(), "{}", c.render());
            if round == 0 {
                per_script.push((e.id.clone(), Duration::ZERO));
            }
            let slot = per_script
                .iter_mut()
                .find(|(id, _)| *id == e.id)
                .expect("entry");
            slot.1 += t.elapsed();
        }
        totals.push(start.elapsed());
    }
    totals.sort();
    per_script.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    println!("check_catalog: {} scripts, {ROUNDS} rounds", entries.len());
    println!(
        "  whole catalog: min {:.2} ms, median {:.2} ms",
        ms(totals[0]),
        ms(totals[ROUNDS / 2])
    );
    let mean_all: f64 =
        per_script.iter().map(|(_, d)| ms(*d)).sum::<f64>() / (per_script.len() * ROUNDS) as f64;
    println!("  per script: mean {mean_all:.3} ms; slowest:");
    for (id, d) in per_script.iter().take(5) {
        println!("    {id:<32} {:.3} ms", ms(*d) / ROUNDS as f64);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
