//! Payloads: real programs (stress-ng, fio, hackbench, cyclictest, any
//! other) run by a cgroup's workers, and the metrics each program reports
//! about itself, read from its output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most output kept per payload run, bytes (the tail: summaries come
/// last).
pub const MAX_PAYLOAD_OUTPUT: usize = 64 * 1024;

/// A payload to run: [`crate::work::Work::Payload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadRun {
    /// The program as the script named it (`stress-ng`).
    pub program: String,
    /// Where it is in the guest (`/files/stress-ng`).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// What one payload run left behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PayloadReport {
    /// The program, as the script named it.
    pub program: String,
    /// Its exit status, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did (SIGTERM when ktstr stopped
    /// it at the end of the run).
    pub signal: Option<i32>,
    /// Whether ktstr stopped it (the run ended before it did).
    pub stopped: bool,
    /// The last [`MAX_PAYLOAD_OUTPUT`] bytes of its stdout and stderr.
    pub output: String,
    /// Its own figures, read from its output (see [`metrics`]).
    pub metrics: BTreeMap<String, f64>,
}

impl PayloadReport {
    /// Why the run failed, if it did: it exited non-zero, or a signal
    /// other than ktstr's stop ended it. How a program ends once ktstr
    /// stopped it is ktstr's doing: fio traps the SIGTERM, prints its
    /// report and exits 128.
    pub fn failure(&self) -> Option<String> {
        match (self.exit_code, self.signal) {
            (Some(0), _) => None,
            (Some(_), _) if self.stopped => None,
            (Some(code), _) => Some(format!("{} exited with status {code}", self.program)),
            (None, Some(_)) if self.stopped => None,
            (None, Some(sig)) => Some(format!("{} was killed by signal {sig}", self.program)),
            (None, None) => Some(format!("{} never ran", self.program)),
        }
    }
}

/// The metrics `program`'s output reports, by the program's name: every
/// stressor's bogo ops and bogo ops/s from stress-ng's `--metrics-brief`
/// (and their totals), fio's JSON (`--output-format=json`: IOPS,
/// bandwidth and completion-latency p99 per direction, summed over jobs),
/// hackbench's `Time:` and cyclictest's per-thread latencies (the worst
/// max, the mean avg, the best min). Other programs report none.
pub fn metrics(program: &str, output: &str) -> BTreeMap<String, f64> {
    let base = program.rsplit('/').next().unwrap_or(program);
    match base {
        "stress-ng" => stress_ng(output),
        "fio" => fio(output),
        "hackbench" => hackbench(output),
        "cyclictest" => cyclictest(output),
        _ => BTreeMap::new(),
    }
}

fn stress_ng(output: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for line in output.lines() {
        // stress-ng: metrc: [PID] cpu  2446  2.00  1.03  0.00  1222.07  2366.29
        let Some(rest) = line.split("metrc:").nth(1) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().skip(1).collect();
        let [name, ops, _real, _usr, _sys, per_s, ..] = fields.as_slice() else {
            continue;
        };
        let (Ok(ops), Ok(per_s)) = (ops.parse::<f64>(), per_s.parse::<f64>()) else {
            continue;
        };
        m.insert(format!("{name}.bogo_ops"), ops);
        m.insert(format!("{name}.bogo_ops_per_s"), per_s);
        *m.entry("bogo_ops".into()).or_insert(0.0) += ops;
        *m.entry("bogo_ops_per_s".into()).or_insert(0.0) += per_s;
    }
    m
}

fn fio(output: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    // fio may print notes before the JSON document.
    let Some(start) = output.find('{') else {
        return m;
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&output[start..]) else {
        return m;
    };
    for job in doc["jobs"].as_array().into_iter().flatten() {
        for dir in ["read", "write"] {
            let d = &job[dir];
            for (key, field) in [("iops", "iops"), ("bw_kib", "bw")] {
                if let Some(v) = d[field].as_f64() {
                    *m.entry(format!("{dir}_{key}")).or_insert(0.0) += v;
                }
            }
            let p99 = d["clat_ns"]["percentile"]["99.000000"].as_f64();
            if let Some(ns) = p99.filter(|_| d["total_ios"].as_u64().unwrap_or(0) > 0) {
                let e = m.entry(format!("{dir}_clat_p99_us")).or_insert(0.0);
                *e = e.max(ns / 1000.0);
            }
        }
    }
    if !m.is_empty() {
        let total = m.get("read_iops").unwrap_or(&0.0) + m.get("write_iops").unwrap_or(&0.0);
        m.insert("iops".into(), total);
    }
    m
}

fn hackbench(output: &str) -> BTreeMap<String, f64> {
    output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Time:")?.trim().parse::<f64>().ok())
        .map(|t| BTreeMap::from([("time_s".to_string(), t)]))
        .unwrap_or_default()
}

fn cyclictest(output: &str) -> BTreeMap<String, f64> {
    let field = |line: &str, key: &str| -> Option<f64> {
        let rest = line.split(key).nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    };
    let (mut max, mut min, mut avgs) = (f64::MIN, f64::MAX, Vec::new());
    for line in output.lines().filter(|l| l.starts_with("T:")) {
        if let (Some(mx), Some(mn), Some(avg)) = (
            field(line, "Max:"),
            field(line, "Min:"),
            field(line, "Avg:"),
        ) {
            max = max.max(mx);
            min = min.min(mn);
            avgs.push(avg);
        }
    }
    if avgs.is_empty() {
        return BTreeMap::new();
    }
    BTreeMap::from([
        ("max_us".to_string(), max),
        ("min_us".to_string(), min),
        (
            "avg_us".to_string(),
            avgs.iter().sum::<f64>() / avgs.len() as f64,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stress_ng_metrics_brief() {
        let out = "stress-ng: info:  [12388] dispatching hogs: 1 cpu\n\
stress-ng: metrc: [12388] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s\n\
stress-ng: metrc: [12388]                           (secs)    (secs)    (secs)   (real time) (usr+sys time)\n\
stress-ng: metrc: [12388] cpu                2446      2.00      1.03      0.00      1222.07        2366.29\n\
stress-ng: metrc: [12388] switch              100      2.00      1.03      0.00        50.00          97.00\n\
stress-ng: info:  [12388] successful run completed in 2.01s\n";
        let m = metrics("/files/stress-ng", out);
        assert_eq!(m["cpu.bogo_ops"], 2446.0);
        assert_eq!(m["cpu.bogo_ops_per_s"], 1222.07);
        assert_eq!(m["bogo_ops_per_s"], 1272.07);
        assert_eq!(m["bogo_ops"], 2546.0);
    }

    #[test]
    fn fio_json_hackbench_and_cyclictest() {
        let fio_out = r#"note: both iodepth >= 1 and synchronous I/O engine are selected
{"jobs": [{"read": {"iops": 1000.5, "bw": 4002, "total_ios": 10,
  "clat_ns": {"percentile": {"99.000000": 309248}}},
  "write": {"iops": 0.0, "bw": 0, "total_ios": 0, "clat_ns": {}}}]}"#;
        let m = metrics("fio", fio_out);
        assert_eq!(m["read_iops"], 1000.5);
        assert_eq!(m["iops"], 1000.5);
        assert_eq!(m["read_bw_kib"], 4002.0);
        assert!((m["read_clat_p99_us"] - 309.248).abs() < 1e-9);
        assert!(!m.contains_key("write_clat_p99_us"));
        let h = metrics("hackbench", "Running in process mode\nTime: 0.248\n");
        assert_eq!(h["time_s"], 0.248);
        let c = metrics(
            "cyclictest",
            "# /dev/cpu_dma_latency set to 0us\n\
T: 0 (12819) P: 0 I:1000 C:    200 Min:     68 Act:  113 Avg:  125 Max:    2931\n\
T: 1 (12820) P: 0 I:1500 C:    147 Min:     70 Act:   76 Avg:  143 Max:    3938\n",
        );
        assert_eq!(
            (c["max_us"], c["min_us"], c["avg_us"]),
            (3938.0, 68.0, 134.0)
        );
        assert!(metrics("sleep", "anything").is_empty());
        assert!(metrics("fio", "not json").is_empty());
    }

    #[test]
    fn a_payload_fails_on_its_own_error_not_on_ktstrs_stop() {
        let mut r = PayloadReport {
            program: "stress-ng".into(),
            exit_code: Some(0),
            ..Default::default()
        };
        assert_eq!(r.failure(), None);
        r.exit_code = Some(2);
        assert_eq!(r.failure().unwrap(), "stress-ng exited with status 2");
        (r.exit_code, r.signal, r.stopped) = (None, Some(15), true);
        assert_eq!(r.failure(), None);
        r.stopped = false;
        assert!(r.failure().unwrap().contains("signal 15"));
        // fio stopped at the end of a run traps the SIGTERM and exits 128.
        (r.exit_code, r.signal, r.stopped) = (Some(128), None, true);
        assert_eq!(r.failure(), None);
        r.stopped = false;
        assert_eq!(r.failure().unwrap(), "stress-ng exited with status 128");
    }
}
