//! The HTML report in a real browser: Debian's chromium, headless, takes
//! a screenshot, and each figure (found by its border colour) is checked
//! to have a drawn plot inside, not a blank box.

use std::path::Path;
use std::process::Command;

/// The border colour of the report's figures
/// (`ktstr_stats::report::FIGURE_BORDER`).
const BORDER: [u8; 3] = [10, 20, 30];

/// A figure found in a screenshot.
#[derive(Debug)]
pub struct Figure {
    /// Its box: x, y, width, height (px).
    pub rect: (usize, usize, usize, usize),
    /// The share of its pixels that are not background.
    pub ink: f64,
    /// Its pixels of a saturated colour (series, boxes, cells).
    pub coloured: usize,
}

/// The chromium binary, if installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Renders `html` at `width` x `height` into `png`; None (skip) when
/// chromium is missing outside CI, a failure in CI.
pub fn screenshot(html: &Path, png: &Path, width: u32, height: u32) -> Option<()> {
    let Some(bin) = chromium() else {
        assert!(
            !super::in_ci(),
            "chromium is not installed (setup.sh installs it)"
        );
        eprintln!("skipped: no chromium");
        return None;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let o = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!(
            "file://{}",
            html.canonicalize().expect("html path").display()
        ))
        .output()
        .expect("chromium runs");
    assert!(
        png.is_file(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(())
}

/// Every figure in the screenshot `png`.
pub fn figures(png: &Path) -> Vec<Figure> {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let step = info.line_size / w;
    let px = |x: usize, y: usize| -> [u8; 3] {
        let i = y * info.line_size + x * step;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    let border = |x: usize, y: usize| x < w && y < h && px(x, y) == BORDER;
    let mut out = Vec::new();
    for y in 1..h {
        for x in 1..w {
            if !border(x, y)
                || border(x - 1, y)
                || border(x, y - 1)
                || !border(x + 1, y)
                || !border(x, y + 1)
            {
                continue;
            }
            let fw = (x..w).take_while(|&i| border(i, y)).count();
            let fh = (y..h).take_while(|&j| border(x, j)).count();
            if fw < 100 || fh < 50 {
                continue;
            }
            let (mut ink, mut coloured, mut total) = (0usize, 0usize, 0usize);
            for j in y + 4..y + fh - 4 {
                for i in x + 4..x + fw - 4 {
                    let [r, g, b] = px(i, j);
                    total += 1;
                    if r.min(g).min(b) < 235 {
                        ink += 1;
                    }
                    if r.max(g).max(b) - r.min(g).min(b) > 60 {
                        coloured += 1;
                    }
                }
            }
            out.push(Figure {
                rect: (x, y, fw, fh),
                ink: ink as f64 / total.max(1) as f64,
                coloured,
            });
        }
    }
    out
}

/// Renders the report `html`, which says it has `plots` plots, and asserts
/// that each one is on the page with something drawn in it.
pub fn assert_plots_drawn(html: &Path, plots: usize) {
    let png = html.with_extension("png");
    if screenshot(html, &png, 1400, 9000).is_none() {
        return;
    }
    let found = figures(&png);
    assert_eq!(found.len(), plots, "figures on the page: {found:?}");
    for f in &found {
        assert!(f.ink > 0.02 && f.coloured > 200, "a blank plot: {f:?}");
    }
}
