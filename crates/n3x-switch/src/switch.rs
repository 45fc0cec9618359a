//! The IO side: one reader thread per port (blocking on its TAP), MAC learning, the
//! per-link pipelines, and one scheduler thread that delivers delayed frames from a heap
//! of due times. A frame on a link without impairment is written to the destination TAP
//! directly by the reader thread, without a copy and without the scheduler.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::frame::{self, MAX_FRAME, MIN_FRAME, Mac};
use crate::impair::Impairment;
use crate::pipeline::{DropReason, LinkPipeline, Verdict};
use crate::sys::{EventFd, Tap, set_timer_slack};

/// Frames of one link waiting in the delay line may hold at most this many bytes; more
/// are tail dropped (counted as queue drops). Bounds memory when a fast sender meets a
/// long delay.
pub const DELAY_LINE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Buffers kept for reuse, per size class.
const POOL_SMALL: usize = 4096;
const POOL_LARGE: usize = 512;
const SMALL_BUF: usize = 2048;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

/// Counters of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames written to the destination (a TCP super-frame counts once).
    pub frames: u64,
    /// Layer 2 bytes of those frames as on a wire (super-frames count every segment's headers).
    pub bytes: u64,
    pub dropped_partition: u64,
    pub dropped_loss: u64,
    /// Tail drops of the rate limiter's queue or of the delay line.
    pub dropped_queue: u64,
    /// The destination TAP refused the frame (typically: its link is down).
    pub dropped_write: u64,
}

/// Counters of every directed link, keyed by `(from host, to host)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwitchStats {
    pub links: BTreeMap<(String, String), LinkStats>,
}

impl SwitchStats {
    /// The counters of one directed link (zero when the link does not exist).
    pub fn link(&self, from: &str, to: &str) -> LinkStats {
        self.links.get(&(from.to_string(), to.to_string())).copied().unwrap_or_default()
    }
}

#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    bytes: AtomicU64,
    dropped_partition: AtomicU64,
    dropped_loss: AtomicU64,
    dropped_queue: AtomicU64,
    dropped_write: AtomicU64,
}

impl Counters {
    fn drop(&self, r: DropReason) {
        let c = match r {
            DropReason::Partition => &self.dropped_partition,
            DropReason::Loss => &self.dropped_loss,
            DropReason::Queue => &self.dropped_queue,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LinkStats {
        LinkStats {
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            dropped_partition: self.dropped_partition.load(Ordering::Relaxed),
            dropped_loss: self.dropped_loss.load(Ordering::Relaxed),
            dropped_queue: self.dropped_queue.load(Ordering::Relaxed),
            dropped_write: self.dropped_write.load(Ordering::Relaxed),
        }
    }
}

/// One directed link: everything `from` sends to `to`.
struct Link {
    from: String,
    to: String,
    dest: Arc<Tap>,
    pipe: Mutex<LinkPipeline>,
    /// Mirror of `pipe.passes_through()`, read without the lock on the fast path.
    bypass: AtomicBool,
    /// Frames in the delay line. The fast path is taken only when it is empty, so a
    /// frame never overtakes an earlier one when an impairment is removed.
    inflight: AtomicU64,
    pending_bytes: AtomicU64,
    stats: Counters,
    write_error_logged: AtomicBool,
}

impl Link {
    fn deliver(&self, buf: &[u8], wire: u64, switch: &str) {
        match self.dest.write_frame(buf) {
            Ok(_) => {
                self.stats.frames.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(wire, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.dropped_write.fetch_add(1, Ordering::Relaxed);
                // EIO: the destination's link is down, an ordinary state in a lab.
                if e.raw_os_error() != Some(libc::EIO) && !self.write_error_logged.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "n3x-switch {switch}: write to TAP {} ({} -> {}) failed: {e} (further errors on this link not shown)",
                        self.dest.name(),
                        self.from,
                        self.to
                    );
                }
            }
        }
    }
}

struct Port {
    index: usize,
    host: String,
    tap: Arc<Tap>,
    /// Links from this port, indexed by destination port; `None` at this port's own index.
    out: RwLock<Vec<Option<Arc<Link>>>>,
}

/// A frame in the delay line.
struct Scheduled {
    due: u64,
    seq: u64,
    wire: u64,
    link: Arc<Link>,
    buf: Vec<u8>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest due frame must come first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

#[derive(Default)]
struct Scheduler {
    heap: Mutex<(BinaryHeap<Scheduled>, u64)>,
    cv: Condvar,
}

/// Reusable frame buffers, so the delay line does not allocate per frame.
#[derive(Default)]
struct Pool {
    small: Mutex<Vec<Vec<u8>>>,
    large: Mutex<Vec<Vec<u8>>>,
}

impl Pool {
    fn get(&self, frame: &[u8]) -> Vec<u8> {
        let (class, cap) = if frame.len() <= SMALL_BUF { (&self.small, SMALL_BUF) } else { (&self.large, MAX_FRAME) };
        let mut b = lock(class).pop().unwrap_or_else(|| Vec::with_capacity(cap));
        b.clear();
        b.extend_from_slice(frame);
        b
    }

    fn put(&self, b: Vec<u8>) {
        let (class, max) = if b.capacity() < MAX_FRAME { (&self.small, POOL_SMALL) } else { (&self.large, POOL_LARGE) };
        let mut v = lock(class);
        if v.len() < max {
            v.push(b);
        }
    }
}

/// Impairment settings by host name, kept so links created later get them too.
#[derive(Default)]
struct Config {
    egress: HashMap<String, Impairment>,
    links: HashMap<(String, String), Impairment>,
    cuts: HashSet<(String, String)>,
}

impl Config {
    /// A link's own setting, else its sender's egress profile, else none.
    fn impairment(&self, from: &str, to: &str) -> Impairment {
        let key = (from.to_string(), to.to_string());
        self.links.get(&key).or_else(|| self.egress.get(from)).copied().unwrap_or_default()
    }

    fn set_link(&mut self, from: &str, to: &str, imp: Impairment) {
        self.links.insert((from.to_string(), to.to_string()), imp);
    }

    fn set_egress(&mut self, host: &str, imp: Impairment) {
        self.egress.insert(host.to_string(), imp);
        self.links.retain(|(from, _), _| from != host);
    }

    fn partition(&mut self, a: &[&str], b: &[&str]) {
        for x in a {
            for y in b {
                if x != y {
                    self.cuts.insert((x.to_string(), y.to_string()));
                    self.cuts.insert((y.to_string(), x.to_string()));
                }
            }
        }
    }

    fn is_cut(&self, from: &str, to: &str) -> bool {
        self.cuts.contains(&(from.to_string(), to.to_string()))
    }
}

struct Inner {
    name: String,
    seed: u64,
    epoch: Instant,
    stop: AtomicBool,
    /// Created with the first port (creating it can fail; `Switch::new` cannot).
    wake: Mutex<Option<Arc<EventFd>>>,
    config: Mutex<Config>,
    ports: RwLock<Vec<Arc<Port>>>,
    macs: RwLock<HashMap<Mac, usize>>,
    sched: Scheduler,
    pool: Pool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Applies the configured impairment and partition state to one link.
    fn apply(&self, config: &Config, link: &Link) {
        let mut pipe = lock(&link.pipe);
        pipe.set_impairment(config.impairment(&link.from, &link.to));
        pipe.set_cut(config.is_cut(&link.from, &link.to));
        link.bypass.store(pipe.passes_through(), Ordering::Release);
    }

    fn apply_all(&self, config: &Config, filter: impl Fn(&Link) -> bool) {
        for port in read(&self.ports).iter() {
            for link in read(&port.out).iter().flatten() {
                if filter(link) {
                    self.apply(config, link);
                }
            }
        }
    }

    fn learn(&self, mac: Mac, port: usize) {
        if frame::is_group(&mac) {
            return;
        }
        if read(&self.macs).get(&mac) != Some(&port) {
            write(&self.macs).insert(mac, port);
        }
    }

    /// Everything that happens to a frame read from `port`.
    fn switch_frame(&self, port: &Port, buf: &[u8]) {
        if buf.len() < MIN_FRAME {
            return;
        }
        let src = frame::src_mac(buf);
        let dst = frame::dst_mac(buf);
        self.learn(src, port.index);
        let now = self.now_ns();
        let wire = frame::wire_len(buf);
        let out = read(&port.out);
        let known = if frame::is_group(&dst) { None } else { read(&self.macs).get(&dst).copied() };
        match known {
            Some(q) if q == port.index => {}
            Some(q) => {
                if let Some(Some(link)) = out.get(q) {
                    self.forward(link, buf, now, wire);
                }
            }
            None => {
                for link in out.iter().flatten() {
                    self.forward(link, buf, now, wire);
                }
            }
        }
    }

    fn forward(&self, link: &Arc<Link>, buf: &[u8], now: u64, wire: u64) {
        if link.bypass.load(Ordering::Acquire) && link.inflight.load(Ordering::Acquire) == 0 {
            link.deliver(buf, wire, &self.name);
            return;
        }
        let verdict = lock(&link.pipe).offer(now, wire);
        match verdict {
            Verdict::Drop(r) => link.stats.drop(r),
            Verdict::Deliver { at_ns } if at_ns <= now && link.inflight.load(Ordering::Acquire) == 0 => {
                link.deliver(buf, wire, &self.name);
            }
            Verdict::Deliver { at_ns } => {
                let len = buf.len() as u64;
                if link.pending_bytes.load(Ordering::Relaxed) + len > DELAY_LINE_LIMIT_BYTES {
                    link.stats.drop(DropReason::Queue);
                    return;
                }
                link.inflight.fetch_add(1, Ordering::AcqRel);
                link.pending_bytes.fetch_add(len, Ordering::Relaxed);
                let entry = Scheduled { due: at_ns, seq: 0, wire, link: Arc::clone(link), buf: self.pool.get(buf) };
                self.schedule(entry);
            }
        }
    }

    fn schedule(&self, mut entry: Scheduled) {
        let mut g = lock(&self.sched.heap);
        let (heap, seq) = &mut *g;
        entry.seq = *seq;
        *seq += 1;
        let first = heap.peek().is_none_or(|top| entry.due < top.due);
        heap.push(entry);
        drop(g);
        if first {
            self.sched.cv.notify_one();
        }
    }

    fn reader(&self, port: &Port, stop: &EventFd) {
        let mut buf = vec![0u8; MAX_FRAME];
        let mut error_logged = false;
        while !self.stop.load(Ordering::Relaxed) {
            let result = port.tap.read_frame(&mut buf);
            let err = match result {
                Ok(n) => {
                    self.switch_frame(port, &buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match port.tap.wait_readable(stop) {
                    Ok(true) => return,
                    Ok(false) => continue,
                    Err(e) => e,
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => io::Error::new(e.kind(), format!("read from TAP {}: {e}", port.tap.name())),
            };
            if !error_logged {
                eprintln!("n3x-switch {}: port {}: {err} (retrying; further errors not shown)", self.name, port.host);
                error_logged = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn scheduler(&self) {
        // Wake-ups on time matter more here than the power saved by batching timers.
        let _ = set_timer_slack(1_000);
        let mut due_now = Vec::new();
        let mut g = lock(&self.sched.heap);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let now = self.now_ns();
            while g.0.peek().is_some_and(|e| e.due <= now) {
                if let Some(e) = g.0.pop() {
                    due_now.push(e);
                }
            }
            if !due_now.is_empty() {
                drop(g);
                for e in due_now.drain(..) {
                    e.link.deliver(&e.buf, e.wire, &self.name);
                    e.link.pending_bytes.fetch_sub(e.buf.len() as u64, Ordering::Relaxed);
                    e.link.inflight.fetch_sub(1, Ordering::AcqRel);
                    self.pool.put(e.buf);
                }
                g = lock(&self.sched.heap);
                continue;
            }
            g = match g.0.peek().map(|e| e.due - now) {
                Some(wait) => {
                    self.sched.cv.wait_timeout(g, Duration::from_nanos(wait)).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.sched.cv.wait(g).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// A userspace L2 switch between TAP devices, with an impairment pipeline per directed link.
pub struct Switch {
    inner: Arc<Inner>,
}

impl Switch {
    /// `name` is for logs and seeding (the network name); `seed` is the lab seed.
    pub fn new(name: &str, seed: u64) -> Switch {
        Switch {
            inner: Arc::new(Inner {
                name: name.to_string(),
                seed,
                epoch: Instant::now(),
                stop: AtomicBool::new(false),
                wake: Mutex::new(None),
                config: Mutex::new(Config::default()),
                ports: RwLock::new(Vec::new()),
                macs: RwLock::new(HashMap::new()),
                sched: Scheduler::default(),
                pool: Pool::default(),
                threads: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The name given to [`Switch::new`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Adds a port owned by `host` (host names are unique per switch) and starts
    /// forwarding its frames. Impairments already set for `host` apply to its links.
    pub fn add_port(&self, host: &str, tap: Tap) -> io::Result<()> {
        let inner = &self.inner;
        let config = lock(&inner.config);
        if read(&inner.ports).iter().any(|p| p.host == host) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("switch {}: host {host} already has a port", inner.name),
            ));
        }
        let stop = {
            let mut wake = lock(&inner.wake);
            match &*wake {
                Some(w) => Arc::clone(w),
                None => {
                    let w =
                        Arc::new(EventFd::new().map_err(|e| {
                            io::Error::new(e.kind(), format!("switch {}: stop signal: {e}", inner.name))
                        })?);
                    let me = Arc::clone(inner);
                    let handle = std::thread::Builder::new()
                        .name(format!("n3xsw-sched-{}", inner.name))
                        .spawn(move || me.scheduler())
                        .map_err(|e| {
                            io::Error::new(e.kind(), format!("switch {}: spawn scheduler: {e}", inner.name))
                        })?;
                    lock(&inner.threads).push(handle);
                    *wake = Some(Arc::clone(&w));
                    w
                }
            }
        };
        let tap = Arc::new(tap);
        let mut ports = write(&inner.ports);
        let index = ports.len();
        let new_link = |from: &Port, to_host: &str, dest: &Arc<Tap>| {
            let link = Link {
                from: from.host.clone(),
                to: to_host.to_string(),
                dest: Arc::clone(dest),
                pipe: Mutex::new(LinkPipeline::new(inner.seed, &inner.name, &from.host, to_host)),
                bypass: AtomicBool::new(true),
                inflight: AtomicU64::new(0),
                pending_bytes: AtomicU64::new(0),
                stats: Counters::default(),
                write_error_logged: AtomicBool::new(false),
            };
            inner.apply(&config, &link);
            Arc::new(link)
        };
        let port =
            Arc::new(Port { index, host: host.to_string(), tap: Arc::clone(&tap), out: RwLock::new(Vec::new()) });
        let mut out = Vec::with_capacity(index + 1);
        for other in ports.iter() {
            out.push(Some(new_link(&port, &other.host, &other.tap)));
            write(&other.out).push(Some(new_link(other, host, &tap)));
        }
        out.push(None);
        *write(&port.out) = out;
        ports.push(Arc::clone(&port));
        drop(ports);
        let me = Arc::clone(inner);
        let handle =
            std::thread::Builder::new().name(format!("n3xsw-{host}")).spawn(move || me.reader(&port, &stop)).map_err(
                |e| io::Error::new(e.kind(), format!("switch {}: spawn reader for {host}: {e}", inner.name)),
            )?;
        lock(&inner.threads).push(handle);
        Ok(())
    }

    /// Impairs every frame `from` sends to `to` (a directed link), replacing what
    /// [`Switch::set_egress`] set for it. Takes effect for new frames.
    pub fn set_link(&self, from: &str, to: &str, imp: Impairment) {
        let mut config = lock(&self.inner.config);
        config.set_link(from, to, imp);
        self.inner.apply_all(&config, |l| l.from == from && l.to == to);
    }

    /// The impairment of every directed link whose sender is `host` (a host's profile
    /// impairs its egress), replacing earlier [`Switch::set_link`] settings of those links.
    pub fn set_egress(&self, host: &str, imp: Impairment) {
        let mut config = lock(&self.inner.config);
        config.set_egress(host, imp);
        self.inner.apply_all(&config, |l| l.from == host);
    }

    /// Cuts both directions between every host in `a` and every host in `b`. Adds to
    /// earlier partitions.
    pub fn partition(&self, a: &[&str], b: &[&str]) {
        let mut config = lock(&self.inner.config);
        config.partition(a, b);
        self.inner.apply_all(&config, |_| true);
    }

    /// Removes every partition made by [`Switch::partition`]; impairments stay.
    pub fn heal(&self) {
        let mut config = lock(&self.inner.config);
        config.cuts.clear();
        self.inner.apply_all(&config, |_| true);
    }

    /// Counters of every directed link.
    pub fn stats(&self) -> SwitchStats {
        let mut links = BTreeMap::new();
        for port in read(&self.inner.ports).iter() {
            for link in read(&port.out).iter().flatten() {
                links.insert((link.from.clone(), link.to.clone()), link.stats.snapshot());
            }
        }
        SwitchStats { links }
    }

    /// Stops the threads and closes the TAPs (the devices disappear with their fd).
    /// Frames still in the delay line are dropped.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.stop.store(true, Ordering::Relaxed);
        if let Some(w) = &*lock(&inner.wake) {
            if let Err(e) = w.signal() {
                eprintln!("n3x-switch {}: signalling readers to stop: {e}", inner.name);
            }
        }
        {
            // Under the heap lock, so the scheduler is either waiting or sees `stop`.
            let _g = lock(&inner.sched.heap);
            inner.sched.cv.notify_all();
        }
        let threads = std::mem::take(&mut *lock(&inner.threads));
        for t in threads {
            let _ = t.join();
        }
        let mut g = lock(&inner.sched.heap);
        g.0.clear();
        drop(g);
        write(&inner.ports).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delay(ms: u64) -> Impairment {
        Impairment { delay: Duration::from_millis(ms), ..Default::default() }
    }

    #[test]
    fn link_settings_override_egress_until_the_next_egress() {
        let mut c = Config::default();
        assert_eq!(c.impairment("a", "b"), Impairment::default());
        c.set_egress("a", delay(10));
        assert_eq!(c.impairment("a", "b"), delay(10));
        assert_eq!(c.impairment("a", "c"), delay(10));
        assert_eq!(c.impairment("b", "a"), Impairment::default(), "egress impairs only what a sends");
        c.set_link("a", "b", delay(20));
        assert_eq!(c.impairment("a", "b"), delay(20));
        assert_eq!(c.impairment("a", "c"), delay(10));
        c.set_egress("a", delay(30));
        assert_eq!(c.impairment("a", "b"), delay(30), "a new egress profile replaces per-link settings");
        c.set_link("b", "a", delay(5));
        c.set_egress("a", delay(1));
        assert_eq!(c.impairment("b", "a"), delay(5), "another sender's links are untouched");
    }

    #[test]
    fn partition_cuts_both_directions_between_groups_only() {
        let mut c = Config::default();
        c.partition(&["a", "b"], &["c"]);
        for (x, y) in [("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")] {
            assert!(c.is_cut(x, y), "{x} -> {y}");
        }
        assert!(!c.is_cut("a", "b") && !c.is_cut("b", "a"), "same side stays connected");
        c.partition(&["a"], &["a"]);
        assert!(!c.is_cut("a", "a"));
    }

    #[test]
    fn scheduled_frames_pop_earliest_first_and_fifo_on_ties() {
        let link = Arc::new(Link {
            from: "a".into(),
            to: "b".into(),
            dest: Arc::new(Tap::for_tests()),
            pipe: Mutex::new(LinkPipeline::new(1, "n", "a", "b")),
            bypass: AtomicBool::new(true),
            inflight: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            stats: Counters::default(),
            write_error_logged: AtomicBool::new(false),
        });
        let mut heap = BinaryHeap::new();
        for (due, seq) in [(30, 0), (10, 1), (20, 2), (10, 3)] {
            heap.push(Scheduled { due, seq, wire: 0, link: Arc::clone(&link), buf: Vec::new() });
        }
        let order: Vec<(u64, u64)> = std::iter::from_fn(|| heap.pop().map(|e| (e.due, e.seq))).collect();
        assert_eq!(order, vec![(10, 1), (10, 3), (20, 2), (30, 0)]);
    }

    #[test]
    fn pool_reuses_buffers_by_size_class() {
        let pool = Pool::default();
        let small = pool.get(&[1, 2, 3]);
        assert_eq!(small, vec![1, 2, 3]);
        let ptr = small.as_ptr();
        pool.put(small);
        let again = pool.get(&[9; 100]);
        assert_eq!(again.as_ptr(), ptr, "the small buffer is reused");
        assert_eq!(again, vec![9; 100]);
        let large = pool.get(&vec![7; 5000]);
        assert!(large.capacity() >= MAX_FRAME);
        pool.put(large);
        assert_eq!(lock(&pool.large).len(), 1);
        assert_eq!(lock(&pool.small).len(), 0);
    }

    #[test]
    fn switch_and_tap_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Switch>();
        shared::<Tap>();
    }

    #[test]
    fn a_switch_without_ports_has_no_links_and_shuts_down() {
        let sw = Switch::new("empty", 1);
        sw.set_egress("a", delay(5));
        sw.partition(&["a"], &["b"]);
        sw.heal();
        assert_eq!(sw.stats(), SwitchStats::default());
        assert_eq!(sw.stats().link("a", "b"), LinkStats::default());
        sw.shutdown();
    }
}
