//! Reads the small files options name (`token_file`, `ca_file`, `--config`). A FIFO no one
//! writes to, a device, or an endless file such as `/dev/zero` would otherwise hang the
//! plugin's Init, and Fluent Bit with it, or take the host's memory.

use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a pipe (a FIFO, or the binary's `--token-file <(…)`) may take to be written.
const PIPE_WAIT: Duration = Duration::from_secs(5);

/// The whole of the regular file or pipe at `path`, at most `max` bytes.
pub fn read(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    // Checked before opening as well as after: opening a device may do something.
    readable_kind(&std::fs::metadata(path)?)?;
    // Opening a FIFO for reading would wait for a writer; non-blocking, it returns at once.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    readable_kind(&file.metadata()?)?;
    let deadline = Instant::now() + PIPE_WAIT;
    let mut out = Vec::new();
    let mut chunk = [0; 8192];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) if out.len() + n > max => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("larger than {max} bytes, more than it should hold"),
                ));
            }
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("a pipe that was not written to within {PIPE_WAIT:?}"),
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// [`read`], as UTF-8 text.
pub fn read_text(path: &Path, max: usize) -> io::Result<String> {
    String::from_utf8(read(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn readable_kind(meta: &std::fs::Metadata) -> io::Result<()> {
    let kind = meta.file_type();
    if kind.is_file() || kind.is_fifo() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        "a device or socket"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}, not a regular file"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_and_pipes_only_and_never_too_much() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "abc").unwrap();
        assert_eq!(read(&small, 3).unwrap(), b"abc");
        std::fs::write(&small, b"\xff").unwrap();
        let e = read_text(&small, 3).unwrap_err().to_string();
        assert_eq!(e, "not UTF-8 text");
        std::fs::write(&small, "abc").unwrap();
        let e = read(&small, 2).unwrap_err().to_string();
        assert_eq!(e, "larger than 2 bytes, more than it should hold");
        let e = read(Path::new("/dev/zero"), 100).unwrap_err().to_string();
        assert_eq!(e, "a device or socket, not a regular file");
        let e = read(dir.path(), 100).unwrap_err().to_string();
        assert_eq!(e, "a directory, not a regular file");
        // A FIFO no one writes to reads as empty at once, instead of waiting forever.
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        assert_eq!(read(&fifo, 100).unwrap(), b"");
        assert!(started.elapsed() < Duration::from_secs(1));
        // A pipe written a moment later is read whole, as the binary's `--token-file <(…)`.
        let (reader, mut writer) = io::pipe().unwrap();
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&reader));
        let write_later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            io::Write::write_all(&mut writer, b"token").unwrap();
        });
        assert_eq!(read(Path::new(&path), 100).unwrap(), b"token");
        write_later.join().unwrap();
    }
}
