//! Unit tests of `debuginfo` on its own test binary (built with DWARF) and on small inputs;
//! the tests on compiled fixtures (DWARF 4/5, compressed, split, separate, inlined, and the
//! differential tests against gdb) are in `tests/debuginfo.rs`.

use super::*;

/// A function the tests find by name and address.
#[no_mangle]
#[inline(never)]
pub extern "C" fn xol_debuginfo_test_function(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_add(1)
}

#[test]
fn source_names_match_on_directory_boundaries() {
    assert!(source_matches("/src/x/loop.c", "loop.c"));
    assert!(source_matches("/src/x/loop.c", "x/loop.c"));
    assert!(source_matches("/src/x/loop.c", "/src/x/loop.c"));
    assert!(!source_matches("/src/x/loop.c", "op.c"));
    assert!(!source_matches("/src/x/loop.c", "/x/loop.c"));
    assert!(source_matches("loop.c", "loop.c"));
}

#[test]
fn the_prologue_gdb_skips_is_push_rbp_mov_rsp_rbp() {
    assert_eq!(amd64_skip_prologue(&[0x55, 0x48, 0x89, 0xe5, 0x89, 0x7d, 0xec], 0x1000), 0x1004);
    assert_eq!(amd64_skip_prologue(&[0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5], 0x1000), 0x1008);
    // push %rbp alone, or no frame at all: gdb keeps the start.
    assert_eq!(amd64_skip_prologue(&[0x55, 0x53], 0x1000), 0x1000);
    assert_eq!(amd64_skip_prologue(&[0x8d, 0x47, 0x64, 0xc3], 0x1000), 0x1000);
    assert_eq!(amd64_skip_prologue(&[], 0x1000), 0x1000);
}

#[test]
fn the_debuglink_crc_is_zlibs() {
    assert_eq!(load::crc32(b"123456789"), 0xcbf4_3926);
}

#[test]
fn nothing_is_parsed_before_a_query_and_addresses_have_locations() {
    let exe = std::env::current_exe().expect("current exe");
    let di = DebugInfo::open(&exe).expect("open");
    assert!(!di.is_loaded(), "open parses nothing");
    assert_eq!(xol_debuginfo_test_function(1), 2);
    let addr = crate::symbols::lookup(di.bytes(), "xol_debuginfo_test_function").expect("symbols").expect("symbol");
    let loc = di.location_of(LinkAddr(addr)).expect("a location");
    assert!(di.is_loaded());
    assert!(loc.file.ends_with("src/debuginfo/tests.rs"), "{loc:?}");
    assert_eq!(loc.function.as_deref(), Some("xol_debuginfo_test_function"), "{loc:?}");
    assert_eq!(loc.frames.len(), 1, "not inlined: {loc:?}");
    assert!(di.location_of(LinkAddr(u64::MAX - 0x10)).is_none());
}

#[test]
fn a_file_without_dwarf_says_so() {
    let di = DebugInfo::from_bytes(Path::new("/nonexistent/x"), b"\x7fELF not really".to_vec());
    assert!(matches!(di.lines_for("x.c", 1), Err(Error::Read(_))), "{:?}", di.lines_for("x.c", 1));
    assert!(di.location_of(LinkAddr(0x1000)).is_none());
}

#[test]
fn gdbs_messages() {
    assert_eq!(Error::NoSourceFile("foo.c".into()).to_string(), "No source file named foo.c.");
    assert_eq!(Error::NoLine { line: 999, file: "loop.c".into() }.to_string(), "No line 999 in file \"loop.c\".");
    assert_eq!(Error::NoFunction("nosuch".into()).to_string(), "Function \"nosuch\" not defined.");
}

#[test]
fn end_markers_drop_empty_rows_before_them() {
    use index::Entry;
    let e = |pc, line| Entry { pc, line, is_stmt: true };
    let mut v = vec![e(0x10, 3), e(0x20, 4)];
    index::finish_for_tests(&mut v, 0x20);
    assert_eq!(v, vec![e(0x10, 3), e(0x20, 0)]);
    // After a marker, or in an empty table, no second marker.
    index::finish_for_tests(&mut v, 0x30);
    assert_eq!(v, vec![e(0x10, 3), e(0x20, 0)]);
    let mut empty = Vec::new();
    index::finish_for_tests(&mut empty, 0x30);
    assert!(empty.is_empty());
}
