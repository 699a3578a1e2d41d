//! The run library drives real VMs (the built kernel under QEMU TCG)
//! without the CLI: a plan job through `Runner::run`, two jobs at once in
//! one process, the sidecar read back as a typed `Sidecar`, and live
//! requests to the guest agent over the channel's host → guest direction.

mod common;

use std::sync::{Arc, Mutex};

use ktstr_plan::verdict::Outcome;
use ktstr_proto::{encode, GuestMessage, HostMessage, MAX_HOST_FRAME_LEN};
use ktstr_run::{JobRequest, JobResult, Runner, Sidecar};
use ktstr_vmm::to_guest::host_queue;
use ktstr_vmm::VmEnd;

use common::{agent, backend, built_kernel, plan, runner, vm_lock};

const STEADY: &str = r#"scenario("lib_steady", "two spinners through the library");
duration(3);
topology(1, 1, 2, 1);
// Fairness is not what these tests are about: in 3 s of emulation one of
// two spinners falls a quarter behind about one run in eight (booted or
// restored alike).
threshold("max_throughput_cv_pct", 60);
threshold("min_work_rate_pct", 40);
cgroup("a", 2, spin_wait());
claim(results().cgroup("a").iterations, at_least(1));
"#;

/// A request for `src` on its own topology, with the tests' backend.
fn request(src: &str, kernel: &ktstr_kernel::BootKernel) -> JobRequest {
    let p = plan(src);
    let topology = p.topology.choose(None).expect("a topology");
    let mut req = JobRequest::new(p, topology, kernel.clone());
    req.backend = backend();
    req
}

/// Asserts `r` passed with a sidecar that reads back as what the library
/// returned.
fn assert_passed_and_recorded(r: &JobResult, runner: &Runner) {
    assert_eq!(r.verdict.outcome, Outcome::Pass, "{:#?}", r.verdict);
    let path = r.sidecar.as_ref().expect("a sidecar");
    assert!(path.starts_with(&runner.run_dir), "{}", path.display());
    let back = Sidecar::read(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.verdict, r.verdict);
    assert_eq!(back.telemetry, r.telemetry);
    assert_eq!(Some(&back.vm), r.vm.as_ref());
    assert_eq!(back.run_id, runner.run_id);
    assert_eq!(back.job, r.label);
    let a = &back.telemetry.workers;
    assert_eq!(a.len(), 2, "{a:#?}");
    assert!(a.iter().all(|w| w.iterations > 0 && w.cgroup == "a"));
}

#[test]
fn a_plan_runs_through_the_library_and_its_sidecar_reads_back() {
    let (Some(kernel), Some(agent)) = (built_kernel(), agent()) else {
        return;
    };
    let _lock = vm_lock();
    let tmp = tempfile::tempdir().unwrap();
    let runner = runner(tmp.path(), agent);
    let r = runner
        .run(request(STEADY, &kernel), &ktstr_kernel::Silent)
        .expect("the job runs");
    assert_eq!(r.label, "lib_steady 1n1l2c1t eevdf");
    assert!(r.vm.as_ref().is_some_and(|o| o.end == VmEnd::Completed));
    assert_passed_and_recorded(&r, &runner);
}

#[test]
fn two_jobs_run_at_once_in_one_process() {
    let (Some(kernel), Some(agent)) = (built_kernel(), agent()) else {
        return;
    };
    let _lock = vm_lock();
    let tmp = tempfile::tempdir().unwrap();
    let runner = runner(tmp.path(), agent);
    let second = STEADY.replace("lib_steady", "lib_steady_too");
    let results: Vec<JobResult> = std::thread::scope(|s| {
        let jobs = [STEADY, second.as_str()].map(|src| {
            let req = request(src, &kernel);
            let runner = &runner;
            s.spawn(move || runner.run(req, &ktstr_kernel::Silent).expect("runs"))
        });
        jobs.map(|j| j.join().expect("no panic")).into()
    });
    let names: Vec<&str> = results.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        names,
        ["lib_steady 1n1l2c1t eevdf", "lib_steady_too 1n1l2c1t eevdf"]
    );
    for r in &results {
        assert_passed_and_recorded(r, &runner);
    }
    let sidecars: Vec<_> = results.iter().map(|r| r.sidecar.clone()).collect();
    assert_ne!(sidecars[0], sidecars[1], "each job writes its own sidecar");
}

#[test]
fn the_host_talks_to_a_running_agent() {
    let (Some(kernel), Some(agent)) = (built_kernel(), agent()) else {
        return;
    };
    let _lock = vm_lock();
    let tmp = tempfile::tempdir().unwrap();
    let runner = runner(tmp.path(), agent);
    let long = STEADY.replace("duration(3)", "duration(60)");
    let mut req = request(&long, &kernel);
    let (sender, queue) = host_queue();
    sender.send(HostMessage::Ping { id: 1 });
    sender.send(HostMessage::Report { id: 2 });
    let answers = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&answers);
    req.to_guest = Some(queue);
    req.watch = Some(Box::new(move |m: &GuestMessage| {
        // A second after the plan's workers started (a restored guest
        // starts them faster than they reach their loops), ask it to stop
        // (its 60 s would be too long).
        if matches!(m, GuestMessage::Event { message, .. } if message.contains("started")) {
            let sender = sender.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(1));
                sender.send(HostMessage::StopPlan { id: 3 });
            });
        }
        if matches!(m, GuestMessage::Ack { .. } | GuestMessage::Report { .. }) {
            seen.lock().unwrap().push(m.clone());
        }
    }));
    let r = runner.run(req, &ktstr_kernel::Silent).expect("runs");
    let answers = answers.lock().unwrap().clone();
    let ack = |id: u64, text: &str| {
        answers.iter().any(
            |a| matches!(a, GuestMessage::Ack { id: i, message } if *i == id && message == text),
        )
    };
    assert!(ack(1, "pong"), "{answers:#?}");
    assert!(ack(3, "stopping the plan"), "{answers:#?}");
    let report = answers.iter().find_map(|a| match a {
        GuestMessage::Report { id: 2, report } => Some(report),
        _ => None,
    });
    assert_eq!(
        report.expect("a report").layout.cpus.len(),
        2,
        "{answers:#?}"
    );
    // The plan ended early, and its results are complete.
    let ran = r.telemetry.duration_ms.expect("results");
    assert!(ran < 30_000.0, "the plan ran {ran} ms");
    assert!(r
        .telemetry
        .events
        .iter()
        .any(|e| e.message == "stopped by the host"));
    assert_passed_and_recorded(&r, &runner);
}

#[test]
fn corrupt_and_oversized_host_frames_are_rejected_and_the_agent_goes_on() {
    let (Some(kernel), Some(agent)) = (built_kernel(), agent()) else {
        return;
    };
    let _lock = vm_lock();
    let tmp = tempfile::tempdir().unwrap();
    let runner = runner(tmp.path(), agent);
    let mut req = request(STEADY, &kernel);
    let (sender, queue) = host_queue();
    let mut corrupt = encode(&HostMessage::Ping { id: 10 }.to_payload());
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x5a;
    sender.send_raw(corrupt);
    let mut oversized = ktstr_proto::frame::MAGIC.to_vec();
    oversized.extend(u32::MAX.to_le_bytes());
    oversized.extend([0u8; 4]);
    sender.send_raw(oversized);
    sender.send_raw(encode(br#"{"type":"reboot","id":12}"#));
    sender.send(HostMessage::Ping { id: 11 });
    let answers = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&answers);
    req.to_guest = Some(queue);
    req.watch = Some(Box::new(move |m: &GuestMessage| {
        if matches!(m, GuestMessage::Ack { .. } | GuestMessage::Rejected { .. }) {
            seen.lock().unwrap().push(m.clone());
        }
    }));
    let r = runner.run(req, &ktstr_kernel::Silent).expect("runs");
    let answers = answers.lock().unwrap().clone();
    let rejected: Vec<&str> = answers
        .iter()
        .filter_map(|a| match a {
            GuestMessage::Rejected { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert!(rejected.iter().any(|r| r.contains("CRC32")), "{rejected:?}");
    assert!(
        rejected
            .iter()
            .any(|r| r.contains(&format!("exceeds the {MAX_HOST_FRAME_LEN}-byte limit"))),
        "{rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|r| r.contains("unknown variant `reboot`")),
        "{rejected:?}"
    );
    assert!(
        answers.contains(&GuestMessage::Ack {
            id: 11,
            message: "pong".into()
        }),
        "{answers:#?}"
    );
    // The agent went on: the plan ran to its end and reported, and the
    // host names each rejected frame.
    let vm = r.vm.as_ref().expect("a VM");
    assert_eq!(vm.end, VmEnd::Completed, "{}", vm.failure_report());
    assert_eq!(r.telemetry.workers.len(), 2);
    assert!(vm
        .protocol_errors
        .iter()
        .any(|e| e.starts_with("the guest agent rejected a host frame")));
    assert_eq!(
        r.verdict.outcome,
        Outcome::Fail,
        "a rejected frame is a channel error"
    );
}

#[test]
fn a_topology_the_backend_cannot_run_is_a_skip_with_its_reason() {
    let (Some(kernel), Some(agent)) = (built_kernel(), agent()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let runner = runner(tmp.path(), agent);
    let p = plan(STEADY);
    let huge = "1n16l8c2t".parse().unwrap();
    let mut req = JobRequest::new(p, huge, kernel);
    req.backend = "qemu-tcg".parse().unwrap();
    let r = runner.run(req, &ktstr_kernel::Silent).expect("runs");
    assert_eq!(r.verdict.outcome, Outcome::Skip, "{:?}", r.verdict);
    assert_eq!(
        r.verdict.reasons,
        [
            "the qemu-tcg backend cannot run this VM: topology 1n16l8c2t has 256 CPUs; \
          QEMU's q35 machine runs at most 255"
        ]
    );
    assert!(r.vm.is_none() && r.sidecar.is_none());
}
