//! What the built library asks the dynamic loader for. Fluent Bit links its own OpenSSL; a
//! plugin that pulled in another libssl or libcrypto could clash with it, so the promise in
//! docs/fluent-bit.md ("depends only on libc, libm and libgcc_s") is checked on the real file.

mod harness;

/// Libraries a Rust cdylib on glibc needs; anything else is a new dependency to look at.
const ALLOWED: [&str; 4] = [
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
];

fn u16_at(elf: &[u8], at: usize) -> usize {
    u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()).into()
}

fn u32_at(elf: &[u8], at: usize) -> usize {
    u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize
}

fn u64_at(elf: &[u8], at: usize) -> usize {
    usize::try_from(u64::from_le_bytes(elf[at..at + 8].try_into().unwrap())).unwrap()
}

/// The `DT_NEEDED` names of a little-endian ELF64 file: the dynamic section's entries, their
/// names looked up in the string table the section links to.
fn needed(elf: &[u8]) -> Vec<String> {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "a little-endian ELF64 file");
    let (sections, size, count) = (u64_at(elf, 0x28), u16_at(elf, 0x3a), u16_at(elf, 0x3c));
    let header = |i: usize| sections + i * size;
    const SHT_DYNAMIC: usize = 6;
    const DT_NEEDED: usize = 1;
    let dynamic = (0..count)
        .map(header)
        .find(|&h| u32_at(elf, h + 4) == SHT_DYNAMIC)
        .expect("a dynamic section");
    let strings = u64_at(elf, header(u32_at(elf, dynamic + 0x28)) + 0x18);
    let (start, len) = (u64_at(elf, dynamic + 0x18), u64_at(elf, dynamic + 0x20));
    elf[start..start + len]
        .chunks_exact(16)
        .map(|entry| (u64_at(entry, 0), u64_at(entry, 8)))
        .take_while(|&(tag, _)| tag != 0)
        .filter(|&(tag, _)| tag == DT_NEEDED)
        .map(|(_, name)| {
            let name = &elf[strings + name..];
            let end = name
                .iter()
                .position(|&b| b == 0)
                .expect("a terminated name");
            String::from_utf8(name[..end].to_vec()).expect("an ASCII name")
        })
        .collect()
}

#[test]
fn the_library_needs_only_libc_libm_and_libgcc_s() {
    let path = harness::library_path();
    let elf = std::fs::read(&path).expect("read the built library");
    let needed = needed(&elf);
    assert!(
        needed.iter().any(|n| n == "libc.so.6"),
        "the reader found no libc in {needed:?}: it is not reading DT_NEEDED"
    );
    let extra: Vec<_> = needed
        .iter()
        .filter(|n| !ALLOWED.contains(&n.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "{} needs {extra:?} besides libc, libm and libgcc_s (libssl or libcrypto would clash \
         with Fluent Bit's own OpenSSL)",
        path.display()
    );
}
