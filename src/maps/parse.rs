//! The text of `/proc/PID/maps` into [`Mapping`]s. Pure, so it is tested on text.
//!
//! A line is `START-END PERMS OFFSET MAJOR:MINOR INODE`, then (when the VMA has a name) spaces
//! padding to a column and the name: a path (which may contain spaces, may end in
//! ` (deleted)`; the kernel escapes only a newline, as `\012`), or `[heap]`, `[stack]`,
//! `[vdso]`, `[vvar]`, `[vsyscall]`, `[anon:NAME]`, `[anon_shmem:NAME]`, `anon_inode:...`, ...
//! The name is kept as written, trailing spaces included.

use super::{FileId, Mapping, MapsError, Perms};

/// Parse the text of `/proc/PID/maps` (lines in address order, as the kernel writes them).
/// Empty lines are skipped; any other malformed line is an error naming it.
pub fn parse_maps(text: &str) -> Result<Vec<Mapping>, MapsError> {
    let mut out = Vec::new();
    // Not `lines()`: that would also strip a `\r` ending a file name.
    for (i, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        out.push(parse_line(line).map_err(|what| MapsError::Parse { line: i + 1, text: line.to_string(), what })?);
    }
    Ok(out)
}

/// The next space-separated field of `rest` (leading spaces skipped), and what follows it
/// (starting at the separating space, if any).
fn field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let s = rest.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    let end = s.find(' ').unwrap_or(s.len());
    let (f, r) = s.split_at(end);
    *rest = r;
    Some(f)
}

fn hex(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn parse_line(line: &str) -> Result<Mapping, &'static str> {
    let mut rest = line;
    let range = field(&mut rest).ok_or("no address range")?;
    let (start, end) = range.split_once('-').ok_or("address range without '-'")?;
    let start = hex(start).ok_or("bad start address")?;
    let end = hex(end).ok_or("bad end address")?;
    if end < start {
        return Err("end address before start");
    }
    let perms = Perms::parse(field(&mut rest).ok_or("no permissions")?).ok_or("bad permissions")?;
    let offset = hex(field(&mut rest).ok_or("no offset")?).ok_or("bad offset")?;
    let dev = field(&mut rest).ok_or("no device")?;
    let (major, minor) = dev.split_once(':').ok_or("device without ':'")?;
    let major = hex(major).and_then(|v| u32::try_from(v).ok()).ok_or("bad device major")?;
    let minor = hex(minor).and_then(|v| u32::try_from(v).ok()).ok_or("bad device minor")?;
    let inode = field(&mut rest).ok_or("no inode")?;
    if !inode.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad inode");
    }
    let inode: u64 = inode.parse().map_err(|_| "bad inode")?;
    // `rest` is now empty or starts with the padding before the name.
    let name = rest.trim_start_matches(' ');
    Ok(Mapping {
        start,
        end,
        perms,
        offset,
        file: file_id(major, minor, inode),
        path: (!name.is_empty()).then(|| name.to_string()),
    })
}

/// The file of a mapping from the kernel's device numbers and inode: `None` when both are 0
/// (no backing file). The same rule serves the text and `PROCMAP_QUERY`, so both agree.
pub(super) fn file_id(major: u32, minor: u32, inode: u64) -> Option<FileId> {
    let dev = crate::sys::procmap::makedev(major, minor);
    (dev != 0 || inode != 0).then_some(FileId { dev, ino: inode })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
00400000-00401000 r--p 00000000 fd:01 1315861                            /usr/bin/cat
00401000-00406000 r-xp 00001000 fd:01 1315861                            /usr/bin/cat
0060a000-0062b000 rw-p 00000000 00:00 0                                  [heap]
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f0000021000-7f0004000000 ---p 00000000 00:00 0
7f1000000000-7f1000001000 r-xp 00002000 08:11 77                         /home/u/my lib/libx y.so
7f1000001000-7f1000002000 r--s 00000000 00:05 1024                       /memfd:buf (deleted)
7f1000002000-7f1000003000 rw-s 00000000 00:01 2048                       /dev/zero (deleted)
7f1000003000-7f1000004000 rw-p 00000000 00:00 0                          [anon:xol-slots]
7f1000004000-7f1000005000 rw-p 00000000 00:00 0                          [anon:my name with spaces]
7f1000005000-7f1000006000 r--p 00000000 fd:01 99                         /tmp/a (deleted) (deleted)
7f1000006000-7f1000007000 rw-p 00000000 00:0e 11                         anon_inode:[perf_event]
7ffd1c3a0000-7ffd1c3c1000 rw-p 00000000 00:00 0                          [stack]
7ffd1c3f8000-7ffd1c3fc000 r--p 00000000 00:00 0                          [vvar]
7ffd1c3fc000-7ffd1c3fe000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn sample() {
        let v = parse_maps(SAMPLE).expect("parse");
        assert_eq!(v.len(), 16);
        let cat = FileId { dev: 0xfd01, ino: 1315861 };
        assert_eq!(
            v[0],
            Mapping {
                start: 0x400000,
                end: 0x401000,
                perms: Perms { read: true, write: false, exec: false, shared: false },
                offset: 0,
                file: Some(cat),
                path: Some("/usr/bin/cat".into()),
            }
        );
        assert_eq!(v[1].offset, 0x1000);
        assert!(v[1].perms.exec);
        assert_eq!(v[1].file, Some(cat));
        assert_eq!(v[2].file, None);
        assert_eq!(v[2].path.as_deref(), Some("[heap]"));
        // Nameless lines, with and without a trailing space.
        assert_eq!((v[3].file, v[3].path.as_deref()), (None, None));
        assert_eq!((v[4].file, v[4].path.as_deref()), (None, None));
        assert_eq!(v[4].perms, Perms::default());
        // Spaces in the path.
        assert_eq!(v[5].path.as_deref(), Some("/home/u/my lib/libx y.so"));
        assert_eq!(v[5].file, Some(FileId { dev: 0x811, ino: 77 }));
        assert_eq!(v[5].offset, 0x2000);
        // Shared, deleted, shmem-backed: files.
        assert!(v[6].perms.shared);
        assert!(v[6].is_deleted());
        assert_eq!(v[6].file_path(), Some("/memfd:buf"));
        assert_eq!(v[6].file, Some(FileId { dev: 5, ino: 1024 }));
        assert_eq!(v[7].file, Some(FileId { dev: 1, ino: 2048 }));
        assert_eq!(v[8].path.as_deref(), Some("[anon:xol-slots]"));
        assert_eq!(v[8].file, None);
        assert_eq!(v[9].path.as_deref(), Some("[anon:my name with spaces]"));
        // Only one " (deleted)" is the kernel's.
        assert_eq!(v[10].file_path(), Some("/tmp/a (deleted)"));
        assert_eq!(v[11].path.as_deref(), Some("anon_inode:[perf_event]"));
        assert_eq!(v[11].file, Some(FileId { dev: 0xe, ino: 11 }));
        assert_eq!(v[12].path.as_deref(), Some("[stack]"));
        assert_eq!(v[14].path.as_deref(), Some("[vdso]"));
        assert_eq!(v[15].start, 0xffffffffff600000);
        assert_eq!(v[15].path.as_deref(), Some("[vsyscall]"));
        assert!(v[15].perms.exec && !v[15].perms.read);
    }

    #[test]
    fn odd_names_kept_verbatim() {
        // Trailing spaces, a carriage return, an escaped newline, leading padding of any width.
        let text = "1000-2000 r--p 00000000 fd:01 5 /tmp/trailing  \n\
                    2000-3000 r--p 00000000 fd:01 6 /tmp/cr\r\n\
                    3000-4000 r--p 00000000 fd:01 7                /tmp/nl\\012x\n";
        let v = parse_maps(text).unwrap();
        assert_eq!(v[0].path.as_deref(), Some("/tmp/trailing  "));
        assert_eq!(v[1].path.as_deref(), Some("/tmp/cr\r"));
        assert_eq!(v[2].path.as_deref(), Some("/tmp/nl\\012x"));
    }

    #[test]
    fn big_numbers() {
        // 64-bit offsets, 3-digit majors, 5-digit minors (the kernel prints %02x), big inodes.
        let v = parse_maps("7f0000000000-7f0000001000 r--p 1234567890ab 103:12345 18446744073709551615 /x\n").unwrap();
        assert_eq!(v[0].offset, 0x1234567890ab);
        assert_eq!(v[0].file, Some(FileId { dev: libc::makedev(0x103, 0x12345), ino: u64::MAX }));
        assert_eq!(v[0].file.unwrap().dev, 0x1231_0345);
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(parse_maps("").unwrap(), vec![]);
        assert_eq!(parse_maps("\n\n").unwrap(), vec![]);
        assert_eq!(parse_maps("1000-2000 r--p 00000000 00:00 0").unwrap().len(), 1);
        // no final newline
    }

    #[test]
    fn malformed_lines_are_errors_that_name_the_line() {
        for (bad, what) in [
            ("garbage", "address range without '-'"),
            ("1000-2000", "no permissions"),
            ("1000-2000 r--p", "no offset"),
            ("1000-2000 r--p 0", "no device"),
            ("1000-2000 r--p 0 fd01 1", "device without ':'"),
            ("1000-2000 r--p 0 fd:01", "no inode"),
            ("1000-2000 r--p 0 fd:01 x1 /a", "bad inode"),
            ("1000-2000 r--p 0 fd:01 -1 /a", "bad inode"),
            ("1000-2000 r--p 0 zz:01 1 /a", "bad device major"),
            ("1000-2000 rwxq 0 fd:01 1 /a", "bad permissions"),
            ("1000-2000 r--p g 00:00 0", "bad offset"),
            ("x000-2000 r--p 0 00:00 0", "bad start address"),
            ("1000- r--p 0 00:00 0", "bad end address"),
            ("2000-1000 r--p 0 00:00 0", "end address before start"),
            ("1-11111111111111111 r--p 0 00:00 0", "bad end address"),
        ] {
            let text = format!("1000-2000 r--p 00000000 00:00 0\n{bad}\n");
            match parse_maps(&text) {
                Err(MapsError::Parse { line, text, what: w }) => {
                    assert_eq!((line, text.as_str(), w), (2, bad, what), "{bad}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn own_maps_parse() {
        let text = crate::sys::procmap::read_maps(std::process::id() as i32).expect("read own maps");
        let v = parse_maps(&text).expect("parse own maps");
        assert!(v.len() > 5);
        assert!(v.windows(2).all(|w| w[0].end <= w[1].start), "sorted, disjoint");
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_str().unwrap();
        assert!(v.iter().any(|m| m.file_path() == Some(exe)));
    }
}
