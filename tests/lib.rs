//! Helpers shared by memassert's integration tests.

use memassert::{Frame, Traceback};

/// The text of a panic payload (`panic!` with a message or a literal).
pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// A traceback of `(file, line)` frames, site first, without functions.
pub fn traceback_at(frames: &[(&str, u32)]) -> Traceback {
    Traceback::new(
        frames
            .iter()
            .map(|&(file, line)| Frame {
                file: file.into(),
                line,
                function: String::new(),
            })
            .collect(),
    )
}
