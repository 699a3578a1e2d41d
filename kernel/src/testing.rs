//! A kernel.org-style mirror on loopback, for tests of the download path.
//! Serves a fixed set of files under their URL paths and counts requests;
//! stops when dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the mirror serves at one path.
#[derive(Debug, Clone)]
pub enum Body {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A file streamed from disk.
    File(PathBuf),
}

/// A running mirror on 127.0.0.1.
pub struct MirrorServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    hits: Arc<BTreeMap<String, AtomicUsize>>,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

impl MirrorServer {
    /// Starts serving `files` (URL path, e.g. `/v6.x/sha256sums.asc`, to
    /// body); every other path is 404.
    pub fn start(files: BTreeMap<String, Body>) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let hits: Arc<BTreeMap<String, AtomicUsize>> = Arc::new(
            files
                .keys()
                .map(|k| (k.clone(), AtomicUsize::new(0)))
                .collect(),
        );
        let (srv, counts) = (server.clone(), hits.clone());
        let thread = std::thread::spawn(move || {
            for req in srv.incoming_requests() {
                let path = req.url().to_string();
                let _ = match files.get(&path) {
                    Some(body) => {
                        counts[&path].fetch_add(1, Ordering::SeqCst);
                        match body {
                            Body::Bytes(b) => {
                                req.respond(tiny_http::Response::from_data(b.clone()))
                            }
                            Body::File(p) => match std::fs::File::open(p) {
                                Ok(f) => req.respond(tiny_http::Response::from_file(f)),
                                Err(_) => req.respond(tiny_http::Response::empty(500)),
                            },
                        }
                    }
                    None => req.respond(tiny_http::Response::empty(404)),
                };
            }
        });
        MirrorServer {
            server,
            thread: Some(thread),
            hits,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// How many times `path` was served.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.get(path).map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

impl Drop for MirrorServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
