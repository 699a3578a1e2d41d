//! Progress reporting hooks. The library reports what it is doing through
//! [`Observer`]; the CLI draws it with indicatif, tests ignore it.

/// Receives progress from long kernel-pipeline steps.
pub trait Observer: Send + Sync {
    /// A new phase starts (download, extract, configure, build, ...).
    /// `total` is the number of units if known (bytes for downloads).
    fn phase(&self, name: &str, total: Option<u64>);
    /// The current phase advanced to `done` units.
    fn advance(&self, done: u64);
    /// A line of output from the current phase (e.g. `CC kernel/fork.o`).
    fn line(&self, text: &str);
    /// The current phase finished.
    fn finish(&self, summary: &str);
}

/// An observer that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _done: u64) {}
    fn line(&self, _text: &str) {}
    fn finish(&self, _summary: &str) {}
}
