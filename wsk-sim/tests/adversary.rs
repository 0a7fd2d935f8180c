//! The adversary: each behaviour happens, and a careful raw client — one
//! that follows Microsoft's contract to the letter — reassembles every byte
//! and datagram exactly, under every seed tried.
//!
//! `WSK_SIM_SEEDS=N` (default 200, 3 under Miri) sets how many seeds each
//! property runs, `WSK_SIM_SEED_BASE=S` (default 0) the first one; a
//! failure names its seed.
// Raw FFI test code: pointers to locals go straight to C-ABI routines, as
// in a C driver; short names (c = client, s = socket, p = peer, r = request,
// b = buffer) keep the scenarios readable.
#![allow(
    clippy::borrow_as_ptr,
    clippy::ref_as_ptr,
    clippy::many_single_char_names
)]
#![allow(clippy::cast_possible_truncation, clippy::struct_field_names)]
#![allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
#![allow(missing_docs, clippy::missing_safety_doc, unsafe_op_in_unsafe_fn)]

mod common;

use core::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;
use wsk_sim::{Adversary, Behaviour, EventKind, Irql, Routine, Sim};
use wsk_sys::*;

// ---------------------------------------------------------------------------
// Seeds and the client's own choices

fn seeds() -> impl Iterator<Item = u64> {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = var("WSK_SIM_SEEDS", if cfg!(miri) { 3 } else { 200 });
    let base = var("WSK_SIM_SEED_BASE", 0);
    base..base + n
}

/// The client's own decisions (`SplitMix64`), independent of the
/// simulator's.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.below(256) as u8).collect()
    }
}

/// Bytes of stream data each run sends.
fn stream_len() -> usize {
    if cfg!(miri) { 300 } else { 3000 }
}

// ---------------------------------------------------------------------------
// Client buffers as MDL chains

/// A client `WSK_BUF` over several separately allocated buffers linked with
/// `Mdl->Next`: a non-zero `Offset` into the first, unrelated bytes around
/// the data, some MDLs mapped (`MmBuildMdlForNonPagedPool`) and some only
/// locked (`MmProbeAndLockPages`).
struct ChainBuf {
    /// Per MDL: its memory, the MDL, where the data starts, data bytes.
    parts: Vec<(Vec<u8>, PMDL, usize, usize)>,
    wsk: Box<WSK_BUF>,
}

impl ChainBuf {
    fn new(data: &[u8], rng: &mut Rng) -> ChainBuf {
        let mut parts = Vec::new();
        let mut at = 0;
        let mut first = true;
        let offset = 1 + rng.below(40);
        let mut mdls: Vec<PMDL> = Vec::new();
        while at < data.len() || first {
            let n = (1 + rng.below(data.len().max(1))).min(data.len() - at);
            let lead = if first { offset } else { 0 };
            let last = at + n == data.len();
            let tail = if last { rng.below(20) } else { 0 };
            let mut mem = vec![0xEE_u8; lead + n + tail];
            mem[lead..lead + n].copy_from_slice(&data[at..at + n]);
            unsafe {
                let mdl = IoAllocateMdl(
                    mem.as_mut_ptr().cast(),
                    (lead + n + tail) as ULONG,
                    FALSE,
                    FALSE,
                    ptr::null_mut(),
                );
                assert!(!mdl.is_null());
                if rng.below(2) == 0 {
                    MmBuildMdlForNonPagedPool(mdl);
                } else {
                    MmProbeAndLockPages(mdl, KernelMode, IoModifyAccess);
                }
                if let Some(&prev) = mdls.last() {
                    (*prev).Next = mdl;
                }
                mdls.push(mdl);
                parts.push((mem, mdl, lead, n));
            }
            at += n;
            first = false;
            if last {
                break;
            }
        }
        let wsk = Box::new(WSK_BUF {
            Mdl: mdls[0],
            Offset: offset as ULONG,
            Length: data.len(),
        });
        ChainBuf { parts, wsk }
    }

    fn ptr(&mut self) -> PWSK_BUF {
        &raw mut *self.wsk
    }

    /// The first `n` bytes of data the chain describes (read back from the
    /// client's own memory).
    fn contents(&self, n: usize) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .parts
            .iter()
            .flat_map(|(mem, _, lead, len)| mem[*lead..*lead + *len].to_vec())
            .collect();
        out.truncate(n);
        out
    }
}

impl Drop for ChainBuf {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        for (_, mdl, _, _) in &self.parts {
            unsafe {
                if (**mdl).MdlFlags & MDL_PAGES_LOCKED != 0 {
                    MmUnlockPages(*mdl);
                }
                IoFreeMdl(*mdl);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The careful stream client

enum Piece {
    Bytes(Vec<u8>),
    /// A retained `WSK_DATA_INDICATION` chain, read and released later.
    Retained(usize),
}

/// What the careful client's callbacks saw, and its stream so far.
struct Careful {
    pieces: Mutex<Vec<Piece>>,
    /// Indications stopped (refused or partly accepted): a zero-length
    /// `WskReceive` resumes them.
    paused: AtomicBool,
    disconnected: AtomicBool,
    rng: Mutex<Rng>,
    /// Chain lengths of every indication.
    chains: Mutex<Vec<usize>>,
    /// Element lengths (to see 1-byte elements).
    elements: Mutex<Vec<usize>>,
    /// `(IRQL, Flags)` of every callback.
    irqls: Mutex<Vec<(u8, u32)>>,
    refusals: AtomicUsize,
}

impl Careful {
    fn new(seed: u64) -> Box<Careful> {
        Box::new(Careful {
            pieces: Mutex::default(),
            paused: AtomicBool::new(false),
            disconnected: AtomicBool::new(false),
            rng: Mutex::new(Rng(seed ^ 0xC0FF_EE00)),
            chains: Mutex::default(),
            elements: Mutex::default(),
            irqls: Mutex::default(),
            refusals: AtomicUsize::new(0),
        })
    }

    fn ptr(&self) -> PVOID {
        ptr::from_ref(self).cast_mut().cast()
    }

    fn saw(&self, flags: u32) {
        let irql = unsafe { KeGetCurrentIrql() };
        self.irqls.lock().unwrap().push((irql, flags));
    }
}

unsafe fn careful<'a>(p: PVOID) -> &'a Careful {
    &*p.cast::<Careful>()
}

/// Reads a whole chain; `None` if any MDL cannot be mapped now.
unsafe fn read_chain(ind: PWSK_DATA_INDICATION) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut p = ind;
    while !p.is_null() {
        out.extend(wsk_buf_bytes(&(*p).Buffer)?);
        p = (*p).Next;
    }
    Some(out)
}

unsafe extern "system" fn careful_receive(
    sc: PVOID,
    flags: ULONG,
    ind: PWSK_DATA_INDICATION,
    indicated: SIZE_T,
    accepted: PSIZE_T,
) -> NTSTATUS {
    let c = careful(sc);
    c.saw(flags);
    assert!(!ind.is_null(), "no NULL indication expected here");
    let mut n = 0;
    let mut total = 0;
    let mut p = ind;
    while !p.is_null() {
        n += 1;
        total += (*p).Buffer.Length;
        c.elements.lock().unwrap().push((*p).Buffer.Length);
        p = (*p).Next;
    }
    assert_eq!(total, indicated, "BytesIndicated is the chain's total");
    c.chains.lock().unwrap().push(n);
    let choice = c.rng.lock().unwrap().below(8);
    let refuse = || {
        c.refusals.fetch_add(1, Ordering::SeqCst);
        c.paused.store(true, Ordering::SeqCst);
        STATUS_DATA_NOT_ACCEPTED
    };
    match choice {
        0 => refuse(),
        1 => {
            c.pieces.lock().unwrap().push(Piece::Retained(ind as usize));
            STATUS_PENDING
        }
        _ => {
            let Some(bytes) = read_chain(ind) else {
                // Not mapped now: leave the data with the provider.
                return refuse();
            };
            let take = if choice == 2 && indicated > 1 {
                1 + c.rng.lock().unwrap().below(indicated - 1)
            } else {
                indicated
            };
            c.pieces
                .lock()
                .unwrap()
                .push(Piece::Bytes(bytes[..take].to_vec()));
            if take < indicated {
                *accepted = take;
                c.paused.store(true, Ordering::SeqCst);
            }
            STATUS_SUCCESS
        }
    }
}

unsafe extern "system" fn careful_disconnect(sc: PVOID, flags: ULONG) -> NTSTATUS {
    let c = careful(sc);
    c.saw(flags);
    c.disconnected.store(true, Ordering::SeqCst);
    STATUS_SUCCESS
}

static CAREFUL_CONN: WSK_CLIENT_CONNECTION_DISPATCH = WSK_CLIENT_CONNECTION_DISPATCH {
    WskReceiveEvent: Some(careful_receive),
    WskDisconnectEvent: Some(careful_disconnect),
    WskSendBacklogEvent: None,
};

/// From the test thread (`PASSIVE_LEVEL`): reads and releases retained
/// chains (retrying mappings that fail), and resumes paused indications
/// with zero-length receives.
fn drain(c: &Careful, s: PWSK_SOCKET) {
    loop {
        let retained: Vec<(usize, usize)> = c
            .pieces
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Piece::Retained(ind) => Some((i, *ind)),
                Piece::Bytes(_) => None,
            })
            .collect();
        for (i, ind) in retained {
            let bytes = (0..1000)
                .find_map(|_| unsafe { read_chain(ind as PWSK_DATA_INDICATION) })
                .expect("a retained chain maps within 1000 tries");
            c.pieces.lock().unwrap()[i] = Piece::Bytes(bytes);
            let st = unsafe { (conn(s).WskRelease.unwrap())(s, ind as PWSK_DATA_INDICATION) };
            assert_eq!(st, STATUS_SUCCESS);
        }
        if !c.paused.swap(false, Ordering::SeqCst) {
            if c.pieces
                .lock()
                .unwrap()
                .iter()
                .all(|p| matches!(p, Piece::Bytes(_)))
            {
                return;
            }
            continue;
        }
        // "A WSK application can call the WskReceive function with a
        // zero-length buffer, which will cause the WSK subsystem to resume
        // calling the WskReceiveEvent event callback function."
        let mut r = Req::new();
        let mut empty = WSK_BUF {
            Mdl: ptr::null_mut(),
            Offset: 0,
            Length: 0,
        };
        let irp = r.arm();
        let st = unsafe { (conn(s).WskReceive.unwrap())(s, &mut empty, 0, irp) };
        assert_eq!(r.wait(st), (STATUS_SUCCESS, 0));
    }
}

fn stream_bytes(c: &Careful) -> Vec<u8> {
    c.pieces
        .lock()
        .unwrap()
        .iter()
        .flat_map(|p| match p {
            Piece::Bytes(b) => b.clone(),
            Piece::Retained(_) => panic!("a retained chain was not drained"),
        })
        .collect()
}

/// One run: the peer sends random data in random pieces; the careful client
/// takes, partly takes, refuses and retains indications at random; it
/// echoes everything back through multi-MDL `WSK_BUF`s. Returns what the
/// client saw.
fn careful_stream_run(seed: u64, adversary: Adversary) -> (Box<Careful>, wsk_sim::Stats) {
    let mut cfg = wsk_sim::Config::default();
    cfg.adversary = Some(adversary.with_seed(seed));
    let sim = Sim::with_config(cfg);
    let peer = sim.peer_listen("10.0.0.2:80");
    let client = Client::new();
    let x = Careful::new(seed);
    let s = connected(
        &client,
        "10.0.0.2:80",
        x.ptr(),
        (&raw const CAREFUL_CONN).cast(),
    );
    assert_eq!(
        enable_events(s, WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT),
        STATUS_SUCCESS
    );
    let p = peer.accept();
    let mut rng = Rng(seed);
    let data = rng.bytes(stream_len());
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(700)).min(data.len() - at);
        p.send(&data[at..at + n]);
        at += n;
        sim.settle();
        drain(&x, s);
    }
    p.close();
    sim.settle();
    drain(&x, s);
    assert!(
        x.disconnected.load(Ordering::SeqCst),
        "seed {seed}: the FIN reached on_disconnect"
    );
    let got = stream_bytes(&x);
    assert_eq!(got.len(), data.len(), "seed {seed}: stream length");
    assert!(got == data, "seed {seed}: stream bytes differ");

    // Back to the peer through client MDL chains. The peer reads meanwhile:
    // a send completes only once its bytes fit in the peer's window
    // (late-sends, WskSend remarks: no buffering).
    let reader = std::thread::spawn(move || p.recv_until_closed());
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(900)).min(data.len() - at);
        let mut b = ChainBuf::new(&data[at..at + n], &mut rng);
        let mut r = Req::new();
        let irp = r.arm();
        let st = unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
        assert_eq!(r.wait(st), (STATUS_SUCCESS, n), "seed {seed}: WskSend");
        at += n;
    }
    assert_eq!(disconnect(s, 0), STATUS_SUCCESS);
    assert!(reader.join().unwrap() == data, "seed {seed}: echoed bytes");
    assert_eq!(close(s), STATUS_SUCCESS);
    client.finish();
    let stats = sim.stats();
    drop(sim);
    (x, stats)
}

#[test]
fn a_careful_client_reassembles_the_stream_under_every_seed() {
    let mut totals = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut multi_element = 0;
    let mut one_byte = 0;
    for seed in seeds() {
        let (x, stats) = careful_stream_run(seed, Adversary::all(seed));
        totals.0 += stats.indication_elements;
        totals.1 += stats.indication_mdls;
        totals.2 += stats.indication_offsets;
        totals.3 += stats.indication_unmapped_mdls;
        totals.4 += stats.mapping_failures;
        multi_element += x.chains.lock().unwrap().iter().filter(|&&n| n > 1).count();
        one_byte += x
            .elements
            .lock()
            .unwrap()
            .iter()
            .filter(|&&n| n == 1)
            .count();
        for &(irql, flags) in x.irqls.lock().unwrap().iter() {
            if flags & WSK_FLAG_AT_DISPATCH_LEVEL != 0 {
                assert_eq!(
                    irql, DISPATCH_LEVEL,
                    "seed {seed}: the flag claims DISPATCH_LEVEL"
                );
            }
        }
    }
    let (elements, mdls, offsets, unmapped, failures) = totals;
    assert!(multi_element > 0, "chains of several WSK_DATA_INDICATIONs");
    assert!(one_byte > 0, "1-byte elements");
    assert!(mdls > elements, "several MDLs per WSK_BUF");
    assert!(offsets > 0, "non-zero WSK_BUF.Offset");
    assert!(unmapped > 0, "unmapped MDLs");
    assert!(failures > 0, "mapping failures");
}

#[test]
fn each_data_behaviour_alone_is_survived() {
    let n = seeds().count().min(20) as u64;
    for b in [
        Behaviour::SplitIndications,
        Behaviour::MdlChains,
        Behaviour::UnmappedIndications,
        Behaviour::MappingFailures,
        Behaviour::CompletionMix,
        Behaviour::IrqlMix,
    ] {
        for seed in 0..n {
            let _ = careful_stream_run(seed, Adversary::none(seed).with(b));
        }
    }
}

// ---------------------------------------------------------------------------
// Each behaviour happens

#[test]
fn receive_flags_and_irqls_vary_and_the_flag_never_lies() {
    let mut flagged = 0;
    let mut dispatch_unflagged = 0;
    let mut apc = 0;
    let mut passive = 0;
    let mut extra = 0;
    for seed in seeds().take(40) {
        let (x, stats) = careful_stream_run(seed, Adversary::all(seed));
        for &(irql, flags) in x.irqls.lock().unwrap().iter() {
            let flag = flags & WSK_FLAG_AT_DISPATCH_LEVEL != 0;
            match (irql, flag) {
                (DISPATCH_LEVEL, true) => flagged += 1,
                (DISPATCH_LEVEL, false) => dispatch_unflagged += 1,
                (APC_LEVEL, false) => apc += 1,
                (PASSIVE_LEVEL, false) => passive += 1,
                other => panic!("seed {seed}: callback at {other:?}"),
            }
            if flags & (WSK_FLAG_RELEASE_ASAP | WSK_FLAG_ENTIRE_MESSAGE) != 0 {
                extra += 1;
            }
        }
        for e in stats.events.iter().filter(|e| e.kind == EventKind::Receive) {
            assert_eq!(e.at_dispatch, e.irql == Irql::Dispatch);
        }
    }
    assert!(flagged > 0 && dispatch_unflagged > 0 && apc > 0 && passive > 0);
    assert!(extra > 0, "WSK_FLAG_RELEASE_ASAP / WSK_FLAG_ENTIRE_MESSAGE");
}

/// Completion routine recording the IRQL and the thread it ran on.
unsafe extern "system" fn note_completion(_d: PDEVICE_OBJECT, _irp: PIRP, ctx: PVOID) -> NTSTATUS {
    let seen = &*ctx.cast::<Mutex<Vec<(u8, std::thread::ThreadId)>>>();
    seen.lock()
        .unwrap()
        .push((KeGetCurrentIrql(), std::thread::current().id()));
    STATUS_MORE_PROCESSING_REQUIRED
}

#[test]
fn completions_mix_inline_pending_and_other_threads() {
    let sim = Sim::with_config({
        let mut cfg = wsk_sim::Config::default();
        cfg.adversary = Some(
            Adversary::none(5)
                .with(Behaviour::CompletionMix)
                .with(Behaviour::IrqlMix),
        );
        cfg
    });
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:81");
    let seen: Mutex<Vec<(u8, std::thread::ThreadId)>> = Mutex::default();
    let (mut inline, mut pending) = (0, 0);
    let mut b = Buf::new(b"x");
    for _ in 0..60 {
        let irp = unsafe { IoAllocateIrp(1, FALSE) };
        unsafe {
            IoSetCompletionRoutine(
                irp,
                Some(note_completion),
                (&raw const seen).cast_mut().cast(),
                TRUE,
                TRUE,
                TRUE,
            );
        }
        let before = seen.lock().unwrap().len();
        let st = unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
        if st == STATUS_PENDING {
            pending += 1;
        } else {
            assert_eq!(st, STATUS_SUCCESS);
            assert_eq!(
                seen.lock().unwrap().len(),
                before + 1,
                "completed inside the call"
            );
            inline += 1;
        }
        sim.settle();
        assert_eq!(seen.lock().unwrap().len(), before + 1);
        unsafe { IoFreeIrp(irp) };
    }
    let me = std::thread::current().id();
    let seen = seen.into_inner().unwrap();
    assert!(
        inline > 0 && pending > 0,
        "{inline} inline, {pending} pending"
    );
    assert!(seen.iter().any(|&(_, t)| t != me), "some on another thread");
    assert!(seen.iter().any(|&(_, t)| t == me), "some on the caller's");
    for level in [PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL] {
        assert!(
            seen.iter().any(|&(l, _)| l == level),
            "a completion at {level}"
        );
    }
    assert_eq!(p.recv_exact(60), vec![b'x'; 60]);
    drop(b);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn mapping_failures_on_command_and_by_seed() {
    let sim = benign();
    let mut mem = vec![7u8; 64];
    unsafe {
        let mdl = IoAllocateMdl(mem.as_mut_ptr().cast(), 64, FALSE, FALSE, ptr::null_mut());
        MmProbeAndLockPages(mdl, KernelMode, IoWriteAccess);
        sim.fail_next(
            Routine::MmMapLockedPagesSpecifyCache,
            STATUS_INSUFFICIENT_RESOURCES,
        );
        assert!(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority).is_null());
        // The next attempt maps, and later ones reuse the mapping.
        let va = MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority);
        assert_eq!(va.cast::<u8>(), mem.as_mut_ptr());
        assert_eq!(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority), va);
        MmUnlockPages(mdl);
        IoFreeMdl(mdl);
    }
    assert_eq!(sim.stats().mapping_failures, 1);
    drop(sim);

    let sim = Sim::with_config({
        let mut cfg = wsk_sim::Config::default();
        cfg.adversary = Some(
            Adversary::none(1)
                .with(Behaviour::MappingFailures)
                .mapping_failures_per_mille(500),
        );
        cfg
    });
    let mut nulls = 0;
    for _ in 0..100 {
        unsafe {
            let mdl = IoAllocateMdl(mem.as_mut_ptr().cast(), 64, FALSE, FALSE, ptr::null_mut());
            MmProbeAndLockPages(mdl, KernelMode, IoWriteAccess);
            nulls += usize::from(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority).is_null());
            MmUnlockPages(mdl);
            IoFreeMdl(mdl);
        }
    }
    assert!(
        (20..80).contains(&nulls),
        "{nulls} of 100 failed at 500 per mille"
    );
    drop(sim);
}

#[test]
#[should_panic(expected = "rule: MDL")]
fn mapping_an_mdl_a_second_time_is_reported() {
    let _sim = benign();
    let mut b = Buf::new(b"nonpaged");
    // MmBuildMdlForNonPagedPool already mapped it.
    unsafe { MmMapLockedPagesSpecifyCache(b.mdl, KernelMode, MmCached, ptr::null_mut(), 0, 0) };
    let _ = b.ptr();
}

#[test]
#[should_panic(expected = "BugCheckOnFailure TRUE")]
fn mapping_with_bug_check_on_failure_is_reported() {
    let _sim = benign();
    let mut mem = vec![0u8; 16];
    unsafe {
        let mdl = IoAllocateMdl(mem.as_mut_ptr().cast(), 16, FALSE, FALSE, ptr::null_mut());
        MmProbeAndLockPages(mdl, KernelMode, IoWriteAccess);
        MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, ptr::null_mut(), 1, 0);
    }
}

#[test]
fn client_mdl_chains_are_read_and_written_exactly() {
    for seed in seeds().take(50) {
        let sim = Sim::hostile(seed);
        let peer = sim.peer_listen("10.0.0.2:82");
        let c = Client::new();
        let s = connected(&c, "10.0.0.2:82", ptr::null_mut(), ptr::null());
        let p = peer.accept();
        let mut rng = Rng(seed);
        let len = 1 + rng.below(2000);
        let data = rng.bytes(len);
        p.send(&data);
        let mut got = Vec::new();
        while got.len() < data.len() {
            let want = 1 + rng.below(data.len());
            let mut b = ChainBuf::new(&vec![0u8; want], &mut rng);
            let mut r = Req::new();
            let irp = r.arm();
            let st = unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
            let (st, n) = r.wait(st);
            assert_eq!(st, STATUS_SUCCESS);
            assert!(n > 0 && n <= want);
            got.extend(b.contents(n));
            // Bytes outside Offset/Length are untouched.
            for (i, (mem, _, lead, len)) in b.parts.iter().enumerate() {
                let outside = mem[..*lead].iter().chain(&mem[lead + len..]);
                assert!(
                    outside.into_iter().all(|&x| x == 0xEE),
                    "seed {seed}: part {i}"
                );
            }
        }
        assert!(got == data, "seed {seed}");
        assert_eq!(close(s), STATUS_SUCCESS);
        c.finish();
    }
}

// ---------------------------------------------------------------------------
// The careful datagram client

enum Dgrams {
    Got(Vec<Vec<u8>>),
    Retained(usize),
}

struct CarefulUdp {
    got: Mutex<Vec<Dgrams>>,
    /// A refusal disabled (or paused) the event: enable it again.
    refused: AtomicBool,
    rng: Mutex<Rng>,
    chains: Mutex<Vec<usize>>,
}

unsafe fn read_datagrams(ind: PWSK_DATAGRAM_INDICATION) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut p = ind;
    while !p.is_null() {
        out.push(wsk_buf_bytes(&(*p).Buffer)?);
        p = (*p).Next;
    }
    Some(out)
}

unsafe extern "system" fn careful_receive_from(
    sc: PVOID,
    flags: ULONG,
    ind: PWSK_DATAGRAM_INDICATION,
) -> NTSTATUS {
    let c = &*sc.cast::<CarefulUdp>();
    if flags & WSK_FLAG_AT_DISPATCH_LEVEL != 0 {
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
    }
    assert!(!ind.is_null());
    let mut n = 0;
    let mut p = ind;
    while !p.is_null() {
        n += 1;
        p = (*p).Next;
    }
    c.chains.lock().unwrap().push(n);
    let refuse = || {
        c.refused.store(true, Ordering::SeqCst);
        STATUS_DATA_NOT_ACCEPTED
    };
    match c.rng.lock().unwrap().below(6) {
        0 => refuse(),
        1 => {
            c.got.lock().unwrap().push(Dgrams::Retained(ind as usize));
            STATUS_PENDING
        }
        _ => match read_datagrams(ind) {
            Some(d) => {
                c.got.lock().unwrap().push(Dgrams::Got(d));
                STATUS_SUCCESS
            }
            None => refuse(),
        },
    }
}

static CAREFUL_DGRAM: WSK_CLIENT_DATAGRAM_DISPATCH = WSK_CLIENT_DATAGRAM_DISPATCH {
    WskReceiveFromEvent: Some(careful_receive_from),
};

fn drain_udp(sim: &Sim, c: &CarefulUdp, d: PWSK_SOCKET) {
    loop {
        sim.settle();
        let retained: Vec<(usize, usize)> = c
            .got
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter_map(|(i, g)| match g {
                Dgrams::Retained(ind) => Some((i, *ind)),
                Dgrams::Got(_) => None,
            })
            .collect();
        for (i, ind) in retained {
            let got = (0..1000)
                .find_map(|_| unsafe { read_datagrams(ind as PWSK_DATAGRAM_INDICATION) })
                .expect("maps within 1000 tries");
            c.got.lock().unwrap()[i] = Dgrams::Got(got);
            let st = unsafe { (dgram(d).WskRelease.unwrap())(d, ind as PWSK_DATAGRAM_INDICATION) };
            assert_eq!(st, STATUS_SUCCESS);
        }
        if !c.refused.swap(false, Ordering::SeqCst) {
            return;
        }
        // The refusal disabled the event (SO_WSK_EVENT_CALLBACK-enabled):
        // enable it again; the buffered datagrams are indicated anew.
        assert_eq!(enable_events(d, WSK_EVENT_RECEIVE_FROM), STATUS_SUCCESS);
    }
}

#[test]
fn a_careful_client_receives_every_datagram_under_every_seed() {
    let mut multi = 0;
    let (mut elements, mut mdls, mut offsets) = (0, 0, 0);
    for seed in seeds() {
        let sim = Sim::hostile(seed);
        let peer = sim.peer_udp("10.0.0.2:53");
        let client = Client::new();
        let x = Box::new(CarefulUdp {
            got: Mutex::default(),
            refused: AtomicBool::new(false),
            rng: Mutex::new(Rng(seed ^ 0xD6)),
            chains: Mutex::default(),
        });
        let d = client.socket(
            WSK_FLAG_DATAGRAM_SOCKET,
            ptr::from_ref(&*x).cast_mut().cast(),
            (&raw const CAREFUL_DGRAM).cast(),
        );
        assert_eq!(bind(d, dgram(d).WskBind, "0.0.0.0:5353"), STATUS_SUCCESS);
        assert_eq!(enable_events(d, WSK_EVENT_RECEIVE_FROM), STATUS_SUCCESS);
        let mut rng = Rng(seed);
        let mut sent = Vec::new();
        for _ in 0..(if cfg!(miri) { 3 } else { 12 }) {
            for _ in 0..=rng.below(5) {
                let len = rng.below(300);
                let dg = rng.bytes(len);
                peer.send_to("10.0.0.1:5353", &dg);
                sent.push(dg);
            }
            drain_udp(&sim, &x, d);
        }
        let got: Vec<Vec<u8>> = x
            .got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|g| match g {
                Dgrams::Got(v) => v.clone(),
                Dgrams::Retained(_) => unreachable!(),
            })
            .collect();
        assert!(got == sent, "seed {seed}: datagrams differ");
        multi += x.chains.lock().unwrap().iter().filter(|&&n| n > 1).count();
        assert_eq!(close(d), STATUS_SUCCESS);
        client.finish();
        let stats = sim.stats();
        elements += stats.indication_elements;
        mdls += stats.indication_mdls;
        offsets += stats.indication_offsets;
    }
    assert!(multi > 0, "several datagrams per indication");
    assert!(mdls > elements, "datagrams over several MDLs");
    assert!(offsets > 0, "non-zero offsets in datagram buffers");
}
