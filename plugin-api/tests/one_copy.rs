//! A large byte string is copied once on its way out of a driver: into the
//! encoding, never into an intermediate `Value` first. Counted with an
//! allocator that records, per thread, what is allocated.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use abi_stable::std_types::{RSlice, RStr};
use pyrolab_plugin_api::__private::{ClassEntry, root_module};
use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::value::{encode, encode_into, encode_serialize, to_value};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = ALLOCATED.try_with(|n| n.set(n.get() + size));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Runs `f`, returning its result with how many allocations (and
/// reallocations) it made on this thread and how many bytes they asked for.
fn counted<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    let (before_count, before_bytes) = (ALLOCATIONS.get(), ALLOCATED.get());
    let result = f();
    (
        result,
        ALLOCATIONS.get() - before_count,
        ALLOCATED.get() - before_bytes,
    )
}

const MEGABYTE: usize = 1 << 20;

#[test]
fn a_megabyte_is_encoded_with_one_allocation_of_its_size() {
    let payload = Bytes::from(vec![0xa5; MEGABYTE]);
    let (direct, allocations, bytes) = counted(|| {
        let mut out = Vec::new();
        encode_serialize(&payload, &mut out).unwrap();
        out
    });
    assert_eq!(allocations, 1);
    assert_eq!(bytes, MEGABYTE + 4);

    // The two-step way builds a `Value::Bytes` copy first.
    let (two_step, allocations, bytes) = counted(|| {
        let mut out = Vec::new();
        encode_into(&to_value(&payload).unwrap(), &mut out);
        out
    });
    assert_eq!(direct, two_step);
    assert_eq!(allocations, 2);
    assert_eq!(bytes, 2 * MEGABYTE + 4);
}

#[test]
fn frames_among_other_fields_are_encoded_into_one_buffer() {
    #[derive(Serialize)]
    struct Frames {
        id: u32,
        frames: Vec<Bytes>,
        note: String,
    }
    let frames = Frames {
        id: 1,
        frames: vec![Bytes::from(vec![1; MEGABYTE]); 3],
        note: "three".into(),
    };
    let mut out = b"header".to_vec();
    let ((), allocations, bytes) = counted(|| encode_serialize(&frames, &mut out).unwrap());
    // Growing a buffer that already holds the header.
    assert_eq!(allocations, 1);
    assert!(bytes < 3 * MEGABYTE + 100, "{bytes}");
    assert_eq!(out[6..], encode(&to_value(&frames).unwrap())[..]);
}

#[derive(Default)]
pub struct Camera;

#[service]
impl Camera {
    /// A frame of `len` bytes.
    pub fn frame(&self, len: u32) -> Bytes {
        Bytes::from(vec![0x5a; len as usize])
    }
}

#[test]
fn a_driver_method_returning_a_megabyte_copies_it_once() {
    static CLASSES: &[ClassEntry] = &[ClassEntry::of::<Camera>()];
    let root = root_module("one_copy", CLASSES);
    let instance = (root.create())(
        RStr::from("Camera"),
        RSlice::from_slice(&encode(&Value::Null)),
    )
    .into_result()
    .unwrap_or_else(|_| panic!("construct Camera"));
    let arguments = encode(&CallArgs::positional(vec![Value::from(MEGABYTE as u32)]).into_value());
    let (result, _, bytes) = counted(|| {
        instance
            .call(RStr::from("frame"), RSlice::from_slice(&arguments))
            .into_result()
    });
    let result = result.unwrap_or_else(|_| panic!("call frame"));
    assert_eq!(
        result.as_slice(),
        encode(&Value::Bytes(vec![0x5a; MEGABYTE]))
    );
    // The frame the method builds, and the encoding: no third megabyte.
    assert!(bytes < 2 * MEGABYTE + 64 * 1024, "{bytes} bytes allocated");
}
