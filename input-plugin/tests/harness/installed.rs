//! A real Fluent Bit installed on this machine, for the tests that run one: `FLUENT_BIT`, else
//! `fluent-bit` on PATH. Tests that need it skip, saying so, when there is none (CI has none).

use std::path::PathBuf;
use std::process::Command;

pub struct FluentBit {
    pub bin: PathBuf,
    /// `(major, minor)`
    pub version: (u32, u32),
}

impl FluentBit {
    /// `None`, after printing that `test` is skipped, when no Fluent Bit is there.
    pub fn find(test: &str) -> Option<FluentBit> {
        let bin = match std::env::var_os("FLUENT_BIT") {
            Some(path) => Some(PathBuf::from(path)),
            None => std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("fluent-bit"))
                    .find(|p| p.is_file())
            }),
        };
        let Some(bin) = bin else {
            println!("SKIPPED {test}: no Fluent Bit (set FLUENT_BIT=/path/to/fluent-bit)");
            return None;
        };
        let text = Command::new(&bin)
            .arg("--version")
            .output()
            .expect("run fluent-bit --version")
            .stdout;
        let text = String::from_utf8_lossy(&text);
        let version = version(&text).expect("a version in `fluent-bit --version`");
        println!("{test}: using {}: {}", bin.display(), text.trim());
        Some(FluentBit { bin, version })
    }

    /// Before 4.1, one input per process (see docs/fluent-bit.md).
    pub fn accounts(&self) -> &'static [&'static str] {
        if self.version >= (4, 1) {
            &["acme", "globex"]
        } else {
            &["acme"]
        }
    }
}

/// `(major, minor)` from `fluent-bit --version` ("Fluent Bit v4.0.14").
fn version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split('.').map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??))
}
