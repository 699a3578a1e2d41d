//! `cargo bench --bench kernel_cache`: how long the default kernel's cache
//! hit takes (identify the source, hash the config, verify every file of
//! the entry), the figure behind "a cache hit returns in well under a
//! second". Prints min / median / max over 10 runs; needs a built kernel.

use std::time::{Duration, Instant};

use ktstr_kernel::resolve::Target;
use ktstr_kernel::{build, CacheLayout, KernelCache, Resolver, Silent, KERNEL_ORG_MIRROR};

fn main() {
    let resolver = Resolver {
        cache: KernelCache::new(CacheLayout::from_env().expect("cache dir")),
        named: None,
        mirror: KERNEL_ORG_MIRROR.into(),
    };
    let req = match resolver.target(None) {
        Ok(Target::Source(req)) => req,
        other => {
            println!("kernel_cache: no default kernel source ({other:?}); nothing to measure");
            return;
        }
    };
    let first = build(&resolver.cache, &req, &Silent);
    match first {
        Ok(o) if o.cached => {}
        Ok(_) => println!("kernel_cache: (the first call built the kernel)"),
        Err(e) => {
            println!("kernel_cache: default kernel not available: {e}");
            return;
        }
    }
    let mut times: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            let o = build(&resolver.cache, &req, &Silent).expect("cache hit");
            assert!(o.cached, "expected a cache hit");
            t.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "kernel cache hit (identify + verify {} files): min {:.1} ms, median {:.1} ms, max {:.1} ms over {} runs",
        build(&resolver.cache, &req, &Silent).expect("hit").entry.manifest.files.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        times.len()
    );
}
