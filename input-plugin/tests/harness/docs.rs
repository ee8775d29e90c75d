//! The repository's Markdown files as tests read them: their fenced code blocks, to run what
//! the docs show.

use std::path::Path;

/// A file of the repository by its path there, with that path.
pub fn doc(path: &str) -> (String, String) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    (path.to_owned(), text)
}

/// A fenced code block: where it starts (`file:line`), its language and its lines, without the
/// fence's indentation.
pub struct Block {
    pub at: String,
    pub lang: String,
    pub lines: Vec<String>,
}

pub fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    let block = Block {
                        at: format!("{file}:{}", n + 1),
                        lang: lang.trim().to_owned(),
                        lines: Vec::new(),
                    };
                    open = Some((indent, block));
                }
            }
            Some(_) if trimmed.starts_with("```") => out.push(open.take().unwrap().1),
            Some((fence, block)) => block
                .lines
                .push(line.get(*fence..).unwrap_or("").to_owned()),
        }
    }
    assert!(open.is_none(), "{file}: a code block is not closed");
    out
}
