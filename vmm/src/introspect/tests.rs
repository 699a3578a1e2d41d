//! Fabricated inputs: a BTF blob built here (valid, truncated, cyclic), an
//! ELF without symbols, and a fake guest kernel in a memfd that the tests
//! then scribble over. None may panic or hang the host.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use super::*;

/// Builds raw BTF: types are numbered from 1 in the order added.
#[derive(Default)]
struct BtfBlob {
    types: Vec<u8>,
    strings: Vec<u8>,
    count: u32,
}

impl BtfBlob {
    fn new() -> Self {
        BtfBlob {
            strings: vec![0],
            ..Default::default()
        }
    }

    fn name(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    fn words(&mut self, w: &[u32]) -> u32 {
        for x in w {
            self.types.extend_from_slice(&x.to_le_bytes());
        }
        self.count += 1;
        self.count
    }

    fn int(&mut self, name: &str, bytes: u32) -> u32 {
        let n = self.name(name);
        self.words(&[n, 1 << 24, bytes, bytes * 8])
    }

    fn signed_int(&mut self, name: &str, bytes: u32) -> u32 {
        let n = self.name(name);
        self.words(&[n, 1 << 24, bytes, (1 << 24) | (bytes * 8)])
    }

    fn var(&mut self, name: &str, t: u32) -> u32 {
        let n = self.name(name);
        self.words(&[n, 14 << 24, t, 1])
    }

    /// A data section of (var type id, offset, size).
    fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let n = self.name(name);
        let mut w = vec![n, (15 << 24) | vars.len() as u32, size];
        for (t, off, sz) in vars {
            w.extend_from_slice(&[*t, *off, *sz]);
        }
        self.words(&w)
    }

    fn ptr(&mut self, to: u32) -> u32 {
        self.words(&[0, 2 << 24, to])
    }

    fn array(&mut self, elem: u32, index: u32, len: u32) -> u32 {
        self.words(&[0, 3 << 24, 0, elem, index, len])
    }

    fn typedef(&mut self, name: &str, to: u32) -> u32 {
        let n = self.name(name);
        self.words(&[n, 8 << 24, to])
    }

    /// A struct of `size` bytes with (name, type, byte offset) members.
    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let n = self.name(name);
        let mut w = vec![n, (4 << 24) | members.len() as u32, size];
        for (m, t, off) in members {
            let mn = self.name(m);
            w.extend_from_slice(&[mn, *t, off * 8]);
        }
        self.words(&w)
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xeb9fu16.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [
            24,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&self.types);
        b.extend_from_slice(&self.strings);
        b
    }
}

/// A kernel-like BTF: `struct rq` with `scx.local_dsq.nr` behind an
/// anonymous union, `task_struct` with `pid` and `comm`.
fn kernel_btf() -> Vec<u8> {
    let mut b = BtfBlob::new();
    let u32t = b.int("unsigned int", 4);
    let u64t = b.int("u64", 8);
    let u64td = b.typedef("u64_t", u64t);
    let chr = b.int("char", 1);
    let comm = b.array(chr, u32t, 16);
    let task = b.strukt("task_struct", 64, &[("pid", u32t, 8), ("comm", comm, 24)]);
    let task_ptr = b.ptr(task);
    let dsq = b.strukt("scx_dispatch_q", 16, &[("nr", u32t, 12)]);
    let scx = b.strukt(
        "scx_rq",
        32,
        &[("local_dsq", dsq, 0), ("nr_running", u32t, 20)],
    );
    let anon = b.strukt("", 8, &[("clock", u64td, 0)]);
    b.strukt(
        "rq",
        128,
        &[
            ("nr_running", u32t, 4),
            ("", anon, 16),
            ("curr", task_ptr, 32),
            ("scx", scx, 64),
        ],
    );
    b.bytes()
}

fn symbols() -> KernelSymbols {
    KernelSymbols {
        runqueues: 0x1000,
        per_cpu_offset: START_KERNEL_MAP + 0x10_0000,
        page_offset_base: START_KERNEL_MAP + 0x10_1000,
        phys_base: START_KERNEL_MAP + 0x10_2000,
    }
}

#[test]
fn offsets_come_from_btf_through_typedefs_and_anonymous_members() {
    let l = KernelLayout::from_btf(symbols(), &kernel_btf()).unwrap();
    assert_eq!(l.rq.nr_running, FieldAt { offset: 4, size: 4 });
    assert_eq!(
        l.rq.clock,
        FieldAt {
            offset: 16,
            size: 8
        }
    );
    assert_eq!(
        l.rq.curr,
        FieldAt {
            offset: 32,
            size: 8
        }
    );
    assert_eq!(
        l.rq.scx_nr_running,
        Some(FieldAt {
            offset: 84,
            size: 4
        })
    );
    assert_eq!(
        l.rq.scx_local_dsq_nr,
        Some(FieldAt {
            offset: 76,
            size: 4
        })
    );
    assert_eq!(l.task.pid, FieldAt { offset: 8, size: 4 });
    assert_eq!(
        l.task.comm,
        FieldAt {
            offset: 24,
            size: 16
        }
    );
}

#[test]
fn corrupt_btf_is_an_error_never_a_panic() {
    let good = kernel_btf();
    for cut in [0, 3, 24, 40, good.len() / 2, good.len() - 1] {
        let r = KernelLayout::from_btf(symbols(), &good[..cut]);
        assert!(
            matches!(r, Err(IntrospectError::Btf(_))),
            "cut {cut}: {r:?}"
        );
    }
    let mut flipped = good.clone();
    flipped[0] ^= 0xff;
    assert!(KernelLayout::from_btf(symbols(), &flipped).is_err());
    // A BTF without `struct rq` says which type is missing.
    let mut b = BtfBlob::new();
    b.int("int", 4);
    let e = KernelLayout::from_btf(symbols(), &b.bytes()).unwrap_err();
    assert!(e.to_string().contains("`rq`"), "{e}");
}

#[test]
fn a_typedef_cycle_is_an_error_not_a_hang() {
    let mut b = BtfBlob::new();
    // Type 1 names type 2, which names type 1.
    b.typedef("a", 2);
    let loop_t = b.typedef("b", 1);
    b.strukt("rq", 8, &[("nr_running", loop_t, 0)]);
    let started = Instant::now();
    let e = KernelLayout::from_btf(symbols(), &b.bytes()).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_vmlinux_without_symbols_or_not_an_elf_is_named() {
    let e = KernelLayout::from_elf_bytes(b"not an elf at all", "/k/vmlinux").unwrap_err();
    assert!(
        e.to_string().starts_with("/k/vmlinux: not a usable ELF"),
        "{e}"
    );
    // A bare ELF64 header: valid, but no symbol table.
    let mut elf = vec![0u8; 64];
    elf[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
    elf[16] = 2; // ET_EXEC
    elf[18] = 62; // x86-64
    elf[20] = 1; // EV_CURRENT
    elf[52] = 64; // e_ehsize
    let e = KernelLayout::from_elf_bytes(&elf, "/k/vmlinux").unwrap_err();
    assert!(
        matches!(&e, IntrospectError::MissingSymbol { symbol, .. } if symbol == "runqueues"),
        "{e}"
    );
    assert!(e.to_string().contains("without symbols"), "{e}");
}

/// A fake booted guest of 2 CPUs in 64 MiB: the kernel variables at their
/// image addresses, per-CPU run queues in the direct map, one task each.
struct FakeGuest {
    ram: std::fs::File,
    memory: GuestMemory,
    layout: KernelLayout,
}

const RAM: u64 = 64 << 20;
const PER_CPU: [u64; 2] = [0x20_0000, 0x30_0000];

impl FakeGuest {
    fn new() -> Self {
        let ram = ram_memfd("ktstr-fake", RAM).unwrap();
        let memory = GuestMemory::map(
            &[RamBacking {
                file: ram.try_clone().unwrap(),
                len: RAM,
            }],
            &[(0, RAM)],
        )
        .unwrap();
        let layout = KernelLayout::from_btf(symbols(), &kernel_btf()).unwrap();
        let g = FakeGuest {
            ram,
            memory,
            layout,
        };
        g.put(0x10_1000, DEFAULT_PAGE_OFFSET);
        g.put(0x10_2000, 0);
        for (cpu, base) in PER_CPU.iter().enumerate() {
            // __per_cpu_offset[cpu] points the per-CPU area into the
            // direct map; runqueues sits 0x1000 into it.
            g.put(0x10_0000 + 8 * cpu as u64, DEFAULT_PAGE_OFFSET + base);
            let rq = base + 0x1000;
            g.put32(rq + 4, 3 + cpu as u32);
            g.put(rq + 16, 1_000_000 * (cpu as u64 + 1));
            g.put(rq + 32, DEFAULT_PAGE_OFFSET + base + 0x8000);
            g.put32(rq + 84, 2);
            g.put32(rq + 76, 1);
            let task = base + 0x8000;
            g.put32(task + 8, 100 + cpu as u32);
            g.ram.write_all_at(b"spinner\0", task + 24).unwrap();
        }
        g
    }

    fn put(&self, at: u64, v: u64) {
        self.ram.write_all_at(&v.to_le_bytes(), at).unwrap();
    }

    fn put32(&self, at: u64, v: u32) {
        self.ram.write_all_at(&v.to_le_bytes(), at).unwrap();
    }
}

#[test]
fn the_reader_follows_per_cpu_offsets_to_each_run_queue() {
    let g = FakeGuest::new();
    let r = KernelReader::new(&g.memory, g.layout.clone(), 2).unwrap();
    let c1 = r.cpu(1).unwrap();
    assert_eq!(
        (c1.nr_running, c1.scx_nr_running, c1.local_dsq, c1.clock_ns),
        (4, Some(2), Some(1), 2_000_000)
    );
    assert_eq!((c1.curr_pid, c1.curr_comm.as_str()), (101, "spinner"));
    assert_eq!(r.cpu(0).unwrap().nr_running, 3);
}

#[test]
fn a_five_level_direct_map_is_followed() {
    let g = FakeGuest::new();
    g.put(0x10_1000, DEFAULT_PAGE_OFFSET_L5);
    for (cpu, base) in PER_CPU.iter().enumerate() {
        g.put(0x10_0000 + 8 * cpu as u64, DEFAULT_PAGE_OFFSET_L5 + base);
        g.put(base + 0x1000 + 32, DEFAULT_PAGE_OFFSET_L5 + base + 0x8000);
    }
    let r = KernelReader::new(&g.memory, g.layout.clone(), 2).unwrap();
    assert_eq!(r.cpu(1).unwrap().curr_pid, 101);
}

#[test]
fn a_guest_that_scribbles_over_its_kernel_gets_errors_not_a_crash() {
    let g = FakeGuest::new();
    // A task pointer into nowhere: that CPU's read fails, by name.
    g.put(PER_CPU[1] + 0x1000 + 32, 0xdead_beef_dead_beef);
    let r = KernelReader::new(&g.memory, g.layout.clone(), 2).unwrap();
    assert!(r.cpu(0).is_ok());
    let e = r.cpu(1).unwrap_err();
    assert!(e.to_string().contains("task_struct.pid"), "{e}");
    // A task pointer in the direct map but beyond guest RAM.
    g.put(PER_CPU[1] + 0x1000 + 32, DEFAULT_PAGE_OFFSET + (1 << 40));
    assert!(matches!(r.cpu(1), Err(IntrospectError::OutOfRange { .. })));
    // A per-CPU offset scribbled over: the reader refuses to start.
    g.put(0x10_0008, 0x1234);
    let e = KernelReader::new(&g.memory, g.layout.clone(), 2).unwrap_err();
    assert!(e.to_string().contains("runqueues"), "{e}");
    // A randomized direct map is named.
    g.put(0x10_1000, 0xffff_9999_0000_0000);
    let e = KernelReader::new(&g.memory, g.layout.clone(), 2).unwrap_err();
    assert!(e.to_string().contains("nokaslr"), "{e}");
}

#[test]
fn the_monitor_samples_until_a_read_fails_then_says_why() {
    let g = FakeGuest::new();
    let config = MonitorConfig {
        layout: g.layout.clone(),
        period: Duration::from_millis(5),
        cpus: 2,
    };
    let memory = GuestMemory::map(
        &[RamBacking {
            file: g.ram.try_clone().unwrap(),
            len: RAM,
        }],
        &[(0, RAM)],
    )
    .unwrap();
    let m = Monitor::start(memory, config, Instant::now());
    m.guest_ready();
    std::thread::sleep(Duration::from_millis(100));
    g.put(PER_CPU[0] + 0x1000 + 32, 0x42);
    std::thread::sleep(Duration::from_millis(50));
    let report = m.finish();
    assert!(report.samples.len() >= 5, "{}", report.samples.len());
    assert_eq!(report.samples[0].cpus[0].curr_comm, "spinner");
    let why = report.unavailable.expect("the monitor stopped");
    assert!(why.starts_with("monitor stopped at"), "{why}");
}

#[test]
fn a_monitor_whose_guest_never_boots_ends_when_asked() {
    let g = FakeGuest::new();
    let config = MonitorConfig {
        layout: g.layout.clone(),
        period: Duration::from_millis(100),
        cpus: 2,
    };
    let m = Monitor::start(g.memory, config, Instant::now());
    let started = Instant::now();
    let report = m.finish();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        report.unavailable.as_deref(),
        Some("the guest never became ready")
    );
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

#[test]
fn the_schedulers_globals_are_named_and_rendered_from_its_btf() {
    use ktstr_plan::results::{BpfBtf, BpfDump, BpfMapDump};
    let mut b = BtfBlob::new();
    let u64t = b.int("u64", 8);
    let s32 = b.signed_int("s32", 4);
    let chr = b.int("char", 1);
    let name = b.array(chr, u64t, 8);
    let pair = b.strukt("pair", 8, &[("a", s32, 0), ("b", s32, 4)]);
    let v1 = b.var("nr_enqueued", u64t);
    let v2 = b.var("delta", s32);
    let v3 = b.var("label", name);
    let v4 = b.var("p", pair);
    let sec = b.datasec(
        ".bss",
        28,
        &[(v1, 0, 8), (v2, 8, 4), (v3, 12, 8), (v4, 20, 8)],
    );
    let mut value = Vec::new();
    value.extend_from_slice(&1234u64.to_le_bytes());
    value.extend_from_slice(&(-5i32).to_le_bytes());
    value.extend_from_slice(b"qmap\0\0\0\0");
    value.extend_from_slice(&7i32.to_le_bytes());
    value.extend_from_slice(&(-8i32).to_le_bytes());
    let dump = BpfDump {
        when: "scheduler died".into(),
        maps: vec![
            BpfMapDump {
                name: "scx_qmap.bss".into(),
                value_hex: hex(&value),
                btf_id: 3,
                value_type_id: sec,
            },
            BpfMapDump {
                name: "scx_qmap.data".into(),
                value_hex: "zz".into(),
                btf_id: 3,
                value_type_id: sec,
            },
            BpfMapDump {
                name: "other.bss".into(),
                value_hex: String::new(),
                btf_id: 9,
                value_type_id: 1,
            },
        ],
        btfs: vec![
            BpfBtf {
                id: 3,
                hex: hex(&b.bytes()),
            },
            BpfBtf {
                id: 9,
                hex: "00ff".into(),
            },
        ],
    };
    let g = decode_bpf_globals(&dump);
    let shown: Vec<(&str, &str, Option<f64>)> = g
        .globals
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str(), v.number))
        .collect();
    assert_eq!(
        shown,
        [
            ("nr_enqueued", "1234", Some(1234.0)),
            ("delta", "-5", Some(-5.0)),
            ("label", "\"qmap\"", None),
            ("p", "{a: 7, b: -8}", None),
        ]
    );
    // A value that is not hex and a corrupt BTF are named, not fatal.
    assert_eq!(g.errors.len(), 2, "{:?}", g.errors);
    assert!(g.errors[0].starts_with("scx_qmap.data"), "{:?}", g.errors);
    assert!(g.errors[1].contains("BTF"), "{:?}", g.errors);
}
