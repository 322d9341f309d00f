//! What the pipeline asks of the operating system (Linux): peak memory and CPU time, for
//! `--stats`, the run summary and `vidinfer bench`. Where unknown the answers are `None`.

use std::time::Duration;

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Memory available to new allocations without swapping, in bytes (Linux `MemAvailable`).
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident set size of this process now, in bytes (Linux `VmRSS`), if known.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Resets the peak resident set size to the current one (Linux 4.0+: `5` to
/// `/proc/self/clear_refs`), so [`peak_rss_kib`] then tells the peak from now on. Memory that
/// earlier work freed but the allocator kept is given back first (`malloc_trim`), so it does
/// not count towards the next peak. False if the peak could not be reset.
pub fn reset_peak_rss() -> bool {
    // SAFETY: malloc_trim only returns free heap memory to the system.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

fn clock(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes to it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// CPU time (user + system) used so far by all threads of this process.
pub fn process_cpu_time() -> Option<Duration> {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time used so far by the calling thread.
pub fn thread_cpu_time() -> Option<Duration> {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU's name and the instruction-set extensions that decide how fast reduced precision
/// runs (from /proc/cpuinfo; all false where unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuIsa {
    pub model: String,
    pub avx2: bool,
    pub avx512: bool,
    /// 8-bit dot products (AVX-512 VNNI or AVX-VNNI): fast int8.
    pub vnni: bool,
    /// AVX-512 BF16: bf16 dot products.
    pub avx512_bf16: bool,
    /// AMX tiles with bf16 and int8.
    pub amx: bool,
}

impl CpuIsa {
    pub fn detect() -> Self {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self::parse(&info)
    }

    fn parse(cpuinfo: &str) -> Self {
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let flags = field("flags");
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        CpuIsa {
            model: field("model name"),
            avx2: has("avx2"),
            avx512: has("avx512f"),
            vnni: has("avx512_vnni") || has("avx_vnni"),
            avx512_bf16: has("avx512_bf16"),
            amx: has("amx_bf16") && has("amx_int8") && has("amx_tile"),
        }
    }

    /// True when the CPU computes bf16 natively (AVX-512 BF16 or AMX).
    pub fn bf16(&self) -> bool {
        self.avx512_bf16 || self.amx
    }

    /// A short description, e.g. "AVX2, AVX-512, VNNI, AVX-512 BF16, AMX".
    pub fn summary(&self) -> String {
        let mut v = Vec::new();
        for (on, name) in [
            (self.avx2, "AVX2"),
            (self.avx512, "AVX-512"),
            (self.vnni, "VNNI"),
            (self.avx512_bf16, "AVX-512 BF16"),
            (self.amx, "AMX"),
        ] {
            if on {
                v.push(name);
            }
        }
        if v.is_empty() {
            "no AVX2".into()
        } else {
            v.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_advances_with_work() {
        let t0 = thread_cpu_time().expect("thread CPU clock");
        let p0 = process_cpu_time().expect("process CPU clock");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time().expect("thread CPU clock") > t0);
        assert!(process_cpu_time().expect("process CPU clock") > p0);
    }

    #[test]
    fn peak_rss_resets_to_the_current_size() {
        assert!(reset_peak_rss(), "Linux 4.0+ resets the peak RSS");
        let before = peak_rss_kib().expect("VmHWM");
        let mut big = vec![0u8; 64 << 20];
        big.iter_mut().step_by(4096).for_each(|b| *b = 1);
        std::hint::black_box(&big);
        let grown = peak_rss_kib().expect("VmHWM");
        // Not `before + 64 MiB`: other tests of this process free memory meanwhile. But the
        // peak holds at least what is resident now, and `big` alone is 64 MiB.
        assert!(grown >= 64 * 1024 && grown > before, "{before} -> {grown}");
        drop(big);
        assert!(reset_peak_rss());
        assert!(peak_rss_kib().expect("VmHWM") < grown - 32 * 1024);
    }

    #[test]
    fn isa_from_cpuinfo() {
        let xeon = "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n";
        let i = CpuIsa::parse(xeon);
        assert!(i.vnni && i.bf16() && i.amx);
        assert_eq!(i.summary(), "AVX2, AVX-512, VNNI, AVX-512 BF16, AMX");
        let zen3 = "model name\t: AMD EPYC 7763\nflags\t\t: fpu avx2 fma\n";
        let z = CpuIsa::parse(zen3);
        assert!(z.avx2 && !z.vnni && !z.bf16());
        assert_eq!(z.model, "AMD EPYC 7763");
    }
}
