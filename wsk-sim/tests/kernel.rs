//! The kernel subset: IRPs, MDLs, events, spin locks, IRQL, pool, work
//! items, threads, registry — and the verifier rules they check.
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
#![allow(missing_docs, clippy::missing_safety_doc)]

mod common;

use core::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

#[allow(unused_imports)]
use common::*;
use wsk_sim::{Irql, Routine};
use wsk_sys::*;

#[test]
fn irp_allocate_layout_and_free() {
    let _sim = benign();
    unsafe {
        let irp = IoAllocateIrp(2, FALSE);
        assert!(!irp.is_null());
        assert_eq!((*irp).Type, 6);
        assert_eq!(usize::from((*irp).Size), usize::from(IoSizeOfIrp(2)));
        assert_eq!((*irp).StackCount, 2);
        assert_eq!((*irp).CurrentLocation, 3);
        let csl = (*irp).Tail.Overlay.Stack.CurrentStackLocation;
        assert_eq!(
            csl as usize,
            irp as usize + 0xD0 + 2 * 0x48,
            "one past the last location"
        );
        let next = IoGetNextIrpStackLocation(irp);
        assert_eq!(next as usize, irp as usize + 0xD0 + 0x48);
        IoFreeIrp(irp);
    }
}

#[test]
fn irp_initialize_in_caller_memory() {
    let _sim = benign();
    let size = usize::from(IoSizeOfIrp(1));
    let mut mem: Vec<u128> = vec![0xFFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF; size.div_ceil(16)];
    let irp: PIRP = mem.as_mut_ptr().cast();
    unsafe {
        IoInitializeIrp(irp, IoSizeOfIrp(1), 1);
        assert_eq!((*irp).StackCount, 1);
        assert_eq!((*irp).CurrentLocation, 2);
        assert_eq!((*irp).Cancel, 0);
        assert!((*irp).CancelRoutine.is_none());
        assert_eq!((*irp).IoStatus.Status, 0);
    }
    // Caller memory: never freed with IoFreeIrp, not a leak.
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn count_more(_d: PDEVICE_OBJECT, _irp: PIRP, _c: PVOID) -> NTSTATUS {
    CALLS.fetch_add(1, Ordering::SeqCst);
    STATUS_MORE_PROCESSING_REQUIRED
}

unsafe extern "system" fn dev_null_dispatch(_d: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    unsafe {
        assert_eq!((*irp).CurrentLocation, 1);
        (*irp).IoStatus.Status = STATUS_SUCCESS;
        (*irp).IoStatus.Information = 42;
        IoCompleteRequest(irp, IO_NO_INCREMENT);
    }
    STATUS_SUCCESS
}

#[test]
fn call_driver_and_complete_walks_the_stack() {
    let sim = benign();
    unsafe {
        let drv = sim.driver_object();
        (*drv).MajorFunction[IRP_MJ_INTERNAL_DEVICE_CONTROL as usize] = Some(dev_null_dispatch);
        let irp = IoAllocateIrp(1, FALSE);
        let next = IoGetNextIrpStackLocation(irp);
        (*next).MajorFunction = IRP_MJ_INTERNAL_DEVICE_CONTROL;
        IoSetCompletionRoutine(irp, Some(count_more), ptr::null_mut(), TRUE, TRUE, TRUE);
        CALLS.store(0, Ordering::SeqCst);
        assert_eq!(IoCallDriver(sim.device_object(), irp), STATUS_SUCCESS);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        assert_eq!((*irp).CurrentLocation, 2, "back to StackCount + 1");
        assert_eq!((*irp).IoStatus.Information, 42);
        // The stack location was cleared.
        assert!((*next).CompletionRoutine.is_none());
        IoFreeIrp(irp);
    }
}

#[test]
#[should_panic(expected = "completed twice")]
fn completing_an_irp_twice_is_reported() {
    let sim = benign();
    unsafe {
        let drv = sim.driver_object();
        (*drv).MajorFunction[IRP_MJ_INTERNAL_DEVICE_CONTROL as usize] = Some(dev_null_dispatch);
        let irp = IoAllocateIrp(1, FALSE);
        (*IoGetNextIrpStackLocation(irp)).MajorFunction = IRP_MJ_INTERNAL_DEVICE_CONTROL;
        IoSetCompletionRoutine(irp, Some(count_more), ptr::null_mut(), TRUE, TRUE, TRUE);
        IoCallDriver(sim.device_object(), irp);
        IoCompleteRequest(irp, IO_NO_INCREMENT); // second completion
        IoFreeIrp(irp);
    }
}

#[test]
#[should_panic(expected = "rule: DOUBLE_FREE")]
fn freeing_an_irp_twice_is_reported() {
    let _sim = benign();
    unsafe {
        let irp = IoAllocateIrp(1, FALSE);
        IoFreeIrp(irp);
        IoFreeIrp(irp);
    }
}

#[test]
#[should_panic(expected = "IRP")]
fn leaked_irp_is_reported_at_the_end() {
    let _sim = benign();
    let irp = unsafe { IoAllocateIrp(1, FALSE) };
    assert!(!irp.is_null());
}

#[test]
fn irp_allocation_failure_can_be_injected() {
    let sim = benign();
    sim.fail_next(Routine::IoAllocateIrp, STATUS_INSUFFICIENT_RESOURCES);
    unsafe {
        assert!(IoAllocateIrp(1, FALSE).is_null());
        let irp = IoAllocateIrp(1, FALSE);
        assert!(!irp.is_null());
        IoFreeIrp(irp);
    }
}

#[test]
fn mdl_describes_the_buffer() {
    let _sim = benign();
    let mut data = vec![7u8; 5000];
    unsafe {
        let va = data.as_mut_ptr();
        let mdl = IoAllocateMdl(va.cast(), 5000, FALSE, FALSE, ptr::null_mut());
        assert!(!mdl.is_null());
        assert_eq!((*mdl).ByteCount, 5000);
        assert_eq!((*mdl).ByteOffset as usize, va as usize & 0xFFF);
        assert_eq!((*mdl).StartVa as usize, va as usize & !0xFFF);
        assert_eq!(MmGetMdlVirtualAddress(mdl) as usize, va as usize);
        MmBuildMdlForNonPagedPool(mdl);
        assert_ne!((*mdl).MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL, 0);
        let sys = MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority);
        assert_eq!(sys as usize, va as usize);
        IoFreeMdl(mdl);

        // Chained to an IRP.
        let irp = IoAllocateIrp(1, FALSE);
        let m1 = IoAllocateMdl(va.cast(), 10, FALSE, FALSE, irp);
        let m2 = IoAllocateMdl(va.add(10).cast(), 10, TRUE, FALSE, irp);
        assert_eq!((*irp).MdlAddress, m1);
        assert_eq!((*m1).Next, m2);
        IoFreeMdl(m2);
        IoFreeMdl(m1);
        IoFreeIrp(irp);
    }
}

#[test]
#[should_panic(expected = "rule: DOUBLE_FREE")]
fn freeing_an_mdl_twice_is_reported() {
    let _sim = benign();
    let mut data = [0u8; 16];
    unsafe {
        let mdl = IoAllocateMdl(data.as_mut_ptr().cast(), 16, FALSE, FALSE, ptr::null_mut());
        IoFreeMdl(mdl);
        IoFreeMdl(mdl);
    }
}

#[test]
fn events_notification_and_synchronization() {
    let _sim = benign();
    unsafe {
        let mut ev: KEVENT = core::mem::zeroed();
        KeInitializeEvent(&mut ev, NotificationEvent, FALSE);
        assert_eq!(KeReadStateEvent(&mut ev), 0);
        let mut zero: i64 = 0;
        assert_eq!(
            KeWaitForSingleObject(
                (&raw mut ev).cast(),
                Executive,
                KernelMode,
                FALSE,
                &mut zero
            ),
            STATUS_TIMEOUT
        );
        let mut short: i64 = -10_000; // 1 ms
        assert_eq!(
            KeWaitForSingleObject(
                (&raw mut ev).cast(),
                Executive,
                KernelMode,
                FALSE,
                &mut short
            ),
            STATUS_TIMEOUT
        );
        assert_eq!(KeSetEvent(&mut ev, 0, FALSE), 0);
        assert_eq!(KeSetEvent(&mut ev, 0, FALSE), 1);
        // Notification: stays signalled.
        assert_eq!(
            KeWaitForSingleObject(
                (&raw mut ev).cast(),
                Executive,
                KernelMode,
                FALSE,
                ptr::null_mut()
            ),
            STATUS_SUCCESS
        );
        assert_eq!(
            KeWaitForSingleObject(
                (&raw mut ev).cast(),
                Executive,
                KernelMode,
                FALSE,
                &mut zero
            ),
            STATUS_SUCCESS
        );
        assert_eq!(KeResetEvent(&mut ev), 1);
        assert_eq!(
            ev.Header.SignalState, 0,
            "state lives in the DISPATCHER_HEADER"
        );

        let mut sync: KEVENT = core::mem::zeroed();
        KeInitializeEvent(&mut sync, SynchronizationEvent, TRUE);
        assert_eq!(sync.Header.Type, 1);
        assert_eq!(
            KeWaitForSingleObject(
                (&raw mut sync).cast(),
                Executive,
                KernelMode,
                FALSE,
                &mut zero
            ),
            STATUS_SUCCESS
        );
        // Auto-reset.
        assert_eq!(
            KeWaitForSingleObject(
                (&raw mut sync).cast(),
                Executive,
                KernelMode,
                FALSE,
                &mut zero
            ),
            STATUS_TIMEOUT
        );
    }
}

#[test]
fn event_set_from_another_thread_wakes_the_waiter() {
    let _sim = benign();
    let ev: &'static mut KEVENT = Box::leak(Box::new(unsafe { core::mem::zeroed() }));
    unsafe { KeInitializeEvent(ev, SynchronizationEvent, FALSE) };
    let addr = ev as *mut KEVENT as usize;
    let t = std::thread::spawn(move || unsafe {
        KeSetEvent(addr as PRKEVENT, 0, FALSE);
    });
    let st = unsafe {
        KeWaitForSingleObject(addr as PVOID, Executive, KernelMode, FALSE, ptr::null_mut())
    };
    assert_eq!(st, STATUS_SUCCESS);
    t.join().unwrap();
    drop(unsafe { Box::from_raw(addr as *mut KEVENT) });
}

#[test]
fn wait_for_multiple_objects_any_and_all() {
    let _sim = benign();
    unsafe {
        let mut a: KEVENT = core::mem::zeroed();
        let mut b: KEVENT = core::mem::zeroed();
        let (pa, pb) = (&raw mut a, &raw mut b);
        KeInitializeEvent(pa, NotificationEvent, FALSE);
        KeInitializeEvent(pb, NotificationEvent, TRUE);
        let mut objs = [pa.cast::<core::ffi::c_void>(), pb.cast()];
        let mut zero: i64 = 0;
        let st = KeWaitForMultipleObjects(
            2,
            objs.as_mut_ptr(),
            WaitAny,
            Executive,
            KernelMode,
            FALSE,
            &mut zero,
            ptr::null_mut(),
        );
        assert_eq!(st, STATUS_WAIT_1);
        let st = KeWaitForMultipleObjects(
            2,
            objs.as_mut_ptr(),
            WaitAll,
            Executive,
            KernelMode,
            FALSE,
            &mut zero,
            ptr::null_mut(),
        );
        assert_eq!(st, STATUS_TIMEOUT);
        KeSetEvent(pa, 0, FALSE);
        let st = KeWaitForMultipleObjects(
            2,
            objs.as_mut_ptr(),
            WaitAll,
            Executive,
            KernelMode,
            FALSE,
            &mut zero,
            ptr::null_mut(),
        );
        assert_eq!(st, STATUS_SUCCESS);
    }
}

#[test]
#[should_panic(expected = "rule: IRQL")]
fn waiting_at_dispatch_is_reported() {
    let sim = benign();
    unsafe {
        let mut ev: KEVENT = core::mem::zeroed();
        KeInitializeEvent(&mut ev, NotificationEvent, TRUE);
        sim.at_irql(Irql::Dispatch, || {
            // A zero timeout is allowed at DISPATCH_LEVEL…
            let mut zero: i64 = 0;
            KeWaitForSingleObject(
                (&raw mut ev).cast(),
                Executive,
                KernelMode,
                FALSE,
                &mut zero,
            );
            // …a real wait is not.
            KeWaitForSingleObject(
                (&raw mut ev).cast(),
                Executive,
                KernelMode,
                FALSE,
                ptr::null_mut(),
            );
        });
    }
}

#[test]
fn spin_locks_raise_and_restore_irql() {
    let _sim = benign();
    let lock: &'static mut KSPIN_LOCK = Box::leak(Box::new(0));
    let addr = lock as *mut KSPIN_LOCK as usize;
    let counter = std::sync::Arc::new(AtomicUsize::new(0));
    unsafe {
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
        let old = KeAcquireSpinLockRaiseToDpc(addr as PKSPIN_LOCK);
        assert_eq!(old, PASSIVE_LEVEL);
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
        KeReleaseSpinLock(addr as PKSPIN_LOCK, old);
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
    }
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let c = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    unsafe {
                        let old = KeAcquireSpinLockRaiseToDpc(addr as PKSPIN_LOCK);
                        let v = c.load(Ordering::Relaxed);
                        std::hint::spin_loop();
                        c.store(v + 1, Ordering::Relaxed);
                        KeReleaseSpinLock(addr as PKSPIN_LOCK, old);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 100);
    unsafe {
        let mut h: KLOCK_QUEUE_HANDLE = core::mem::zeroed();
        KeAcquireInStackQueuedSpinLock(addr as PKSPIN_LOCK, &mut h);
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
        KeReleaseInStackQueuedSpinLock(&mut h);
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
        drop(Box::from_raw(addr as *mut KSPIN_LOCK));
    }
}

#[test]
#[should_panic(expected = "rule: SPIN_LOCK")]
fn acquiring_a_spin_lock_twice_is_reported() {
    let _sim = benign();
    let mut lock: KSPIN_LOCK = 0;
    unsafe {
        let old = KeAcquireSpinLockRaiseToDpc(&mut lock);
        KeAcquireSpinLockAtDpcLevel(&mut lock);
        KeReleaseSpinLock(&mut lock, old);
    }
}

#[test]
#[should_panic(expected = "rule: SPIN_LOCK")]
fn releasing_a_free_spin_lock_is_reported() {
    let _sim = benign();
    let mut lock: KSPIN_LOCK = 0;
    unsafe { KeReleaseSpinLock(&mut lock, PASSIVE_LEVEL) };
}

#[test]
fn pool_tags_zeroing_and_failures() {
    let sim = benign();
    unsafe {
        let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, u32::from_le_bytes(*b"Test"));
        assert!(!p.is_null());
        assert_eq!(p as usize % 16, 0);
        assert!(
            core::slice::from_raw_parts(p.cast::<u8>(), 64)
                .iter()
                .all(|&b| b == 0)
        );
        assert_eq!(sim.pool_in_use(), 64);
        ExFreePoolWithTag(p, u32::from_le_bytes(*b"Test"));
        let q = ExAllocatePoolWithTag(NonPagedPoolNx, 10, u32::from_le_bytes(*b"Tst2"));
        ExFreePool(q);
        sim.fail_next(Routine::ExAllocatePool2, STATUS_INSUFFICIENT_RESOURCES);
        assert!(ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, 1).is_null());
    }
    assert_eq!(sim.pool_in_use(), 0);
    assert!(sim.stats().pool_allocations >= 2);
}

#[test]
#[should_panic(expected = "rule: POOL")]
fn freeing_pool_with_the_wrong_tag_is_reported() {
    let _sim = benign();
    unsafe {
        let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, u32::from_le_bytes(*b"Good"));
        ExFreePoolWithTag(p, u32::from_le_bytes(*b"Bad "));
    }
}

#[test]
#[should_panic(expected = "rule: DOUBLE_FREE")]
fn freeing_pool_twice_is_reported() {
    let _sim = benign();
    unsafe {
        let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, 1);
        ExFreePool(p);
        ExFreePool(p);
    }
}

#[test]
#[should_panic(expected = "'Leak'")]
fn leaked_pool_is_reported_with_its_tag() {
    let _sim = benign();
    let p = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, 24, u32::from_le_bytes(*b"Leak")) };
    assert!(!p.is_null());
}

static WORK_RAN: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn work(dev: PDEVICE_OBJECT, ctx: PVOID) {
    assert!(!dev.is_null());
    assert_eq!(unsafe { KeGetCurrentIrql() }, PASSIVE_LEVEL);
    WORK_RAN.fetch_add(ctx as usize, Ordering::SeqCst);
    unsafe { KeSetEvent(WORK_EVENT.load(Ordering::SeqCst) as PRKEVENT, 0, FALSE) };
}

static WORK_EVENT: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn work_ex(obj: PVOID, ctx: PVOID, item: PIO_WORKITEM) {
    assert!(!obj.is_null() && !item.is_null());
    WORK_RAN.fetch_add(ctx as usize, Ordering::SeqCst);
    unsafe { KeSetEvent(WORK_EVENT.load(Ordering::SeqCst) as PRKEVENT, 0, FALSE) };
}

#[test]
fn work_items_run_at_passive_on_a_worker() {
    let sim = benign();
    let ev: Box<KEVENT> = Box::new(unsafe { core::mem::zeroed() });
    let ev = Box::into_raw(ev);
    unsafe {
        KeInitializeEvent(ev, SynchronizationEvent, FALSE);
        WORK_EVENT.store(ev as usize, Ordering::SeqCst);
        WORK_RAN.store(0, Ordering::SeqCst);
        let item = IoAllocateWorkItem(sim.device_object());
        IoQueueWorkItem(item, Some(work), DelayedWorkQueue, 5 as PVOID);
        KeWaitForSingleObject(ev.cast(), Executive, KernelMode, FALSE, ptr::null_mut());
        assert_eq!(WORK_RAN.load(Ordering::SeqCst), 5);
        sim.settle();
        IoFreeWorkItem(item);

        let size = IoSizeofWorkItem() as usize;
        let mut mem = vec![0u128; size.div_ceil(16)];
        let item: PIO_WORKITEM = mem.as_mut_ptr().cast();
        IoInitializeWorkItem(sim.driver_object().cast(), item);
        IoQueueWorkItemEx(item, Some(work_ex), DelayedWorkQueue, 2 as PVOID);
        KeWaitForSingleObject(ev.cast(), Executive, KernelMode, FALSE, ptr::null_mut());
        sim.settle();
        IoUninitializeWorkItem(item);
        assert_eq!(WORK_RAN.load(Ordering::SeqCst), 7);
        drop(Box::from_raw(ev));
    }
    assert_eq!(sim.stats().work_items_run, 2);
}

static THREAD_SAW: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn thread_main(ctx: PVOID) {
    THREAD_SAW.store(ctx as usize, Ordering::SeqCst);
}

#[test]
fn system_thread_handle_reference_and_wait() {
    let _sim = benign();
    unsafe {
        let mut h: HANDLE = ptr::null_mut();
        let st = PsCreateSystemThread(
            &mut h,
            THREAD_ALL_ACCESS,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            Some(thread_main),
            9 as PVOID,
        );
        assert_eq!(st, STATUS_SUCCESS);
        let mut obj: PVOID = ptr::null_mut();
        assert_eq!(
            ObReferenceObjectByHandle(
                h,
                SYNCHRONIZE,
                ptr::null_mut(),
                KernelMode,
                &mut obj,
                ptr::null_mut()
            ),
            STATUS_SUCCESS
        );
        assert_eq!(ZwClose(h), STATUS_SUCCESS);
        assert_eq!(
            KeWaitForSingleObject(obj, Executive, KernelMode, FALSE, ptr::null_mut()),
            STATUS_SUCCESS
        );
        assert_eq!(THREAD_SAW.load(Ordering::SeqCst), 9);
        ObDereferenceObject(obj);
    }
}

fn ustr(s: &str) -> (Vec<u16>, UNICODE_STRING) {
    let v: Vec<u16> = s.encode_utf16().chain([0]).collect();
    let mut us = UNICODE_STRING {
        Length: 0,
        MaximumLength: 0,
        Buffer: ptr::null_mut(),
    };
    unsafe { RtlInitUnicodeString(&mut us, v.as_ptr()) };
    (v, us)
}

#[test]
fn registry_values_with_buffer_size_rules() {
    let sim = benign();
    let path = r"\Registry\Machine\System\CurrentControlSet\Services\demo\Parameters";
    sim.registry_set_dword(path, "Port", 8080);
    sim.registry_set_sz(path, "Name", "echo");
    unsafe {
        let (_k, mut key) = ustr(&path.to_uppercase());
        assert_eq!(key.Length as usize, path.len() * 2);
        let mut oa = InitializeObjectAttributes(
            &mut key,
            OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        let mut h: HANDLE = ptr::null_mut();
        assert_eq!(ZwOpenKey(&mut h, KEY_READ, &mut oa), STATUS_SUCCESS);

        let (_v, mut name) = ustr("Port");
        let mut buf = [0u8; 64];
        let mut len: ULONG = 0;
        // Too small for the header.
        let st = ZwQueryValueKey(
            h,
            &mut name,
            KeyValuePartialInformation,
            buf.as_mut_ptr().cast(),
            4,
            &mut len,
        );
        assert_eq!(st, STATUS_BUFFER_TOO_SMALL);
        assert_eq!(len, 16);
        // Header fits, data does not.
        let st = ZwQueryValueKey(
            h,
            &mut name,
            KeyValuePartialInformation,
            buf.as_mut_ptr().cast(),
            12,
            &mut len,
        );
        assert_eq!(st, STATUS_BUFFER_OVERFLOW);
        let st = ZwQueryValueKey(
            h,
            &mut name,
            KeyValuePartialInformation,
            buf.as_mut_ptr().cast(),
            64,
            &mut len,
        );
        assert_eq!(st, STATUS_SUCCESS);
        let info = buf
            .as_ptr()
            .cast::<KEY_VALUE_PARTIAL_INFORMATION>()
            .read_unaligned();
        assert_eq!(info.Type, REG_DWORD);
        assert_eq!(info.DataLength, 4);
        assert_eq!(u32::from_le_bytes(buf[12..16].try_into().unwrap()), 8080);

        let (_m, mut missing) = ustr("Missing");
        let st = ZwQueryValueKey(
            h,
            &mut missing,
            KeyValuePartialInformation,
            buf.as_mut_ptr().cast(),
            64,
            &mut len,
        );
        assert_eq!(st, STATUS_OBJECT_NAME_NOT_FOUND);
        assert_eq!(ZwClose(h), STATUS_SUCCESS);

        let (_n, mut nokey) = ustr(r"\Registry\Machine\Nope");
        let mut oa = InitializeObjectAttributes(
            &mut nokey,
            OBJ_CASE_INSENSITIVE,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        assert_eq!(
            ZwOpenKey(&mut h, KEY_READ, &mut oa),
            STATUS_OBJECT_NAME_NOT_FOUND
        );
    }
}

#[test]
fn debug_print_time_and_delay() {
    let sim = benign();
    unsafe {
        DbgPrint(c"hello %s!".as_ptr().cast(), c"world".as_ptr().cast());
        let t0 = KeQueryInterruptTimePrecise(ptr::null_mut());
        let mut d: i64 = -20_000; // 2 ms
        assert_eq!(
            KeDelayExecutionThread(KernelMode, FALSE, &mut d),
            STATUS_SUCCESS
        );
        let t1 = KeQueryInterruptTimePrecise(ptr::null_mut());
        assert!(t1 >= t0 + 20_000);
        assert!(KeQueryUnbiasedInterruptTime() >= t1);
        assert_eq!(KeQueryTimeIncrement(), 156_250);
        let a = [1u8, 2, 3, 4];
        let b = [1u8, 2, 9, 4];
        assert_eq!(RtlCompareMemory(a.as_ptr().cast(), b.as_ptr().cast(), 4), 2);
    }
    assert_eq!(sim.stats().debug_output, vec!["hello world!".to_owned()]);
}

unsafe extern "system" fn returns_success(_d: PDEVICE_OBJECT, _irp: PIRP, _c: PVOID) -> NTSTATUS {
    STATUS_SUCCESS
}

#[test]
#[should_panic(expected = "completed back to the I/O manager")]
fn completion_routine_must_stop_completion_of_driver_irps() {
    let sim = benign();
    unsafe {
        let drv = sim.driver_object();
        (*drv).MajorFunction[IRP_MJ_INTERNAL_DEVICE_CONTROL as usize] = Some(dev_null_dispatch);
        let irp = IoAllocateIrp(1, FALSE);
        (*IoGetNextIrpStackLocation(irp)).MajorFunction = IRP_MJ_INTERNAL_DEVICE_CONTROL;
        IoSetCompletionRoutine(
            irp,
            Some(returns_success),
            ptr::null_mut(),
            TRUE,
            TRUE,
            TRUE,
        );
        IoCallDriver(sim.device_object(), irp);
        IoFreeIrp(irp);
    }
}
